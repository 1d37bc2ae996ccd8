"""`send` and `report`: send a newsletter to segments exactly once, and say who got what."""
from __future__ import annotations

import os
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable
from zoneinfo import ZoneInfo

import click
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn,
                           TaskProgressColumn, TextColumn, TimeRemainingColumn)
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from postbode.cli.common import EMAIL, Context, console, pass_context, printable
from postbode.config import Settings
from postbode.errors import CampaignError, CampaignInterrupted, CampaignPaused, TransportError

if TYPE_CHECKING:
    from postbode import campaign, journal

COLUMNS = ("sent", "rejected", "retried", "unknown")


def register(cli: click.Group) -> None:
    """Add `send` and `report` to the main group."""
    cli.add_command(send)
    cli.add_command(report)


@click.command()
@click.argument("newsletter", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--segment", "segments", multiple=True, required=True, metavar="NAME",
              help="Segment to send to (subscribers/segments.yaml); repeat for several.")
@click.option("--transport", metavar="URL",
              help="Where mail goes, e.g. outbox://outbox, smtp://user@host:587?tls=starttls "
                   "(default: [send] transport in postbode.toml or POSTBODE_TRANSPORT).")
@click.option("--dry-run", is_flag=True, help="Build every message, send none, write no journal.")
@click.option("--test-to", "test_to", multiple=True, metavar="EMAIL", type=EMAIL,
              help="Send one test mail of each variant to this address, its subject saying which "
                   "([TEST nl_BE · funders] …); not journaled.")
@click.option("--locale", "locales", multiple=True, metavar="LOCALE",
              help="With --test-to: only the variants of this locale (repeatable; nl also picks nl_BE).")
@click.option("--rate", type=click.FloatRange(min=0), help="At most this many mails per second.")
@click.option("--concurrency", type=click.IntRange(min=1, max=64),
              help="Parallel connections to the transport.")
@click.option("--yes", is_flag=True, help="Send without asking for confirmation.")
@click.option("--resend-unknown", is_flag=True,
              help="Also send to recipients whose mail may or may not have left in a crash.")
@click.option("--new-campaign", is_flag=True,
              help="Start a new campaign even though this one was sent (or begun) before.")
@click.option("--again", is_flag=True,
              help="Also send to people who already have this newsletter from another "
                   "campaign of it (left out otherwise, and counted in the plan).")
@click.option("--at", "at", metavar="TIME",
              help="Do not send now: schedule it for TIME (\"2026-07-12 10:00\", [i18n] timezone); "
                   "a running `worker` sends it then.")
@pass_context
def send(ctx: Context, newsletter: Path, segments: tuple[str, ...], transport: str | None,
         dry_run: bool, test_to: tuple[str, ...], locales: tuple[str, ...], rate: float | None,
         concurrency: int | None, yes: bool, resend_unknown: bool, new_campaign: bool,
         again: bool, at: str | None) -> None:
    """Send a newsletter to segments, each recipient exactly once; resume by running it again.

    Whoever already has this newsletter (from a send to other segments, or an earlier
    version) is left out and counted in the plan; --again sends to them too.

    \b
    Example:
      python send.py send newsletters/2018-07-resultaten.yaml --segment everyone --yes
    """
    # The sender brings the renderer, premailer and pydantic: loaded when sending, not for --help.
    from postbode import campaign

    url = _transport_url(transport, ctx.settings)
    settings = _send_settings(ctx.settings, url, rate, concurrency)
    send_at = _parse_at(at, transport, settings)
    _import_samples_if_empty(settings)
    if test_to or locales:
        return _send_tests(settings, newsletter, segments, test_to, url, locales)
    the_plan = campaign.plan(settings, newsletter, segments, transport=url,
                             new_campaign=new_campaign, again=again)
    _print_plan(the_plan)
    if dry_run:
        return _dry_run(settings, newsletter, segments, url, again)
    nothing = the_plan.nothing_to_do(resend_unknown)
    if nothing:
        console.print(nothing)
        return
    _confirm(yes, the_plan, send_at)
    if send_at is not None:
        return _schedule(settings, newsletter, segments, url, send_at, new_campaign, again)
    _print_outcome(settings, _run(settings, newsletter, segments, url, the_plan.campaign_id,
                                  resend_unknown=resend_unknown, new_campaign=new_campaign,
                                  again=again))


def _dry_run(settings: Settings, newsletter: Path, segments: tuple[str, ...], url: str,
             again: bool) -> None:
    from postbode import campaign  # loaded when sending, not for --help (see send)

    summary = campaign.dry_run(settings, newsletter, segments, transport=url, again=again)
    console.print(f"dry run: built {summary.built} messages ({summary.bytes:,} bytes); "
                  "nothing sent, nothing journaled")


def _run(settings: Settings, newsletter: Path, segments: tuple[str, ...], url: str,
         campaign_id: str, **flags: bool) -> campaign.SendSummary:
    """campaign.run with a progress bar; a pause prints the counts so far before it is raised."""
    from postbode import campaign  # loaded when sending, not for --help (see send)

    with _progress() as progress:
        try:
            return campaign.run(settings, newsletter, segments, transport=url,
                                policy=campaign.Policy.from_settings(settings),
                                progress=progress, **flags)
        except KeyboardInterrupt:
            raise CampaignInterrupted("stopped before sending began; run the same command "
                                      "again to start") from None
        except CampaignPaused:
            _print_summary_of_latest(settings, campaign_id)
            raise


def _send_settings(settings: Settings, url: str, rate: float | None,
                   concurrency: int | None) -> Settings:
    """The flags applied; without --concurrency or [send] concurrency, what suits `url` (--transport
    included), not the configured transport."""
    from postbode import transports

    if concurrency is None and not settings.concurrency_set:
        concurrency = transports.default_concurrency(url)
    return settings.with_overrides(rate=rate, concurrency=concurrency)


def _transport_url(flag: str | None, settings: Settings) -> str:
    """The transport URL to use, checked before anything happens; an error says where it came from."""
    from postbode import transports

    url = flag or settings.transport
    try:
        transports.parse_url(url)
    except TransportError as err:
        if flag:
            source = "--transport"
        elif os.environ.get("POSTBODE_TRANSPORT"):
            source = "the environment variable POSTBODE_TRANSPORT"
        else:
            source = "[send] transport in postbode.toml"
        raise TransportError(f"{err}\n(the URL comes from {source})") from err
    return url


@click.command()
@click.argument("campaign_id", metavar="[CAMPAIGN]", required=False)
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write every recipient's state, time, Message-ID and provider id to this file.")
@pass_context
def report(ctx: Context, campaign_id: str | None, csv_path: Path | None) -> None:
    """List campaigns, or show one campaign's counts by state and locale.

    For one campaign: each transport it went through and when (in [i18n] timezone),
    who was left out because they already had the newsletter, counts by state per
    locale and per segment.

    \b
    Examples:
      python send.py report
      python send.py report 2018-07-resultaten--everyone --csv sent.csv
    """
    from postbode import journal, store

    if csv_path and not campaign_id:
        raise CampaignError("--csv needs a campaign: run `report` to list them, then "
                            "`report CAMPAIGN --csv FILE`")
    conn = store.connect(ctx.settings)
    try:
        if not campaign_id:
            _print_campaigns(conn, ctx.settings)
            return
        from postbode.cli.bounces import print_campaign_feedback

        found = journal.require_campaign(conn, campaign_id)
        _print_campaign(conn, found, ctx.settings)
        print_campaign_feedback(conn, found.id)
        if csv_path:
            n = journal.write_report_csv(conn, found.id, csv_path, zone=ctx.settings.timezone)
            console.print(f"wrote {n} recipients to {csv_path}")
    finally:
        conn.close()


# ---------------------------------------------------------------- steps of `send`

def _import_samples_if_empty(settings: Settings) -> None:
    from postbode import audience, store

    conn = store.connect(settings)
    try:
        summaries = audience.import_samples_if_empty(conn, settings)
    finally:
        conn.close()
    if summaries:
        lists = ", ".join(f"{s.list_name} ({s.new} new)" for s in summaries)
        console.print(f"the database {printable(store.shown(settings))} had no subscribers: "
                      f"imported the sample lists {lists}")


def _parse_at(at: str | None, transport: str | None, settings: Settings) -> float | None:
    """The time --at names (None: send now); a scheduled send takes no other --transport."""
    if at is None:
        return None
    if transport and transport != settings.transport:
        # the worker sends through its own configured transport; a URL's secrets are not stored
        raise click.UsageError("--at sends through the configured transport ([send] transport or "
                               "POSTBODE_TRANSPORT where the worker runs); leave out --transport, "
                               "or send now without --at")
    from postbode.campaign import schedule

    return schedule.parse_at(at, settings)


def _schedule(settings: Settings, newsletter: Path, segments: tuple[str, ...], url: str,
              send_at: float, new_campaign: bool, again: bool) -> None:
    """Record the campaign for the worker, its newsletter's files frozen as they are now."""
    from postbode.campaign import schedule

    done = schedule.schedule_send(settings, newsletter, segments, url, send_at, new_campaign, again)
    when = datetime.fromtimestamp(done.send_at).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    console.print(f"scheduled campaign {done.id} for {when}: a running `worker` sends it then "
                  "(`schedule list` shows it, `schedule cancel "
                  f"{done.id}` cancels it); if the newsletter changes before then, the worker refuses to send it")


def _confirm(yes: bool, the_plan: campaign.Plan, send_at: float | None = None) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise CampaignError("not sending: confirmation needs a terminal; add --yes to send "
                            "without asking (check the plan above first, or use --dry-run)")
    verb = "Schedule sending" if send_at is not None else "Send"
    if not click.confirm(f"{verb} to {the_plan.total} recipients via {the_plan.transport}?"):
        raise CampaignError("not sent: you declined; nothing was sent or journaled")


class _RateColumn(ProgressColumn):
    """Messages per second, once there is a rate to show."""

    def render(self, task) -> Text:
        return Text(f"{task.speed:,.0f} msg/s" if task.speed else "")


class _progress:
    """A rich progress bar with rate and ETA on a terminal; silent otherwise."""

    def __enter__(self) -> Callable[[int, int], None] | None:
        if not console.is_terminal:
            return None
        self.bar = Progress(TextColumn("sending"), BarColumn(), MofNCompleteColumn(),
                            TaskProgressColumn(), _RateColumn(),
                            TimeRemainingColumn(), console=console, transient=False)
        self.task = self.bar.add_task("send", total=None)
        self.bar.start()
        lock = threading.Lock()

        def update(done: int, total: int) -> None:
            with lock:
                self.bar.update(self.task, completed=done, total=total)

        return update

    def __exit__(self, *exc: object) -> None:
        if console.is_terminal:
            self.bar.stop()


# ---------------------------------------------------------------- output

def _print_plan(p: campaign.Plan) -> None:
    table = Table(title=f"plan: {p.newsletter_id} → {', '.join(p.segments)}")
    for name in ("segment", "locale", "catalogs tried", "falls back", "recipients"):
        table.add_column(name, justify="right" if name == "recipients" else "left")
    for line in p.lines:
        falls_back = f"{line.untranslated} of {p.texts} texts" if line.untranslated else ""
        table.add_row(line.segment, line.locale, " → ".join(line.chain), falls_back,
                      str(line.recipients))
    table.add_row("total", "", "", "", str(p.total), style="bold")
    console.print(table)
    if any(line.untranslated for line in p.lines):
        console.print("texts not translated yet go out in the next language of 'catalogs tried'; "
                      f"`python send.py check {p.newsletter_path} --locale L` lists them")
    if any(p.fallbacks.values()):
        console.print("personal fields: " + ", ".join(f"{{{name}}} falls back for {n}"
                                                      for name, n in p.fallbacks.items() if n))
    if p.left_out:
        left = ", ".join(f"{n} {why}" for why, n in p.left_out.items())
        console.print(f"left out: {left}")
    _print_holders(p)
    console.print(f"transport: {p.transport}")
    if p.development_key:
        console.print("note: POSTBODE_SECRET_KEY is not set; unsubscribe links are signed with "
                      "the development key (fine for the outbox, refused for real sending)")
    if p.resume is not None:
        r = p.resume
        console.print(f"resuming campaign {p.campaign_id}: {r['sent']} sent, {r['rejected']} "
                      f"rejected, {r['unknown']} unknown, {r['pending'] + r['retry']} to send")
    else:
        console.print(f"campaign: {p.campaign_id} (new)")


def _by_campaign(counts: dict[str, int]) -> str:
    """`12 (campaign a), 3 (campaign b)`: how many, from which campaign."""
    return ", ".join(f"{n} (campaign {printable(cid)})" for cid, n in counts.items())


def _print_holders(p: campaign.Plan) -> None:
    """Who in the segments already has this newsletter, and what this send does about them."""
    if p.resume is not None:
        if p.already:
            console.print("left out when this campaign began, because they already had this "
                          f"newsletter: {_by_campaign(p.already)}")
        if p.again:
            console.print("note: --again applies when a campaign begins; this one is resumed "
                          "as it began")
        return
    if p.already:
        n = sum(p.already.values())
        earlier = [c for c in p.already if c in p.earlier_versions]
        if p.again:
            console.print(f"--again: sending again to {n} who already received this newsletter: "
                          f"{_by_campaign(p.already)}")
        else:
            console.print(f"already received this newsletter: {_by_campaign(p.already)}; left "
                          "out (add --again to send to them too)")
        if earlier:
            console.print(f"{sum(p.already[c] for c in earlier)} of them received an earlier "
                          f"version ({', '.join(earlier)})"
                          + ("" if p.again else "; --again reaches them with this one"))
    if p.queued:
        verb = "sending to them as well (--again)" if p.again else "left out"
        console.print(f"still to be sent this newsletter by an unfinished campaign: "
                      f"{_by_campaign(p.queued)}; {verb}")


def _locale_table(title: str, by_locale: dict[str | None, journal.Tally]) -> Table:
    from postbode import journal

    table = Table(title=title)
    table.add_column("locale")
    for name in (*COLUMNS, "to send"):
        table.add_column(name, justify="right")
    rows = [(k, t) for k, t in by_locale.items() if k is not None] + [("total", by_locale.get(None, journal.Tally()))]
    for key, t in rows:
        table.add_row(key, str(t["sent"]), str(t["rejected"]), str(t.retried), str(t["unknown"]),
                      str(t["pending"] + t["retry"] + t["claimed"]),
                      style="bold" if key == "total" else None)
    return table


def _print_outcome(settings: Settings, summary: campaign.SendSummary) -> None:
    if summary.recovered_unknown:
        console.print(f"{summary.recovered_unknown} recipients were being sent when an earlier "
                      "run stopped; their mail may or may not have left (state: unknown)")
    console.print(_locale_table(f"campaign {summary.campaign_id}", summary.by_locale))
    _print_unknown(settings, summary.campaign_id, summary.totals["unknown"])


def _print_unknown(settings: Settings, campaign_id: str, count: int) -> None:
    from postbode import journal, store

    if not count:
        return
    conn = store.connect(settings)
    try:
        shown = journal.unknown_entries(conn, campaign_id, limit=20)
    finally:
        conn.close()
    console.print(f"{count} unknown (not resent; check with your mail server or provider, "
                  "then run the same command with --resend-unknown to send them again):")
    for entry in shown:
        address = journal.shown_address(entry.recipient.email)
        console.print(f"  {printable(address)}  {printable(entry.message_id or '')}")
    if count > len(shown):
        console.print(f"  … and {count - len(shown)} more (report {campaign_id} --csv FILE)")


def _print_summary_of_latest(settings: Settings, campaign_id: str) -> None:
    from postbode import journal, store

    conn = store.connect(settings)
    try:
        if journal.get_campaign(conn, campaign_id):
            console.print(_locale_table(f"campaign {campaign_id}",
                                        journal.tally_by_locale(conn, campaign_id)))
    finally:
        conn.close()


def _send_tests(settings: Settings, newsletter: Path, segments: tuple[str, ...],
                test_to: tuple[str, ...], url: str, locales: tuple[str, ...]) -> None:
    from postbode import campaign  # loaded when sending, not for --help (see send)

    if not test_to:
        raise click.UsageError("--locale narrows test mails: use it with --test-to")
    _print_tests(campaign.send_test(settings, newsletter, segments, test_to, transport=url,
                                    locales=locales))


def _print_tests(summary: campaign.TestSendSummary) -> None:
    table = Table(title="test mails (not journaled)")
    for name in ("to", "locale", "view", "result"):
        table.add_column(name)
    for address, (locale, view), result in summary.results:
        table.add_row(address, locale, view or "", f"{result.status} {result.code or ''} {result.text}")
    console.print(table)


def _when(stamp: float | None, zone: str, *, seconds: bool = True) -> str:
    """A time in the configured time zone, with its offset: 2026-12-01 13:45:02 +01:00."""
    if not stamp:
        return ""
    moment = datetime.fromtimestamp(stamp, ZoneInfo(zone))
    offset = moment.strftime("%z")  # +0100
    shown = moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{shown} {offset[:3]}:{offset[3:]}"


def _number(settings: Settings, n: int) -> str:
    """A count as the operator reads numbers (the source locale: 1.234 in Dutch)."""
    from babel.numbers import format_decimal  # only `report` needs Babel

    return format_decimal(n, locale=settings.source_locale)


def _print_campaigns(conn, settings: Settings) -> None:
    from postbode import journal

    campaigns = journal.list_campaigns(conn)
    if not campaigns:
        console.print("no campaigns yet; start one with `send NEWSLETTER --segment NAME`")
        return
    table = Table(title=f"campaigns (times in {settings.timezone})", box=box.SIMPLE_HEAD)
    table.add_column("campaign", no_wrap=True)
    for name in ("status", "total", "sent", "unknown", "created"):
        table.add_column(name, no_wrap=True,
                         justify="left" if name in ("status", "created") else "right")
    for c in campaigns:
        t = journal.tally(conn, c.id)
        table.add_row(c.id, c.status, *(_number(settings, n) for n in (t.total, t["sent"], t["unknown"])),
                      _when(c.created_at, settings.timezone, seconds=False))
    _print_wide(table)


def _print_wide(table: Table) -> None:
    """A table printed whole: a terminal crops it, but a pipe or file gets every column."""
    if console.is_terminal:
        console.print(table)
    else:
        Console(highlight=False, width=120).print(table)


def _print_campaign(conn, c: journal.Campaign, settings: Settings) -> None:
    from postbode import journal

    zone = settings.timezone
    console.print(f"campaign {c.id}: {c.newsletter_id} → {', '.join(c.segments)}; {c.status}; "
                  f"created {_when(c.created_at, zone)}"
                  + (f", finished {_when(c.finished_at, zone)}" if c.finished_at else "")
                  + f" (times in {zone})")
    _print_transports(conn, c, settings)
    if c.already_received:
        console.print("left out, because they already had this newsletter: " + ", ".join(
            f"{_number(settings, n)} (campaign {printable(cid)})"
            for cid, n in c.already_received.items()))
    if c.sent_again:
        console.print(f"sent again (--again) to {_number(settings, c.sent_again)} who already "
                      "had this newsletter")
    for column in ("locale", "segment"):
        _print_wide(_state_table(settings, column, journal.tally_by(conn, c.id, column)))


def _print_transports(conn, c: journal.Campaign, settings: Settings) -> None:
    """Each transport the campaign went through, when, and how many mails left through it."""
    from postbode import journal

    attempts = journal.sends(conn, c.id)
    if not attempts:
        console.print(f"transport: {printable(c.transport)} (nothing sent yet)")
        return
    console.print("sent through:")
    for a in attempts:
        until = _when(a.ended_at, settings.timezone) if a.ended_at else "still running or stopped"
        console.print(f"  {printable(a.transport)}  {_when(a.started_at, settings.timezone)} → "
                      f"{until}: {_number(settings, a.sent)} sent")


def _state_table(settings: Settings, column: str, by: dict[str | None, journal.Tally]) -> Table:
    from postbode import journal

    table = Table(title=f"recipients by state and {column}")
    table.add_column(column)
    for state in journal.STATES:
        table.add_column(state, justify="right")
    table.add_column("retried", justify="right")
    for key, t in [(k, t) for k, t in by.items() if k is not None] + [("total", by[None])]:
        table.add_row(printable(key), *(_number(settings, t[s]) for s in journal.STATES),
                      _number(settings, t.retried), style="bold" if key == "total" else None)
    return table
