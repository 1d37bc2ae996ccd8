"""Webhooks of Brevo, Mailjet and SendGrid through the real app, on a real SQLite file.

Each event is built as the provider documents it and authenticated as it
does (basic auth; SendGrid: ECDSA over timestamp + body with a key made here).
"""
from __future__ import annotations

import base64
import json
import sqlite3
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from postbode import journal, store
from postbode.audience import Recipient

LOTTE = "lotte@example.org"
BRAM = "bram@example.org"
USER, PASSWORD = "hooks", "hook-password-not-secret"


@pytest.fixture
def readers(invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lotte and Bram on the list `subscribers`; the webhook secrets in the environment."""
    for provider in ("BREVO", "MAILJET"):
        monkeypatch.setenv(f"POSTBODE_{provider}_WEBHOOK_USER", USER)
        monkeypatch.setenv(f"POSTBODE_{provider}_WEBHOOK_PASSWORD", PASSWORD)
    csv = tmp_path / "readers.csv"
    csv.write_text(f"email,name,language\n{LOTTE},Lotte,nl\n{BRAM},Bram,en\n", encoding="utf-8")
    assert invoke("subscribers", "import", str(csv), "--list", "subscribers").exit_code == 0


def read(settings, sql: str, *params) -> list[sqlite3.Row]:
    conn = sqlite3.connect(settings.database)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def consent(settings, email: str) -> str:
    return read(settings, "SELECT consent FROM subscribers WHERE email_key = ?", email)[0][0]


def events(settings, source: str) -> list[str]:
    return [r[0] for r in read(settings, "SELECT kind FROM audience_events WHERE source = ? "
                                         "ORDER BY id", source)]


def sent_row(settings, email: str, provider_id: str) -> None:
    """A journal row for a mail to `email` that the provider accepted with `provider_id`."""
    conn = store.connect(settings)
    try:
        created = journal.create_campaign(conn, "2018-07-resultaten", ["everyone"], {}, "x://")
        journal.snapshot(conn, created.id, [Recipient(1, email, None, "nl", "formal", None,
                                                      "everyone")])
        claimed = journal.claim(conn, created.id, 10, stamp=lambda e: f"<pb-{e.recipient.email}>")
        journal.record(conn, [journal.Outcome(e.row_id, "sent", 202, "queued",
                                              provider_id=provider_id) for e in claimed])
    finally:
        conn.close()


def journal_text(settings, email: str) -> str:
    return read(settings, "SELECT last_text FROM journal WHERE email = ?", email)[0][0]


# ---------------------------------------------------------------- Brevo

def brevo_event(email: str, event: str = "hard_bounce", message_id: str = "<b-1@smtp>") -> dict:
    return {"event": event, "email": email, "id": 1234, "date": "2024-05-01 10:00:00",
            "ts": 1714557600, "message-id": message_id, "ts_event": 1714557600,
            "subject": "Resultaten", "tag": "", "sending_ip": "192.0.2.1", "ts_epoch": 1714557600123,
            "reason": "550 5.1.1 unknown user"}


def test_brevo_hard_bounce_suppresses_and_notes_the_row(client, web_settings, readers):
    sent_row(web_settings, LOTTE, "<b-1@smtp>")
    response = client.post("/webhooks/brevo", json=brevo_event(LOTTE), auth=(USER, PASSWORD))
    assert response.status_code == 200 and response.json["status"] == "suppressed"
    assert consent(web_settings, LOTTE) == "bounced"
    assert journal_text(web_settings, LOTTE).startswith("bounced after sending")
    again = client.post("/webhooks/brevo", json=brevo_event(LOTTE), auth=(USER, PASSWORD))
    assert again.json["status"] == "duplicate"
    assert events(web_settings, "brevo webhook") == ["bounced"]


@pytest.mark.parametrize("event, state", [("spam", "complained"), ("unsubscribed", "unsubscribed"),
                                          ("soft_bounce", "subscribed")])
def test_brevo_spam_unsubscribed_and_soft_bounce(client, web_settings, readers, event, state):
    response = client.post("/webhooks/brevo", json=brevo_event(BRAM, event), auth=(USER, PASSWORD))
    assert response.status_code == 200
    assert consent(web_settings, BRAM) == state
    assert consent(web_settings, LOTTE) == "subscribed"


@pytest.mark.parametrize("auth", [None, (USER, "wrong"), ("someone", PASSWORD)])
def test_brevo_without_the_right_credentials_changes_nothing(client, web_settings, readers, auth):
    response = client.post("/webhooks/brevo", json=brevo_event(LOTTE), auth=auth)
    assert response.status_code == 401
    assert consent(web_settings, LOTTE) == "subscribed"
    assert events(web_settings, "brevo webhook") == []


def test_brevo_bearer_token(client, web_settings, readers, monkeypatch):
    monkeypatch.setenv("POSTBODE_BREVO_WEBHOOK_TOKEN", "token-not-secret")
    wrong = client.post("/webhooks/brevo", json=brevo_event(LOTTE),
                        headers={"Authorization": "Bearer nope"})
    right = client.post("/webhooks/brevo", json=brevo_event(LOTTE),
                        headers={"Authorization": "Bearer token-not-secret"})
    assert (wrong.status_code, right.status_code) == (401, 200)
    assert consent(web_settings, LOTTE) == "bounced"


# ---------------------------------------------------------------- Mailjet

def mailjet_event(email: str, event: str = "bounce", **extra) -> dict:
    data = {"event": event, "time": 1714557600, "MessageID": 19421777835146490,
            "Message_GUID": "1ab23cd4-e567-8901-2345-6789f0gh1i2j", "email": email,
            "mj_campaign_id": 0, "mj_contact_id": 42, "customcampaign": "",
            "CustomID": f"<pb-{email}>", "Payload": ""}
    return {**data, **extra}


def test_mailjet_hard_bounce_suppresses_soft_bounce_counts(client, web_settings, readers):
    sent_row(web_settings, LOTTE, "19421777835146490")
    grouped = [mailjet_event(LOTTE, hard_bounce=True, blocked=False, error_related_to="recipient",
                             error="user unknown"),
               mailjet_event(BRAM, hard_bounce=False, blocked=False, error_related_to="mailbox",
                             error="mailbox full"),
               mailjet_event(BRAM, "open")]
    response = client.post("/webhooks/mailjet", json=grouped, auth=(USER, PASSWORD))
    assert response.status_code == 200
    assert response.json["outcomes"] == ["suppressed", "noted"] and response.json["ignored"] == 1
    assert consent(web_settings, LOTTE) == "bounced" and consent(web_settings, BRAM) == "subscribed"
    assert journal_text(web_settings, LOTTE).startswith("bounced after sending: bounce (hard)")


def test_mailjet_spam_and_blocked(client, web_settings, readers):
    spam = client.post("/webhooks/mailjet", json=mailjet_event(BRAM, "spam", source="JMRPP"),
                       auth=(USER, PASSWORD))
    blocked = client.post("/webhooks/mailjet", auth=(USER, PASSWORD), json=mailjet_event(
        LOTTE, "blocked", error_related_to="recipient", error="preblocked"))
    content = client.post("/webhooks/mailjet", auth=(USER, PASSWORD), json=mailjet_event(
        BRAM, "blocked", MessageID=5, error_related_to="content", error="spam"))
    assert [r.json["status"] for r in (spam, blocked, content)] == ["suppressed", "suppressed",
                                                                    "noted"]
    assert consent(web_settings, BRAM) == "complained" and consent(web_settings, LOTTE) == "bounced"


def test_mailjet_wrong_credentials_and_replays_change_nothing(client, web_settings, readers):
    event = mailjet_event(LOTTE, hard_bounce=True)
    assert client.post("/webhooks/mailjet", json=event, auth=(USER, "x")).status_code == 401
    assert consent(web_settings, LOTTE) == "subscribed"
    first = client.post("/webhooks/mailjet", json=event, auth=(USER, PASSWORD))
    replay = client.post("/webhooks/mailjet", json=event, auth=(USER, PASSWORD))
    assert (first.json["status"], replay.json["status"]) == ("suppressed", "duplicate")
    assert events(web_settings, "mailjet webhook") == ["bounced"]


# ---------------------------------------------------------------- SendGrid

@pytest.fixture
def sendgrid_key(monkeypatch) -> ec.EllipticCurvePrivateKey:
    """A P-256 key pair; its public half (base64 DER) is the configured verification key."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    monkeypatch.setenv("POSTBODE_SENDGRID_WEBHOOK_KEY", base64.b64encode(public).decode())
    return key


def signed(key, events_: list[dict], timestamp: int | None = None) -> tuple[bytes, dict]:
    """The body and headers SendGrid sends: ECDSA-SHA256 over timestamp + body."""
    body = json.dumps(events_).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return body, {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                  "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
                  "Content-Type": "application/json"}


def sendgrid_event(email: str, event: str = "bounce", event_id: str = "sg-ev-1", **extra) -> dict:
    return {"email": email, "timestamp": 1714557600, "event": event, "sg_event_id": event_id,
            "sg_message_id": "sg-7.filterdrecv-1-2-3", "postbode_message_id": f"<pb-{email}>",
            "smtp-id": "<x@example.org>", **extra}


def test_sendgrid_signed_bounce_suppresses(client, web_settings, readers, sendgrid_key):
    sent_row(web_settings, LOTTE, "sg-7")
    body, headers = signed(sendgrid_key, [
        sendgrid_event(LOTTE, type="bounce", reason="550 5.1.1 no such user", status="5.1.1"),
        sendgrid_event(BRAM, "delivered", "sg-ev-2")])
    response = client.post("/webhooks/sendgrid", data=body, headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["status"] == "suppressed" and response.json["ignored"] == 1
    assert consent(web_settings, LOTTE) == "bounced"
    row = read(web_settings, "SELECT last_code, last_text FROM journal WHERE email = ?", LOTTE)[0]
    assert row["last_code"] == 550 and row["last_text"].startswith("bounced after sending")


def test_sendgrid_spamreport_dropped_and_blocked(client, web_settings, readers, sendgrid_key):
    body, headers = signed(sendgrid_key, [
        sendgrid_event(BRAM, "spamreport", "e1"),
        sendgrid_event(LOTTE, "bounce", "e2", type="blocked", reason="421 try later"),
        sendgrid_event(LOTTE, "dropped", "e3", reason="Unsubscribed Address")])
    response = client.post("/webhooks/sendgrid", data=body, headers=headers)
    assert response.json["outcomes"] == ["suppressed", "noted", "suppressed"]
    assert consent(web_settings, BRAM) == "complained"
    assert consent(web_settings, LOTTE) == "unsubscribed"


def test_sendgrid_forged_tampered_stale_and_replayed_events_change_nothing(
        client, web_settings, readers, sendgrid_key):
    other = ec.generate_private_key(ec.SECP256R1())
    forged = signed(other, [sendgrid_event(LOTTE)])
    body, headers = signed(sendgrid_key, [sendgrid_event(LOTTE)])
    tampered = body.replace(LOTTE.encode(), BRAM.encode())
    stale = signed(sendgrid_key, [sendgrid_event(LOTTE)], int(time.time()) - 16 * 60)
    unsigned = client.post("/webhooks/sendgrid", data=body,
                           headers={"Content-Type": "application/json"})
    answers = [client.post("/webhooks/sendgrid", data=b, headers=h).status_code
               for b, h in (forged, (tampered, headers), stale)]
    assert answers == [403, 403, 403] and unsigned.status_code == 403
    assert consent(web_settings, LOTTE) == "subscribed" and consent(web_settings, BRAM) == "subscribed"
    assert client.post("/webhooks/sendgrid", data=body, headers=headers).json["status"] == "suppressed"
    replay = client.post("/webhooks/sendgrid", data=body, headers=headers)
    assert replay.status_code == 200 and replay.json["status"] == "duplicate"
    assert events(web_settings, "sendgrid webhook") == ["bounced"]


def test_unconfigured_provider_webhooks_refuse_everything(client, web_settings, readers,
                                                          monkeypatch):
    for name in ("BREVO", "MAILJET"):
        monkeypatch.delenv(f"POSTBODE_{name}_WEBHOOK_USER")
    answers = {name: client.post(f"/webhooks/{name}", json={}, auth=(USER, PASSWORD))
               for name in ("brevo", "mailjet", "sendgrid", "ses")}
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 503)
    assert "POSTBODE_SENDGRID_WEBHOOK_KEY" in answers["sendgrid"].json["reason"]
    assert "POSTBODE_SES_TOPIC_ARNS" in answers["ses"].json["reason"]


# ---------------------------------------------------------------- end to end

def test_a_sendgrid_bounce_maps_back_to_the_mail_it_is_about(
        send_settings, populate, httpserver, monkeypatch, sendgrid_key):
    from postbode import campaign
    from postbode.web import create_app

    from conftest import SAMPLE
    from fixtures.providers import FakeSendGrid

    fake = FakeSendGrid(httpserver).install()
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    people = populate(4, locales=("nl",))
    policy = campaign.Policy(concurrency=1, backoff_base=0.01)
    first = campaign.run(send_settings, Path(SAMPLE), ["everyone"], transport="sendgrid://",
                         policy=policy)
    assert first.totals["sent"] == 4 and fake.problems == []
    bounced = people[1].email
    row = read(send_settings, "SELECT * FROM journal WHERE email = ?", bounced)[0]
    event = sendgrid_event(bounced, type="bounce", reason="550 5.1.1 no such user",
                           sg_message_id=f"{row['provider_id']}.filterdrecv-1",
                           postbode_message_id=row["message_id"])
    body, headers = signed(sendgrid_key, [event])
    client = create_app(send_settings, {"TESTING": True}).test_client()
    assert client.post("/webhooks/sendgrid", data=body, headers=headers).json["status"] == "suppressed"
    noted = read(send_settings, "SELECT * FROM journal WHERE id = ?", row["id"])[0]
    assert noted["state"] == "sent" and noted["last_text"].startswith("bounced after sending")

    assert consent(send_settings, bounced) == "bounced"
    others = [r["state"] for r in read(send_settings, "SELECT state FROM journal WHERE email != ?",
                                       bounced)]
    assert others == ["sent"] * 3
