"""`subscribers …`: import, list, export, forget and unsubscribe; each delegates to postbode.audience."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click
from rich.table import Table

from postbode import audience, store
from postbode.audience import ImportSummary
from postbode.audience.segments import load_segments
from postbode.cli.common import EMAIL, Context, console, pass_context, printable

MAX_SHOWN_PROBLEMS = 20


@contextmanager
def _db(ctx: Context) -> Iterator[store.Connection]:
    """The state database for one command, closed when it is done."""
    conn = store.connect(ctx.settings)
    try:
        yield conn
    finally:
        conn.close()


@click.group("subscribers")
def subscribers() -> None:
    """Subscribers, consent and segments in the state database.

    \b
    Example:
      python send.py subscribers import subscribers/donors.csv --list donors
      python send.py subscribers list --segment funders --count
    """


@subscribers.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--list", "list_name", required=True, help="The list to add everyone to (declared in segments.yaml).")
@click.option("--dry-run", is_flag=True, help="Read and check everything, show the summary, write nothing.")
@click.option("--unconfirmed", is_flag=True,
              help="New addresses become unconfirmed (no mail until they confirm) instead of subscribed.")
@pass_context
def import_(ctx: Context, file: Path, list_name: str, dry_run: bool, unconfirmed: bool) -> None:
    """Import a CSV file (Excel or CRM export) into a list, all or nothing.

    The delimiter (; , tab) and encoding (UTF-8, Windows-1252) are detected;
    Dutch and English headers are understood (e-mail, naam, voornaam,
    achternaam, taal, aanhef, tags). Invalid addresses are reported by line
    and skipped. Addresses that unsubscribed, bounced, complained or were
    forgotten stay suppressed.

    \b
    Example:
      python send.py subscribers import subscribers/donors.csv --list donors --dry-run
    """
    with _db(ctx) as conn:
        summary = audience.import_csv(conn, file, list_name, ctx.settings, dry_run=dry_run,
                                      unconfirmed=unconfirmed)
    _print_summary(summary)


def _print_summary(summary: ImportSummary) -> None:
    for label, problems in (("skipped", summary.invalid), ("warning", summary.warnings)):
        for problem in problems[:MAX_SHOWN_PROBLEMS]:
            console.print(f"[yellow]{label}:[/] ", end="")
            console.print(printable(problem))
        if len(problems) > MAX_SHOWN_PROBLEMS:
            console.print(f"[yellow]{label}:[/] … and {len(problems) - MAX_SHOWN_PROBLEMS} more")
    title = f"{summary.file.name} → list {summary.list_name}" + (" (dry run: nothing written)" if summary.dry_run else "")
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    delimiter = {"\t": "tab"}.get(summary.delimiter, summary.delimiter)
    table.add_row("encoding, delimiter", f"{summary.encoding}, {delimiter}")
    for label, value in (
        ("rows read", summary.rows),
        ("new subscribers", summary.new),
        ("already known", summary.existing),
        ("added to the list", summary.added_to_list),
        ("duplicates merged", summary.duplicates),
        ("suppressed (unsubscribed, bounced, complained, forgotten)", summary.suppressed),
        ("invalid, skipped", len(summary.invalid)),
        ("unknown locale (default used)", summary.unknown_locales),
        ("other warnings", len(summary.warnings) - summary.unknown_locales),
    ):
        table.add_row(label, str(value))
    console.print(table)


@subscribers.command("list")
@click.option("--segment", "segments", multiple=True, help="Only the recipients a send to this segment reaches.")
@click.option("--count", is_flag=True, help="Only the counts (per segment and locale, or per consent state).")
@click.option("--limit", type=int, default=100, show_default=True, help="Show at most this many rows.")
@pass_context
def list_(ctx: Context, segments: tuple[str, ...], count: bool, limit: int) -> None:
    """Show subscribers, or the recipients of a segment.

    \b
    Example:
      python send.py subscribers list --segment donors
      python send.py subscribers list --segment everyone --count
    """
    with _db(ctx) as conn:
        if count:
            _print_counts(conn, list(segments), ctx)
        elif segments:
            _print_recipients(conn, list(segments), ctx, limit)
        else:
            _print_subscribers(conn, limit)


def _print_recipients(conn: store.Connection, segments: list[str], ctx: Context, limit: int) -> None:
    table = _table("segment", "view")
    shown = 0
    for r in audience.resolve(conn, segments, ctx.settings):
        if shown < limit:
            table.add_row(*map(printable, (r.email, r.name or "", r.locale, r.formality, r.segment,
                                           r.view or "(public)")))
        shown += 1
    _print_table(table, shown, limit)


def _print_subscribers(conn: store.Connection, limit: int) -> None:
    table = _table("consent", "lists")
    shown = 0
    for row in audience.iter_subscribers(conn):
        if shown < limit:
            table.add_row(*map(printable, (row["email"], row["name"] or "", row["locale"] or "",
                                           row["formality"] or "", row["consent"], row["lists"] or "")))
        shown += 1
    _print_table(table, shown, limit)


def _table(*extra: str) -> Table:
    """A table of people; addresses are never wrapped, so they can be copied."""
    table = Table()
    table.add_column("email", no_wrap=True)
    for header in ("name", "locale", "formality", *extra):
        table.add_column(header)
    return table


def _print_table(table: Table, total: int, limit: int) -> None:
    console.print(table)
    if total > limit:
        console.print(f"… {total - limit} more ({total} in all); use `subscribers export` for everything")


def _print_counts(conn: store.Connection, segments: list[str], ctx: Context) -> None:
    if not segments:
        table = Table("consent", "subscribers")
        for consent, n in audience.count_by_consent(conn).items():
            table.add_row(consent, str(n))
        console.print(table)
        return
    plan = audience.plan_counts(conn, segments, ctx.settings)
    table = Table("segment", "locale", "recipients")
    for (segment, locale), n in plan.recipients.items():
        table.add_row(segment, locale, str(n))
    table.add_row("total", "", str(plan.total), style="bold")
    console.print(table)
    for reason, n in plan.left_out.items():
        console.print(f"left out, {reason}: {n}")


@subscribers.command("export")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--segment", "segments", multiple=True, help="Export the recipients of this segment instead.")
@pass_context
def export(ctx: Context, file: Path, segments: tuple[str, ...]) -> None:
    """Write subscribers (every consent state) or a segment's recipients to a UTF-8 CSV file.

    \b
    Example:
      python send.py subscribers export --segment funders funders-export.csv
    """
    with _db(ctx) as conn:
        n = audience.export(conn, file, ctx.settings, list(segments) or None)
    console.print(f"{n} rows written to {file}")


@subscribers.command("forget")
@click.argument("email", type=EMAIL)
@pass_context
def forget(ctx: Context, email: str) -> None:
    """Erase a person (right to erasure): address and name leave every table and outbox file.

    Only the address's hash stays, on the suppression list (a later import cannot add it
    again) and on their journal rows (reports still add up; the row shows `erased`).

    \b
    Example:
      python send.py subscribers forget someone@example.org
    """
    from postbode import erasure

    with _db(ctx) as conn:
        done = erasure.forget(conn, email, ctx.settings, source="cli forget")
    state = "deleted" if done.known else "was not a subscriber"
    console.print(f"{printable(email)}: {state}; {done.journal_rows} journal row(s) made anonymous, "
                  f"{done.files} outbox file(s) deleted; a later import cannot add it again")
    if not done.log_emptied:
        console.print("note: another program has the database open, so its write-ahead log "
                      "could not be emptied yet; it is emptied when that program closes it")


@subscribers.command("unsubscribe")
@click.argument("email", type=EMAIL)
@pass_context
def unsubscribe(ctx: Context, email: str) -> None:
    """Unsubscribe an address from everything (e.g. after a request by phone or mail).

    \b
    Example:
      python send.py subscribers unsubscribe someone@example.org
    """
    with _db(ctx) as conn:
        audience.unsubscribe(conn, email, source="cli unsubscribe")
    console.print(f"{email}: unsubscribed; it receives no more mail and imports will not subscribe it again")


@subscribers.command("segments")
@pass_context
def segments_(ctx: Context) -> None:
    """Show the segments of segments.yaml with their view and how many recipients each has now.

    \b
    Example:
      python send.py subscribers segments
    """
    table = Table("segment", "view", "formality", "recipients", "description")
    with _db(ctx) as conn:
        for name, segment in load_segments(ctx.settings).items():
            total = audience.plan_counts(conn, [name], ctx.settings).total
            table.add_row(name, segment.view or "(public)", segment.formality or "(own)", str(total),
                          segment.description)
    console.print(table)


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    cli.add_command(subscribers)
