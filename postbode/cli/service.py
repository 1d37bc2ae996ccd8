"""`db upgrade`, `backup`, `worker` and `schedule`: running postbode as a service."""
from __future__ import annotations

from pathlib import Path

import click

from postbode.cli.common import Context, console, pass_context, printable


def register(cli: click.Group) -> None:
    """Add the service commands to the main group."""
    for command in (db, backup):
        cli.add_command(command)


@click.group()
def db() -> None:
    """The state database's schema: `db upgrade` brings it to this version of postbode.

    \b
    Example:
      python send.py db upgrade
    """


@db.command()
@pass_context
def upgrade(ctx: Context) -> None:
    """Migrate the state database to the newest schema (refused if it is newer than postbode).

    \b
    Example:
      POSTBODE_DB=postgresql://postbode@db.example.org/postbode python send.py db upgrade
    """
    from postbode import store

    before, after = store.upgrade(ctx.settings)
    if before == after:
        console.print(f"the state database is up to date (schema {after})")
    else:
        console.print(f"the state database was migrated from schema {before or 'none'} to {after}")


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@pass_context
def backup(ctx: Context, file: Path) -> None:
    """Copy the state database to FILE, consistently, while sends and the web app go on.

    \b
    Example:
      python send.py backup backups/postbode-2026-07-12.sqlite3
    """
    from postbode.store.backup import backup as take

    done = take(ctx.settings, file)
    if done.command:
        console.print("the state database is PostgreSQL: back it up with pg_dump "
                      "(the password from PGPASSWORD or ~/.pgpass):")
        click.echo(done.command)
        return
    console.print(f"backed up the state database to {printable(done.path)} ({done.pages} pages)")
