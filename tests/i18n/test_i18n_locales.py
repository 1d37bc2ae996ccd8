"""The shipped catalogs: valid, in step with templates and sample, complete where promised, right-to-left.

Golden files per locale live in tests/golden/i18n/. After an intended change
(new translation, template string or Babel version), regenerate and review:
    POSTBODE_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/i18n/test_i18n_locales.py -k golden
"""
from __future__ import annotations

import gettext
import html
import os
import re
import subprocess
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import jinja2
import pytest
from babel import Locale
from jinja2.ext import GETTEXT_FUNCTIONS, extract_from_ast

from postbode.i18n import catalogs
from postbode.config import Settings
from postbode.content import load_newsletter
from postbode.i18n import load_translations, localize
from postbode.render import make_environment, render

from tests.i18n.test_i18n import NEWSLETTER_ID, SAMPLE

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "i18n"
VIEWS = (None, "funders", "donors", "subscribers")
GOLDEN_LOCALES = ("nl", "nl_BE", "en", "en_GB", "de", "de_AT", "ar", "es_MX")


def shipped_po_files() -> list[Path]:
    return sorted((REPO / "locales").glob("*/LC_MESSAGES/*.po"))


def targets(settings: Settings) -> list[str]:
    return [lang for lang in settings.locales if lang != settings.source_locale]


class Recording(gettext.NullTranslations):
    """Passes every lookup on to real catalogs and remembers (context, msgid) of each."""

    def __init__(self, real: gettext.NullTranslations):
        super().__init__()
        self.add_fallback(real)
        self.seen: set[tuple[str | None, str]] = set()

    def gettext(self, message):
        self.seen.add((None, message))
        return super().gettext(message)

    def ngettext(self, singular, plural, n):
        self.seen.add((None, singular))
        return super().ngettext(singular, plural, n)

    def pgettext(self, context, message):
        self.seen.add((context, message))
        return super().pgettext(context, message)

    def npgettext(self, context, singular, plural, n):
        self.seen.add((context, singular))
        return super().npgettext(context, singular, plural, n)


@pytest.mark.parametrize("path", shipped_po_files(), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_msgfmt_check_passes(path: Path):
    result = subprocess.run(["msgfmt", "--check", "-o", "/dev/null", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_target_locale_has_every_catalog(settings: Settings):
    assert set(targets(settings)) >= {"en", "de", "ar"}
    for language in targets(settings):
        for domain in (catalogs.MESSAGES, NEWSLETTER_ID):
            assert catalogs.po_path(settings, language, domain).is_file(), (language, domain)


def test_catalogs_are_in_step_with_templates_and_the_sample(settings: Settings):
    extracted = catalogs.extract(settings)
    assert extracted.written == [], "run `python send.py i18n extract` and commit locales/*.pot"
    assert catalogs.update(settings) == [], "run `python send.py i18n update` and commit locales/"


def test_every_lookup_while_rendering_exists_in_messages_pot(settings: Settings):
    template = catalogs.read_catalog(catalogs.pot_path(settings, catalogs.MESSAGES), check=False)
    sample = load_newsletter(settings.root / SAMPLE)
    for locale in settings.locales:
        localized = localize(sample, locale, settings)
        recorder = Recording(localized.translations)
        for view in VIEWS:
            render(replace(localized, translations=recorder), view, settings)
        assert len(recorder.seen) >= 8, recorder.seen
        unknown = [(ctx, msgid) for ctx, msgid in recorder.seen if template.get(msgid, ctx) is None]
        assert unknown == [], f"{locale}: looked up but never extracted: {unknown}"


def test_every_template_string_as_the_runtime_parses_it_is_in_messages_pot(settings: Settings):
    """The web pages too: parse every template with the runtime environment, not babel.cfg."""
    template = catalogs.read_catalog(catalogs.pot_path(settings, catalogs.MESSAGES), check=False)
    env = make_environment(settings, "nl", load_translations("nl", settings))
    found = 0
    for path in sorted(settings.templates_dir.rglob("*")):
        if not path.is_file():
            continue
        name = path.relative_to(settings.templates_dir).as_posix()
        tree = env.parse(env.loader.get_source(env, name)[0])
        for _, function, message in extract_from_ast(tree, GETTEXT_FUNCTIONS):
            strings = message if isinstance(message, tuple) else (message,)
            context = strings[0] if function in ("pgettext", "npgettext") else None
            msgid = strings[1] if context is not None else strings[0]
            if msgid is None:
                continue
            found += 1
            assert template.get(msgid, context) is not None, f"{name}: {msgid!r} (context {context!r})"
    assert found >= 20


def test_english_is_complete_and_has_none_of_the_dutch_sentences(settings: Settings):
    sample = load_newsletter(settings.root / SAMPLE)
    report_en = localize(sample, "en", settings)
    assert report_en.fallbacks == ()
    names = [settings.organisation_name, settings.postal_address, settings.sender_name]
    for view in VIEWS:
        dutch = render(localize(sample, "nl", settings), view, settings)
        english = render(report_en, view, settings)
        sentences = dutch_sentences(dutch.text, names)
        assert len(sentences) > 10
        english_text = flatten(english.text) + " " + flatten(html.unescape(re.sub(r"<[^>]+>", " ", english.html)))
        leftovers = [s for s in sentences if s in english_text]
        assert leftovers == [], f"view {view}: Dutch left in the English mail: {leftovers}"


def flatten(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def dutch_sentences(text: str, names: list[str]) -> list[str]:
    """Sentences of five words or more (names of the organisation taken out)."""
    text = flatten(text)
    for name in names:
        if name:
            text = text.replace(name, " ")
    parts = re.split(r"(?<=[.!?:;])\s+|\s[-=]{3,}\s|__PB_[A-Z_]+__", text)
    return [p.strip() for p in parts if len(re.findall(r"[^\W\d_]{2,}", p)) >= 5]


def test_german_and_arabic_fall_back_for_the_sample_and_say_where(settings: Settings):
    sample = load_newsletter(settings.root / SAMPLE)
    for locale in ("de_AT", "ar"):
        localized = localize(sample, locale, settings)
        assert localized.newsletter.subject != sample.subject
        assert 0 < len(localized.fallbacks) < len(sample.text_fields()) + 10
        assert "sections.lokpuber.body:1" in localized.fallbacks
        assert localized.fallback_language("sections.lokpuber.body:1") == "nl"
        assert localized.fallback_language("subject") is None


def test_arabic_is_right_to_left_with_isolated_latin_names(settings: Settings):
    sample = load_newsletter(settings.root / SAMPLE)
    localized = localize(sample, "ar", settings)
    assert localized.direction == "rtl"
    rendered = render(localized, "funders", settings)
    assert re.search(r'<html[^>]*\blang="ar"[^>]*\bdir="rtl"', rendered.html)
    assert rendered.html.count('dir="rtl"') >= 2
    dutch = render(localize(sample, "nl", settings), "funders", settings)
    mirrored = {"left": "right", "right": "left", "center": "center"}
    assert aligns(rendered.html) == [mirrored[a] for a in aligns(dutch.html)]
    assert "right" in aligns(rendered.html)
    for funder in sample.acknowledgement.funders:  # dir works in every mail client, <bdi> not
        assert f'<span dir="ltr">{funder}</span>' in rendered.html
        assert f"\u2068{funder}\u2069" in rendered.text  # first-strong isolate … pop isolate
    assert localized.newsletter.subject in rendered.html


def aligns(markup: str) -> list[str]:
    return re.findall(r'(?:align="|text-align: ?)(left|right|center)', markup.split("<body", 1)[1])


# Arabic needs six plural forms; the header's expression (Babel's) numbers them
# zero, one, two, few (3–10), 100–102 style, many (11–99). Each msgstr must match.
ARABIC_TOPICS = {
    0: "لا مواضيع في هذه النشرة:",
    1: "في هذه النشرة موضوع واحد:",
    2: "في هذه النشرة موضوعان:",
    3: "في هذه النشرة 3 مواضيع:",
    10: "في هذه النشرة 10 مواضيع:",
    11: "في هذه النشرة 11 موضوعًا:",
    99: "في هذه النشرة 99 موضوعًا:",
    100: "في هذه النشرة 100 موضوع:",
    102: "في هذه النشرة 102 موضوع:",
    103: "في هذه النشرة 103 مواضيع:",
    111: "في هذه النشرة 111 موضوعًا:",
}


def test_arabic_plural_forms_follow_cldr(settings: Settings):
    catalog = catalogs.read_catalog(catalogs.po_path(settings, "ar", catalogs.MESSAGES))
    assert catalog.num_plurals == 6
    choose = gettext.c2py(catalog.plural_expr)
    rule = Locale.parse("ar").plural_form
    form_of_category: dict[str, int] = {}
    for n in range(0, 1000):
        assert form_of_category.setdefault(rule(n), choose(n)) == choose(n), f"n={n}"
    assert len(set(form_of_category.values())) == 6

    translations = load_translations("ar", settings)
    singular, plural = "In deze nieuwsbrief één onderwerp:", "In deze nieuwsbrief %(count)s onderwerpen:"
    for n, expected in ARABIC_TOPICS.items():
        assert translations.ngettext(singular, plural, n) % {"count": n} == expected


def golden_text(settings: Settings, locale: str) -> str:
    """What a reader in `locale` sees of formats and texts: a stable summary for golden files."""
    sample = load_newsletter(settings.root / SAMPLE)
    localized = localize(sample, locale, settings)
    env = make_environment(settings, localized.locale, localized.translations)
    figures = env.from_string(
        "date: {{ date|format_date('long') }}\n"
        "datetime: {{ date|format_datetime('medium') }}\n"
        "number: {{ 1234567.891|format_number }}\n"
        "currency: {{ 1234.5|format_currency('EUR') }}\n"
        "percent: {{ 0.85|format_percent }}\n"
        "list: {{ names|format_list }}\n"
        "{% for n in counts %}plural {{ n }}: {% trans count=n %}In deze nieuwsbrief één onderwerp:"
        "{% pluralize %}In deze nieuwsbrief {{ count }} onderwerpen:{% endtrans %}\n\n{% endfor %}"
    ).render(date=sample.date, names=sample.acknowledgement.funders, counts=[0, 1, 2, 3, 11, 100])
    texts = "".join(f"{key}: {text}\n" for key, text in (
        ("locale", f"{localized.locale} (catalogs {localized.language}, {localized.direction})"),
        ("subject", localized.newsletter.subject),
        ("figure", localized.newsletter.sections[2].figures[0].label),
        ("fallbacks", ", ".join(localized.fallbacks) or "none"),
    ))
    return texts + figures + "\n"


@pytest.mark.parametrize("locale", GOLDEN_LOCALES)
def test_golden_formats_and_texts_per_locale(settings: Settings, locale: str):
    actual = golden_text(settings, locale)
    path = GOLDEN / f"{locale}.txt"
    if os.environ.get("POSTBODE_REGENERATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.is_file(), f"{path} is missing; see the regenerate command at the top of this file"
    assert actual == path.read_text(encoding="utf-8"), f"{path.name} differs; see the regenerate command"
