"""Webhooks authenticate first: hostile bodies are 400s without tracebacks, a signature is used once."""
from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import time
from pathlib import Path

import pytest

from postbode.config import Settings

MAILGUN_KEY = "mailgun-webhook-key-not-secret"
LOTTE = "lotte@example.org"


@pytest.fixture
def lotte(invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("POSTBODE_MAILGUN_WEBHOOK_KEY", MAILGUN_KEY)
    monkeypatch.setenv("POSTBODE_WEBHOOK_USER", "hooks")
    monkeypatch.setenv("POSTBODE_WEBHOOK_PASSWORD", "hook-password-not-secret")
    csv = tmp_path / "readers.csv"
    csv.write_text(f"email,name,language\n{LOTTE},Lotte Voorbeeld,nl\n", encoding="utf-8")
    assert invoke("subscribers", "import", str(csv), "--list", "subscribers").exit_code == 0
    return LOTTE


def state(settings: Settings) -> dict[str, list]:
    """What a webhook may change, read by a connection of its own."""
    conn = sqlite3.connect(settings.database)
    try:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in ("subscribers", "suppressions", "webhook_events", "webhook_tokens")}
    finally:
        conn.close()


def signature(token: str, key: str = MAILGUN_KEY) -> dict:
    stamp = str(int(time.time()))
    digest = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": stamp, "token": token, "signature": digest}


def failed(email: str) -> dict:
    return {"id": "mg-1", "event": "failed", "severity": "permanent", "recipient": email,
            "delivery-status": {"code": 550, "message": "5.1.1 no such user"}}


def post(client, body: str | bytes):
    return client.post("/webhooks/mailgun", data=body, content_type="application/json")


def test_a_deeply_nested_body_is_a_400_before_any_signature_work(client, web_settings, lotte):
    """The attack: an unauthenticated 2,000-deep body gave a 500 with a traceback."""
    before = state(web_settings)
    for body in ('{"a":' * 2000 + "1" + "}" * 2000, "[" * 2000 + "]" * 2000,
                 json.dumps({"signature": signature("d" * 50), "event-data": failed(lotte)})
                 .replace('"code": 550', '"code": ' + "[" * 40 + "550" + "]" * 40)):
        response = post(client, body)
        assert response.status_code == 400, body[:30]
        assert "Traceback" not in response.get_data(as_text=True)
    assert state(web_settings) == before


@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "NaN", "1e400"])
def test_non_finite_numbers_are_a_400(client, web_settings, lotte, number):
    """The fault: `Infinity` as the delivery code gave an OverflowError (500)."""
    before = state(web_settings)
    body = json.dumps({"signature": signature("n" * 50), "event-data": failed(lotte)})
    response = post(client, body.replace('"code": 550', f'"code": {number}'))
    assert response.status_code == 400
    assert response.json["status"] == "refused"
    assert state(web_settings) == before


def test_a_signature_refused_for_its_body_cannot_be_used_again(client, web_settings, lotte):
    """The attack: a captured signature, refused once for its body, reused with another body."""
    captured = signature("r" * 50)
    broken = post(client, json.dumps({"signature": captured, "event-data": {"event": "failed",
                                                                         "severity": "permanent"}}))
    assert broken.status_code == 400
    before = state(web_settings)
    replay = post(client, json.dumps({"signature": captured, "event-data": failed(lotte)}))
    assert replay.status_code == 406
    after = state(web_settings)
    assert after == before and not after["suppressions"]


def test_postmark_checks_credentials_before_reading_the_body(client, web_settings, lotte):
    before = state(web_settings)
    response = client.post("/webhooks/postmark", data="[" * 5000 + "]" * 5000,
                           content_type="application/json", auth=("hooks", "wrong"))
    assert response.status_code == 401
    good = client.post("/webhooks/postmark", data='{"RecordType": "Bounce", "TypeCode": Infinity}',
                       content_type="application/json", auth=("hooks", "hook-password-not-secret"))
    assert good.status_code == 400
    assert state(web_settings) == before
