"""Web versions of a newsletter, rendered through the very functions sending uses.

The mail's HTML comes from `build.build_variants` (render + inline) and its
markers are filled by `message.fill`, as for a recipient, but with neutral
values: a web version is the same for everyone, so the greeting is anonymous
and the unsubscribe and preferences links lead to a page that explains how to
manage a subscription.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

from postbode import build, message
from postbode.config import Settings
from postbode.content import Newsletter, load_newsletter
from postbode.audience.segments import find_segments
from postbode.errors import PostbodeError

# The web is not personal: no name, so the anonymous greeting.
WEB_FORMALITY = "informal"
# What a broken newsletter file can raise while it is read; it must never take other pages down.
BROKEN_FILE = (PostbodeError, yaml.YAMLError, RecursionError, ValueError, UnicodeError)

log = logging.getLogger("postbode.web")
_reported: set[tuple[Path, int]] = set()


@dataclass(frozen=True)
class WebLinks:
    """Where the mail's links point in a web version."""

    web: str       # this web version itself
    manage: str    # the "manage your subscription" page, in place of unsubscribe/preferences


@dataclass(frozen=True)
class WebVersion:
    newsletter_id: str
    locale: str
    view: str | None
    subject: str
    lang: str
    direction: str
    html: str
    text: str
    fallbacks: tuple[str, ...]


def newsletter_path(settings: Settings, newsletter_id: str) -> Path | None:
    """The YAML file of a newsletter id (its file name without .yaml), or None."""
    if not newsletter_id or "/" in newsletter_id or newsletter_id.startswith("."):
        return None
    path = settings.newsletters_dir / f"{newsletter_id}.yaml"
    return path if path.is_file() else None


def list_newsletters(settings: Settings) -> list[Newsletter]:
    """Every newsletter that loads, newest first (a broken file is left out of the archive)."""
    found = [load_or_none(path) for path in sorted(settings.newsletters_dir.glob("*.yaml"))]
    return sorted((n for n in found if n is not None), key=lambda n: n.date, reverse=True)


def load_or_none(path: Path) -> Newsletter | None:
    """The newsletter in `path`, or None when the file is broken (logged once per version of it).

    A version of a file that failed is not read again (a hostile file can be slow to refuse).
    """
    try:
        version = path.stat().st_mtime_ns
    except OSError:
        return None
    if (path, version) in _reported:
        return None
    try:
        return load_newsletter(path)
    except BROKEN_FILE as err:
        _reported.add((path, version))
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        log.warning("%s is left out of the web pages until it is fixed: %s", path.name, message)
        return None


def views_of(newsletter: Newsletter) -> list[str]:
    """The segment views that change what this newsletter shows (besides the general one)."""
    return sorted({view for section in newsletter.sections for view in section.audience})


def render_web_version(settings: Settings, newsletter: Newsletter, locale: str,
                       view: str | None, links: WebLinks) -> WebVersion:
    """One web version: the mail's variant for (locale, view), markers filled with neutral values."""
    result = build.build_variants(newsletter.source_path, [locale], [view], settings)
    rendered = result.variant(locale, view)
    prepared = message.prepare(rendered, settings)
    html, text = message.fill(prepared, neutral_values(prepared, links))
    return WebVersion(newsletter_id=newsletter.id, locale=rendered.locale, view=view,
                      subject=rendered.subject, lang=rendered.lang, direction=rendered.direction,
                      html=html, text=text, fallbacks=result.fallbacks.get(locale, ()))


def neutral_values(prepared: message.PreparedVariant, links: WebLinks) -> dict[str, str]:
    """Marker values for a reader we do not know."""
    return {
        message.GREETING: message.greeting(prepared, WEB_FORMALITY, None),
        message.WEB_URL: links.web,
        message.UNSUBSCRIBE_URL: links.manage,
        message.PREFERENCES_URL: links.manage,
    }


def find_newsletter_id(settings: Settings, given: Path) -> str:
    """The id of a newsletter named by its file or id; it must live in the newsletters folder."""
    if given.is_file():
        newsletter = load_newsletter(given)
        path = newsletter_path(settings, newsletter.id)
        if path is None or not path.samefile(given):
            raise PostbodeError(
                f"{given}: the web app finds newsletters by id; save this file as "
                f"{settings.newsletters_dir / (newsletter.id + '.yaml')}"
            )
        return newsletter.id
    if newsletter_path(settings, str(given)) is None:
        raise PostbodeError(
            f"{given}: no such newsletter; give a file in {settings.newsletters_dir} or its id"
        )
    return str(given)


def view_of_segment(settings: Settings, segment: str) -> str | None:
    """The view a segment's members get (segments.yaml)."""
    return find_segments(settings, [segment])[0].view
