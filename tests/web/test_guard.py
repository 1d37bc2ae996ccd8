"""What stands before every route: the cross-site check, the headers, links from base_url, the log."""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from postbode import tokens
from postbode.config import Settings

NEWSLETTER = "2018-07-resultaten"
LOTTE = "lotte@example.org"


@pytest.fixture
def lotte(invoke, tmp_path: Path) -> str:
    csv = tmp_path / "readers.csv"
    csv.write_text(f"email,name,language\n{LOTTE},Lotte Voorbeeld,nl\n", encoding="utf-8")
    assert invoke("subscribers", "import", str(csv), "--list", "subscribers").exit_code == 0
    return LOTTE


def consent(settings: Settings, email: str) -> str:
    conn = sqlite3.connect(settings.database)
    try:
        return conn.execute("SELECT consent FROM subscribers WHERE email_key = ?", (email,)).fetchone()[0]
    finally:
        conn.close()


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:5000"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
])
def test_a_page_elsewhere_cannot_unsubscribe_its_visitors(client, web_settings, lotte, headers):
    """The attack: a web page POSTs to /u/ and /p/ from the visitor's browser."""
    unsubscribe = tokens.sign(web_settings, "unsubscribe", lotte)
    preferences = tokens.sign(web_settings, "preferences", lotte)
    for path, form in ((f"/u/{unsubscribe}", {"List-Unsubscribe": "One-Click"}),
                       (f"/p/{preferences}", {"action": "unsubscribe"})):
        assert client.post(path, data=form, headers=headers).status_code == 403
    assert consent(web_settings, lotte) == "subscribed"


@pytest.mark.parametrize("headers", [
    {},                                                   # RFC 8058: the mail provider's server
    {"Sec-Fetch-Site": "same-origin", "Origin": "null"},  # our own page's button
    {"Origin": "http://127.0.0.1:5000"},                  # a browser without Sec-Fetch-*
])
def test_one_click_and_our_own_button_keep_working(client, web_settings, lotte, headers):
    token = tokens.sign(web_settings, "unsubscribe", lotte)
    response = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}, headers=headers)
    assert response.status_code == 200
    assert consent(web_settings, lotte) == "unsubscribed"


def test_links_come_from_base_url_never_from_the_host_header(web_settings):
    """The attack: a Host header of the attacker's choosing ends up in cached web versions."""
    from postbode.web import create_app

    client = create_app(web_settings.with_overrides(base_url="https://nieuws.example.org/brief"),
                        {"TESTING": True}).test_client()
    response = client.get(f"/v/{NEWSLETTER}/nl", headers={"Host": "evil.example"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "evil.example" not in page
    assert f"https://nieuws.example.org/brief/v/{NEWSLETTER}/nl" in page
    assert "https://nieuws.example.org/brief/manage/nl" in page
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert response.headers["X-Frame-Options"] == "DENY"


def test_headers_framing_caching_and_allow(client, web_settings, lotte):
    index = client.get("/", headers={"Accept-Language": "de"})
    assert index.headers["Cache-Control"] == "private"  # chosen by the request's language
    assert index.headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in index.headers  # base_url is http here
    token = tokens.sign(web_settings, "unsubscribe", lotte)
    assert client.get(f"/u/{token}").headers["Cache-Control"] == "no-store"
    wrong = client.delete(f"/u/{token}")
    assert wrong.status_code == 405
    assert set(wrong.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_the_access_log_keeps_no_token(client, web_settings, lotte, caplog):
    token = tokens.sign(web_settings, "unsubscribe", lotte)
    legacy_looking = "eyJwIjoidW5zdWJzY3JpYmUifQ.c2lnbmF0dXJlLW9mLWFuLW9sZC1saW5r"
    with caplog.at_level(logging.INFO, logger="postbode.web.access"):
        client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
        client.get(f"/p/{legacy_looking}")
    lines = [r.getMessage() for r in caplog.records if r.name == "postbode.web.access"]
    assert lines == ['127.0.0.1 "POST /u/[token]" 200' + lines[0].rsplit("200", 1)[1],
                     '127.0.0.1 "GET /p/[token]" 400' + lines[1].rsplit("400", 1)[1]]
    assert token not in caplog.text and legacy_looking not in caplog.text


def test_a_busy_database_is_a_503_with_retry_after(client, web_settings, lotte):
    """A write lock held elsewhere: the provider is told to retry, never given a 500."""
    from postbode.web import pages

    token = tokens.sign(web_settings, "unsubscribe", lotte)
    app = client.application
    with app.test_request_context(f"/u/{token}", method="POST"):
        response = pages._busy(sqlite3.OperationalError("database is locked"))
    assert response.status_code == 503 and response.headers["Retry-After"] == pages.RETRY_AFTER


def test_an_expired_preferences_link_offers_a_fresh_one(client, web_settings, lotte):
    """The fault: a preferences token from the year 2000 still opened the page."""
    old = tokens.sign(web_settings, "preferences", lotte, issued_at=946684800)
    page = client.get(f"/p/{old}")
    assert page.status_code == 410
    text = page.get_data(as_text=True)
    assert LOTTE not in text and f"{web_settings.base_url}/p/{old}/renew" in text
    assert client.post(f"/p/{old}", data={"action": "unsubscribe"}).status_code == 410
    assert consent(web_settings, lotte) == "subscribed"
    renewed = client.post(f"/p/{old}/renew")
    assert renewed.status_code == 200 and "Nieuwe link aangevraagd" in renewed.get_data(as_text=True)
    assert client.post("/p/not-a-token/renew").status_code == 400


def test_rotation_keeps_unsubscribe_links_in_old_mail_working(web_settings, lotte):
    from postbode.web import create_app

    old_key = "the-key-these-mails-were-signed-with-0123456789"
    old_link = tokens.sign(web_settings.with_overrides(secret_key=old_key), "unsubscribe", lotte)
    rotated = web_settings.with_overrides(secret_key=f"{web_settings.secret_key},{old_key}")
    client = create_app(rotated, {"TESTING": True}).test_client()
    response = client.post(f"/u/{old_link}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert consent(web_settings, lotte) == "unsubscribed"
