"""`bounces receive|fetch|list`: bounce mail for SMTP senders (see postbode/bounces/)."""
from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta, timezone

import click
from rich.console import Console
from rich.table import Table

from postbode.cli.common import Context, console, pass_context
from postbode.errors import ConfigError


def register(cli: click.Group) -> None:
    """Add the `bounces` group to the main group."""
    cli.add_command(bounces)


@click.group()
def bounces() -> None:
    """Bounces and complaints of mail sent through SMTP ([bounces] domain in postbode.toml).

    \b
    Example:
      python send.py bounces fetch --imap imaps://bounces@imap.example.org/INBOX
    """


def _settings(ctx: Context):
    settings = ctx.settings
    if not settings.bounce_domain:
        raise ConfigError("no bounce domain: add [bounces] domain = \"bounces.example.org\" to "
                          "postbode.toml (its MX or your mail server must bring mail for it here)")
    return settings


@bounces.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=2525, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port, printed at start).")
@click.option("--lmtp", is_flag=True, help="Speak LMTP instead of SMTP (for a Postfix transport).")
@pass_context
def receive(ctx: Context, host: str, port: int, lmtp: bool) -> None:
    """Receive bounce mail for the bounce domain and apply it, until stopped (Ctrl-C).

    \b
    Example:
      python send.py bounces receive --port 2525 --lmtp
    """
    from postbode.bounces import receive as receiver

    settings = _settings(ctx)
    # one line per mail read (its Message-ID and outcome, never an address)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)   # aiosmtpd's per-command lines

    def ready(bound_host: str, bound_port: int) -> None:
        kind = "LMTP" if lmtp else "SMTP"
        click.echo(f"receiving bounces for {settings.bounce_domain} by {kind} on "
                   f"{bound_host}:{bound_port}")

    receiver.run(settings, host, port, lmtp=lmtp, ready=ready)


@bounces.command()
@click.option("--imap", "url", required=True, metavar="URL",
              help="Mailbox: imaps://user@host[:993]/FOLDER (password: POSTBODE_IMAP_PASSWORD).")
@pass_context
def fetch(ctx: Context, url: str) -> None:
    """Read new mail in a bounce mailbox; move processed bounces to [bounces] processed_folder.

    \b
    Example:
      python send.py bounces fetch --imap imaps://bounces@imap.example.org/INBOX
    """
    from postbode.bounces import fetch as fetcher

    settings = _settings(ctx)
    summary = fetcher.fetch(settings, url, os.environ)
    console.print(summary.describe())


@bounces.command(name="list")
@click.option("--since", default=7, show_default=True, type=click.IntRange(0),
              help="Show events of the last N days.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1),
              help="Show at most this many events.")
@pass_context
def list_(ctx: Context, since: int, limit: int) -> None:
    """Show recent bounces, blocks and complaints, newest first.

    \b
    Example:
      python send.py bounces list --since 30
    """
    from postbode.bounces import report

    start = datetime.now(timezone.utc) - timedelta(days=since)
    recent = report.recent(ctx.settings, start.timestamp(), limit)
    table = Table(title=f"bounces since {start:%Y-%m-%d}")
    for name in ("when", "class", "status", "address", "campaign", "done", "diagnostic"):
        table.add_column(name)
    for e in recent.events:
        table.add_row(e.when, e.bounce_class, e.status, e.email, e.campaign_id, e.action,
                      e.diagnostic[:80])
    # a pipe or file gets every column whole; a terminal crops the table to fit
    (console if console.is_terminal else Console(highlight=False, width=200)).print(table)
    console.print(recent.describe_counts())


def print_campaign_feedback(conn, campaign_id: str) -> None:
    """`report CAMPAIGN`: delivered, bounced (hard/soft), complained, blocked, and a warning."""
    from postbode.bounces import report

    summary = report.campaign_summary(conn, campaign_id)
    if summary is None:
        return
    console.print(summary.describe())
    if summary.warning:
        console.print(f"[bold yellow]warning:[/] {summary.warning}")
