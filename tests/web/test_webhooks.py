"""Bounce and complaint webhooks (Postmark, Mailgun) through Flask's test client, on a real SQLite file."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from email.utils import parseaddr
from pathlib import Path

import pytest
from werkzeug import Response

from postbode import audience, campaign, journal, store
from postbode.audience import Recipient
from postbode.config import Settings

from conftest import SAMPLE

from fixtures.state import read_rows

# state tests: once on a SQLite file, once on PostgreSQL (tests/fixtures/state.py)
pytestmark = pytest.mark.both_engines

HOOK_USER = "postmark-hooks"
HOOK_PASSWORD = "hook-password-not-secret"
MAILGUN_KEY = "mailgun-webhook-key-not-secret"
LOTTE = "lotte@example.org"
BRAM = "bram@example.org"


@pytest.fixture
def hook_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTBODE_WEBHOOK_USER", HOOK_USER)
    monkeypatch.setenv("POSTBODE_WEBHOOK_PASSWORD", HOOK_PASSWORD)
    monkeypatch.setenv("POSTBODE_MAILGUN_WEBHOOK_KEY", MAILGUN_KEY)


@pytest.fixture
def readers(invoke, tmp_path: Path, hook_env) -> Path:
    """Lotte and Bram, imported with the CLI into the list `subscribers`; returns the CSV."""
    csv = tmp_path / "readers.csv"
    csv.write_text(f"email,name,language\n{LOTTE},Lotte Voorbeeld,nl\n{BRAM},Bram Voorbeeld,en\n",
                   encoding="utf-8")
    result = invoke("subscribers", "import", str(csv), "--list", "subscribers")
    assert result.exit_code == 0, result.output
    return csv


def read(settings: Settings, sql: str, *params) -> list:
    """Rows read by a connection of its own, so nothing the app holds can hide a change."""
    return read_rows(settings, sql, *params)


def consent(settings: Settings, email: str) -> str:
    return read(settings, "SELECT consent FROM subscribers WHERE email_key = ?", email.lower())[0][0]


def suppressed(settings: Settings, email: str) -> bool:
    conn = store.connect(settings)
    try:
        return audience.is_suppressed(conn, email)
    finally:
        conn.close()


def events(settings: Settings, source: str) -> list[str]:
    return [r["kind"] for r in read(settings, "SELECT kind FROM audience_events WHERE source = ?"
                                              " ORDER BY id", source)]


# ---------------------------------------------------------------- payloads

def postmark_event(email: str, *, type_: str = "HardBounce", type_code: int = 1, id_: int = 42,
                   record_type: str = "Bounce", message_id: str = "pm-test-1",
                   inactive: bool = True) -> dict:
    """A Postmark bounce / spam complaint webhook body, as documented."""
    return {
        "RecordType": record_type, "MessageStream": "broadcast", "ID": id_, "Type": type_,
        "TypeCode": type_code, "Name": type_, "Tag": "", "MessageID": message_id,
        "Metadata": {}, "ServerID": 23, "Description": f"{type_} described",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
        "Email": email, "From": "nieuwsbrief@example.org", "BouncedAt": "2024-05-01T10:00:00Z",
        "DumpAvailable": False, "Inactive": inactive, "CanActivate": True,
        "Subject": "Resultaten 2018",
    }


def post_postmark(client, payload, auth=(HOOK_USER, HOOK_PASSWORD)):
    return client.post("/webhooks/postmark", json=payload, auth=auth)


def mailgun_event(email: str, *, event: str = "failed", severity: str | None = "permanent",
                  event_id: str = "mg-event-1", token: str = "t" * 50, timestamp: int | None = None,
                  key: str = MAILGUN_KEY, message_id: str | None = None) -> dict:
    """A Mailgun webhook body, signed as Mailgun signs: HMAC-SHA256(key, timestamp + token)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    data = {
        "id": event_id, "event": event, "timestamp": time.time(), "recipient": email,
        "recipient-domain": "example.org", "reason": "bounce",
        "delivery-status": {"code": 550, "message": "5.1.1 no such user",
                            "description": "mailbox does not exist"},
        "message": {"headers": {"message-id": "20240501.1@mg.example.org", "to": email}},
        "user-variables": {"postbode-message-id": message_id} if message_id else {},
    }
    if severity is not None:
        data["severity"] = severity
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": stamp, "token": token, "signature": signature},
            "event-data": data}


def post_mailgun(client, payload):
    return client.post("/webhooks/mailgun", json=payload)


# ---------------------------------------------------------------- Postmark

def test_postmark_hard_bounce_suppresses_for_good(client, web_settings, readers, invoke):
    response = post_postmark(client, postmark_event(LOTTE))
    assert response.status_code == 200 and response.json["status"] == "suppressed"
    assert consent(web_settings, LOTTE) == "bounced"
    assert suppressed(web_settings, LOTTE)
    assert events(web_settings, "postmark webhook") == ["bounced"]

    again = invoke("subscribers", "import", str(readers), "--list", "subscribers")
    assert again.exit_code == 0, again.output
    assert consent(web_settings, LOTTE) == "bounced" and suppressed(web_settings, LOTTE)
    conn = store.connect(web_settings)
    try:
        emails = [r.email for r in audience.resolve(conn, ["everyone"], web_settings)]
    finally:
        conn.close()
    assert emails == [BRAM]


@pytest.mark.parametrize("record_type, type_, code", [("SpamComplaint", "SpamComplaint", 100001),
                                                      ("Bounce", "SpamNotification", 512)])
def test_postmark_spam_complaint_marks_complained(client, web_settings, readers, record_type,
                                                  type_, code):
    payload = postmark_event(BRAM, record_type=record_type, type_=type_, type_code=code, id_=77,
                             inactive=False)
    response = post_postmark(client, payload)
    assert response.status_code == 200 and response.json["status"] == "suppressed"
    assert consent(web_settings, BRAM) == "complained" and suppressed(web_settings, BRAM)
    assert consent(web_settings, LOTTE) == "subscribed"


def test_postmark_soft_bounce_is_only_logged(client, web_settings, readers):
    payload = postmark_event(LOTTE, type_="SoftBounce", type_code=4096, inactive=False)
    response = post_postmark(client, payload)
    assert response.status_code == 200 and response.json["status"] == "noted"
    assert consent(web_settings, LOTTE) == "subscribed"
    assert not suppressed(web_settings, LOTTE)
    assert events(web_settings, "postmark webhook") == ["soft_bounce"]


@pytest.mark.parametrize("auth", [None, (HOOK_USER, "wrong"), ("someone", HOOK_PASSWORD), ("", "")])
def test_postmark_without_the_right_credentials_is_401_and_changes_nothing(
        client, web_settings, readers, auth):
    response = post_postmark(client, postmark_event(LOTTE), auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert consent(web_settings, LOTTE) == "subscribed"
    assert events(web_settings, "postmark webhook") == []


def test_unconfigured_webhooks_refuse_everything(client, web_settings, readers, monkeypatch):
    for var in ("POSTBODE_WEBHOOK_USER", "POSTBODE_WEBHOOK_PASSWORD", "POSTBODE_MAILGUN_WEBHOOK_KEY"):
        monkeypatch.delenv(var)
    pm = post_postmark(client, postmark_event(LOTTE), auth=("", ""))
    mg = post_mailgun(client, mailgun_event(LOTTE))
    assert (pm.status_code, mg.status_code) == (503, 503)
    assert "POSTBODE_WEBHOOK_USER" in pm.json["reason"]
    assert "POSTBODE_MAILGUN_WEBHOOK_KEY" in mg.json["reason"]
    assert consent(web_settings, LOTTE) == "subscribed"


def test_the_same_postmark_event_twice_changes_nothing_the_second_time(client, web_settings,
                                                                      readers):
    first = post_postmark(client, postmark_event(LOTTE, id_=5))
    second = post_postmark(client, postmark_event(LOTTE, id_=5))
    assert first.json["status"] == "suppressed" and second.json["status"] == "duplicate"
    assert second.status_code == 200
    assert events(web_settings, "postmark webhook") == ["bounced"]
    assert len(read(web_settings, "SELECT * FROM suppressions")) == 1


def test_malformed_json_is_400_and_unknown_events_are_acknowledged(client, web_settings, readers):
    auth = (HOOK_USER, HOOK_PASSWORD)
    broken = client.post("/webhooks/postmark", data=b'{"RecordType": "Bou',
                         content_type="application/json", auth=auth)
    assert broken.status_code == 400 and "JSON" in broken.json["reason"]
    no_object = post_postmark(client, [1, 2])
    assert no_object.status_code == 400
    no_email = post_postmark(client, {"RecordType": "Bounce", "Type": "HardBounce", "ID": 1})
    assert no_email.status_code == 400 and "Email" in no_email.json["reason"]
    delivery = post_postmark(client, {"RecordType": "Delivery", "MessageID": "x", "Recipient": LOTTE})
    assert delivery.status_code == 200 and delivery.json["status"] == "ignored"
    opened = post_mailgun(client, mailgun_event(LOTTE, event="opened", severity=None))
    assert opened.status_code == 200 and opened.json["status"] == "ignored"
    mg_broken = client.post("/webhooks/mailgun", data=b"not json", content_type="application/json")
    assert mg_broken.status_code == 400
    odd = mailgun_event(LOTTE, event_id="odd", token="o" * 50)
    odd["event-data"]["message"] = {"headers": ["not", "an", "object"]}
    del odd["event-data"]["recipient"]
    no_recipient = post_mailgun(client, odd)
    assert no_recipient.status_code == 400 and "recipient" in no_recipient.json["reason"]
    assert consent(web_settings, LOTTE) == "subscribed"


# ---------------------------------------------------------------- Mailgun

def test_mailgun_permanent_failure_with_a_valid_signature_bounces(client, web_settings, readers):
    response = post_mailgun(client, mailgun_event(LOTTE))
    assert response.status_code == 200 and response.json["status"] == "suppressed"
    assert consent(web_settings, LOTTE) == "bounced" and suppressed(web_settings, LOTTE)
    assert events(web_settings, "mailgun webhook") == ["bounced"]


def test_mailgun_complaint_and_temporary_failure(client, web_settings, readers):
    complained = post_mailgun(client, mailgun_event(BRAM, event="complained", severity=None,
                                                    event_id="c1", token="a" * 50))
    temporary = post_mailgun(client, mailgun_event(LOTTE, severity="temporary",
                                                   event_id="t1", token="b" * 50))
    assert complained.json["status"] == "suppressed" and temporary.json["status"] == "noted"
    assert consent(web_settings, BRAM) == "complained"
    assert consent(web_settings, LOTTE) == "subscribed" and not suppressed(web_settings, LOTTE)


def test_mailgun_bad_signature_is_refused_and_changes_nothing(client, web_settings, readers):
    forged = mailgun_event(LOTTE, key="not-the-key")
    response = post_mailgun(client, forged)
    assert response.status_code == 403
    assert consent(web_settings, LOTTE) == "subscribed"
    assert events(web_settings, "mailgun webhook") == []
    # the forged request did not use up the token: the real event with it still counts
    assert post_mailgun(client, mailgun_event(LOTTE)).json["status"] == "suppressed"


def test_mailgun_replayed_token_is_refused(client, web_settings, readers):
    assert post_mailgun(client, mailgun_event(BRAM, event_id="e1", token="r" * 50)).status_code == 200
    replay = post_mailgun(client, mailgun_event(LOTTE, event_id="e2", token="r" * 50))
    assert replay.status_code == 406
    assert consent(web_settings, LOTTE) == "subscribed"


def test_mailgun_stale_timestamp_is_refused(client, web_settings, readers):
    stale = mailgun_event(LOTTE, timestamp=int(time.time()) - 16 * 60)
    response = post_mailgun(client, stale)
    assert response.status_code == 403 and "timestamp" in response.json["reason"]
    assert consent(web_settings, LOTTE) == "subscribed"


def test_the_same_mailgun_event_with_a_new_token_is_a_duplicate(client, web_settings, readers):
    first = post_mailgun(client, mailgun_event(LOTTE, event_id="same", token="1" * 50))
    second = post_mailgun(client, mailgun_event(LOTTE, event_id="same", token="2" * 50))
    assert (first.json["status"], second.json["status"]) == ("suppressed", "duplicate")
    assert events(web_settings, "mailgun webhook") == ["bounced"]


def test_mailgun_bounce_is_noted_on_the_journal_row_which_stays_sent(client, web_settings,
                                                                     readers):
    conn = store.connect(web_settings)
    try:
        created = journal.create_campaign(conn, "2018-07-resultaten", ["everyone"], {}, "mailgun://")
        people = [Recipient(1, LOTTE, None, "nl", "formal", None, "everyone"),
                  Recipient(2, BRAM, None, "en", "formal", None, "everyone")]
        journal.snapshot(conn, created.id, people)
        claimed = journal.claim(conn, created.id, 10, stamp=lambda e: f"<id-{e.recipient.email}>")
        journal.record(conn, [journal.Outcome(e.row_id, "sent", 200, "Queued",
                                              provider_id="<20240501.1@mg.example.org>")
                              for e in claimed])
    finally:
        conn.close()
    response = post_mailgun(client, mailgun_event(LOTTE, message_id=f"<id-{LOTTE}>"))
    assert response.json["status"] == "suppressed"
    rows = {r["email"]: r for r in read(web_settings, "SELECT * FROM journal")}
    assert rows[LOTTE]["state"] == "sent" and rows[LOTTE]["last_code"] == 550
    assert rows[LOTTE]["last_text"].startswith("bounced after sending")
    assert rows[BRAM]["last_text"] == "Queued"


# ---------------------------------------------------------------- end to end

def test_a_postmark_bounce_keeps_the_address_out_of_the_next_campaign(
        send_settings, populate, httpserver, monkeypatch, hook_env, invoke):
    base = httpserver.url_for("/").rstrip("/")
    monkeypatch.setenv("POSTBODE_POSTMARK_TOKEN", "server-token-test")
    monkeypatch.setenv("POSTBODE_POSTMARK_API_URL", base)
    people = populate(6, locales=("nl",))
    batches: list[list[dict]] = []

    def handle(request):
        batch = request.get_json()
        batches.append(batch)
        return Response(json.dumps([{"ErrorCode": 0, "Message": "OK", "To": m["To"],
                                     "MessageID": f"pm-{len(batches)}-{i}"}
                                    for i, m in enumerate(batch)]),
                        content_type="application/json")

    httpserver.expect_request("/email/batch", method="POST").respond_with_handler(handle)
    first = campaign.run(send_settings, Path(SAMPLE), ["everyone"], transport="postmark://",
                         policy=campaign.Policy(concurrency=1, backoff_base=0.01, max_wait=5))
    assert first.totals["sent"] == 6
    bounced = people[2].email
    row = read(send_settings, "SELECT * FROM journal WHERE campaign_id = ? AND email = ?",
               first.campaign_id, bounced)[0]

    from postbode.web import create_app
    client = create_app(send_settings, {"TESTING": True}).test_client()
    response = post_postmark(client, postmark_event(bounced, message_id=row["provider_id"]))
    assert response.json["status"] == "suppressed"
    noted = read(send_settings, "SELECT * FROM journal WHERE id = ?", row["id"])[0]
    assert noted["state"] == "sent" and noted["last_text"].startswith("bounced after sending")

    # --again: everyone had it already; the suppression alone keeps the bounced one out
    result = invoke("send", SAMPLE, "--segment", "everyone", "--transport", "postmark://",
                    "--new-campaign", "--again", "--yes")
    assert result.exit_code == 0, result.output
    assert len(batches) == 2
    second = sorted(parseaddr(m["To"])[1] for m in batches[1])
    assert second == sorted(p.email for p in people if p.email != bounced)
