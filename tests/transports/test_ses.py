"""Amazon SES through boto3 against moto's server mode: raw MIME, postbode's headers intact."""
from __future__ import annotations

import email
import email.policy
import sqlite3
from pathlib import Path

import pytest

from postbode import campaign
from postbode.errors import TransportError
from postbode.transports import Status, open_transport

from conftest import SAMPLE

URL = "ses://eu-west-1?configuration_set=postbode-events"


def _rows(settings, campaign_id: str) -> dict[str, sqlite3.Row]:
    conn = sqlite3.connect(settings.database)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT * FROM journal WHERE campaign_id = ?", (campaign_id,))
        return {row["email"]: row for row in rows}
    finally:
        conn.close()


def test_a_campaign_reaches_ses_with_postbodes_own_headers(send_settings, populate, moto_ses):
    env, sent = moto_ses
    people = populate(4, locales=("nl", "en"))
    outcome = campaign.run(send_settings, Path(SAMPLE), ["everyone"], transport=URL,
                           policy=campaign.Policy(concurrency=1))
    assert outcome.totals["sent"] == 4
    rows = _rows(send_settings, outcome.campaign_id)
    stored = sent()
    assert sorted(m.destinations[0] if isinstance(m.destinations, list) else m.destinations
                  for m in stored) == sorted(p.email for p in people)
    for message in stored:
        mail = email.message_from_string(message.raw_data, policy=email.policy.default)
        address = mail["To"].addresses[0].addr_spec
        row = rows[address]
        assert row["state"] == "sent"
        assert row["provider_id"] == message.id          # SES's id, for the webhook's events
        assert mail["Message-ID"] == row["message_id"]
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "https://" in mail["List-Unsubscribe"] and mail["List-Id"]
        assert mail["Feedback-ID"] == f"{outcome.campaign_id}:everyone:example.org"
        assert mail.get_content_type() == "multipart/alternative"


def test_a_missing_configuration_set_stops_before_sending(settings, moto_ses, newsletter_messages):
    env, sent = moto_ses
    with pytest.raises(TransportError, match="no configuration set 'elsewhere'"):
        with open_transport("ses://eu-west-1?configuration_set=elsewhere", settings, env=env):
            pass
    assert sent() == []


def test_an_unverified_sender_is_rejected_not_retried(settings, moto_ses, newsletter_messages):
    env, sent = moto_ses
    messages = newsletter_messages(2)
    for message in messages:
        message.mail_from = "someone@unverified.example.net"
    with open_transport("ses://eu-west-1", settings, env=env) as transport:
        results = transport.send_batch(messages)
    assert [r.status for r in results] == [Status.REJECTED] * 2
    assert "MessageRejected" in results[0].text
    assert sent() == []


def test_the_url_names_a_region_and_takes_only_known_options(settings):
    with pytest.raises(TransportError, match="region"):
        open_transport("ses://", settings, env={})
    with pytest.raises(TransportError, match="unknown option 'configset'"):
        open_transport("ses://eu-west-1?configset=x", settings, env={})
    with pytest.raises(TransportError, match="both AWS_ACCESS_KEY_ID"):
        open_transport("ses://eu-west-1", settings, env={"AWS_ACCESS_KEY_ID": "AKIA"})


def test_boto3_never_retries_underneath(settings, httpserver, newsletter_messages):
    from fixtures.providers import FakeSes, json_response

    fake = FakeSes(httpserver)
    fake.accepted = lambda request, recipients: json_response(
        {"message": "Service unavailable"}, 503, {"x-amzn-ErrorType": "ServiceUnavailable:"})
    fake.throttled = lambda: json_response(
        {"message": "Maximum sending rate exceeded."}, 400, {"x-amzn-ErrorType": "Throttling:"})
    fake.answers.append("throttle")
    fake.install()
    with open_transport(fake.url, settings, env=fake.env()) as transport:
        throttled = transport.send_batch(newsletter_messages(3))
        failed = transport.send_batch(newsletter_messages(1, start=3))
    # one call each: the throttled one stops its batch, the 503 is the campaign's to retry
    assert len(fake.send_calls) == 2
    assert [(r.status, r.code) for r in throttled] == [(Status.RETRY, 429)] * 3
    assert all(r.retry_after == 1.0 for r in throttled)
    assert [(r.status, r.code) for r in failed] == [(Status.RETRY, 503)]
