"""`subscribers …`: import, suppress, list, export, forget and unsubscribe; each delegates to postbode.audience.

postbode.audience and postbode.store are imported in the commands that use them:
`list --count` answers from `postbode.counting` without loading SQLAlchemy when it can.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import click
from rich.table import Table

from postbode import counting
from postbode.cli.common import EMAIL, Context, console, pass_context, printable
from postbode.errors import AudienceError

if TYPE_CHECKING:
    from postbode import store
    from postbode.audience import ImportSummary

MAX_SHOWN_PROBLEMS = 20


@contextmanager
def _db(ctx: Context) -> Iterator[store.Connection]:
    """The state database for one command, closed when it is done."""
    from postbode import store

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
@click.option("--consent-confirmed", "consent_confirmed", metavar="SOURCE",
              help="Where these people confirmed their consent (e.g. \"paper forms, gala 2018\"): "
                   "unconfirmed addresses in the file become subscribed, logged with SOURCE.")
@pass_context
def import_(ctx: Context, file: Path, list_name: str, dry_run: bool, unconfirmed: bool,
            consent_confirmed: str | None) -> None:
    """Import a CSV file (Excel, CRM, Mailchimp or listmonk export) into a list.

    The delimiter (; , tab), the encoding (UTF-8, Windows-1252, per line) and the
    number notation (1.250,50 or 1,250.50) are detected; Dutch and English
    headers are understood (e-mail, naam, voornaam, achternaam, taal, aanhef,
    tags, status). Rows whose status is unsubscribed, cleaned/bounced or
    blocklisted become suppressions, never subscribers. Addresses that
    unsubscribed, bounced, complained or were forgotten stay suppressed, and
    unconfirmed ones stay unconfirmed unless --consent-confirmed says where they
    confirmed. Invalid lines are reported by line and skipped.

    \b
    Example:
      python send.py subscribers import subscribers/donors.csv --list donors --dry-run
      python send.py subscribers import unsubscribed_members_export.csv --list subscribers
    """
    from postbode import audience

    with _db(ctx) as conn:
        summary = audience.import_csv(conn, file, list_name, ctx.settings, dry_run=dry_run,
                                      unconfirmed=unconfirmed, consent_confirmed=consent_confirmed)
    _print_summary(summary)


def _print_problems(summary: ImportSummary) -> None:
    for label, problems, total in (("skipped", summary.invalid, summary.invalid_count),
                                   ("warning", summary.warnings, summary.warning_count),
                                   ("merged", summary.merged, summary.duplicates)):
        for problem in problems[:MAX_SHOWN_PROBLEMS]:
            console.print(f"[yellow]{label}:[/] ", end="")
            console.print(printable(problem))
        if total > MAX_SHOWN_PROBLEMS:
            console.print(f"[yellow]{label}:[/] … and {total - MAX_SHOWN_PROBLEMS} more")


def _print_summary(summary: ImportSummary) -> None:
    _print_problems(summary)
    title = f"{summary.file.name} → list {summary.list_name}" + (" (dry run: nothing written)" if summary.dry_run else "")
    table = Table(title=printable(title), show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    delimiter = {"\t": "tab"}.get(summary.delimiter, summary.delimiter)
    table.add_row("encoding, delimiter", f"{summary.encoding}, {delimiter}")
    if summary.number_style:
        table.add_row("numbers read as", summary.number_style)
    if summary.source_system:
        table.add_row("export of", summary.source_system)
    for label, value in _counts(summary):
        table.add_row(label, str(value))
    console.print(table)


def _counts(summary: ImportSummary) -> list[tuple[str, object]]:
    counts: list[tuple[str, object]] = [
        ("rows read", summary.rows),
        ("new subscribers", summary.new),
        ("already known", summary.existing),
        ("added to the list", summary.added_to_list),
        ("duplicates merged", summary.duplicates),
    ]
    counts += [(f"suppressed now: {status} in the file", n) for status, n in sorted(summary.newly_suppressed.items())]
    counts += [
        ("already suppressed (unsubscribed, bounced, complained, forgotten)", summary.suppressed),
        ("unconfirmed, left unconfirmed", summary.unconfirmed_kept),
    ]
    if summary.consent_confirmed:
        counts.append((f"confirmed now (consent: {printable(summary.consent_confirmed)})", summary.confirmed))
    counts += [
        ("invalid, skipped", summary.invalid_count),
        ("unknown language (default used)", summary.unknown_locales),
        ("other warnings", summary.warning_count - summary.unknown_locales),
    ]
    return counts


@subscribers.command("suppress")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--reason", type=click.Choice(["unsubscribed", "bounced", "complained"]), default="unsubscribed",
              show_default=True, help="Why these addresses must not be mailed.")
@pass_context
def suppress(ctx: Context, file: Path, reason: str) -> None:
    """Suppress every address in a file (from another system): one address a line, or a CSV with an e-mail column.

    Suppressed addresses are never mailed and no later import subscribes them again.

    \b
    Example:
      python send.py subscribers suppress old-crm-unsubscribes.txt --reason unsubscribed
    """
    from postbode.audience.bulk_suppress import suppress_file

    with _db(ctx) as conn:
        summary = suppress_file(conn, file, reason, source=f"cli suppress {file.name}")
    for problem in summary.invalid[:MAX_SHOWN_PROBLEMS]:
        console.print("[yellow]skipped:[/] ", end="")
        console.print(printable(problem))
    console.print(f"{printable(file)}: {summary.added} addresses suppressed now ({reason}), "
                  f"{summary.already} already suppressed, {summary.subscribers_changed} subscribers "
                  f"changed to {reason}, {len(summary.invalid)} invalid lines skipped")


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
    if count and segments:
        _print_plan(_plan(ctx, list(segments)))
        return
    with _db(ctx) as conn:
        if count:
            _print_consent_counts(conn)
        elif segments:
            _print_recipients(conn, list(segments), ctx, limit)
        else:
            _print_subscribers(conn, limit)


def _print_recipients(conn: store.Connection, segments: list[str], ctx: Context, limit: int) -> None:
    from postbode import audience

    table = _table("segment", "view")
    shown = 0
    for r in audience.resolve(conn, segments, ctx.settings):
        if shown < limit:
            table.add_row(*map(printable, (r.email, r.name or "", r.locale, r.formality, r.segment,
                                           r.view or "(public)")))
        shown += 1
    _print_table(table, shown, limit)


def _print_subscribers(conn: store.Connection, limit: int) -> None:
    from postbode import audience

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


def _plan(ctx: Context, segments: list[str]) -> counting.PlanCounts:
    """The counts from the last count's SQL when it still holds, else counted in full."""
    plan = counting.recall(ctx.settings, segments)
    if plan is None:
        from postbode import audience

        with _db(ctx) as conn:
            plan = audience.plan_counts(conn, segments, ctx.settings, keep=True)
    return plan


def _print_consent_counts(conn: store.Connection) -> None:
    from postbode import audience

    table = Table("consent", "subscribers")
    for consent, n in audience.count_by_consent(conn).items():
        table.add_row(consent, str(n))
    console.print(table)


def _print_plan(plan: counting.PlanCounts) -> None:
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
    from postbode import audience

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
    if done.in_flight:
        console.print(f"note: {done.in_flight} mail(s) to this address were still being written to the "
                      "outbox; when that send has finished, run this command again to delete them")
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
    from postbode import audience

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
    from postbode import audience
    from postbode.audience.segments import load_segments

    table = Table("segment", "view", "formality", "recipients", "description")
    with _db(ctx) as conn:
        for name, segment in load_segments(ctx.settings).items():
            total = audience.plan_counts(conn, [name], ctx.settings).total
            table.add_row(name, segment.view or "(public)", segment.formality or "(own)", str(total),
                          segment.description)
    console.print(table)


@subscribers.command("show")
@click.argument("email", type=EMAIL)
@click.option("--json", "as_json", is_flag=True, help="Print the data as JSON (what the person downloads).")
@pass_context
def show(ctx: Context, email: str, as_json: bool) -> None:
    """Everything held on one person: row, lists, consent, events, every mail (right of access).

    \b
    Example:
      python send.py subscribers show someone@example.org --json > someone.json
    """
    from postbode.audience.rights import person_data

    with _db(ctx) as conn:
        data = person_data(conn, email)
    if data is None:
        raise AudienceError(f"{email}: nothing is held on this address")
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return
    for part, value in data.items():
        console.print(f"[bold]{part}[/]")
        for line in json.dumps(value, ensure_ascii=False, indent=2, default=str).splitlines():
            console.print("  " + printable(line), highlight=False)


@subscribers.command("consent")
@click.argument("email", type=EMAIL)
@pass_context
def consent(ctx: Context, email: str) -> None:
    """The proof of one person's consent: when, where, which text (and version), which language.

    \b
    Example:
      python send.py subscribers consent someone@example.org
    """
    from postbode import audience
    from postbode.audience.rights import consent_proof

    with _db(ctx) as conn:
        records = consent_proof(conn, email)
        row = audience.find_subscriber(conn, email)
    if not records:
        known = f"consent {row['consent']} since {row['consent_at']} ({row['consent_source']})" if row else \
            "not in the database"
        console.print(printable(f"{email}: no sign-up confirmation recorded; {known}"))
        return
    for r in records:
        console.print(printable(f"{r['at']}  {r['source']}  lists {', '.join(r['lists'])}  "
                                f"text version {r['consent_version']}  language {r['locale']}  "
                                f"IP hash {r['ip_hash'][:16]}…"), highlight=False)
        console.print("  " + printable(r["consent_text"]), highlight=False)


@subscribers.command("purge-unconfirmed")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="Age in days (default: [signup] unconfirmed_days, 30).")
@pass_context
def purge_unconfirmed(ctx: Context, days: int | None) -> None:
    """Erase sign-ups never confirmed within a number of days (retention).

    \b
    Example:
      python send.py subscribers purge-unconfirmed --days 30
    """
    from postbode.audience.signup import forget_old_rate_events, purge_unconfirmed as purge

    days = days or ctx.settings.unconfirmed_days
    with _db(ctx) as conn:
        n = purge(conn, days)
        forget_old_rate_events(conn)
    console.print(f"{n} unconfirmed sign-up(s) older than {days} days erased")


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    cli.add_command(subscribers)
