"""The web app served by a real local server, opened in headless Chromium."""
from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from postbode import tokens
from .test_app import NEWSLETTER, add_subscriber

pytestmark = pytest.mark.browser


@contextmanager
def serving(make_app):
    """The app made by make_app(its own URL) on 127.0.0.1 at a free port, served from a thread."""
    apps = []
    server = make_server("127.0.0.1", 0, lambda environ, start: apps[0](environ, start), threaded=True)
    apps.append(make_app(f"http://127.0.0.1:{server.server_port}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def live_url(app):
    with serving(lambda _url: app) as url:
        yield url


def consent(database: Path, email: str) -> str:
    conn = sqlite3.connect(database)
    try:
        return conn.execute("SELECT consent FROM subscribers WHERE email_key = ?", (email,)).fetchone()[0]
    finally:
        conn.close()


def test_click_unsubscribe_and_see_the_confirmation(browser, live_url, web_settings, tmp_path):
    email = "daan@example.org"
    add_subscriber(web_settings, tmp_path, email)
    token = tokens.sign(web_settings, "unsubscribe", email)
    page = browser.new_page()
    try:
        page.goto(f"{live_url}/u/{token}")
        assert consent(web_settings.database, email) == "subscribed"  # opening the link is not enough
        page.get_by_role("button", name="Ja, meld mij af").click()
        page.wait_for_load_state()
        assert page.get_by_role("status").inner_text() == "U bent afgemeld"  # aanhef u
    finally:
        page.close()
    assert consent(web_settings.database, email) == "unsubscribed"


def test_arabic_web_version_is_right_to_left(browser, live_url):
    page = browser.new_page()
    try:
        response = page.goto(f"{live_url}/v/{NEWSLETTER}/ar")
        assert response.status == 200
        assert page.evaluate("document.documentElement.dir") == "rtl"
        assert page.evaluate("document.documentElement.lang") == "ar"
        assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    finally:
        page.close()


def test_preferences_form_works_on_a_phone_sized_screen(browser, live_url, web_settings, tmp_path):
    email = "noor@example.org"
    add_subscriber(web_settings, tmp_path, email)
    token = tokens.sign(web_settings, "preferences", email)
    page = browser.new_page(viewport={"width": 360, "height": 740})
    try:
        page.goto(f"{live_url}/p/{token}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360  # nothing runs off-screen
        page.get_by_label("العربية").check()
        page.get_by_role("button", name="Opslaan").click()
        page.wait_for_load_state()
        assert page.evaluate("document.documentElement.dir") == "rtl"
    finally:
        page.close()
    conn = sqlite3.connect(web_settings.database)
    try:
        assert conn.execute("SELECT locale FROM subscribers WHERE email_key = ?", (email,)).fetchone()[0] == "ar"
    finally:
        conn.close()


def test_preview_shows_both_versions_in_frames(browser, web_settings):
    from postbode.web import create_app

    def make_app(url: str):  # as `preview` does: images and links point at this server
        return create_app(web_settings.with_overrides(base_url=url), {"TESTING": True, "PREVIEW": True})

    with serving(make_app) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(f"{url}/preview/{NEWSLETTER}?locale=ar&segment=funders")
            page.wait_for_load_state("load")
            frames = {f.url.split("locale=")[1].split("&")[0]: f for f in page.frames if "/frame?" in f.url}
            assert sorted(frames) == ["ar", "nl"]
            assert frames["ar"].evaluate("document.documentElement.dir") == "rtl"
            assert frames["nl"].evaluate("document.documentElement.lang") == "nl"
            assert frames["ar"].evaluate("document.images.length") > 0
            assert frames["ar"].evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        finally:
            page.close()
