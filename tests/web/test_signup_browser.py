"""Sign-up in a real headless Chromium against the app under waitress, mails at a real aiosmtpd:
the form in Dutch and in Arabic (right to left), the link from the mail, the button, the proof;
and the embeddable snippet on another site, accepted only when that site is configured."""
from __future__ import annotations

import functools
import re
import sqlite3
import sys
import threading
import time
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote

import pytest

from conftest import TEST_SECRET_KEY
from fixtures.smtp import free_port
from fixtures.web import running, server_env

READY = r"Serving on (http://127\.0\.0\.1:\d+)"
SAMPLE = "newsletters/2018-07-resultaten.yaml"
WAIT = 30.0  # seconds: the bound for a mail to arrive (polled)


def wait_for_mails(sink, count: int) -> list:
    deadline = time.monotonic() + WAIT
    while len(sink.received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sink.received) >= count, f"{len(sink.received)} of {count} mails arrived"
    return sink.received


def confirmation_link(mail) -> str:
    text = mail.message.get_body(("plain",)).get_content()
    found = re.search(r"(http://127\.0\.0\.1:\d+/confirm/\S+)", text)
    assert found, text
    return unquote(found.group(1))


@contextmanager
def app_server(project: Path, sink, origins: list[str]) -> Iterator[str]:
    """waitress serving the app on a free loopback port, mailing through `sink`."""
    port = free_port()
    toml = project / "postbode.toml"
    quoted = ", ".join(f'"{o}"' for o in origins)
    toml.write_text(toml.read_text(encoding="utf-8")
                    + f"\n[signup]\norigins = [{quoted}]\nmin_fill_seconds = 0\n", encoding="utf-8")
    env = server_env(POSTBODE_SECRET_KEY=TEST_SECRET_KEY, POSTBODE_TRANSPORT=sink.url,
                     POSTBODE_BASE_URL=f"http://127.0.0.1:{port}")
    command = [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "--threads=2",
               "--call", "postbode.web:create_app"]
    with running(command, cwd=project, env=env, ready=READY) as server:
        yield server.url


@contextmanager
def other_site(folder: Path) -> Iterator[str]:
    """A static web server for `folder` on another port: another origin."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def consent_rows(settings) -> list[tuple]:
    raw = sqlite3.connect(settings.database)
    try:
        return raw.execute(
            "SELECT s.email_key, s.consent, c.source, c.consent_version, c.locale, c.at "
            "FROM subscribers s LEFT JOIN consent_records c ON c.subscriber_id = s.id "
            "ORDER BY s.email_key").fetchall()
    finally:
        raw.close()


def fill_and_confirm(browser, url: str, sink, email: str, lang: str, count: int) -> tuple[str, str]:
    """Sign up through the form in `lang`, confirm through the mailed link; (form dir, final text)."""
    page = browser.new_page()
    try:
        page.goto(f"{url}/subscribe?lang={lang}")
        direction = page.get_attribute("html", "dir")
        page.fill("#email", email)
        page.fill("#name", "Lotte Voorbeeld")
        with page.expect_navigation():
            page.click("button[type=submit]")
        link = confirmation_link(wait_for_mails(sink, count)[count - 1])
        page.goto(link)
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert page.get_attribute("html", "lang") == lang
        return direction, page.inner_text("h1")
    finally:
        page.close()


def test_sign_up_in_dutch_and_arabic_then_the_next_campaign_reaches_them(
        browser, project, settings, smtp_sink, invoke):
    with app_server(project, smtp_sink, []) as url:
        nl = fill_and_confirm(browser, url, smtp_sink, "lotte@example.org", "nl", 1)
        ar = fill_and_confirm(browser, url, smtp_sink, "layla@example.org", "ar", 2)
    assert nl == ("ltr", "U bent aangemeld")
    assert ar == ("rtl", "تم اشتراكك")
    assert smtp_sink.received[1].message["Subject"] == "يرجى تأكيد اشتراكك"
    rows = consent_rows(settings)
    assert [r[:5] for r in rows] == [
        ("layla@example.org", "subscribed", "form:subscribers", "nieuwsbrief-2026-12", "ar"),
        ("lotte@example.org", "subscribed", "form:subscribers", "nieuwsbrief-2026-12", "nl")]
    assert all(abs(r[5] - time.time()) < 3600 for r in rows)

    result = invoke("send", SAMPLE, "--segment", "subscribers", "--transport", smtp_sink.url, "--yes",
                    env={"POSTBODE_SECRET_KEY": TEST_SECRET_KEY})
    assert result.exit_code == 0, result.output
    newsletters = [m for m in smtp_sink.received[2:]]
    assert sorted(m.rcpt_tos[0] for m in newsletters) == ["layla@example.org", "lotte@example.org"]


@pytest.mark.parametrize("configured", [True, False], ids=["origin configured", "origin not configured"])
def test_the_snippet_on_another_site_subscribes_only_when_that_site_is_configured(
        browser, project, settings, smtp_sink, invoke, tmp_path, configured):
    site = tmp_path / "site"
    site.mkdir()
    with other_site(site) as origin:
        with app_server(project, smtp_sink, [origin] if configured else []) as url:
            snippet = invoke("signup-snippet", "--list", "subscribers", "--locale", "en",
                             env={"POSTBODE_BASE_URL": url})
            assert snippet.exit_code == 0, snippet.output
            (site / "index.html").write_text(f"<!doctype html><title>site</title>{snippet.output}",
                                             encoding="utf-8")
            page = browser.new_page()
            try:
                page.goto(f"{origin}/index.html")
                page.fill("input[name=email]", "elders@example.org")
                with page.expect_navigation():
                    page.click("button[type=submit]")
                answered = page.inner_text("body")
            finally:
                page.close()
            if configured:
                wait_for_mails(smtp_sink, 1)
    rows = consent_rows(settings)
    if configured:
        assert "Check your mailbox" in answered
        assert rows == [("elders@example.org", "unconfirmed", None, None, None, None)]
        assert [m.rcpt_tos for m in smtp_sink.received] == [["elders@example.org"]]
    else:
        assert "cross-site requests are refused" in answered
        assert rows == [] and smtp_sink.received == []
