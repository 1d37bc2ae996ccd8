"""Command line: parse arguments, load settings, call one stage, report errors plainly.

Each command group lives in its own module here and only delegates to the
pipeline modules in `postbode/`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from postbode.cli.common import Context, console_err
from postbode.errors import PostbodeError


class PostbodeGroup(click.Group):
    """Turns a PostbodeError into a clean message and exit code (traceback only with --debug)."""

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
            console_err.print("[bold red]error:[/] ", end="")
            # soft_wrap: a long "file:line:column: …" line stays one line for editors and grep
            console_err.print(str(err), markup=False, highlight=False, soft_wrap=True)
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


def _register() -> None:
    from postbode.cli import bounces, build, i18n, send, subscribers, web

    for module in (build, i18n, send, subscribers, web, bounces):
        module.register(cli)


_register()


def main() -> None:
    cli(prog_name="postbode")
