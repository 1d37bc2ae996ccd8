"""Sign-up with double opt-in through the real app: the same answer for everyone, confirmation
mails at a real SMTP server (aiosmtpd), consent recorded, links single-use, limits in the database."""
from __future__ import annotations

import json
import re
import sqlite3
import time
from urllib.parse import unquote

import pytest

from postbode import audience, store, tokens
from postbode.web import create_app


LINK = re.compile(r"http://127\.0\.0\.1:5000/confirm/([A-Za-z0-9_%\-]+)")
OTHER_SITE = "https://www.example.org"


@pytest.fixture
def relay(smtp_sink):
    return smtp_sink


@pytest.fixture
def signup_settings(web_settings, relay):
    return web_settings.with_overrides(transport=relay.url, min_fill_seconds=0.0,
                                       signup_origins=(OTHER_SITE,))


@pytest.fixture
def app(signup_settings):
    return create_app(signup_settings, {"TESTING": True})


def sign_up(client, email: str, *, ip: str = "192.0.2.1", **extra):
    form = {"email": email, "name": "Lotte Voorbeeld", "locale": "nl", "lists": ["subscribers"], **extra}
    return client.post("/subscribe", data=form, environ_base={"REMOTE_ADDR": ip})


def links(relay) -> list[str]:
    found = []
    for mail in relay.received:
        found += [unquote(m) for m in LINK.findall(mail.message.get_body(("plain",)).get_content())]
    return found


def query(settings, sql: str, *args):
    conn = sqlite3.connect(settings.database)
    try:
        rows = conn.execute(sql, args).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def consent_of(settings, email: str) -> str | None:
    rows = query(settings, "SELECT consent FROM subscribers WHERE email_key = ?", email)
    return rows[0][0] if rows else None


def import_one(settings, tmp_path, email: str) -> None:
    csv = tmp_path / f"{email.split('@')[0]}.csv"
    csv.write_text(f"email,name\n{email},Bestaand\n", encoding="utf-8")
    conn = store.connect(settings)
    try:
        audience.import_csv(conn, csv, "subscribers", settings)
    finally:
        conn.close()


# ------------------------------------------------------------------ the form

def test_the_form_offers_the_self_service_lists_in_the_readers_language(client):
    nl = client.get("/subscribe").get_data(as_text=True)
    assert 'value="subscribers"' in nl and 'value="funders"' not in nl
    assert "Ja, stuur mij de nieuwsbrief" in nl and 'name="website"' in nl
    ar = client.get("/subscribe?lang=ar")
    assert '<html lang="ar" dir="rtl">' in ar.get_data(as_text=True)
    assert client.get("/subscribe/funders").status_code == 404


def test_a_sign_up_sends_one_localised_confirmation_journaled_as_its_own_campaign(
        client, relay, signup_settings):
    response = sign_up(client, "nieuw@example.org", locale="en")
    assert response.status_code == 200 and "Check your mailbox" in response.get_data(as_text=True)
    assert [m.rcpt_tos for m in relay.received] == [["nieuw@example.org"]]
    mail = relay.received[0].message
    assert mail["Subject"] == "Please confirm your subscription"
    assert "Yes, subscribe me" in mail.get_body(("html",)).get_content()
    assert len(links(relay)) == 1
    assert consent_of(signup_settings, "nieuw@example.org") == "unconfirmed"
    rows = query(signup_settings, "SELECT c.kind, j.state, j.email FROM journal j "
                                  "JOIN campaigns c ON c.id = j.campaign_id")
    assert rows == [("confirmation", "sent", "nieuw@example.org")]


def test_the_answer_is_the_same_for_new_pending_subscribed_suppressed_and_forgotten(
        client, relay, signup_settings, tmp_path):
    import_one(signup_settings, tmp_path, "bestaand@example.org")
    import_one(signup_settings, tmp_path, "gebounced@example.org")
    import_one(signup_settings, tmp_path, "vergeten@example.org")
    conn = store.connect(signup_settings)
    try:
        audience.suppress(conn, "gebounced@example.org", "bounced")
        audience.forget(conn, "vergeten@example.org")
    finally:
        conn.close()
    answers = [sign_up(client, email, ip=f"192.0.2.{n}") for n, email in enumerate(
        ["nieuw@example.org", "nieuw@example.org", "bestaand@example.org",
         "gebounced@example.org", "vergeten@example.org"])]
    assert {(r.status_code, r.get_data()) for r in answers} == {(200, answers[0].get_data())}
    # only the new address got a mail; the pending one not again within the hour
    assert [m.rcpt_tos for m in relay.received] == [["nieuw@example.org"]]
    assert consent_of(signup_settings, "vergeten@example.org") is None


def test_a_bot_is_dropped_silently(client, relay, signup_settings):
    slow = signup_settings.with_overrides(min_fill_seconds=60.0)
    bot_client = create_app(slow, {"TESTING": True}).test_client()
    just_now = tokens.sign(slow, "web", f="signup")
    answers = [sign_up(client, "bot1@example.org", website="https://spam.example.org"),
               sign_up(bot_client, "bot2@example.org", started=just_now),
               sign_up(bot_client, "bot3@example.org", started="forged")]
    assert {r.status_code for r in answers} == {200}
    assert relay.received == []
    assert query(signup_settings, "SELECT count(*) FROM subscribers") == [(0,)]
    earlier = tokens.sign(slow, "web", f="signup", issued_at=int(time.time()) - 120)
    assert sign_up(bot_client, "mens@example.org", started=earlier).status_code == 200
    assert [m.rcpt_tos for m in relay.received] == [["mens@example.org"]]


def test_a_list_that_is_not_self_service_is_refused(client, relay, signup_settings):
    response = sign_up(client, "nieuw@example.org", lists=["funders"])
    assert response.status_code == 400
    assert relay.received == [] and consent_of(signup_settings, "nieuw@example.org") is None


# ------------------------------------------------------------------ confirmation

def test_confirming_takes_the_button_and_records_the_proof(client, relay, signup_settings):
    sign_up(client, "nieuw@example.org", locale="de")
    token = links(relay)[0]
    page = client.get(f"/confirm/{token}")
    assert page.status_code == 200 and "<form method=\"post\">" in page.get_data(as_text=True)
    assert consent_of(signup_settings, "nieuw@example.org") == "unconfirmed"  # a GET confirms nothing

    done = client.post(f"/confirm/{token}", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert done.status_code == 200 and "Sie sind angemeldet" in done.get_data(as_text=True)
    assert consent_of(signup_settings, "nieuw@example.org") == "subscribed"
    (source, version, locale, text, ip_hash), = query(
        signup_settings, "SELECT source, consent_version, locale, consent_text, ip_hash FROM consent_records")
    assert (source, version, locale) == ("form:subscribers", "nieuwsbrief-2026-12", "de")
    assert text.startswith("Ja, senden Sie mir den Newsletter") and "192.0.2.7" not in ip_hash
    conn = store.connect(signup_settings)
    try:
        reached = [r.email for r in audience.resolve(conn, ["subscribers"], signup_settings)]
    finally:
        conn.close()
    assert reached == ["nieuw@example.org"]


def test_a_used_or_expired_link_is_refused_and_changes_nothing(client, relay, signup_settings):
    sign_up(client, "nieuw@example.org")
    token = links(relay)[0]
    assert client.post(f"/confirm/{token}").status_code == 200
    again = client.post(f"/confirm/{token}")
    assert again.status_code == 410 and "/renew" in again.get_data(as_text=True)
    assert query(signup_settings, "SELECT count(*) FROM consent_records") == [(1,)]

    sign_up(client, "later@example.org", ip="192.0.2.9")
    fresh = tokens.verify(signup_settings, "confirm", links(relay)[1])
    old = tokens.sign(signup_settings, "confirm", fresh["email"], s=fresh["s"],
                      issued_at=int(time.time()) - 8 * 86400)
    assert client.get(f"/confirm/{old}").status_code == 410
    assert client.post(f"/confirm/{old}").status_code == 410
    assert consent_of(signup_settings, "later@example.org") == "unconfirmed"
    assert client.post(f"/confirm/not-a-token").status_code == 400


def test_an_unconfirmed_person_receives_no_campaign(client, relay, signup_settings):
    sign_up(client, "nieuw@example.org")
    conn = store.connect(signup_settings)
    try:
        assert list(audience.resolve(conn, ["everyone"], signup_settings)) == []
    finally:
        conn.close()


# ------------------------------------------------------------------ limits

def test_thirty_sign_ups_from_one_ip_send_five_mails_across_two_app_instances(
        signup_settings, relay):
    first = create_app(signup_settings, {"TESTING": True}).test_client()
    second = create_app(signup_settings, {"TESTING": True}).test_client()
    answers = [sign_up((first, second)[n % 2], f"persoon{n}@example.org", ip="198.51.100.4")
               for n in range(30)]
    assert {r.status_code for r in answers} == {200}
    assert len(relay.received) == 5
    assert query(signup_settings, "SELECT count(*) FROM rate_events WHERE bucket = 'signup-ip'") == [(5,)]


def test_an_address_gets_at_most_three_confirmations_a_day(client, relay, signup_settings):
    """Two confirmations earlier today (other hours): a third goes out, a fourth does not."""
    key = audience.address_hash("vaak@example.org")
    for hours_ago in (5, 3):
        query(signup_settings, "INSERT INTO rate_events (bucket, key, at) VALUES ('confirm-address', ?, ?)",
              key, time.time() - hours_ago * 3600)
    sign_up(client, "vaak@example.org", ip="203.0.113.1")
    assert len(relay.received) == 1
    query(signup_settings, "UPDATE signups SET created_at = created_at - 3700")  # its hour has passed
    query(signup_settings, "DELETE FROM journal")  # as in the next campaign hour
    sign_up(client, "vaak@example.org", ip="203.0.113.2")
    assert len(relay.received) == 1


# ------------------------------------------------------------------ other sites

def test_a_json_sign_up_from_a_configured_site_gets_cors_and_a_mail(client, relay):
    headers = {"Origin": OTHER_SITE, "Sec-Fetch-Site": "cross-site"}
    preflight = client.options("/subscribe", headers={**headers, "Access-Control-Request-Method": "POST"})
    assert preflight.headers["Access-Control-Allow-Origin"] == OTHER_SITE
    response = client.post("/subscribe", headers=headers, json={
        "email": "json@example.org", "lists": ["subscribers"], "locale": "en"})
    assert response.status_code == 200 and response.json == {"status": "check your mail"}
    assert response.headers["Access-Control-Allow-Origin"] == OTHER_SITE
    assert [m.rcpt_tos for m in relay.received] == [["json@example.org"]]


def test_a_sign_up_from_another_site_is_refused(client, relay, signup_settings):
    response = client.post("/subscribe", headers={"Origin": "https://elders.example.net",
                                                  "Sec-Fetch-Site": "cross-site"},
                           json={"email": "json@example.org", "lists": ["subscribers"]})
    assert response.status_code == 403 and "Access-Control-Allow-Origin" not in response.headers
    assert relay.received == [] and consent_of(signup_settings, "json@example.org") is None


def test_the_source_of_a_sign_up_from_another_site_is_its_host(client, relay, signup_settings):
    client.post("/subscribe", headers={"Origin": OTHER_SITE, "Sec-Fetch-Site": "cross-site"},
                data={"email": "elders@example.org", "lists": "subscribers"})
    client.post(f"/confirm/{links(relay)[0]}")
    assert query(signup_settings, "SELECT source FROM consent_records") == [("www.example.org",)]


# ------------------------------------------------------------------ own rights

def test_download_my_data_holds_every_journal_row_and_forget_me_erases(client, relay, signup_settings):
    sign_up(client, "nieuw@example.org")
    client.post(f"/confirm/{links(relay)[0]}")
    token = tokens.sign(signup_settings, "preferences", "nieuw@example.org")
    assert "/data" in client.get(f"/p/{token}").get_data(as_text=True)

    download = client.get(f"/p/{token}/data")
    assert download.headers["Content-Disposition"].startswith("attachment")
    data = json.loads(download.get_data(as_text=True))
    assert data["subscriber"]["email"] == "nieuw@example.org"
    assert [m["kind"] for m in data["mails"]] == ["confirmation"]
    assert data["consent"][0]["consent_version"] == "nieuwsbrief-2026-12"
    assert [lst["list"] for lst in data["lists"]] == ["subscribers"]

    assert client.get(f"/p/{token}/forget").status_code == 200
    assert consent_of(signup_settings, "nieuw@example.org") == "subscribed"  # a GET erases nothing
    assert client.post(f"/p/{token}/forget").status_code == 200
    assert consent_of(signup_settings, "nieuw@example.org") is None
    assert query(signup_settings, "SELECT count(*) FROM consent_records") == [(0,)]
    assert query(signup_settings, "SELECT count(*) FROM signups") == [(0,)]


def test_a_lists_welcome_newsletter_goes_out_once_on_confirmation(client, relay, signup_settings):
    segments = signup_settings.segments_file
    segments.write_text(segments.read_text(encoding="utf-8").replace(
        "    consent_version: nieuwsbrief-2026-12\n",
        "    consent_version: nieuwsbrief-2026-12\n    welcome: newsletters/2018-07-resultaten.yaml\n"),
        encoding="utf-8")
    sign_up(client, "nieuw@example.org", locale="en")
    client.post(f"/confirm/{links(relay)[0]}")
    assert len(relay.received) == 2
    welcome = relay.received[1].message
    assert welcome["To"] == "Lotte Voorbeeld <nieuw@example.org>" and welcome["List-Unsubscribe"]
    assert "signed up for our newsletter" in welcome.get_body(("plain",)).get_content()
    rows = query(signup_settings, "SELECT c.id, c.kind, c.newsletter_id, j.state FROM journal j "
                                  "JOIN campaigns c ON c.id = j.campaign_id ORDER BY j.id")
    assert rows[1] == ("2018-07-resultaten--welcome", "welcome", "2018-07-resultaten", "sent")
    # a second confirmation (a new sign-up after unsubscribing) does not send it again
    conn = store.connect(signup_settings)
    try:
        audience.unsubscribe(conn, "nieuw@example.org")
    finally:
        conn.close()
    query(signup_settings, "UPDATE signups SET created_at = created_at - 3700")
    query(signup_settings, "DELETE FROM journal WHERE campaign_id LIKE 'confirmation--%'")
    sign_up(client, "nieuw@example.org", ip="192.0.2.50")
    client.post(f"/confirm/{links(relay)[-1]}")
    assert len(relay.received) == 3  # the confirmation only


def test_own_rights_pages_take_the_keyed_link_of_a_real_mail(client, relay, signup_settings):
    sign_up(client, "nieuw@example.org")
    client.post(f"/confirm/{links(relay)[0]}")
    (key,), = query(signup_settings, "SELECT subscriber_key FROM subscribers")
    token = tokens.sign(signup_settings, "preferences", subscriber_key=key)
    data = json.loads(client.get(f"/p/{token}/data").get_data(as_text=True))
    assert data["subscriber"]["email"] == "nieuw@example.org"
    assert client.post(f"/p/{token}/forget").status_code == 200
    assert consent_of(signup_settings, "nieuw@example.org") is None
    assert client.get(f"/p/{token}/data").status_code == 400  # nobody has that key any more
    database = signup_settings.database.read_bytes()
    assert b"nieuw@example.org" not in database and b"Lotte Voorbeeld" not in database
