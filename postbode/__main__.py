from postbode.cli import main

main()
