"""Checks: caniemail feature mapping, client support graded per variant, deliverability, and the CLI."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from postbode import build, campaign, checks
from postbode.errors import PostbodeError
from postbode.render import Rendered

from conftest import SAMPLE

UNSUBSCRIBE = "__PB_UNSUBSCRIBE_URL__"
PREHEADER = "Wat de coalitie de afgelopen maanden bereikte tegen uitbuiting."
TEXT = f"Beste lezer,\n\nAfmelden: {UNSUBSCRIBE}\n"


def page(body: str, head: str = "") -> str:
    """A small valid mail: lang/dir, preheader, unsubscribe link; `body` goes before the footer."""
    return ("<!DOCTYPE html>\n<html lang=\"nl\" dir=\"ltr\">\n<head><meta charset=\"utf-8\">"
            f"{head}</head>\n<body>\n<div style=\"display:none\">{PREHEADER}</div>\n{body}\n"
            f"<p><a href=\"{UNSUBSCRIBE}\">Afmelden</a></p>\n</body>\n</html>\n")


def variant(html: str, *, text: str = TEXT, subject: str = "Resultaten zomer 2018",
            preheader: str = PREHEADER) -> Rendered:
    return Rendered(newsletter_id="test", locale="nl", view=None, subject=subject, preheader=preheader,
                    html=html, text=text, lang="nl", direction="ltr", greetings={})


def issues(report: checks.Report, code: str, severity: str | None = None) -> list[checks.Issue]:
    return [i for i in report.issues if i.code == code and (severity is None or i.severity == severity)]


def support(slug: str, client: str) -> str:
    return checks.features()[slug]["support"].get(client, "u")


# --- slug mapping (the data README's examples) ------------------------------------

@pytest.mark.parametrize("prop, slug", [
    ("border-top-color", "css-border"),
    ("margin-left", "css-margin"),
    ("border-radius", "css-border-radius"),
    ("top", "css-left-right-top-bottom"),
    ("left", "css-left-right-top-bottom"),
    ("margin-inline-start", "css-margin-inline-start-end"),
    ("background-color", "css-background-color"),
    ("font-family", None),               # not the `font` shorthand
    ("-webkit-text-size-adjust", None),
    ("mso-line-height-rule", None),
])
def test_css_properties_map_exactly_then_by_keyword_then_to_their_group(prop, slug) -> None:
    assert checks.css_property_slug(prop) == slug


def test_at_rules_and_media_features() -> None:
    assert checks.at_rule_slugs("@media", "screen and (max-width: 620px)") == {"css-at-media"}
    assert checks.at_rule_slugs("@media", "(prefers-color-scheme: dark)") == {
        "css-at-media", "css-at-media-prefers-color-scheme"}
    assert checks.at_rule_slugs("@font-face") == {"css-at-font-face"}
    assert "css-at-media-device-pixel-ratio" in checks.at_rule_slugs(
        "@media", "(-webkit-min-device-pixel-ratio: 2)")


@pytest.mark.parametrize("prop, value, important, expected", [
    ("display", "flex", False, {"css-display-flex"}),
    ("display", "none", False, {"css-display-none"}),
    ("display", "grid", False, {"css-display-grid"}),
    ("width", "calc(100% - 2rem)", True, {"css-unit-calc", "css-unit-percent", "css-unit-rem",
                                          "css-important"}),
    ("color", "var(--ink)", False, {"css-variables"}),
    ("width", "50vw", False, {"css-unit-vw"}),
    ("background-image", "linear-gradient(#0b6e69, #ffffff)", False, {"css-linear-gradient"}),
    ("font-family", "system-ui, sans-serif", False, {"css-sytem-ui"}),
    ("color", "#0b6e69", False, set()),      # hex digits are not units
])
def test_notable_values(prop, value, important, expected) -> None:
    assert checks.css_value_slugs(prop, value, important) == expected


def test_sytem_ui_is_spelled_as_the_source_spells_it() -> None:
    assert "css-sytem-ui" in checks.features() and "css-system-ui" not in checks.features()


@pytest.mark.parametrize("tag, slug", [
    ("h3", "html-h1-h6"), ("h1", "html-h1-h6"), ("ul", "html-lists"), ("li", "html-lists"),
    ("section", "html-semantics"), ("header", "html-semantics"), ("video", "html-video"),
    ("style", "html-style"), ("table", "html-table"), ("a", None),
    ("width", None),                         # html-width is the attribute, not an element
])
def test_elements_map_to_their_page_or_group(tag, slug) -> None:
    assert checks.element_slug(tag) == slug


@pytest.mark.parametrize("attribute, slug", [
    ("loading", "html-loading-attribute"), ("role", "html-role"), ("aria-label", "html-aria-label"),
    ("cellpadding", "html-cellpadding"), ("srcset", "html-srcset"), ("dir", "html-dir"),
    ("lang", "html-lang"), ("style", None), ("class", None),
])
def test_attributes(attribute, slug) -> None:
    assert checks.attribute_slug(attribute) == slug


def test_selectors_and_image_formats() -> None:
    assert checks.selector_slugs("a:hover") == {"css-pseudo-class-hover", "css-selector-type"}
    assert "css-selector-chaining" in checks.selector_slugs("p.intro.wide")
    assert checks.selector_slugs(".a > .b, p::before") >= {
        "css-selector-child", "css-selector-class", "css-selector-grouping",
        "css-pseudo-element-before"}
    assert checks.image_slug("https://example.org/foto.webp?v=2") == "image-webp"
    assert checks.image_slug("images/logo.JPEG") == "image-jpg"
    assert checks.image_slug("data:image/png;base64,AAAA") == "image-base64"


# --- client support, graded ---------------------------------------------------------

def test_display_flex_warns_where_the_data_says_no_and_notes_partial_support() -> None:
    report = checks.check_variant(variant(page('<div style="display: flex;"><p>Tekst</p></div>')))
    warned = {c for i in issues(report, "css-display-flex", checks.WARNING) for c in i.clients}
    noted = {c for i in issues(report, "css-display-flex", checks.INFO) for c in i.clients}
    assert "outlook/windows" in warned
    for client in ("gmail/desktop-webmail", "gmail/ios", "gmail/android", "outlook/windows"):
        expected = support("css-display-flex", client)
        assert (client in warned) == (expected == "n"), client
        assert (client in noted) == (expected == "a"), client
    assert issues(report, "css-display-flex")[0].where.startswith("line ")


def test_findings_give_each_key_client_the_data_s_support() -> None:
    findings = checks.check_html(page('<div style="display:flex">x</div>'))
    flex = {f.client: f for f in findings if f.feature == "css-display-flex"}
    assert set(flex) == set(checks.KEY_CLIENTS)
    assert flex["outlook/windows"].support == "n" and flex["apple-mail/ios"].support == "y"
    assert flex["gmail/ios"].note  # caniemail's footnote travels with the finding


def test_dark_mode_media_query_is_a_note_not_a_warning() -> None:
    style = "<style>@media (prefers-color-scheme: dark) { .main { color: #ffffff !important; } }</style>"
    report = checks.check_variant(variant(page('<p class="main">Tekst</p>', head=style)))
    scheme = issues(report, "css-at-media-prefers-color-scheme")
    assert scheme and all(i.severity == checks.INFO for i in scheme)
    assert any("progressive enhancement" in i.message for i in scheme)
    assert "outlook/windows" in {c for i in scheme for c in i.clients}
    assert not issues(report, "css-at-media", checks.WARNING)


def test_video_is_a_warning() -> None:
    html = page('<video src="https://example.org/film.mp4" width="600" height="338"></video>')
    report = checks.check_variant(variant(html))
    warned = issues(report, "html-video", checks.WARNING)
    assert warned and "outlook/windows" in warned[0].clients
    assert "<video>" in warned[0].where


def test_plain_rules_count_where_they_were_inlined_not_in_the_style_block() -> None:
    style = "<style>.card.wide { display: flex; } a:hover { color: #0b6e69; }</style>"
    used = checks.used_features(page("<p>Tekst</p>", head=style))
    assert "css-display-flex" not in used and "css-selector-chaining" not in used
    assert "css-pseudo-class-hover" in used and "css-selector-type" in used


# --- deliverability -------------------------------------------------------------------

def test_missing_unsubscribe_marker_is_an_error_in_html_and_in_text() -> None:
    html = page("<p>Tekst</p>").replace(UNSUBSCRIBE, "https://example.org/afmelden")
    report = checks.check_variant(variant(html, text="Beste lezer,\n"))
    errors = issues(report, "unsubscribe", checks.ERROR)
    assert len(errors) == 2 and {"HTML", "text"} == {e.message.split()[1] for e in errors}
    assert "test, variant nl" in str(checks.CheckError(report))


def test_empty_text_part_is_an_error() -> None:
    report = checks.check_variant(variant(page("<p>Tekst</p>"), text="  \n"))
    assert issues(report, "text-part", checks.ERROR)


def test_html_over_gmail_s_limit_warns_about_clipping() -> None:
    filler = "<p>" + "opvulling " * 11_300 + "</p>"
    html = page(filler)
    assert len(html.encode("utf-8")) > 110 * 1024
    report = checks.check_variant(variant(html))
    clipped = issues(report, "gmail-clipping", checks.WARNING)
    assert clipped and "Gmail clips" in clipped[0].message
    assert not issues(checks.check_variant(variant(page("<p>kort</p>"))), "gmail-clipping")


@pytest.mark.parametrize("subject, severity", [
    ("Resultaten zomer 2018", None),
    ("R" * 90, checks.INFO),
    ("R" * 200, checks.WARNING),
    ("", checks.ERROR),
])
def test_subject_length(subject, severity) -> None:
    found = issues(checks.check_variant(variant(page("<p>x</p>"), subject=subject)), "subject")
    assert [i.severity for i in found] == ([severity] if severity else [])


@pytest.mark.parametrize("preheader, warned", [(PREHEADER, False), ("", True), ("Kort.", True),
                                               ("lang " * 40, True)])
def test_preheader_present_and_40_to_140_characters(preheader, warned) -> None:
    html = page("<p>x</p>").replace(PREHEADER, preheader)
    report = checks.check_variant(variant(html, preheader=preheader))
    assert bool(issues(report, "preheader", checks.WARNING)) == warned


def test_preheader_missing_from_the_html_is_warned_about() -> None:
    report = checks.check_variant(variant(page("<p>x</p>").replace(PREHEADER, "")))
    assert any("not in the HTML" in i.message for i in issues(report, "preheader"))


def test_images_need_alt_width_and_height() -> None:
    html = page('<img src="https://example.org/a.png" alt="Logo" width="120" height="40">'
                '<img src="https://example.org/b.png">')
    found = issues(checks.check_variant(variant(html)), "img-attributes", checks.WARNING)
    assert len(found) == 1 and "alt, width, height" in found[0].message


def test_links_need_a_web_or_mail_address_and_text() -> None:
    html = page('<a href="javascript:alert(1)">Klik</a> <a href="https://example.org/x"></a>'
                '<a href="mailto:info@example.org">Mail</a>'
                '<a href="https://example.org/y"><img src="https://example.org/l.png" alt="Logo" '
                'width="10" height="10"></a>')
    report = checks.check_variant(variant(html))
    assert [i.message.split(";")[0] for i in issues(report, "link-url")] == [
        "a link goes to 'javascript:alert(1)'"]
    assert len(issues(report, "link-text")) == 1


def test_html_needs_lang_and_dir() -> None:
    html = page("<p>x</p>").replace(' dir="ltr"', "")
    found = issues(checks.check_variant(variant(html)), "html-lang-dir", checks.WARNING)
    assert found and "dir" in found[0].message


# --- the sample newsletter and the pipeline ------------------------------------------

def test_the_sample_newsletter_has_no_warnings_and_no_errors_in_any_locale_or_view(settings) -> None:
    views = build.views_for_segments(["funders", "donors", "subscribers", "everyone"], settings)
    result = build.build_variants(Path(SAMPLE), settings.locales, views, settings)
    assert {locale for locale, _ in result.variants} == set(settings.locales)
    assert {view for _, view in result.variants} == set(views)
    for key, report in build.check_all(result).items():
        assert not report.errors and not report.warnings, (key, report.errors + report.warnings)
        assert any(i.code == "css-at-media" for i in report.infos)


def test_check_command_prints_the_summary_and_warnings_table(invoke, project: Path) -> None:
    result = invoke("check", SAMPLE, "-l", "nl")   # the public, funders and donors views
    assert result.exit_code == 0, result.output
    assert "checks: 3 variants, 0 errors, 0 warnings" in result.stdout
    section = project / "templates" / "partials" / "section.html"
    section.write_text(section.read_text(encoding="utf-8").replace(
        '<h2', '<div style="display: flex;">flex</div><h2', 1), encoding="utf-8")
    result = invoke("check", SAMPLE, "-l", "nl", "-l", "en", "-s", "subscribers")  # public view only
    assert result.exit_code == 0, result.output
    assert "nl, en: warnings" in result.stderr
    assert "css-display-flex" in result.stderr and "Outlook Windows" in result.stderr
    assert "0 errors, 1 warnings" in result.stdout


def test_check_notes_flag_lists_progressive_enhancements(invoke) -> None:
    result = invoke("check", SAMPLE, "-l", "nl", "--notes")
    assert result.exit_code == 0, result.output
    assert "css-at-media" in result.stderr and "progressive" in result.stderr


def test_build_prints_a_one_line_checks_summary(invoke) -> None:
    result = invoke("build", SAMPLE, "-l", "nl")
    assert result.exit_code == 0, result.output
    assert "checks: 1 variants, 0 errors, 0 warnings" in result.stdout


def remove_html_unsubscribe(project: Path) -> None:
    footer = project / "templates" / "partials" / "footer.html"
    text = footer.read_text(encoding="utf-8")
    assert "{{ markers.unsubscribe_url }}" in text
    footer.write_text(text.replace("{{ markers.unsubscribe_url }}", "https://www.example.org/afmelden"),
                      encoding="utf-8")


def test_missing_unsubscribe_link_makes_check_exit_1(invoke, project: Path) -> None:
    remove_html_unsubscribe(project)
    result = invoke("check", SAMPLE, "-l", "nl")
    assert result.exit_code == 1
    assert "unsubscribe" in result.stderr and "variant nl" in result.stderr
    assert "Traceback" not in result.output


def test_send_refuses_a_variant_with_check_errors_before_any_mail(send_settings, populate,
                                                                   project: Path) -> None:
    populate(5)
    remove_html_unsubscribe(project)
    with pytest.raises(PostbodeError, match="has no unsubscribe link"):
        campaign.run(send_settings, Path(SAMPLE), ["everyone"], transport="outbox://outbox",
                     policy=campaign.Policy(concurrency=1))
    outbox = project / "outbox"
    assert not outbox.exists() or not list(outbox.rglob("*.eml"))


def test_checks_run_once_per_variant_not_per_recipient(send_settings, populate,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    readers = populate(40)
    calls: list[int] = []
    original = checks.check_html
    monkeypatch.setattr(checks, "check_html", lambda html, **kw: calls.append(1) or original(html, **kw))
    checks._check.cache_clear()
    outcome = campaign.run(send_settings, Path(SAMPLE), ["everyone"], transport="outbox://outbox",
                           policy=campaign.Policy(concurrency=1))
    assert outcome.totals["sent"] == 40
    assert 1 <= len(calls) <= len({r.locale for r in readers})


# --- the shipped data -----------------------------------------------------------------

def test_the_caniemail_data_ships_with_its_license_and_source() -> None:
    folder = resources.files("postbode").joinpath("data", "caniemail")
    data = json.loads(folder.joinpath("features.json").read_text(encoding="utf-8"))
    assert data["license"] == "MIT" and len(data["commit"]) == 40
    assert "Rémi Parmentier" in folder.joinpath("LICENSE").read_text(encoding="utf-8")
    assert data["commit"] in folder.joinpath("README.md").read_text(encoding="utf-8")
    assert set(checks.KEY_CLIENTS) <= set(data["clients"])
    for slug, (clients, reason) in checks.PROGRESSIVE.items():
        assert slug in data["features"] and reason
        assert clients is None or clients <= set(checks.KEY_CLIENTS)
