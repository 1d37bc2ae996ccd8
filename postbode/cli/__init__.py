"""Command line: parse arguments, load settings, call one stage, report errors plainly.

Each command group lives in its own module here and only delegates to the
pipeline modules in `postbode/`. A command's module is imported only when that
command runs (or shows its own help): `postbode --help` lists the commands from
the table below and imports none of them, so it answers at once.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from postbode.cli.common import Context, printable
from postbode.errors import PostbodeError

# command → (module of postbode.cli that registers it, its summary for `postbode --help`).
# tests/cli/test_startup.py checks this table against the commands the modules register.
COMMANDS: dict[str, tuple[str, str]] = {
    "archive": ("web", "Write a newsletter's web versions (every locale and view) "
                       "as static files for hosting."),
    "backup": ("service", "Copy the state database to FILE, consistently, while sends and the web "
                          "app go on."),
    "bounces": ("bounces", "Bounces and complaints of mail sent through SMTP ([bounces] domain "
                           "in postbode.toml)."),
    "build": ("build", "Render every variant of a newsletter to HTML, text and a sample .eml."),
    "check": ("build", "Validate a newsletter and render every variant in memory, writing nothing."),
    "db": ("service", "The state database's schema: `db upgrade` brings it to this version of "
                      "postbode."),
    "i18n": ("i18n", "Translation catalogs: extract texts, start a language, update, compile, "
                     "see progress."),
    "preview": ("web", "Show a newsletter in a browser: the source and a translation side by side."),
    "report": ("send", "List campaigns, or show one campaign's counts by state and locale."),
    "schedule": ("service", "Campaigns scheduled with `send … --at TIME`: list them, or cancel "
                            "one."),
    "send": ("send", "Send a newsletter to segments, each recipient exactly once; "
                     "resume by running it again."),
    "serve": ("web", "Serve web versions, unsubscribe and preferences pages."),
    "signup-snippet": ("signup", "Print a plain HTML sign-up form that posts to this project's "
                                 "/subscribe."),
    "subscribers": ("subscribers", "Subscribers, consent and segments in the state database."),
    "worker": ("service", "Send scheduled campaigns when due, resume paused ones, fetch bounces, "
                          "until SIGTERM."),
}


class PostbodeGroup(click.Group):
    """Loads each command's module on first use; turns a PostbodeError into a clean message
    and exit code (traceback only with --debug)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            module = importlib.import_module(f"postbode.cli.{COMMANDS[name][0]}")
            module.register(self)
        return self.commands.get(name)

    def load_all(self) -> "PostbodeGroup":
        """Register every command now (for tools and tests that walk `commands`)."""
        for name in COMMANDS:
            self.get_command(click.Context(self), name)
        return self

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the table: listing them imports none of them."""
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
            else:
                rows.append((name, click.Command(name, help=COMMANDS[name][1])
                             .get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as err:
            err.exit_code = 1  # every user error exits 1, wrong arguments included
            raise

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            err.exit_code = 1
            raise
        except PostbodeError as err:
            obj = ctx.obj
            if isinstance(obj, Context) and obj.debug:
                raise
            from postbode.cli.common import console_err

            console_err.print("[bold red]error:[/] ", end="")
            # soft_wrap: a long "file:line:column: …" line stays one line for editors and grep
            console_err.print(printable(err, lines=True), highlight=False, soft_wrap=True)
            sys.exit(err.exit_code)


@click.group(cls=PostbodeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False),
              help="Path of postbode.toml (default: the nearest one from here upwards).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="postbode")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, debug: bool) -> None:
    """postbode: write a result update once in YAML, send it localised to every segment.

    \b
    Example:
      python send.py build newsletters/2018-07-resultaten.yaml --locale en
    """
    ctx.obj = Context(config_path=config, debug=debug)


def main() -> None:
    cli(prog_name="postbode")
