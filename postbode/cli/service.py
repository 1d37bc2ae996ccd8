"""`db upgrade`, `backup`, `worker` and `schedule`: running postbode as a service."""
from __future__ import annotations

from pathlib import Path

import click

from postbode.cli.common import Context, console, pass_context, printable


def register(cli: click.Group) -> None:
    """Add the service commands to the main group."""
    for command in (db, backup, worker, schedule):
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
      python send.py db upgrade
    """
    from postbode import store

    before, after = store.upgrade_schema(ctx.settings)
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


@click.command()
@click.option("--once", is_flag=True, help="Do one round (start what is due, resume, fetch) and exit.")
@click.option("--log-format", type=click.Choice(["plain", "json"]), default="plain",
              show_default=True, help="One line per event, as text or as a JSON object.")
@click.option("--poll", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between rounds.")
@click.option("--imap", metavar="URL", help="Bounce mailbox to fetch from every few minutes "
              "(or POSTBODE_BOUNCES_IMAP; password: POSTBODE_IMAP_PASSWORD).")
@pass_context
def worker(ctx: Context, once: bool, log_format: str, poll: float, imap: str | None) -> None:
    """Send scheduled campaigns when due, resume paused ones, fetch bounces, until SIGTERM.

    \b
    Example:
      python send.py worker --log-format json
    """
    from postbode.campaign import worker as service

    service.run_worker(ctx.settings, service.Options(once=once, poll=poll, imap=imap),
                       service.Log(log_format))


@click.group()
def schedule() -> None:
    """Campaigns scheduled with `send … --at TIME`: list them, or cancel one.

    \b
    Examples:
      python send.py schedule list
      python send.py schedule cancel 3
    """


@schedule.command(name="list")
@pass_context
def list_(ctx: Context) -> None:
    """Every scheduled campaign: when, what, and how it went (with the reason when refused).

    \b
    Example:
      python send.py schedule list
    """
    from datetime import datetime

    from postbode import store
    from postbode.campaign import schedule as schedules

    conn = store.connect(ctx.settings)
    try:
        found = schedules.list_all(conn)
    finally:
        conn.close()
    if not found:
        console.print("no scheduled campaigns (schedule one with `send NEWSLETTER --segment S --at TIME`)")
    for s in found:
        when = datetime.fromtimestamp(s.send_at).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        line = f"{s.id}  {when}  {s.status}  {s.newsletter_path} → {', '.join(s.segments)}"
        if s.campaign_id:
            line += f"  (campaign {s.campaign_id})"
        console.print(printable(line))
        if s.reason:
            console.print("    " + printable(s.reason), soft_wrap=True)


@schedule.command()
@click.argument("schedule_id", metavar="ID", type=int)
@pass_context
def cancel(ctx: Context, schedule_id: int) -> None:
    """Cancel a scheduled campaign that has not started (see `schedule list` for its ID).

    \b
    Example:
      python send.py schedule cancel 3
    """
    from postbode import store
    from postbode.campaign import schedule as schedules

    conn = store.connect(ctx.settings)
    try:
        done = schedules.cancel(conn, schedule_id)
    finally:
        conn.close()
    console.print(f"cancelled scheduled campaign {done.id} ({printable(done.newsletter_path)}); "
                  "nothing of it was sent")
