"""The rendered mail, raw and inlined, opened in headless Chromium: phone, desktop, dark mode, RTL."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from postbode.config import Settings
from postbode.content import load_newsletter
from postbode.i18n import localize
from postbode.inline import inline
from postbode.render import render

pytestmark = pytest.mark.browser

SAMPLE = "newsletters/2018-07-resultaten.yaml"
COLUMN = ".container"


@pytest.fixture(params=["rendered", "inlined"])
def mail_html(request, project: Path, settings: Settings) -> str:
    """The sample for funders in Dutch (the view with the most parts), before and after inlining."""
    localized = localize(load_newsletter(project / SAMPLE), "nl", settings)
    rendered = render(localized, "funders", settings)
    return rendered.html if request.param == "rendered" else inline(rendered).html


@pytest.fixture
def open_mail(browser, project: Path):
    """Open mail HTML in a fresh page; images come from the project folder, nothing from the network."""
    contexts = []

    def serve(route) -> None:
        path = urlsplit(route.request.url).path.lstrip("/")
        local = project / "newsletters" / path
        if path.startswith("images/") and local.is_file():
            route.fulfill(status=200, content_type="image/png", body=local.read_bytes())
        else:
            route.abort()

    def open_(html: str, width: int, color_scheme: str = "light"):
        context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=color_scheme)
        contexts.append(context)
        page = context.new_page()
        page.route("**/*", serve)
        page.set_content(html, wait_until="load")
        return page

    yield open_
    for context in contexts:
        context.close()


def test_phone_width_has_no_horizontal_overflow(open_mail, mail_html: str) -> None:
    page = open_mail(mail_html, 375)
    scroll, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll <= client
    column = page.locator(COLUMN).bounding_box()
    assert column["width"] >= 0.97 * client
    photo = page.locator("img.photo").bounding_box()
    assert photo["width"] <= client


def test_desktop_width_keeps_a_600px_column(open_mail, mail_html: str) -> None:
    page = open_mail(mail_html, 1024)
    column = page.locator(COLUMN).bounding_box()
    assert column["width"] == 600
    assert abs(column["x"] - (1024 - 600) / 2) <= 1  # centred


def test_dark_mode_changes_the_background(open_mail, mail_html: str) -> None:
    script = "getComputedStyle(document.body).backgroundColor"
    light = open_mail(mail_html, 1024, "light").evaluate(script)
    dark = open_mail(mail_html, 1024, "dark").evaluate(script)
    assert light == "rgb(243, 241, 236)"
    assert dark != light


def test_images_have_alt_width_and_height(open_mail, mail_html: str) -> None:
    page = open_mail(mail_html, 1024)
    images = page.evaluate(
        "[...document.images].map(i => [i.getAttribute('alt'), i.getAttribute('width'), i.getAttribute('height'),"
        " i.naturalWidth])"
    )
    assert images
    for alt, width, height, natural in images:
        assert alt and int(width) > 0 and int(height) > 0
    assert any(natural > 0 for *_, natural in images)  # the sample photo really loaded


def test_preheader_is_hidden_and_footer_is_visible(open_mail, mail_html: str) -> None:
    page = open_mail(mail_html, 375)
    assert page.locator(".preheader").count() == 1
    assert not page.locator(".preheader").is_visible()
    assert page.get_by_text("U ontvangt deze e-mail van").is_visible()
    assert page.locator("a[href='__PB_UNSUBSCRIBE_URL__']").is_visible()


def test_screenshot_is_a_png(open_mail, mail_html: str, tmp_path: Path) -> None:
    target = tmp_path / "mail-375.png"
    open_mail(mail_html, 375).screenshot(path=str(target), full_page=True)
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_arabic_reads_right_to_left(open_mail, project: Path, settings: Settings) -> None:
    html = inline(render(localize(load_newsletter(project / SAMPLE), "ar", settings), None, settings)).html
    page = open_mail(html, 1024)
    assert page.evaluate("getComputedStyle(document.querySelector('.wrapper')).direction") == "rtl"
    assert page.evaluate("getComputedStyle(document.querySelector('.intro')).textAlign") == "right"
