"""What every new provider transport must do, against its checking fake (tests/fixtures/providers.py)."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from postbode import campaign
from postbode.transports import Status, open_transport

from conftest import SAMPLE

CALLS_FOR_2500 = {"ses": 2500, "brevo": 2500, "mailjet": 50, "sendgrid": 3}


def _states(settings, campaign_id: str | None = None) -> list[str]:
    conn = sqlite3.connect(settings.database)
    try:
        sql = "SELECT state FROM journal" + (" WHERE campaign_id = ?" if campaign_id else "")
        return [row[0] for row in conn.execute(sql, (campaign_id,) if campaign_id else ())]
    finally:
        conn.close()


def _policy() -> campaign.Policy:
    return campaign.Policy(concurrency=1, backoff_base=0.01, max_wait=30)


@pytest.mark.slow
def test_2500_recipients_take_the_documented_number_of_calls(provider, settings, newsletter_messages):
    messages = newsletter_messages(2500)
    with open_transport(provider.url, settings, env=provider.env()) as transport:
        results = []
        for start in range(0, len(messages), transport.max_batch):
            results += transport.send_batch(messages[start:start + transport.max_batch])
    assert provider.problems == []
    assert len(provider.send_calls) == CALLS_FOR_2500[provider.name]
    assert [r.status for r in results] == [Status.SENT] * 2500
    assert [r.message_id for r in results] == [m.message_id for m in messages]
    assert all(r.provider_id for r in results)
    assert sorted(provider.delivered) == sorted(m.rcpt_to for m in messages)


def test_a_throttled_call_is_sent_again_after_the_wait_and_nothing_twice(
        provider, send_settings, populate, monkeypatch):
    for name, value in provider.env().items():
        monkeypatch.setenv(name, value)
    people = populate(6, locales=("nl",))
    provider.answers.append("throttle")
    outcome = campaign.run(send_settings, Path(SAMPLE), ["everyone"], transport=provider.url,
                           policy=_policy())
    assert provider.problems == []
    assert outcome.totals["sent"] == 6
    assert sorted(provider.delivered) == sorted(p.email for p in people)
    # the call after the throttled one waited at least as long as the provider asked (1 s)
    assert provider.send_calls[1] - provider.send_calls[0] >= 0.9


def test_a_malformed_success_answer_leaves_the_rows_unknown(provider, send_settings, populate,
                                                             monkeypatch):
    for name, value in provider.env().items():
        monkeypatch.setenv(name, value)
    populate(3, locales=("nl",))
    provider.answers += ["malformed"] * 3
    outcome = campaign.run(send_settings, Path(SAMPLE), ["everyone"], transport=provider.url,
                           policy=_policy())
    assert provider.problems == []
    assert outcome.totals["unknown"] == 3 and outcome.totals["sent"] == 0
    assert sorted(_states(send_settings, outcome.campaign_id)) == ["unknown"] * 3


@pytest.mark.parametrize("key", ["wrong", None])
def test_a_wrong_or_missing_key_exits_1_before_any_row_is_claimed(
        provider, send_settings, populate, monkeypatch, invoke, key):
    env = provider.env()
    credential = next(iter(env))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if key is None:
        monkeypatch.delenv(credential)
    else:
        monkeypatch.setenv(credential, key)
    populate(3, locales=("nl",))
    result = invoke("send", SAMPLE, "--segment", "everyone", "--transport", provider.url, "--yes")
    assert result.exit_code == 1, result.output
    assert credential in result.output or "credentials" in result.output
    assert "Traceback" not in result.output
    assert provider.send_calls == [] and provider.delivered == []
    assert set(_states(send_settings)) <= {"pending"}
