"""Workers: the result classifier, and what happens when a worker meets an error it cannot send past."""
from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text

from postbode import audience, campaign, journal, message, store
from postbode.audience import Recipient
from postbode.campaign import sender
from postbode.campaign.pacing import Policy
from postbode.campaign.states import RowState
from postbode.errors import CampaignError, TransportError
from postbode.transports import SendResult, Status
from postbode.transports.outbox import OutboxTransport

from conftest import SAMPLE

# state tests: once on a SQLite file, once on PostgreSQL (tests/fixtures/state.py)
pytestmark = pytest.mark.both_engines

ONE = Policy(concurrency=1, backoff_base=0.01, backoff_cap=0.05, max_wait=5)


def entry(attempts: int = 1, row_id: int = 7) -> journal.Entry:
    reader = Recipient(1, "lezer@example.org", "Lezer", "nl", "formal", None, "everyone")
    return journal.Entry(row_id, reader, "claimed", attempts, "<m@example.org>")


def result(status: Status, **kw) -> SendResult:
    return SendResult("<m@example.org>", status, kw.pop("code", 250), kw.pop("text", "ok"), **kw)


def states(settings) -> dict[str, int]:
    with closing(store.connect(settings)) as conn:
        (c,) = journal.list_campaigns(conn)
        return {s: n for s, n in journal.tally(conn, c.id).by_state.items() if n}


def campaigns(settings) -> list[journal.Campaign]:
    with closing(store.connect(settings)) as conn:
        return journal.list_campaigns(conn)


# ---------------------------------------------------------------- the classifier

def test_a_sent_result_is_sent_with_the_provider_id():
    outcome = sender.classify(entry(), result(Status.SENT, provider_id="pm-1"),
                              max_attempts=8, retry_at=99.0)
    assert outcome == journal.Outcome(7, RowState.SENT, 250, "ok", "pm-1", None, "<m@example.org>")


def test_a_transient_failure_waits_until_the_batch_retry_time():
    outcome = sender.classify(entry(attempts=3), result(Status.RETRY, code=451, text="later"),
                              max_attempts=8, retry_at=99.0)
    assert (outcome.state, outcome.next_at, outcome.code, outcome.text) == ("retry", 99.0, 451,
                                                                            "later")


def test_a_transient_failure_on_the_last_attempt_is_rejected_and_says_so():
    outcome = sender.classify(entry(attempts=8), result(Status.RETRY, code=451, text="later"),
                              max_attempts=8, retry_at=99.0)
    assert outcome.state == RowState.REJECTED and outcome.next_at is None
    assert outcome.text == "gave up after 8 attempts; last answer: later"


@pytest.mark.parametrize("status", [Status.REJECTED, Status.UNKNOWN])
def test_rejected_and_unknown_keep_their_state_and_never_wait(status):
    outcome = sender.classify(entry(), result(status, code=550, text="no such user"),
                              max_attempts=8, retry_at=99.0)
    assert outcome.state == str(status) and outcome.next_at is None and outcome.code == 550


def test_one_retry_time_for_the_batch_is_the_longest_wait_asked():
    policy = Policy(backoff_base=1, backoff_cap=100)
    entries = [entry(attempts=1), entry(attempts=1, row_id=8)]
    results = [result(Status.RETRY, retry_after=30.0), result(Status.SENT)]
    assert sender.retry_time(entries, results, policy, now=1000.0) == 1030.0
    assert sender.retry_time(entries, [result(Status.SENT)] * 2, policy, now=1000.0) == 1000.0


def test_a_message_the_transport_said_nothing_about_is_unknown():
    mails = [(entry(row_id=i), type("Mail", (), {"message_id": f"<{i}@x>"})()) for i in (1, 2)]
    completed = sender.complete(mails, [result(Status.SENT)])
    assert [r.status for r in completed] == [Status.SENT, Status.UNKNOWN]
    assert completed[1].message_id == "<2@x>" and "may have left" in completed[1].text


# ---------------------------------------------------------------- workers that fail

def test_the_transport_is_checked_before_the_journal_is_touched(invoke, project, send_settings,
                                                                monkeypatch):
    monkeypatch.delenv("POSTBODE_MAILGUN_API_KEY", raising=False)
    result = invoke("send", SAMPLE, "--segment", "everyone", "--yes",
                    "--transport", "mailgun://mg.example.org?region=eu")
    assert result.exit_code == 1, result.output
    assert "POSTBODE_MAILGUN_API_KEY" in result.output and "Traceback" not in result.output
    assert campaigns(send_settings) == []


def test_an_unknown_transport_option_is_refused_without_showing_the_password(invoke, project,
                                                                            send_settings):
    result = invoke("send", SAMPLE, "--segment", "everyone", "--yes", "--transport",
                    "smtp://mailer:hunter2-not-secret@127.0.0.1:2525?tls=none&colour=blue")
    assert result.exit_code == 1
    assert "colour" in result.output and "hunter2" not in result.output
    assert campaigns(send_settings) == []


def test_a_refused_login_stops_before_any_row_is_claimed(send_settings, populate, smtp_server,
                                                         monkeypatch):
    monkeypatch.setenv("POSTBODE_SMTP_PASSWORD", "wrong-password-not-secret")
    populate(10)
    with pytest.raises(TransportError, match="login refused"):
        campaign.run(send_settings, Path(SAMPLE), ["everyone"], transport=smtp_server.url,
                     policy=ONE)
    assert states(send_settings) == {"pending": 10}
    assert smtp_server.received == []


def test_a_worker_that_dies_stops_the_send_with_exit_1_and_its_batch_goes_back(
        invoke, project, send_settings, populate, monkeypatch):
    readers = populate(30)
    broken = readers[12].email
    real_build = message.build

    def build(variant, recipient, *args, **kw):
        if recipient.email == broken:
            raise RuntimeError("disk on fire")  # a local error, not the recipient's fault
        return real_build(variant, recipient, *args, **kw)

    monkeypatch.setattr(message, "build", build)
    result = invoke("send", SAMPLE, "--segment", "everyone", "--yes", "--concurrency", "2")
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert "stopped: a connection failed (RuntimeError: disk on fire)" in out
    assert "run the same command again" in out and "Traceback" not in out
    left = states(send_settings)
    assert "claimed" not in left and "unknown" not in left and left["pending"] >= 1
    monkeypatch.setattr(message, "build", real_build)
    again = invoke("send", SAMPLE, "--segment", "everyone", "--yes")
    assert again.exit_code == 0, again.output
    assert states(send_settings) == {"sent": 30}
    assert len(list((project / "outbox").rglob("*.eml"))) == 30
    with closing(store.connect(send_settings)) as conn:
        (c,) = journal.list_campaigns(conn)
        # the rows that went back were never attempted: one attempt each, not two
        assert {r["attempts"] for r in journal.iter_rows(conn, c.id)} == {1}


def test_a_transport_that_fails_mid_batch_leaves_that_batch_unknown(send_settings, populate,
                                                                    monkeypatch):
    populate(12)
    real_send, calls = OutboxTransport.send_batch, []

    def send_batch(self, messages):
        calls.append(len(messages))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_send(self, messages)

    monkeypatch.setattr(OutboxTransport, "send_batch", send_batch)
    monkeypatch.setattr(OutboxTransport, "max_batch", 5)
    with pytest.raises(CampaignError, match="No space left on device"):
        campaign.run(send_settings, Path(SAMPLE), ["everyone"], transport="outbox://outbox",
                     policy=ONE)
    assert states(send_settings) == {"sent": 5, "unknown": 5, "pending": 2}
    assert campaigns(send_settings)[0].status == "paused"


@pytest.mark.sqlite_only
def test_messages_are_built_while_no_write_lock_is_held(send_settings, populate, monkeypatch):
    """Another connection can take the write lock while a worker builds its batch."""
    populate(6)
    real_build, writable = message.build, []

    def build(*args, **kw):
        other = sqlite3.connect(send_settings.database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # fails at once if the claim still held the lock
            other.execute("ROLLBACK")
            writable.append(True)
        finally:
            other.close()
        return real_build(*args, **kw)

    monkeypatch.setattr(message, "build", build)
    outcome = campaign.run(send_settings, Path(SAMPLE), ["everyone"],
                           transport="outbox://outbox", policy=ONE)
    assert outcome.totals["sent"] == 6 and writable == [True] * 6


def test_a_claimed_row_carries_its_message_id_before_the_mail_is_built(send_settings, populate,
                                                                       monkeypatch):
    populate(3)
    seen = []
    real_build = message.build

    def build(variant, recipient, campaign_id, settings, **kw):
        with closing(store.connect(send_settings, migrate=False)) as conn:
            row = conn.execute(text("SELECT state, message_id FROM journal WHERE email = :e"),
                               {"e": recipient.email}).mappings().first()
        mail = real_build(variant, recipient, campaign_id, settings, **kw)
        seen.append((row["state"], row["message_id"], mail.message_id))
        return mail

    monkeypatch.setattr(message, "build", build)
    campaign.run(send_settings, Path(SAMPLE), ["everyone"], transport="outbox://outbox",
                 policy=ONE)
    assert len(seen) == 3
    assert all(state == "claimed" and stored == built for state, stored, built in seen)


def test_someone_who_unsubscribes_during_the_send_is_not_sent_to(send_settings, populate,
                                                                 monkeypatch):
    """The claim asks the suppression list: a row claimed after the unsubscribe is refused."""
    readers = populate(6)
    real_build, built = message.build, []
    leaving: list[str] = []

    def build(variant, recipient, campaign_id, settings, **kw):
        if not leaving:   # during the first mail, one of the others unsubscribes
            leaving.append(next(r.email for r in readers if r.email != recipient.email))
            with closing(store.connect(send_settings, migrate=False)) as conn:
                with store.atomic(conn):
                    audience.suppress(conn, leaving[0], "unsubscribed", "preferences page")
        built.append(recipient.email)
        return real_build(variant, recipient, campaign_id, settings, **kw)

    monkeypatch.setattr(message, "build", build)
    monkeypatch.setattr(OutboxTransport, "max_batch", 1)    # one row a claim
    outcome = campaign.run(send_settings, Path(SAMPLE), ["everyone"], transport="outbox://outbox",
                           policy=ONE)
    assert outcome.totals["sent"] == 5 and outcome.totals["rejected"] == 1
    assert leaving[0] not in built
    with closing(store.connect(send_settings)) as conn:
        (c,) = journal.list_campaigns(conn)
        refused = [r for r in journal.iter_rows(conn, c.id) if r["state"] == "rejected"]
    assert [(r["email"], r["last_text"]) for r in refused] == [(leaving[0], sender.SUPPRESSED)]
