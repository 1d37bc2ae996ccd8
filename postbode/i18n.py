"""i18n stage: the source Newsletter becomes a Newsletter per locale, with template translations."""
from __future__ import annotations

from dataclasses import dataclass

from babel import Locale
from babel.support import NullTranslations

from postbode.config import Settings
from postbode.content import Newsletter


@dataclass(frozen=True)
class LocalizedNewsletter:
    """A newsletter in one recipient locale, ready to render."""

    newsletter: Newsletter          # text fields translated (source text where it fell back)
    locale: str                     # full locale for formatting, e.g. "nl_BE"
    language: str                   # catalog language actually used first, e.g. "nl"
    direction: str                  # "ltr" or "rtl"
    translations: NullTranslations  # chained gettext catalogs for the `messages` domain
    fallbacks: tuple[str, ...] = () # field paths that fell back along the chain


def localize(newsletter: Newsletter, locale: str, settings: Settings) -> LocalizedNewsletter:
    """Translate a newsletter into `locale` (placeholder: source text, no catalogs yet)."""
    parsed = Locale.parse(locale or settings.default_locale)
    return LocalizedNewsletter(
        newsletter=newsletter,
        locale=str(parsed),
        language=parsed.language,
        direction="rtl" if parsed.character_order == "right-to-left" else "ltr",
        translations=NullTranslations(),
    )
