"""Render stage: locale filters, the one Jinja environment, templates, escaping and markers."""
from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import re
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.support import NullTranslations, Translations
from markupsafe import Markup

from postbode.config import Settings
from postbode.content import (Acknowledgement, Figure, Image, Link, Newsletter, Section,
                              load_newsletter)
from postbode.errors import TemplateError
from postbode.i18n import LocalizedNewsletter, localize
from postbode.render import (MARKERS, Rendered, make_environment, markdown_to_html,
                             markdown_to_text, render, safe_url)

SAMPLE = "newsletters/2018-07-resultaten.yaml"
HOSTILE = "{{ 7*7 }} {% include 'x' %} <script>alert(1)</script>"


@pytest.fixture
def sample(project: Path) -> Newsletter:
    return load_newsletter(project / SAMPLE)


def filters(settings: Settings, locale: str) -> dict:
    return make_environment(settings, locale, NullTranslations()).filters


def with_text(newsletter: Newsletter, text: str) -> Newsletter:
    """The newsletter with `text` in every kind of text field the templates show."""
    first, *rest = newsletter.sections
    section = first.model_copy(update={
        "title": text, "body": text,
        "figures": [Figure(value="3", label=text)],
    })
    ack = newsletter.acknowledgement.model_copy(update={"text": text, "funders": [text, "Fonds B"]})
    return newsletter.model_copy(update={
        "subject": text, "preheader": text, "intro": text, "sign_off": text,
        "sections": [section, *rest], "acknowledgement": ack,
    })


def rendered(newsletter: Newsletter, settings: Settings, locale: str = "nl",
             view: str | None = None, translations=None) -> Rendered:
    """Render through i18n.localize, or, given template `translations`, with the newsletter text as is.

    The text as is is Dutch: outside Dutch every entry fell back, as with no newsletter catalog.
    """
    if translations is None:
        localized = localize(newsletter, locale, settings)
    else:
        from postbode.i18n.extract import entries
        direction = "rtl" if locale.startswith("ar") else "ltr"
        fallbacks = {} if locale.startswith("nl") else {entry.key: "nl" for entry in entries(newsletter)}
        localized = LocalizedNewsletter(newsletter=newsletter, locale=locale, language=locale[:2],
                                        direction=direction, translations=translations,
                                        fallbacks=tuple(fallbacks), fallback_languages=fallbacks)
    return render(localized, view, settings)


# --- Babel filters -------------------------------------------------------------

@pytest.mark.parametrize("locale, expected", [
    ("nl_NL", "€\xa01.234,50"),
    ("en_GB", "€1,234.50"),
    ("de_DE", "1.234,50\xa0€"),
])
def test_currency_follows_the_full_locale(settings: Settings, locale: str, expected: str) -> None:
    assert filters(settings, locale)["format_currency"](1234.5, "EUR") == expected


@pytest.mark.parametrize("locale, expected", [
    ("nl_NL", "30 maart 2025"),
    ("en_GB", "30 March 2025"),
    ("de_DE", "30. März 2025"),
])
def test_long_date_follows_the_full_locale(settings: Settings, locale: str, expected: str) -> None:
    assert filters(settings, locale)["format_date"](dt.date(2025, 3, 30), "long") == expected


def test_datetime_is_shown_in_the_configured_timezone(settings: Settings) -> None:
    utc_morning = dt.datetime(2018, 7, 12, 8, 0, tzinfo=dt.timezone.utc)
    assert filters(settings, "nl_NL")["format_datetime"](utc_morning, "d MMMM y HH:mm") == "12 juli 2018 10:00"
    late_utc = dt.datetime(2025, 3, 29, 23, 30, tzinfo=dt.timezone.utc)  # already the 30th in Amsterdam
    assert filters(settings, "nl_NL")["format_date"](late_utc, "long") == "30 maart 2025"


def test_numbers_percent_and_lists_per_locale(settings: Settings) -> None:
    nl, en = filters(settings, "nl_NL"), filters(settings, "en_GB")
    assert nl["format_number"](Decimal("1234567.5")) == "1.234.567,5"
    assert en["format_number"](Decimal("1234567.5")) == "1,234,567.5"
    assert nl["format_percent"](Decimal("0.85")) == "85%"
    assert nl["format_list"](["Adessium", "Janivo", "Loterij"]) == "Adessium, Janivo en Loterij"
    assert en["format_list"](["Adessium", "Janivo", "Loterij"]) == "Adessium, Janivo and Loterij"


def test_figures_are_formatted_by_their_kind(settings: Settings) -> None:
    format_figure = filters(settings, "de_DE")["format_figure"]
    assert format_figure(Figure(value="1234.5", kind="currency", currency="EUR", label="x")) == "1.234,50\xa0€"
    assert format_figure(Figure(value="85", kind="percent", label="x")) == "85\xa0%"
    assert format_figure(Figure(value="249", label="x")) == "249"


# --- The environment factory -------------------------------------------------

def test_environment_is_built_once_per_locale_and_catalog(settings: Settings) -> None:
    catalog = NullTranslations()
    nl = make_environment(settings, "nl_NL", catalog)
    assert make_environment(settings, "nl_NL", catalog) is nl
    assert make_environment(settings, "de_DE", catalog) is not nl
    assert make_environment(settings, "nl_NL", NullTranslations()) is not nl


def test_environment_is_strict_and_escapes_html_but_not_text(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text("{{ value }}")
    (tmp_path / "a.txt").write_text("{{ value }}")
    env = make_environment(dataclasses.replace(settings, templates_dir=tmp_path), "nl", NullTranslations())
    assert env.get_template("a.html").render(value="<b>") == "&lt;b&gt;"
    assert env.get_template("a.txt").render(value="<b>") == "<b>"
    assert env.policies["ext.i18n.trimmed"] is True


# --- Markdown ----------------------------------------------------------------

def test_markdown_renders_safe_html_only() -> None:
    html = markdown_to_html(
        "**vet** en [link](https://example.org/a)\n\n"
        "<img src=x onerror=alert(1)> [kwaad](javascript:alert(1)) <a href='https://example.org'>x</a>"
    )
    assert isinstance(html, Markup)
    assert "<strong>vet</strong>" in html
    assert '<a href="https://example.org/a" rel="noopener noreferrer">link</a>' in html
    assert "<img" not in html and "javascript:" not in html.replace("](javascript:", "")
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="javascript' not in html


def test_markdown_as_text_lists_link_urls_and_keeps_lists() -> None:
    text = markdown_to_text("Lees [het rapport](https://example.org/r).\n\n- een\n- twee\n\n1. drie\n2. vier")
    assert text == ("Lees het rapport (https://example.org/r).\n\n- een\n- twee\n\n1. drie\n2. vier\n")


def test_unsafe_link_schemes_are_refused() -> None:
    assert safe_url("https://example.org/x") == "https://example.org/x"
    with pytest.raises(TemplateError, match="javascript:alert"):
        safe_url("javascript:alert(1)")


# --- Rendering the newsletter ------------------------------------------------

def test_sample_renders_with_markers_footer_and_figures(sample: Newsletter, settings: Settings) -> None:
    result = rendered(sample, settings, "nl_NL", "funders")
    assert result.subject == sample.subject and result.preheader == sample.preheader
    assert (result.newsletter_id, result.locale, result.view) == (sample.id, "nl_NL", "funders")
    for marker in ("greeting", "web_url", "preferences_url", "unsubscribe_url"):
        assert MARKERS[marker] in result.html and MARKERS[marker] in result.text, marker
    assert f'href="{MARKERS["unsubscribe_url"]}"' in result.html
    assert f'href="{MARKERS["preferences_url"]}"' in result.html
    assert f'href="{MARKERS["web_url"]}"' in result.html
    for part in (result.html, result.text):
        assert settings.postal_address in part
        assert "U ontvangt deze e-mail van" in part and MARKERS["reason"] in part
    assert "Nationale Postcode Loterij, Adessium en Stichting Janivo" in result.text
    assert ('<span dir="ltr">Nationale Postcode Loterij</span>, <span dir="ltr">Adessium</span> en '
            '<span dir="ltr">Stichting Janivo</span>' in result.html)
    for part in (result.html, result.text):
        assert "249" in part and "12 juli 2018" in part
    assert "Watch Nederland (https://www.example.org/watch-nederland)" in result.text
    assert "Lees het rapport: https://www.example.org/rapport-aangifte-doe-je-niet" in result.text


def test_greetings_carry_the_name_marker(sample: Newsletter, settings: Settings) -> None:
    assert rendered(sample, settings).greetings == {
        "formal": "Geachte __PB_NAME__,",
        "informal": "Beste __PB_NAME__,",
        "formal_anonymous": "Geachte lezer,",
        "informal_anonymous": "Beste lezer,",
    }


def test_newsletter_text_is_data_never_template_source(sample: Newsletter, settings: Settings) -> None:
    result = rendered(with_text(sample, HOSTILE), settings)
    assert "<script>" not in result.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in result.html
    assert "49" not in result.html.replace("249", "")
    assert result.html.count("{{ 7*7 }}") >= 8          # subject, title, preheader, intro, body, label, …
    assert result.html.count("{% include") >= 8
    assert "{{ 7*7 }} {% include 'x' %} <script>alert(1)</script>" in result.text
    assert "49" not in result.text.replace("249", "")


def test_attribute_values_are_escaped(sample: Newsletter, settings: Settings) -> None:
    section = sample.sections_for("funders")[2]
    image = section.image.model_copy(update={"alt": 'x" onerror="alert(1)'})
    hostile = sample.model_copy(update={"sections": [section.model_copy(update={"image": image})]})
    html = rendered(hostile, settings).html
    assert 'alt="x&#34; onerror=&#34;alert(1)"' in html
    assert 'onerror="alert' not in html


@pytest.mark.parametrize("locale, lang, direction", [
    ("nl", "nl", "ltr"), ("nl_BE", "nl-BE", "ltr"), ("ar", "ar", "rtl"), ("de_AT", "de-AT", "ltr"),
])
def test_lang_and_dir_on_html_and_wrapper(sample: Newsletter, settings: Settings,
                                          locale: str, lang: str, direction: str) -> None:
    result = rendered(sample, settings, locale)
    assert (result.lang, result.direction) == (lang, direction)
    assert f'<html lang="{lang}" dir="{direction}"' in result.html
    assert f'<div class="wrapper" lang="{lang}" dir="{direction}"' in result.html
    start = "right" if direction == "rtl" else "left"
    assert f'class="px content intro" align="{start}" style="text-align: {start};"' in result.html


@pytest.mark.parametrize("view, shown, hidden", [
    (None, [], ["Wat uw steun mogelijk maakte", "Dank aan onze donateurs"]),
    ("funders", ["Wat uw steun mogelijk maakte"], ["Dank aan onze donateurs"]),
    ("donors", ["Dank aan onze donateurs"], ["Wat uw steun mogelijk maakte"]),
])
def test_sections_with_an_audience_only_in_their_view(sample: Newsletter, settings: Settings,
                                                      view, shown, hidden) -> None:
    result = rendered(sample, settings, view=view)
    for title in shown:
        assert title in result.html and title in result.text
    for title in hidden:
        assert title not in result.html and title not in result.text
    assert "Nieuwe wet maakt de lokpuber mogelijk" in result.html


def test_every_image_has_alt_width_and_height(sample: Newsletter, settings: Settings) -> None:
    html = rendered(sample, settings).html
    images = html.split("<img")[1:]
    assert images
    for tag in images:
        tag = tag.split(">", 1)[0]
        assert ' alt="' in tag and ' width="' in tag and ' height="' in tag
    assert 'src="https://nieuwsbrief.example.org/images/toerisme-training.png"' in html


def test_image_sizes_come_from_the_file_and_fit_the_column(sample: Newsletter, settings: Settings) -> None:
    from postbode.content import Logo
    ack = sample.acknowledgement.model_copy(update={"logos": [Logo(src="images/toerisme-training.png", alt="Logo")]})
    section = sample.sections_for("funders")[2]
    remote = section.image.model_copy(update={"src": "https://example.org/foto.png", "height": None, "width": 600})
    newsletter = sample.model_copy(update={
        "acknowledgement": ack, "sections": [section.model_copy(update={"image": remote})]})
    html = rendered(newsletter, settings).html
    assert 'src="https://nieuwsbrief.example.org/images/toerisme-training.png" alt="Logo" width="140" height="70"' in html
    assert 'src="https://example.org/foto.png" alt="' in html and 'width="600" height="338"' in html


def _catalog(locale: str, entries: list[tuple]) -> Translations:
    """An in-memory compiled catalog: entries are (msgid, msgstr[, context])."""
    catalog = Catalog(locale=locale)
    for msgid, msgstr, *context in entries:
        catalog.add(msgid, msgstr, context=context[0] if context else None)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def test_template_strings_go_through_the_catalog(sample: Newsletter, settings: Settings) -> None:
    english = _catalog("en", [
        ("Afmelden", "Unsubscribe", "footer link"),
        (("In deze nieuwsbrief één onderwerp:", "In deze nieuwsbrief %(count)s onderwerpen:"),
         ("One topic in this newsletter:", "%(count)s topics in this newsletter:")),
        ("Geachte %(name)s,", "Dear %(name)s,"),
        ("U ontvangt deze e-mail van %(organisation)s %(reason)s. "
         "Via de links hierboven past u uw voorkeuren aan of meldt u zich met één klik af.",
         "You receive this email from %(organisation)s %(reason)s. "
         "Use the links above to change your preferences or unsubscribe in one click."),
    ])
    result = rendered(sample, settings, "en_GB", translations=english)
    assert "Unsubscribe</a>" in result.html and "Unsubscribe: __PB_UNSUBSCRIBE_URL__" in result.text
    assert "3 topics in this newsletter:" in result.html
    assert f"email from Coalitie tegen seksuele kinderuitbuiting {MARKERS['reason']}." in result.html
    assert result.greetings["formal"] == "Dear __PB_NAME__,"
    assert result.greetings["informal"] == "Beste __PB_NAME__,"  # untranslated falls back to Dutch


def test_plural_follows_the_number_of_sections(sample: Newsletter, settings: Settings) -> None:
    two = sample.model_copy(update={"sections": sample.sections[:2]})
    assert "In deze nieuwsbrief 2 onderwerpen:" in rendered(two, settings).html
    english = _catalog("en", [(("In deze nieuwsbrief één onderwerp:", "In deze nieuwsbrief %(count)s onderwerpen:"),
                               ("One topic in this newsletter:", "%(count)s topics in this newsletter:"))])
    assert "2 topics in this newsletter:" in rendered(two, settings, "en", translations=english).text


# --- Template errors -----------------------------------------------------------

def _broken_templates(settings: Settings, tmp_path: Path, html: str) -> Settings:
    folder = tmp_path / "templates"
    (folder / "partials").mkdir(parents=True)
    for source in Path(settings.templates_dir).rglob("*.*"):
        target = folder / source.relative_to(settings.templates_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    (folder / "email.html").write_text(html)
    return dataclasses.replace(settings, templates_dir=folder)


def test_an_undefined_variable_names_template_and_line(sample: Newsletter, settings: Settings,
                                                       tmp_path: Path) -> None:
    broken = _broken_templates(settings, tmp_path, "<html>\n<body>\n{{ newsletter.no_such_field }}\n</body>")
    with pytest.raises(TemplateError) as caught:
        render(localize(sample, "nl", broken), None, broken)
    message = str(caught.value)
    assert "email.html:3" in message and "no_such_field" in message


def test_a_syntax_error_names_template_and_line(sample: Newsletter, settings: Settings, tmp_path: Path) -> None:
    broken = _broken_templates(settings, tmp_path, "<html>\n{% if %}\n</html>")
    with pytest.raises(TemplateError, match=r"email\.html:2: template syntax error"):
        render(localize(sample, "nl", broken), None, broken)


# --- Golden files ----------------------------------------------------------------
# The expected HTML and text of a fixed newsletter per locale live in tests/golden/.
# After an intended template change, regenerate them and review the diff:
#     POSTBODE_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_render.py -k golden

GOLDEN = Path(__file__).parent / "golden"


def golden_newsletter() -> Newsletter:
    """A small fixed newsletter with every part the templates show, independent of the sample file."""
    return Newsletter(
        id="golden",
        date=dt.datetime(2025, 3, 30, 9, 30, tzinfo=dt.timezone.utc),
        subject="Resultaten voorjaar 2025",
        preheader="Drie cijfers en een nieuw project.",
        intro="Dit is de **inleiding** met een [link](https://example.org/inleiding).",
        sections=[
            Section(
                id="cijfers", title="Wat we bereikten",
                body="We trainden professionals.\n\n- eerste punt\n- tweede punt",
                image=Image(src="https://example.org/foto.png", alt="Een training", credit="Foto: voorbeeld",
                            width=600, height=300),
                figures=[Figure(value="1234.5", kind="currency", currency="EUR", label="opgehaald"),
                         Figure(value="85", kind="percent", label="tevreden deelnemers"),
                         Figure(value="249", label="professionals getraind")],
                link=Link(url="https://example.org/meer", label="Lees meer"),
            ),
            Section(id="financiers", title="Voor financiers", body="Alleen voor financiers.", audience=["funders"]),
        ],
        acknowledgement=Acknowledgement(text="Met steun van:", funders=["Fonds A", "Fonds B", "Fonds C"]),
        sign_off="Met vriendelijke groet,",
    )


@pytest.mark.parametrize("locale, view", [("nl_NL", "funders"), ("en_GB", None), ("ar", None)])
def test_golden_html_and_text(settings: Settings, locale: str, view: str | None) -> None:
    fixed = dataclasses.replace(settings, organisation_name="Voorbeeldcoalitie",
                                postal_address="Voorbeeldstraat 1, 1000 AA Amsterdam",
                                website="https://www.example.org", base_url="https://nieuwsbrief.example.org")
    result = rendered(golden_newsletter(), fixed, locale, view, translations=NullTranslations())
    for suffix, actual in (("html", result.html), ("txt", result.text)):
        path = GOLDEN / f"{locale}{'--' + view if view else ''}.{suffix}"
        if os.environ.get("POSTBODE_REGENERATE_GOLDEN"):
            path.parent.mkdir(exist_ok=True)
            path.write_text(actual, encoding="utf-8")
        assert actual == path.read_text(encoding="utf-8"), f"{path.name} differs; see the regenerate command above"


# --- Text that fell back to another language --------------------------------------
# A fallback paragraph in an Arabic mail is Dutch: it must say so (lang, dir) and read
# left to right; translated paragraphs stay as they are.

MARKED_TAGS = {"p", "ul", "ol", "li", "h1", "h2", "div", "a", "img", "blockquote"}


def entry_texts(newsletter: Newsletter) -> dict[str, str]:
    """Each catalog entry's text as a reader sees it (Markdown rendered to plain words)."""
    from postbode.i18n.extract import entries
    return {entry.key: visible(entry.source) for entry in entries(newsletter)}


def visible(markdown: str) -> str:
    import lxml.html
    return " ".join(lxml.html.fragment_fromstring(str(markdown_to_html(markdown)),
                                                 create_parent="div").text_content().split())


def elements_showing(html: str, text: str) -> list:
    """The innermost block elements (or images, by alt) whose visible text is exactly `text`."""
    import lxml.html
    body = lxml.html.document_fromstring(html).body
    found = [el for el in body.iter(*MARKED_TAGS)
             if (el.get("alt") if el.tag == "img" else " ".join(el.text_content().split())) == text]
    return [el for el in found if not any(other is not el and el in other.iterancestors() for other in found)
            and not any(child in found for child in el.iterdescendants())]


def arabic_build(project: Path, settings: Settings, locale: str = "ar", view: str | None = "funders"):
    from postbode.build import build_variants
    result = build_variants(project / SAMPLE, [locale], [view], settings)
    return result, localize(load_newsletter(project / SAMPLE), locale, settings)


def shown_keys(localized: LocalizedNewsletter, view: str | None, keys) -> list[str]:
    """The entry keys of text in the mail of `view` (not subject/preheader: they live in headers)."""
    hidden = {f"sections.{s.id}." for s in localized.newsletter.sections if not s.visible_to(view)}
    return [key for key in keys if key not in ("subject", "preheader")
            and not any(key.startswith(prefix) for prefix in hidden)]


def test_arabic_build_marks_every_dutch_fallback_and_no_translated_paragraph(
        project: Path, settings: Settings) -> None:
    result, localized = arabic_build(project, settings)
    html = result.variant("ar", "funders").html
    dutch = entry_texts(load_newsletter(project / SAMPLE))
    arabic = entry_texts(localized.newsletter)
    fallbacks = shown_keys(localized, "funders", localized.fallbacks)
    assert len(fallbacks) >= 10
    for key in fallbacks:
        elements = elements_showing(html, dutch[key])
        assert elements, key
        for element in elements:
            assert (element.get("lang"), element.get("dir")) == ("nl", "ltr"), key
            # Inlined, so it holds in clients that drop <style>; figure labels stay centred.
            if element.tag != "img":
                style = element.get("style")
                assert "direction:ltr" in style and "text-align:right" not in style, key
                assert "text-align:left" in style or "figure-label" in element.get("class"), key
    translated = shown_keys(localized, "funders", [k for k in arabic if k not in localized.fallbacks])
    assert len(translated) >= 5
    for key in translated:
        assert re.search("[\u0600-\u06ff]", arabic[key]), key
        for element in elements_showing(html, arabic[key]):
            assert element.get("lang") is None and element.get("dir") is None, key
    marked = len(re.findall(r'\blang="nl" dir="ltr"', html))
    titles = sum(key.endswith(".title") for key in fallbacks)  # shown twice: heading and contents list
    assert marked == len(fallbacks) + titles


@pytest.mark.browser
def test_arabic_fallback_paragraphs_read_left_to_right_in_chromium(browser, project: Path,
                                                                   settings: Settings) -> None:
    result, localized = arabic_build(project, settings, view=None)
    page = browser.new_page()
    try:
        page.route("**/*", lambda route: route.abort())
        page.set_content(result.variant("ar").html)
        style = "el => [getComputedStyle(el).direction, getComputedStyle(el).textAlign]"
        fallback = page.locator("td.content p[lang='nl']").first
        assert "Het CKM onderzocht" in fallback.inner_text()
        assert fallback.evaluate(style) == ["ltr", "left"]
        translated = page.locator("td.intro p").first
        assert translated.get_attribute("lang") is None
        assert translated.evaluate(style) == ["rtl", "right"]
        names = page.locator("p.funders span[dir='ltr']")
        assert names.count() == 3
        assert names.first.evaluate("el => getComputedStyle(el).direction") == "ltr"
    finally:
        page.close()


def test_german_fallbacks_carry_dutch_language_and_keep_the_direction(project: Path, settings: Settings) -> None:
    result, localized = arabic_build(project, settings, "de_AT")
    html = result.variant("de_AT", "funders").html
    dutch = entry_texts(load_newsletter(project / SAMPLE))
    fallbacks = shown_keys(localized, "funders", localized.fallbacks)
    assert fallbacks
    for key in fallbacks:
        for element in elements_showing(html, dutch[key]) or pytest.fail(key):
            assert (element.get("lang"), element.get("dir")) == ("nl", "ltr"), key
    assert 'dir="rtl"' not in html
    german = entry_texts(localized.newsletter)
    body = german["sections.toerisme.body:2"]
    assert "sections.toerisme.body:2" not in localized.fallbacks
    assert [el.get("lang") for el in elements_showing(html, body)] == [None]


def test_english_build_has_no_dutch_blocks(project: Path, settings: Settings) -> None:
    result, localized = arabic_build(project, settings, "en")
    assert localized.fallbacks == ()
    html = result.variant("en", "funders").html
    assert 'lang="nl"' not in html and 'class="fallback-' not in html


def test_only_the_paragraphs_that_fell_back_are_marked(sample: Newsletter, settings: Settings) -> None:
    body = "Eerste alinea.\n\nTweede alinea.\n\n- een\n- twee\n\nVierde alinea."
    section = sample.sections[0].model_copy(update={"body": body})
    newsletter = sample.model_copy(update={"sections": [section]})
    keys = {f"sections.{section.id}.body:2": "nl", f"sections.{section.id}.body:3": "nl",
            f"sections.{section.id}.title": "nl", "intro": "ar"}
    localized = LocalizedNewsletter(newsletter=newsletter, locale="ar", language="ar", direction="rtl",
                                    translations=NullTranslations(), fallbacks=tuple(keys),
                                    fallback_languages=keys)
    html = render(localized, None, settings).html
    marks = 'class="fallback-ltr" lang="nl" dir="ltr"'
    assert "<p>Eerste alinea.</p>" in html and "<p>Vierde alinea.</p>" in html
    assert f"<p {marks}>Tweede alinea.</p>" in html
    assert f"<ul {marks}>" in html and "<li>een</li>" in html
    assert f'<h2 class="section-title fallback-ltr" lang="nl" dir="ltr">{section.title}</h2>' in html
    assert 'lang="ar"' not in html.split('<div class="wrapper"', 1)[1].split(">", 1)[1]  # same language: no mark


def test_fallbacks_to_a_language_further_down_the_chain_of_the_same_language_are_not_marked() -> None:
    from postbode.render import foreign_fallbacks
    localized = LocalizedNewsletter(newsletter=None, locale="de_AT", language="de_AT", direction="ltr",
                                    translations=NullTranslations(), fallbacks=("a", "b"),
                                    fallback_languages={"a": "de", "b": "nl"})
    assert foreign_fallbacks(localized) == {"b": "nl"}


def test_names_are_isolated_in_every_client(sample: Newsletter, settings: Settings) -> None:
    arabic = rendered(sample, settings, "ar")
    for funder in sample.acknowledgement.funders:
        assert f'<span dir="ltr">{funder}</span>' in arabic.html
        assert f"\u2068{funder}\u2069" in arabic.text
    assert "<bdi" not in arabic.html
    dutch = rendered(sample, settings, "nl")
    assert "\u2068" not in dutch.text and "Nationale Postcode Loterij, Adessium en Stichting Janivo" in dutch.text
    hebrew_name = filters(settings, "nl")["format_names"](["שלום", "Adessium"])
    assert hebrew_name == '<span dir="rtl">שלום</span> en <span dir="ltr">Adessium</span>'
