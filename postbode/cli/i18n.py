"""`i18n` commands: the translators' workflow (extract, init, update, compile, status)."""
from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from postbode.i18n import catalogs
from postbode.cli.common import Context, console, console_err, pass_context
from postbode.config import Settings
from postbode.content import Newsletter
from postbode.i18n import completeness_report, locale_chain


def _shown(path: Path, ctx: Context) -> str:
    try:
        return path.relative_to(ctx.settings.root).as_posix()
    except ValueError:
        return str(path)


@click.group("i18n")
def i18n() -> None:
    """Translation catalogs: extract texts, start a language, update, compile, see progress.

    \b
    Example (after changing a template or the Dutch text of a newsletter):
      python send.py i18n extract && python send.py i18n update
    """


@i18n.command("extract")
@click.option("--no-location", is_flag=True, help="Write no `#:` references.")
@pass_context
def extract_cmd(ctx: Context, no_location: bool) -> None:
    """Write locales/messages.pot (templates) and locales/<newsletter-id>.pot (each newsletter).

    Newsletter entries refer to their field (`newsletters/X.yaml:sections.a.title`),
    so editing one section leaves every other entry as it was.

    \b
    Example:
      python send.py i18n extract
    """
    result = catalogs.extract(ctx.settings, locations=not no_location)
    for path in result.written:
        console.print(f"wrote {_shown(path, ctx)}")
    for path in result.unchanged:
        console.print(f"unchanged {_shown(path, ctx)}")


@i18n.command("init")
@click.argument("language")
@pass_context
def init_cmd(ctx: Context, language: str) -> None:
    """Start the .po files of a new LANGUAGE (e.g. fr) from every .pot.

    \b
    Example:
      python send.py i18n init fr
    """
    created = catalogs.init(ctx.settings, language)
    for path in created:
        console.print(f"created {_shown(path, ctx)}")
    if not created:
        console.print(f"nothing to do: every catalog of {language} exists; use `i18n update`")


@i18n.command("update")
@pass_context
def update_cmd(ctx: Context) -> None:
    """Merge the .pot files into every language's .po files.

    Like msgmerge: a changed, moved or renamed text keeps its translation as a
    fuzzy suggestion (the previous text kept as `#| msgctxt`/`#| msgid`);
    removed texts become obsolete (`#~`) and come back translated when the
    text returns. Entries that did not change stay byte for byte as they were.

    \b
    Example:
      python send.py i18n update
    """
    changed = catalogs.update(ctx.settings)
    for path in changed:
        console.print(f"updated {_shown(path, ctx)}")
    if not changed:
        console.print("every catalog is up to date")


@i18n.command("compile")
@pass_context
def compile_cmd(ctx: Context) -> None:
    """Check every .po file as `msgfmt -c` does, and more, then write its .mo.

    Exit 1 naming file and line on any problem: a message defined twice, a lost
    or added placeholder, a changed link, a Plural-Forms header other than CLDR's.

    \b
    Example:
      python send.py i18n compile
    """
    for result in catalogs.compile_all(ctx.settings):
        console.print(f"compiled {_shown(result.po, ctx)}")
        for warning in result.warnings:
            console_err.print(f"[yellow]warning:[/] {warning}", markup=True, highlight=False)


@i18n.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@pass_context
def status_cmd(ctx: Context, as_json: bool) -> None:
    """How far each language is: translated, fuzzy (not counted as done), untranslated.

    \b
    Example:
      python send.py i18n status --json
    """
    rows = catalogs.status(ctx.settings)
    if as_json:
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2))
        return
    table = Table("locale", "catalog", "translated", "fuzzy", "untranslated", "percent")
    for row in rows:
        table.add_row(row.language, row.domain, str(row.translated), str(row.fuzzy),
                      str(row.untranslated), f"{row.percent:.1f}%")
    console.print(table)


def report_translations(newsletter: Newsletter, fallbacks: dict[str, tuple[str, ...]],
                        settings: Settings) -> None:
    """For `check`: per checked locale, the newsletter entries still missing or fuzzy."""
    report = completeness_report(newsletter, settings)
    languages = dict.fromkeys(locale_chain(locale, settings)[0] for locale in fallbacks)
    for language in languages:
        status = report.get(language)
        if status is None or status.complete:
            continue
        console_err.print(
            f"[yellow]note:[/] {language}: {len(status.missing)} missing, {len(status.fuzzy)} fuzzy, "
            f"{len({problem.field for problem in status.refused})} refused "
            f"in {_relative(status.catalog, settings)} (policy: {status.policy}; these fall back)",
            highlight=False, soft_wrap=True)
        for kind, keys in (("missing", status.missing), ("fuzzy", status.fuzzy)):
            if keys:
                console_err.print(f"  {kind}: {', '.join(keys)}", markup=False, highlight=False, soft_wrap=True)
        for problem in status.refused:
            where = f"{_relative(problem.file, settings)}:{problem.line}"
            console_err.print(f"  refused: {where}: {problem.field}: {problem.message}", markup=False,
                              highlight=False, soft_wrap=True)


def _relative(path: str, settings: Settings) -> str:
    try:
        return Path(path).relative_to(settings.root).as_posix()
    except ValueError:
        return path


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    cli.add_command(i18n)
