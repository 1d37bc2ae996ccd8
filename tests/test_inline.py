"""Inlining: CSS into style= attributes, once per variant, without touching markers or Outlook comments."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from postbode.build import build_variants
from postbode.errors import TemplateError
from postbode.inline import inline, inline_html
from postbode.message import MARKERS
from postbode.render import Rendered

SAMPLE = "newsletters/2018-07-resultaten.yaml"

PAGE = """<!doctype html>
<html lang="nl" dir="ltr"><head><meta charset="utf-8">
<meta name="color-scheme" content="light dark">
<!--[if mso]><xml><o:OfficeDocumentSettings><o:PixelsPerInch>96</o:PixelsPerInch></o:OfficeDocumentSettings></xml><![endif]-->
<style>
p { color: #333333; mso-line-height-rule: exactly; }
.button { background-color: #c00000; color: #ffffff !important; }
@media only screen and (max-width: 620px) { .wrapper { width: 100% !important; } }
@media (prefers-color-scheme: dark) { .wrapper { background-color: #111111 !important; } }
</style></head>
<body><div class="wrapper" lang="nl" dir="ltr">
<!--[if mso]><table role="presentation" width="600"><tr><td><![endif]-->
<p>__PB_GREETING__</p>
<p>__PB_REASON__</p>
<p>Café – € 1.234,50</p>
<a class="button" href="__PB_WEB_URL__">web</a>
<a href="__PB_PREFERENCES_URL__">voorkeuren</a>
<a href="__PB_UNSUBSCRIBE_URL__">afmelden</a>
<!--[if mso]></td></tr></table><![endif]-->
</div></body></html>"""


def rendered(html: str) -> Rendered:
    return Rendered(newsletter_id="test", locale="nl", view=None, subject="Onderwerp",
                    preheader="", html=html, text="", lang="nl", direction="ltr", greetings={})


def test_css_becomes_style_attributes() -> None:
    out = inline_html(PAGE)
    # cssutils writes colours in their short form
    assert re.search(r'<p style="[^"]*color:#333\b', out)
    assert re.search(r'<a class="button" href="__PB_WEB_URL__" style="[^"]*background-color:#c00000', out)
    assert "mso-line-height-rule:exactly" in out


def test_markers_survive_unchanged() -> None:
    out = inline_html(PAGE)
    for marker in MARKERS:
        assert out.count(marker) == 1, marker
    assert 'href="__PB_UNSUBSCRIBE_URL__"' in out


def test_media_rules_keep_important_and_style_block_stays() -> None:
    out = inline_html(PAGE)
    assert "@media only screen and (max-width: 620px) { .wrapper { width: 100% !important; } }" in out
    assert "prefers-color-scheme: dark" in out
    assert re.search(r"color:#fff(fff)? !important", out)


def test_doctype_and_outlook_conditional_comments_are_kept() -> None:
    out = inline_html(PAGE)
    assert out.startswith("<!doctype html>")
    assert "<!--[if mso]><table role=\"presentation\" width=\"600\"><tr><td><![endif]-->" in out
    assert "<o:PixelsPerInch>96</o:PixelsPerInch>" in out
    assert "Café – € 1.234,50" in out


def test_inline_replaces_only_the_html() -> None:
    before = rendered(PAGE)
    after = inline(before)
    assert after.html != before.html
    assert (after.subject, after.locale, after.view) == (before.subject, before.locale, before.view)


def test_the_shared_premailer_gives_the_same_result_every_time() -> None:
    first = inline_html(PAGE)
    inline_html(PAGE.replace("#333333", "#444444"))
    assert inline_html(PAGE) == first


def test_empty_html_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="newsletter test, locale nl: .*empty"):
        inline(rendered("  "))


def test_sample_inlined_is_email_safe(settings, project: Path) -> None:
    html = build_variants(project / SAMPLE, ["nl"], [None], settings).variant("nl").html
    assert len(html.encode("utf-8")) < 102 * 1024
    assert html.count("style=") > 30
    assert re.search(r"<td[^>]+style=", html)
    media = re.findall(r"@media[^{]*\{(?:[^{}]*\{[^}]*\})*[^}]*\}", html)
    assert media and all("!important" in rule for rule in media)
    assert any("prefers-color-scheme: dark" in rule for rule in media)
    for marker in ("__PB_GREETING__", "__PB_UNSUBSCRIBE_URL__", "__PB_PREFERENCES_URL__",
                   "__PB_WEB_URL__"):
        assert marker in html, marker
    assert "<!--[if mso]>" in html
    assert html.lower().startswith("<!doctype html>")
