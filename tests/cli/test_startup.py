"""CLI start-up: `postbode --help` loads no heavy library, and its command table is true."""
from __future__ import annotations

import json
import os
import subprocess
import sys


from postbode.cli import COMMANDS, PostbodeGroup

from conftest import REPO

HEAVY = ("premailer", "cssutils", "lxml", "flask", "pydantic", "email_validator", "requests")

PROBE = """
import json, sys
from postbode.cli import cli, main
if sys.argv[2:] == ["load-all"]:
    cli.load_all()
sys.argv = ["postbode", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _modules_after(*args: str, load_all: bool = False) -> tuple[str, set[str]]:
    """(output, modules imported) of a postbode command run in a fresh interpreter."""
    extra = ["load-all"] if load_all else []
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(list(args)), *extra], cwd=REPO,
                          env={**os.environ, "COLUMNS": "80"},
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout, set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_imports_none_of_the_heavy_libraries():
    output, modules = _modules_after("--help")
    assert "Commands:" in output and "subscribers" in output
    assert sorted(m for m in HEAVY if m in modules) == []
    # nor any command's module, nor rich, Babel or Jinja2
    assert not {m for m in modules if m.startswith("postbode.cli.") and m != "postbode.cli.common"}
    assert not {"rich", "babel", "jinja2", "yaml"} & modules


def test_a_command_loads_only_its_own_module():
    output, modules = _modules_after("serve", "--help")
    assert "Serve web versions" in output
    loaded = {m for m in modules if m.startswith("postbode.cli.")}
    assert loaded == {"postbode.cli.common", "postbode.cli.web"}
    assert "premailer" not in modules


def test_send_help_loads_neither_the_renderer_nor_the_database():
    output, modules = _modules_after("send", "--help")
    assert "--segment" in output
    loaded = sorted(m for m in ("premailer", "cssutils", "lxml", "pydantic", "flask", "requests",
                                "sqlalchemy") if m in modules)
    assert loaded == [], "postbode/cli/send.py should import the stages in the functions using them"


def test_the_command_table_matches_what_the_modules_register():
    registered = PostbodeGroup()
    for module_name in sorted({module for module, _summary in COMMANDS.values()}):
        module = __import__(f"postbode.cli.{module_name}", fromlist=["register"])
        before = set(registered.commands)
        module.register(registered)
        for name in set(registered.commands) - before:
            assert COMMANDS.get(name, ("?",))[0] == module_name, \
                f"add {name!r} to postbode.cli.COMMANDS under {module_name!r}"
    assert set(registered.commands) == set(COMMANDS)
    for name, command in registered.commands.items():
        assert command.get_short_help_str(limit=1000) == COMMANDS[name][1], \
            f"the summary of {name!r} in postbode.cli.COMMANDS differs from its help"


def test_help_lists_the_commands_as_click_does_with_every_module_loaded():
    lazy, _modules = _modules_after("--help")
    loaded, modules = _modules_after("--help", load_all=True)
    assert "premailer" in modules       # the comparison is with every command really loaded
    assert lazy == loaded
