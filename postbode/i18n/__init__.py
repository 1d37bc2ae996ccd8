"""i18n stage: the source Newsletter becomes a Newsletter per locale, with template translations.

The package: this module is the runtime stage (`localize`, `locale_chain`,
`completeness_report`, …); `catalogs` holds the file work (extract, init,
update, compile, status) and `extract` the one field ⇄ entry mapping.

A recipient's locale gives a fallback chain of catalog languages
(`nl_BE → nl`, `de_AT → de → nl`, `es_MX → default`); catalogs are per
language, formatting uses the full locale. Newsletter text is looked up with
`pgettext("<newsletter-id>:<field.path>", source)` in the newsletter's own
domain; a translation is plain data (escaped, or Markdown sanitised by render).
"""
from __future__ import annotations

import gettext
import io
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Iterator, Mapping

import nh3
from babel import Locale, UnknownLocaleError
from babel.support import NullTranslations, Translations

from postbode.i18n import catalogs
from postbode.config import Settings
from postbode.content import Newsletter
from postbode.errors import Problem, TranslationError
from postbode.i18n.extract import Entry, entries, join_paragraphs, paragraph_lines, split_paragraphs

__all__ = [
    "Completeness", "Entry", "LocalizedNewsletter", "SanitizedTranslations", "completeness",
    "completeness_report", "direction_of", "entries", "formatting_locale", "load_translations",
    "locale_chain", "localize", "paragraph_keys", "parse_locale", "policy_for", "work_in_progress",
]


@dataclass(frozen=True)
class LocalizedNewsletter:
    """A newsletter in one recipient locale, ready to render."""

    newsletter: Newsletter          # text fields translated (source text where it fell back)
    locale: str                     # full locale for formatting, e.g. "nl_BE"
    language: str                   # catalog language actually used first, e.g. "nl"
    direction: str                  # "ltr" or "rtl"
    translations: gettext.NullTranslations  # chained gettext catalogs for the `messages` domain
    fallbacks: tuple[str, ...] = () # field paths that fell back along the chain
    # entry key → language of the text shown instead (the source language, or one further down the chain)
    fallback_languages: Mapping[str, str] = dataclass_field(default_factory=dict)
    # why this locale may not be sent yet ([i18n.completeness] 'require', localized as work in progress)
    blocked: TranslationError | None = None

    def fallback_language(self, key: str) -> str | None:
        """The language an entry's text fell back to, or None when it is in the mail's language."""
        return self.fallback_languages.get(key) if key in self.fallbacks else None


@dataclass(frozen=True)
class Completeness:
    """How far one locale's catalog of one newsletter is translated."""

    locale: str
    policy: str                 # "fallback" or "require"
    catalog: str                # path of the .po file
    missing: tuple[str, ...]    # entry keys with no translation (or a stale one)
    fuzzy: tuple[str, ...]      # entry keys whose translation awaits review
    lines: Mapping[str, int] = dataclass_field(default_factory=dict)  # entry key → line in the .po
    refused: tuple[Problem, ...] = ()  # translations that fail a check (placeholders, links)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.fuzzy and not self.refused


# --- locales ----------------------------------------------------------------

def parse_locale(locale: str | None) -> Locale | None:
    """A Babel Locale, or None for an empty, unknown or malformed one."""
    if not locale or not isinstance(locale, str):
        return None
    try:
        return Locale.parse(locale.strip().replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def locale_chain(locale: str | None, settings: Settings) -> list[str]:
    """Catalog languages to try for a recipient locale, best first, ending in the source language."""
    chain = []
    parsed = parse_locale(locale)
    if parsed is not None:
        # sr_Latn_RS → sr_Latn → sr: language+script comes before the bare language
        script = f"{parsed.language}_{parsed.script}" if parsed.script else None
        candidates = (str(parsed), script, parsed.language)
        chain += [c for c in candidates if c and c in settings.locales]
    chain += [settings.default_locale, settings.source_locale]
    return list(dict.fromkeys(chain))


def formatting_locale(locale: str | None, chain: list[str]) -> str:
    """The recipient's full locale when its language is served, else the served language."""
    parsed = parse_locale(locale)
    served = parse_locale(chain[0])
    if parsed is not None and served is not None and parsed.language == served.language:
        return str(parsed)
    return chain[0]


def direction_of(language: str) -> str:
    """`rtl` for a language written right to left (ar, he, fa), else `ltr`; a locale works too."""
    parsed = parse_locale(language)
    return "rtl" if parsed is not None and parsed.character_order == "right-to-left" else "ltr"


# --- catalogs at runtime ----------------------------------------------------

# Tags a translated template string may keep (the web pages use a link and <bdi>);
# anything else a translator writes, such as <script>, is removed.
TRANSLATION_TAGS = {"a", "bdi", "strong", "em", "b", "i", "br", "span"}
TRANSLATION_ATTRIBUTES = {"a": {"href", "title"}, "span": {"dir", "lang"}, "bdi": {"dir"}}


class SanitizedTranslations(gettext.NullTranslations):
    """Chained catalogs whose translations cannot carry HTML beyond a few harmless tags.

    Jinja's newstyle gettext treats a translated template string as markup, so
    a translator's HTML would reach the mail unescaped; this cleans it first.
    """

    def __init__(self, chained: NullTranslations):
        super().__init__()
        self.add_fallback(chained)

    def gettext(self, message: str) -> str:
        return _clean(message, super().gettext(message))

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return _clean(singular, super().ngettext(singular, plural, n))

    def pgettext(self, context: str, message: str) -> str:
        return _clean(message, super().pgettext(context, message))

    def npgettext(self, context: str, singular: str, plural: str, n: int) -> str:
        return _clean(singular, super().npgettext(context, singular, plural, n))

    # Jinja prefers these older names when an object has them.
    ugettext = gettext
    ungettext = ngettext


def _clean(source: str, translated: str) -> str:
    if "<" not in translated or translated == source:
        return translated
    return nh3.clean(translated, tags=TRANSLATION_TAGS, attributes=TRANSLATION_ATTRIBUTES,
                     url_schemes={"https", "http", "mailto"}, link_rel=None)


def _signature(settings: Settings, language: str, domain: str) -> tuple[str, int, int] | None:
    """Which file holds a language's catalog, and its version (so edits are picked up)."""
    po = catalogs.po_path(settings, language, domain)
    for candidate in (po, po.with_suffix(".mo")):
        try:
            stat = candidate.stat()
        except FileNotFoundError:
            continue
        return str(candidate), stat.st_mtime_ns, stat.st_size
    return None


def _single(settings: Settings, language: str, domain: str) -> Translations | None:
    """One language's compiled catalog, or None when there is none."""
    mo = catalogs.load_mo(settings, language, domain)
    if mo is None:
        return None
    return Translations(fp=io.BytesIO(mo), domain=domain)


_chains: dict[tuple, gettext.NullTranslations] = {}


def load_translations(locale: str | None, settings: Settings,
                      domain: str = catalogs.MESSAGES) -> gettext.NullTranslations:
    """The chained catalogs for a locale (add_fallback along locale_chain); source text last.

    The same object comes back while the files are unchanged, so Jinja
    environments built for it can be reused.
    """
    chain = locale_chain(locale, settings)
    key = (domain, tuple((language, _signature(settings, language, domain)) for language in chain))
    if key not in _chains:
        chained = NullTranslations()
        for language in chain:
            single = _single(settings, language, domain)
            if single is not None:
                chained.add_fallback(single)
        _chains[key] = SanitizedTranslations(chained)
    return _chains[key]


class _Missing(NullTranslations):
    """The end of a one-language chain: says 'not here' instead of returning the source."""

    def pgettext(self, context: str, message: str) -> object:  # type: ignore[override]
        return MISSING


MISSING = object()


@dataclass(frozen=True)
class _Found:
    """One target language's catalog of a newsletter (translations failing a check left out)."""

    language: str
    translations: Translations


def _content_catalogs(settings: Settings, chain: list[str], domain: str) -> list[_Found]:
    """Each target language's catalog of a newsletter, ending in a 'not here' marker."""
    found = []
    for language in chain:
        if language == settings.source_locale:
            break
        checked = catalogs.load_checked(settings, language, domain, strict=False)
        if checked is not None:
            single = Translations(fp=io.BytesIO(checked.mo), domain=domain)
            single.add_fallback(_Missing())
            found.append(_Found(language, single))
    return found


def _translate(entry: Entry, found: list[_Found]) -> tuple[str, str | None]:
    """(text, language that had it) — the source text and None when no catalog had it."""
    for catalog in found:
        text = catalog.translations.pgettext(entry.context, entry.source)
        if text is not MISSING:
            return str(text), catalog.language
    return entry.source, None


_work_in_progress: ContextVar[bool] = ContextVar("postbode_i18n_work_in_progress", default=False)


@contextmanager
def work_in_progress() -> Iterator[None]:
    """Within this block, `localize` shows an incomplete `require` locale instead of refusing it.

    For previews only: the result carries `blocked` (why it cannot be sent yet),
    and its untranslated fields are fallbacks like any other.
    """
    token = _work_in_progress.set(True)
    try:
        yield
    finally:
        _work_in_progress.reset(token)


# --- the stage ---------------------------------------------------------------

def localize(newsletter: Newsletter, locale: str, settings: Settings, *,
             lenient: bool | None = None) -> LocalizedNewsletter:
    """Translate a newsletter into `locale`, field by field along the fallback chain.

    A `require` locale that is incomplete (or has a translation failing a
    check) raises TranslationError naming each entry's .po line — unless
    `lenient` (default: inside `work_in_progress()`), which localizes it anyway
    and says why in `blocked`.
    """
    chain = locale_chain(locale, settings)
    language = chain[0]
    fallbacks: dict[str, str] = {}
    texts: dict[str, str] = {}
    blocked = None
    if language != settings.source_locale:
        found = _content_catalogs(settings, chain, newsletter.id)
        texts, fallbacks = _translated_texts(newsletter, found, language, settings.source_locale)
        if fallbacks and policy_for(locale, language, settings) == "require":
            blocked = _incomplete(completeness(newsletter, language, settings))
            if not (_work_in_progress.get() if lenient is None else lenient):
                raise blocked
    full = formatting_locale(locale, chain)
    return LocalizedNewsletter(
        newsletter=newsletter.with_texts(texts) if texts else newsletter,
        locale=full,
        language=language,
        direction=direction_of(language),
        translations=load_translations(locale, settings),
        fallbacks=tuple(fallbacks),
        fallback_languages=fallbacks,
        blocked=blocked,
    )


def _translated_texts(newsletter: Newsletter, found: list[_Found],
                      language: str, source_language: str) -> tuple[dict[str, str], dict[str, str]]:
    """Translated text per field (paragraphs reassembled) and, per entry key that fell back, its language."""
    by_field: dict[str, list[str]] = {}
    fallbacks: dict[str, str] = {}
    changed: set[str] = set()
    for entry in entries(newsletter):
        text, source = _translate(entry, found)
        if source != language:
            fallbacks[entry.key] = source or source_language
        if source is not None:
            changed.add(entry.field)
        by_field.setdefault(entry.field, []).append(text)
    return {field: join_paragraphs(parts) for field, parts in by_field.items() if field in changed}, fallbacks


def paragraph_keys(field: str, text: str) -> list[tuple[str, int]]:
    """Each paragraph's entry key and first line (0 = first non-blank line), cut as extraction cuts it."""
    if len(split_paragraphs(text)) == 1:
        return [(field, 0)]
    return [(f"{field}:{number}", line) for number, line in enumerate(paragraph_lines(text), 1)]


def policy_for(locale: str | None, language: str, settings: Settings) -> str:
    """`fallback` or `require`, from postbode.toml's [i18n.completeness] (full locale first)."""
    parsed = parse_locale(locale)
    if parsed is not None and str(parsed) in settings.completeness:
        return settings.completeness_for(str(parsed))
    return settings.completeness_for(language)


def _incomplete(report: Completeness) -> TranslationError:
    def at(key: str, text: str) -> Problem:
        return Problem(report.catalog, report.lines.get(key), None, key, text)

    problems = [at(key, "no translation yet") for key in report.missing]
    problems += [at(key, "translation is fuzzy (awaits review)") for key in report.fuzzy]
    problems += list(report.refused)
    return TranslationError(problems, summary=(
        f"locale {report.locale} must be complete before sending ([i18n.completeness] says "
        f"'require'); translate these entries, or set it to 'fallback' in postbode.toml:"))


# --- completeness -----------------------------------------------------------

def completeness(newsletter: Newsletter, language: str, settings: Settings) -> Completeness:
    """Which entries of a newsletter one language lacks (missing, stale or fuzzy)."""
    path = catalogs.po_path(settings, language, newsletter.id)
    catalog = catalogs.read_catalog(path, check=False) if path.exists() else None
    checked = catalogs.load_checked(settings, language, newsletter.id, strict=False) if catalog else None
    refused = checked.refused if checked is not None else {}
    missing, fuzzy, lines, problems = [], [], {}, []
    for entry in entries(newsletter):
        message = catalog.get(entry.source, entry.context) if catalog is not None else None
        if message is not None and message.lineno:
            lines[entry.key] = message.lineno
        if entry.context in refused:
            problems += refused[entry.context]
        elif message is not None and catalogs.is_translated(message):
            continue
        elif message is not None and message.fuzzy:
            fuzzy.append(entry.key)
        else:
            missing.append(entry.key)
    return Completeness(language, settings.completeness_for(language), str(path),
                        tuple(missing), tuple(fuzzy), lines, tuple(problems))


def completeness_report(newsletter: Newsletter, settings: Settings) -> dict[str, Completeness]:
    """Per target locale of postbode.toml: the entries still missing or fuzzy."""
    return {language: completeness(newsletter, language, settings)
            for language in settings.locales if language != settings.source_locale}
