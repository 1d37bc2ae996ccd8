"""Commands `build` and `check`: every variant of a newsletter, written to files or only checked."""
from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from postbode import build as pipeline
from postbode import checks, personal, tokens
from postbode.cli.common import LOCALE, Context, console, console_err, pass_context
from postbode.cli.i18n import report_translations
from postbode.config import Settings
from postbode.content import load_newsletter
from postbode.errors import PostbodeError
from postbode.i18n import locale_chain

NEWSLETTER = click.argument("newsletter", type=click.Path(path_type=Path, dir_okay=False))
LOCALES = click.option("--locale", "-l", "locales", multiple=True, metavar="LOCALE", type=LOCALE,
                       help="Build only this locale (repeatable; default: every locale in postbode.toml).")
SEGMENTS = click.option("--segment", "-s", "segments", multiple=True, metavar="SEGMENT",
                        help="Also build the view of this segment (repeatable; the public view is always built).")
CHECK_SEGMENTS = click.option("--segment", "-s", "segments", multiple=True, metavar="SEGMENT",
                              help="Check only the public view and this segment's view (repeatable; "
                                   "default: every view a segment in segments.yaml has).")


@click.command("build")
@NEWSLETTER
@LOCALES
@SEGMENTS
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Output folder (default: the build folder from postbode.toml).")
@pass_context
def build_command(ctx: Context, newsletter: Path, locales: tuple[str, ...],
                  segments: tuple[str, ...], out: Path | None) -> None:
    """Render every variant of a newsletter to HTML, text and a sample .eml.

    Writes OUT/<id>/<locale>[--<view>].html, .txt and .eml for each locale and
    view, then prints a table of the variants and their sizes. Nothing is
    written when any variant has a problem.

    \b
    Example:
      python send.py build newsletters/2018-07-resultaten.yaml --locale nl --locale en --segment donors
    """
    settings = ctx.settings
    views = pipeline.views_for_segments(segments, settings)
    result = pipeline.build_variants(newsletter, locales, views, settings)
    signing, development = tokens.with_development_key(settings)
    built = pipeline.write_build(result, out or settings.build_dir, signing)
    console.print(_table(result, built))
    _warn_clipped(built)
    console.print(_checks_summary(pipeline.check_all(result)) + "; `check --notes` lists them")
    if development:
        console_err.print("[yellow]note:[/] the links in the sample .eml files are signed with the "
                          "development key; set POSTBODE_SECRET_KEY before sending real mail.")
    sent = _print_images(result)
    folder = (out or settings.build_dir) / result.newsletter.id
    console.print(f"wrote {len(built) * 3 + sent} files to {folder}")


@click.command("check")
@NEWSLETTER
@LOCALES
@CHECK_SEGMENTS
@click.option("--notes", is_flag=True,
              help="Also list notes: partial client support and deliberate progressive enhancements.")
@pass_context
def check_command(ctx: Context, newsletter: Path, locales: tuple[str, ...],
                  segments: tuple[str, ...], notes: bool) -> None:
    """Validate a newsletter and render every variant in memory, writing nothing.

    Exits 0 when every variant renders cleanly and 1 when there are problems,
    each listed as file:line: field: what to do. Each variant is also checked
    for email-client support (caniemail data: Gmail, Outlook, Apple Mail,
    Yahoo, Samsung Email, Thunderbird) and deliverability (size, subject,
    preheader, text part, images, links, unsubscribe link); warnings are listed
    per variant, errors block sending.

    \b
    Example:
      python send.py check newsletters/2018-07-resultaten.yaml
    """
    settings = ctx.settings
    views = pipeline.views_for_segments(segments, settings) if segments else pipeline.all_views(settings)
    gaps = pipeline.catalog_gaps(load_newsletter(newsletter), locales, settings)
    if gaps.missing:
        console_err.print(f"[yellow]note:[/] {gaps.hint()}", highlight=False, soft_wrap=True)
    result = pipeline.build_variants(newsletter, _checkable(locales, gaps, settings), views, settings)
    reports = pipeline.check_all(result)
    _print_checks(reports, notes)
    signing, _ = tokens.with_development_key(settings)
    mails = pipeline.sample_messages(result, signing)
    report_translations(result.newsletter, {locale: fallbacks for locale, fallbacks in result.fallbacks.items()
                                            if locale_chain(locale, settings)[0] not in gaps.missing}, settings)
    console.print(_checks_summary(reports))
    _print_images(result)
    for note in pipeline.remote_image_notes(result.newsletter):
        console_err.print(note.replace("warning:", "[yellow]warning:[/]", 1), highlight=False, soft_wrap=True)
    _print_fields(result)
    console.print(f"ok: {result.newsletter.id}: {len(mails)} variants render cleanly "
                  f"({', '.join(pipeline.variant_name(*k) for k in mails)})")
    if gaps.blocking:
        raise PostbodeError(f"sending is blocked until {', '.join(gaps.blocking)} is translated "
                            "([i18n.completeness] says 'require' in postbode.toml)")


def _checkable(locales: tuple[str, ...], gaps: pipeline.CatalogGaps, settings: Settings) -> list[str]:
    """The locales to check: those whose language may be sent as it is (not blocked)."""
    chosen = list(locales or settings.locales)
    return [locale for locale in chosen if locale_chain(locale, settings)[0] not in gaps.blocking]


def _print_images(result: pipeline.BuildResult) -> int:
    """Each local image as written and as sent (resized, recompressed); how many there are."""
    sent = pipeline.sent_images(result.newsletter)
    for src, image in sent.items():
        how = (f"sent as {image.width}×{image.height}, {_size(len(image.data))}" if image.recompressed
               else "sent as it is")
        console.print(f"image {src}: {image.original_width}×{image.original_height}, "
                      f"{_size(image.original_bytes)}; {how}", highlight=False)
    return len(sent)


def _size(count: int) -> str:
    return f"{count / 1_000_000:.1f} MB" if count >= 1_000_000 else f"{count / 1000:.0f} KB"


def _print_fields(result: pipeline.BuildResult) -> None:
    used = personal.used(result.newsletter)
    if used:
        console.print(f"personal fields: {', '.join('{' + name + '}' for name in used)}")


def _table(result: pipeline.BuildResult, built: list[pipeline.BuiltFile]) -> Table:
    table = Table(title=f"{result.newsletter.id}: {len(built)} variants")
    for column, justify in (("locale", "left"), ("view", "left"), ("subject", "left"),
                            ("HTML KB", "right"), ("text KB", "right"), ("fallbacks", "right")):
        table.add_column(column, justify=justify)
    for item in built:
        locale, view = item.key
        html_kb = f"{item.html_bytes / 1024:.1f}"
        table.add_row(locale, view or "public", item.subject,
                      f"[red]{html_kb}[/]" if item.clipped else html_kb,
                      f"{item.text_bytes / 1024:.1f}", str(len(result.fallbacks.get(locale, ()))))
    return table


def _warn_clipped(built: list[pipeline.BuiltFile]) -> None:
    for item in built:
        if item.clipped:
            _clip_warning(pipeline.variant_name(*item.key), item.html_bytes)


def _clip_warning(name: str, size: int) -> None:
    console_err.print(f"[yellow]warning:[/] {name}: the HTML is {size / 1024:.0f} KB; Gmail clips "
                      f"mails above {pipeline.GMAIL_CLIP_BYTES // 1024} KB, so shorten it or move "
                      "content to the web version.")


def _print_checks(reports: dict[pipeline.VariantKey, checks.Report], notes: bool) -> None:
    """One table per group of variants with the same warnings (and notes, when asked)."""
    shown = (checks.WARNING, checks.INFO) if notes else (checks.WARNING,)
    groups: dict[tuple, tuple[list[checks.Issue], list[str]]] = {}
    for report in reports.values():
        issues = [i for i in report.issues if i.severity in shown]
        if issues:  # variants differing only in line numbers share a table
            same = tuple(i.same_as for i in issues)
            groups.setdefault(same, (issues, []))[1].append(report.variant)
    for issues, variants in groups.values():
        table = Table(title=f"{', '.join(variants)}: {'warnings and notes' if notes else 'warnings'}",
                      title_justify="left")
        for column in ("", "finding", "clients", "where", *(["why"] if notes else [])):
            table.add_column(column, overflow="fold")
        for issue in issues:
            finding = issue.code if issue.code in checks.features() else issue.message
            table.add_row("[yellow]warning[/]" if issue.severity == checks.WARNING else "note", finding,
                          checks.client_names(issue.clients), issue.where, *([issue.detail] if notes else []))
        console_err.print(table)


def _checks_summary(reports: dict[pipeline.VariantKey, checks.Report]) -> str:
    """`checks: 12 variants, 0 errors, 0 warnings, 45 notes` (each distinct finding counted once)."""
    count = {s: len({i.same_as for r in reports.values() for i in r.of(s)}) for s in checks.SEVERITIES}
    return (f"checks: {len(reports)} variants, {count[checks.ERROR]} errors, "
            f"{count[checks.WARNING]} warnings, {count[checks.INFO]} notes")


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    cli.add_command(build_command)
    cli.add_command(check_command)
