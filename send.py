#!/usr/bin/env python3
"""Run postbode from a checkout: `python send.py …` is the same as `postbode …`."""
from postbode.cli import main

if __name__ == "__main__":
    main()
