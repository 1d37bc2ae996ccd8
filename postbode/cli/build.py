"""Commands `build` and `check`: every variant of a newsletter, written to files or only checked."""
from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from postbode import build as pipeline
from postbode import tokens
from postbode.cli.common import LOCALE, Context, console, console_err, pass_context
from postbode.cli.i18n import report_translations

NEWSLETTER = click.argument("newsletter", type=click.Path(path_type=Path, dir_okay=False))
LOCALES = click.option("--locale", "-l", "locales", multiple=True, metavar="LOCALE", type=LOCALE,
                       help="Build only this locale (repeatable; default: every locale in postbode.toml).")
SEGMENTS = click.option("--segment", "-s", "segments", multiple=True, metavar="SEGMENT",
                        help="Also build the view of this segment (repeatable; the public view is always built).")


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
    if development:
        console_err.print("[yellow]note:[/] the links in the sample .eml files are signed with the "
                          "development key; set POSTBODE_SECRET_KEY before sending real mail.")
    folder = (out or settings.build_dir) / result.newsletter.id
    console.print(f"wrote {len(built) * 3} files to {folder}")


@click.command("check")
@NEWSLETTER
@LOCALES
@SEGMENTS
@pass_context
def check_command(ctx: Context, newsletter: Path, locales: tuple[str, ...],
                  segments: tuple[str, ...]) -> None:
    """Validate a newsletter and render every variant in memory, writing nothing.

    Exits 0 when every variant renders cleanly and 1 when there are problems,
    each listed as file:line: field: what to do.

    \b
    Example:
      python send.py check newsletters/2018-07-resultaten.yaml
    """
    settings = ctx.settings
    views = pipeline.views_for_segments(segments, settings)
    result = pipeline.build_variants(newsletter, locales, views, settings)
    signing, _ = tokens.with_development_key(settings)
    mails = pipeline.sample_messages(result, signing)
    report_translations(result.newsletter, result.fallbacks, settings)
    for key, mail in mails.items():
        size = len(mail.html.encode("utf-8"))
        if size > pipeline.GMAIL_CLIP_BYTES:
            _clip_warning(pipeline.variant_name(*key), size)
    console.print(f"ok: {result.newsletter.id}: {len(mails)} variants render cleanly "
                  f"({', '.join(pipeline.variant_name(*k) for k in mails)})")


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


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    cli.add_command(build_command)
    cli.add_command(check_command)
