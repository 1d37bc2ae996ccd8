"""Personal links carry an opaque subscriber key, never the address; the web looks people up by it.

Links in mail sent before keys existed (the address inside) keep unsubscribing.
An expired preferences link mails a fresh one through the configured transport
(here a real SMTP server), at most one an hour, with the same answer for anyone.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from postbode import audience, erasure, store, tokens
from postbode.config import Settings
from postbode.store.schema import subscribers

from fixtures.state import connect

KEY = re.compile(r"^[A-Za-z0-9_-]{22}$")
OLD = 400 * tokens.DAY  # older than the preferences links' default year


def add(settings: Settings, tmp_path: Path, *emails: str) -> None:
    path = tmp_path / "people.csv"
    path.write_text("email,name,language,aanhef\n" + "".join(
        f"{e},Sam {i},nl,je\n" for i, e in enumerate(emails)), encoding="utf-8")
    conn = store.connect(settings)
    try:
        audience.import_csv(conn, path, "subscribers", settings)
    finally:
        conn.close()


def key_of(settings: Settings, email: str) -> str:
    return connect(settings).execute(select(subscribers.c.subscriber_key).where(
        subscribers.c.email_key == email.lower())).scalar()


def consent_of(settings: Settings, email: str) -> str | None:
    row = audience.find_subscriber(connect(settings), email)
    return row["consent"] if row else None


def test_every_subscriber_gets_a_unique_random_url_safe_key(web_settings, tmp_path):
    emails = [f"k{i}@example.org" for i in range(50)]
    add(web_settings, tmp_path, *emails)
    keys = [key_of(web_settings, e) for e in emails]
    assert all(KEY.match(k) for k in keys) and len(set(keys)) == len(keys)
    assert not any("example" in k for k in keys)


def test_links_in_a_sent_mail_carry_the_key_and_unsubscribe_by_it(invoke, project, send_settings):
    from postbode.web import create_app

    assert invoke("send", "newsletters/2018-07-resultaten.yaml", "--segment", "funders",
                  "--yes").exit_code == 0
    mail = next(p for p in (project / "outbox").rglob("*.eml")
                if b"anouk.verbeek@example.org" in p.read_bytes())
    links = re.findall(rb"/u/([A-Za-z0-9_%-]+)", mail.read_bytes())
    token = unquote(links[0].decode())
    payload = tokens.verify(send_settings, "unsubscribe", token)
    assert payload["email"] is None
    assert payload["subscriber_key"] == key_of(send_settings, "anouk.verbeek@example.org")
    client = create_app(send_settings, {"TESTING": True}).test_client()
    answer = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    assert consent_of(send_settings, "anouk.verbeek@example.org") == "unsubscribed"
    assert consent_of(send_settings, "sophie.lambrecht@example.org") == "subscribed"


def test_links_with_the_address_from_mail_sent_earlier_still_unsubscribe(client, web_settings, tmp_path):
    add(web_settings, tmp_path, "early@example.org")
    token = tokens.sign(web_settings, "unsubscribe", "early@example.org", issued_at=time.time() - OLD)
    assert client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert consent_of(web_settings, "early@example.org") == "unsubscribed"


def test_key_links_open_the_preferences_page_and_a_forgotten_key_opens_nothing(client, web_settings,
                                                                               tmp_path):
    add(web_settings, tmp_path, "keyed@example.org")
    token = tokens.sign(web_settings, "preferences", subscriber_key=key_of(web_settings, "keyed@example.org"))
    page = client.get(f"/p/{token}")
    assert page.status_code == 200 and "keyed@example.org" in page.get_data(as_text=True)
    erasure.forget(connect(web_settings), "keyed@example.org", web_settings)
    gone = client.get(f"/p/{token}")
    assert gone.status_code == 404 and "keyed@example.org" not in gone.get_data(as_text=True)
    assert client.post(f"/u/{tokens.sign(web_settings, 'unsubscribe', subscriber_key='nobody-key')}",
                       data={"List-Unsubscribe": "One-Click"}).status_code == 200


@pytest.fixture
def smtp_settings(web_settings, smtp_server, monkeypatch) -> Settings:
    monkeypatch.setenv("POSTBODE_SMTP_PASSWORD", smtp_server.password)
    return web_settings.with_overrides(transport=smtp_server.url)


def fresh_link(mail) -> str:
    text = mail.message.get_body(("plain",)).get_content()
    (link,) = re.findall(r"http://127\.0\.0\.1:5000/p/(\S+)", text)
    return unquote(link)


def test_an_expired_preferences_link_mails_a_fresh_one_once_an_hour(smtp_settings, smtp_server, tmp_path):
    from postbode.web import create_app

    add(smtp_settings, tmp_path, "late@example.org")
    client = create_app(smtp_settings, {"TESTING": True}).test_client()
    old = tokens.sign(smtp_settings, "preferences", subscriber_key=key_of(smtp_settings, "late@example.org"),
                      issued_at=time.time() - OLD)
    expired = client.get(f"/p/{old}")
    assert expired.status_code == 410 and f"/p/{old}/renew" in expired.get_data(as_text=True)
    first = client.post(f"/p/{old}/renew")
    assert first.status_code == 200
    (mail,) = smtp_server.received
    assert mail.rcpt_tos == ["late@example.org"] and mail.message["Subject"] == "Je nieuwe link"
    fresh = fresh_link(mail)
    assert "late@example.org" not in fresh
    assert client.get(f"/p/{fresh}").status_code == 200
    again = client.post(f"/p/{old}/renew")
    assert again.status_code == 200 and again.get_data() == first.get_data()
    assert len(smtp_server.received) == 1  # one an hour


def test_a_fresh_link_request_for_someone_forgotten_looks_the_same_and_mails_nothing(
        smtp_settings, smtp_server, tmp_path):
    from postbode.web import create_app

    add(smtp_settings, tmp_path, "known@example.org", "gone@example.org")
    client = create_app(smtp_settings, {"TESTING": True}).test_client()
    links = {e: tokens.sign(smtp_settings, "preferences", subscriber_key=key_of(smtp_settings, e),
                            issued_at=time.time() - OLD) for e in ("known@example.org", "gone@example.org")}
    erasure.forget(connect(smtp_settings), "gone@example.org", smtp_settings)
    gone = client.post(f"/p/{links['gone@example.org']}/renew")
    known = client.post(f"/p/{links['known@example.org']}/renew")
    assert gone.status_code == known.status_code == 200
    assert all("Nieuwe link aangevraagd" in r.get_data(as_text=True) for r in (gone, known))
    assert [m.rcpt_tos for m in smtp_server.received] == [["known@example.org"]]


def test_a_mail_server_that_is_down_gives_the_same_answer_and_does_not_use_up_the_hour(
        web_settings, tmp_path, smtp_server, monkeypatch):
    from postbode.web import create_app

    from conftest import free_port

    add(web_settings, tmp_path, "waiting@example.org")
    old = tokens.sign(web_settings, "preferences", subscriber_key=key_of(web_settings, "waiting@example.org"),
                      issued_at=time.time() - OLD)
    down = web_settings.with_overrides(transport=f"smtp://127.0.0.1:{free_port()}?tls=none")
    answer = create_app(down, {"TESTING": True}).test_client().post(f"/p/{old}/renew")
    assert answer.status_code == 200 and "Nieuwe link aangevraagd" in answer.get_data(as_text=True)
    monkeypatch.setenv("POSTBODE_SMTP_PASSWORD", smtp_server.password)
    up = web_settings.with_overrides(transport=smtp_server.url)
    assert create_app(up, {"TESTING": True}).test_client().post(f"/p/{old}/renew").status_code == 200
    assert [m.rcpt_tos for m in smtp_server.received] == [["waiting@example.org"]]
