"""`signup-snippet`: an HTML sign-up form to paste into the organisation's own site."""
from __future__ import annotations

import click

from postbode.cli.common import Context, pass_context


@click.command("signup-snippet")
@click.option("--list", "list_name", help="The self-service list the form signs up for (default: all).")
@click.option("--locale", help="The language of the form's labels (default: the default locale).")
@pass_context
def signup_snippet(ctx: Context, list_name: str | None, locale: str | None) -> None:
    """Print a plain HTML sign-up form that posts to this project's /subscribe.

    The site it is pasted into must be listed under [signup] origins in postbode.toml.

    \b
    Example:
      python send.py signup-snippet --list subscribers --locale en > signup-form.html
    """
    from postbode.web.snippet import snippet

    click.echo(snippet(ctx.settings, list_name, locale))


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    cli.add_command(signup_snippet)
