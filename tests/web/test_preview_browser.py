"""The preview as a fundraiser uses it, in headless Chromium: errors in the page, live reload, switches."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from postbode import build, tokens
from .test_app import NEWSLETTER
from .test_browser import serving

pytestmark = pytest.mark.browser

RELOAD_WITHIN_MS = 2000
TITLE = 'title: "Waarom jonge slachtoffers zelden aangifte doen"'


@pytest.fixture
def preview_url(web_settings):
    from postbode.web import create_app

    def make_app(url: str):  # as `preview` does: images and links point at this server
        return create_app(web_settings.with_overrides(base_url=url), {"TESTING": True, "PREVIEW": True})

    with serving(make_app) as url:
        yield url


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    yield page
    page.close()


def mail_frames(page) -> dict:
    return {f.url.split("locale=")[1].split("&")[0]: f for f in page.frames if "/frame?" in f.url}


def test_broken_yaml_shows_the_errors_and_the_fix_reloads_the_page(page, preview_url, project):
    source = project / "newsletters" / f"{NEWSLETTER}.yaml"
    good = source.read_text(encoding="utf-8")
    assert TITLE in good
    page.goto(f"{preview_url}/preview/{NEWSLETTER}?locale=de")
    assert page.locator(".problems").count() == 0
    source.write_text(good.replace(TITLE, "titel: oeps"), encoding="utf-8")
    page.reload()
    problems = page.get_by_role("alert")
    text = problems.inner_text()
    assert "sections[0].titel: unknown field 'titel' — did you mean 'title'?" in text
    assert f"{NEWSLETTER}.yaml:" in text
    assert "laatste versie die wel lukte" in text          # the last good render stays beside it
    assert mail_frames(page)["nl"].evaluate("document.documentElement.lang") == "nl"
    source.write_text(good, encoding="utf-8")
    expect(page.locator(".problems")).to_have_count(0, timeout=RELOAD_WITHIN_MS)  # nobody reloaded
    assert page.locator("iframe").count() == 2


def test_the_phone_switch_renders_the_mail_375_px_wide(page, preview_url):
    page.goto(f"{preview_url}/preview/{NEWSLETTER}?locale=ar")
    assert mail_frames(page)["ar"].evaluate("window.innerWidth") > 375
    page.locator("[data-switch=width-phone]").click()
    page.wait_for_load_state("load")
    frames = mail_frames(page)
    assert sorted(frames) == ["ar", "nl"]
    assert all(f.evaluate("window.innerWidth") == 375 for f in frames.values())
    # the mail's own phone rules apply at that width
    padding = frames["nl"].evaluate("getComputedStyle(document.querySelector('.px')).paddingLeft")
    assert padding == "16px"


def test_the_dark_switch_applies_the_mails_dark_rules(page, preview_url):
    page.goto(f"{preview_url}/preview/{NEWSLETTER}?locale=nl&scheme=dark")
    background = mail_frames(page)["nl"].evaluate("getComputedStyle(document.querySelector('.main')).backgroundColor")
    assert background == "rgb(29, 33, 37)"   # #1d2125 from the dark-mode rules


def test_the_funders_greeting_is_the_funders_mails(page, preview_url, web_settings):
    result = build.build_variants(web_settings.newsletters_dir / f"{NEWSLETTER}.yaml", ["nl"],
                                  [None, "funders"], web_settings)
    mails = build.sample_messages(result, tokens.with_development_key(web_settings)[0])
    funders_greeting = mails[("nl", "funders")].values["__PB_GREETING__"]
    assert funders_greeting.startswith("Geachte")
    page.goto(f"{preview_url}/preview/{NEWSLETTER}?locale=nl&segment=funders")
    shown = mail_frames(page)["nl"].evaluate("document.querySelector('.greeting').innerText")
    assert shown.strip() == funders_greeting
    page.goto(f"{preview_url}/preview/{NEWSLETTER}?locale=nl&segment=subscribers")
    assert mail_frames(page)["nl"].evaluate("document.querySelector('.greeting').innerText").strip() \
        == mails[("nl", None)].values["__PB_GREETING__"]


def test_the_page_shows_headers_size_and_text_part(page, preview_url):
    page.goto(f"{preview_url}/preview/{NEWSLETTER}?locale=nl&segment=funders")
    assert "List-Unsubscribe" in page.locator("table.headers").inner_text()
    assert "KB van 102 KB" in page.locator(".size").inner_text()
    page.get_by_text("Tekstversie").click()
    assert "Geachte" in page.locator("pre").inner_text()
