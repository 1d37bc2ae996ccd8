"""Runtime translation: fallback chains, field-by-field fallback, completeness policy, safety."""
from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from postbode.i18n import catalogs
from postbode.config import Settings
from postbode.content import load_newsletter
from postbode.errors import TranslationError
from postbode.i18n.checks import links
from postbode.i18n.extract import entries
from postbode.i18n import completeness_report, load_translations, locale_chain, localize
from postbode.render import make_environment, render

SAMPLE = "newsletters/2018-07-resultaten.yaml"
NEWSLETTER_ID = "2018-07-resultaten"


def blank(settings: Settings, language: str) -> None:
    """Start a language's catalogs afresh (nothing translated)."""
    shutil.rmtree(settings.locales_dir / language, ignore_errors=True)
    catalogs.init(settings, language)


def translate(settings: Settings, language: str, strings: dict[str, str], *,
              domain: str = NEWSLETTER_ID, fuzzy: bool = False) -> None:
    """Fill in msgstrs by entry key (newsletter) or msgid (messages)."""
    path = catalogs.po_path(settings, language, domain)
    catalog = catalogs.read_catalog(path, check=False)
    seen = set()
    for message in catalog:
        key = message.context.split(":", 1)[1] if domain != catalogs.MESSAGES and message.context else message.id
        if message.id and key in strings:
            message.string = strings[key]
            if fuzzy:
                message.flags.add("fuzzy")
            seen.add(key)
    assert seen == set(strings), f"no such entries: {set(strings) - seen}"
    catalogs.write_catalog(path, catalog)


@pytest.fixture
def sample(project: Path):
    return load_newsletter(project / SAMPLE)


@pytest.mark.parametrize("locale, chain", [
    ("nl_BE", ["nl"]),
    ("nl", ["nl"]),
    ("de_AT", ["de", "nl"]),
    ("de-AT", ["de", "nl"]),
    ("es_MX", ["nl"]),
    ("ar_EG", ["ar", "nl"]),
    ("", ["nl"]),
    (None, ["nl"]),
    ("not a locale", ["nl"]),
    ("zz", ["nl"]),
])
def test_locale_chain(settings: Settings, locale, chain):
    assert locale_chain(locale, settings) == chain


def test_locale_chain_goes_through_the_project_default(settings: Settings):
    english_default = settings.with_overrides(default_locale="en")
    assert locale_chain("es_MX", english_default) == ["en", "nl"]
    assert locale_chain("de_AT", english_default) == ["de", "en", "nl"]


def test_nl_be_gets_dutch_with_belgian_formatting(settings: Settings, sample):
    localized = localize(sample, "nl_BE", settings)
    assert (localized.locale, localized.language, localized.direction) == ("nl_BE", "nl", "ltr")
    assert localized.newsletter.subject == sample.subject
    assert localized.fallbacks == ()


def test_de_at_gets_german_and_falls_back_field_by_field(settings: Settings, sample):
    blank(settings, "de")
    translate(settings, "de", {
        "subject": "Ergebnisse Sommer 2018",
        "sections.toerisme.body:1": "Erster Absatz auf Deutsch.",
    })
    localized = localize(sample, "de_AT", settings)
    assert (localized.locale, localized.language) == ("de_AT", "de")
    assert localized.newsletter.subject == "Ergebnisse Sommer 2018"
    body = next(s.body for s in localized.newsletter.sections if s.id == "toerisme")
    first, second = body.split("\n\n")
    assert first == "Erster Absatz auf Deutsch."
    assert second.startswith("In september volgt een e-learning")
    assert "subject" not in localized.fallbacks
    assert "sections.toerisme.body:1" not in localized.fallbacks
    assert {"intro", "preheader", "sections.toerisme.body:2"} <= set(localized.fallbacks)
    assert len(localized.fallbacks) == len(entries(sample)) - 2


def test_es_mx_gets_the_default_and_its_fallbacks_are_named(settings: Settings, sample):
    assert localize(sample, "es_MX", settings).newsletter.subject == sample.subject
    english_default = settings.with_overrides(default_locale="en", completeness={"en": "fallback"})
    blank(settings, "en")
    translate(settings, "en", {"subject": "Results summer 2018", "intro": "Four organisations."})
    localized = localize(sample, "es_MX", english_default)
    assert (localized.locale, localized.language) == ("en", "en")
    assert localized.newsletter.subject == "Results summer 2018"
    assert localized.newsletter.intro == "Four organisations."
    assert localized.newsletter.sign_off == sample.sign_off
    assert "sign_off" in localized.fallbacks and "subject" not in localized.fallbacks


def test_fuzzy_translations_are_not_used(settings: Settings, sample):
    blank(settings, "de")
    translate(settings, "de", {"subject": "Veraltete Übersetzung"}, fuzzy=True)
    localized = localize(sample, "de", settings)
    assert localized.newsletter.subject == sample.subject
    assert "subject" in localized.fallbacks
    report = completeness_report(sample, settings)["de"]
    assert "subject" in report.fuzzy and "subject" not in report.missing
    assert "intro" in report.missing


def test_require_refuses_an_incomplete_locale_naming_the_fields(settings: Settings, sample):
    strict = settings.with_overrides(completeness={"en": "require"})
    blank(settings, "en")
    translate(settings, "en", {"subject": "Results"})
    with pytest.raises(TranslationError) as caught:
        localize(sample, "en_GB", strict)
    message = str(caught.value)
    assert "require" in message and "en/LC_MESSAGES/2018-07-resultaten.po" in message
    assert "intro" in message and "sections.toerisme.body:2" in message
    assert " subject:" not in message

    # a translation keeps the links of its source, or it is refused
    translate(settings, "en", {e.key: " ".join([f"EN {e.key}", *(f"[x]({url})" for url in links(e.source))])
                               for e in entries(sample)})
    localized = localize(sample, "en_GB", strict)
    assert localized.fallbacks == () and localized.newsletter.intro == "EN intro"
    assert localized.blocked is None


def test_script_in_a_msgstr_arrives_escaped(settings: Settings, sample):
    blank(settings, "en")
    relaxed = settings.with_overrides(completeness={"en": "fallback"})
    translate(relaxed, "en", {
        "subject": "<script>alert(1)</script>Results",
        "sections.toerisme.body:1": "<script>alert(2)</script> and <b onclick='x()'>bold</b>",
        "sections.toerisme.title": "<img src=x onerror=alert(3)>Hotels",
    })
    translate(relaxed, "en", {"Bekijk deze e-mail in uw browser": "<script>alert(4)</script>View online"},
              domain=catalogs.MESSAGES)
    rendered = render(localize(sample, "en", relaxed), None, relaxed)
    html = rendered.html.lower()
    assert "<script" not in html and "<img src=x" not in html and "<b onclick" not in html, \
        [html[max(0, i - 80):i + 40] for i in range(len(html)) if html.startswith("<script", i)]
    assert "&lt;script&gt;alert(1)" in html
    # Markdown text with HTML its source lacks is refused: the Dutch source is shown instead
    assert "alert(2)" not in html and "steeds meer prostitutie" in html
    assert "view online" in html and "alert(4)" not in html
    assert rendered.subject == "<script>alert(1)</script>Results"  # a header is text, escaped where shown


def test_a_literal_percent_renders_in_every_locale(project: Path, settings: Settings, sample):
    (project / "templates" / "partials" / "percent.txt").write_text(
        "{% trans %}Voor 100% van de kinderen{% endtrans %}|{{ _('Nog 5%% te gaan') }}\n", "utf-8")
    catalogs.extract(settings)
    pot = catalogs.read_catalog(catalogs.pot_path(settings, catalogs.MESSAGES), check=False)
    assert pot.get("Voor 100%% van de kinderen") is not None  # newstyle gettext: % is written %%
    catalogs.update(settings)
    translate(settings, "de", {"Voor 100%% van de kinderen": "Für 100%% der Kinder",
                               "Nog 5%% te gaan": "Noch 5%% vor uns"}, domain=catalogs.MESSAGES)
    expected = {"de": "Für 100% der Kinder|Noch 5% vor uns"}
    for locale in settings.locales:
        env = make_environment(settings, locale, load_translations(locale, settings))
        text = env.get_template("partials/percent.txt").render().strip()
        assert text == expected.get(locale, "Voor 100% van de kinderen|Nog 5% te gaan")
    for locale in settings.locales:
        rendered = render(localize(sample, locale, settings.with_overrides(completeness={})), None, settings)
        assert "100%" in rendered.text.replace("\u00a0", "").replace(" %", "%")


def test_a_broken_catalog_stops_the_runtime_with_file_and_line(settings: Settings, sample):
    path = catalogs.po_path(settings, "de", catalogs.MESSAGES)
    lines = path.read_text("utf-8").splitlines()
    lines.append('this is not a po line')
    path.write_text("\n".join(lines) + "\n", "utf-8")
    with pytest.raises(TranslationError) as caught:
        localize(sample, "de", settings)
    assert f"de/LC_MESSAGES/messages.po:{len(lines)}" in str(caught.value)
