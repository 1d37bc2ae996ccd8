"""The journal on its own: a real SQLite file, rows moving through their states."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from postbode import journal
from postbode.audience import Recipient
from postbode.errors import CampaignError

from fixtures.state import connect

# state tests: once on a SQLite file, once on PostgreSQL (tests/fixtures/state.py)
pytestmark = pytest.mark.both_engines

PARTS = {"newsletters/x.yaml": "aa", "templates/email.html": "bb"}


def people(n: int, locale: str = "nl") -> list[Recipient]:
    return [Recipient(i, f"r{i}@example.org", f"Naam {i}", locale, "informal", None, "everyone")
            for i in range(1, n + 1)]


@pytest.fixture
def conn(tmp_path: Path):
    c = connect(tmp_path / "state.sqlite3")
    yield c
    c.close()


@pytest.fixture
def campaign(conn):
    c = journal.create_campaign(conn, "x", ["everyone"], PARTS, "outbox://outbox")
    journal.snapshot(conn, c.id, iter(people(10)))
    return c


def test_campaign_ids_are_deterministic_and_sequenced(conn):
    first = journal.create_campaign(conn, "2018-07", ["donors", "funders"], PARTS, "outbox://o")
    assert first.id == journal.base_id("2018-07", ["funders", "donors"]) == "2018-07--donors+funders"
    second = journal.create_campaign(conn, "2018-07", ["funders", "donors"], PARTS, "outbox://o")
    assert second.id == "2018-07--donors+funders--2"
    assert journal.latest_campaign(conn, "2018-07", ["funders", "donors"]).id == second.id
    assert journal.latest_campaign(conn, "2018-07", ["funders"]) is None


def test_snapshot_writes_one_pending_row_per_recipient_once(conn):
    c = journal.create_campaign(conn, "x", ["everyone"], PARTS, "outbox://o")
    doubled = people(5) + people(5)
    assert journal.snapshot(conn, c.id, iter(doubled), batch_size=3) == 5
    assert journal.get_campaign(conn, c.id).status == "ready"
    assert journal.get_campaign(conn, c.id).total == 5
    assert journal.tally(conn, c.id)["pending"] == 5
    # An interrupted snapshot is redone from scratch, not appended to.
    assert journal.snapshot(conn, c.id, iter(people(7))) == 7
    assert journal.tally(conn, c.id).total == 7


def test_claim_commits_before_the_caller_sends(conn, campaign, tmp_path):
    claimed = journal.claim(conn, campaign.id, 4, stamp=lambda e: f"<{e.row_id}@example.org>")
    assert [e.recipient.email for e in claimed] == [f"r{i}@example.org" for i in range(1, 5)]
    # Another connection (another process) sees the claims at once.
    other = connect(tmp_path / "state.sqlite3")
    states = dict(other.exec_driver_sql("SELECT email, state FROM journal").fetchall())
    assert list(states.values()).count("claimed") == 4
    ids = [r[0] for r in other.exec_driver_sql("SELECT message_id FROM journal WHERE state='claimed'")]
    assert all(i.endswith("@example.org>") for i in ids)
    other.close()


def test_outcomes_and_due_retries(conn, campaign):
    a, b, c, d = journal.claim(conn, campaign.id, 4, now=100.0)
    journal.record(conn, [
        journal.Outcome(a.row_id, "sent", 250, "ok", provider_id="p1"),
        journal.Outcome(b.row_id, "rejected", 550, "no such user"),
        journal.Outcome(c.row_id, "retry", 451, "later", next_at=200.0),
        journal.Outcome(d.row_id, "unknown", None, "dropped"),
    ])
    t = journal.tally(conn, campaign.id)
    assert (t["sent"], t["rejected"], t["retry"], t["unknown"], t["pending"]) == (1, 1, 1, 1, 6)
    # The retry is not due before its time and is due after it.
    before = journal.claim(conn, campaign.id, 100, now=150.0)
    assert c.row_id not in [e.row_id for e in before] and len(before) == 6
    after = journal.claim(conn, campaign.id, 100, now=250.0)
    assert [e.row_id for e in after] == [c.row_id]
    assert after[0].attempts == 2
    journal.record(conn, [journal.Outcome(c.row_id, "sent", 250, "ok")])
    assert journal.tally(conn, campaign.id).retried == 1


def test_resume_turns_claimed_into_unknown_and_never_resends_them(conn, campaign):
    journal.claim(conn, campaign.id, 3)          # a crash happens here
    assert journal.recover(conn, campaign.id) == 3
    rest = journal.claim(conn, campaign.id, 100)
    assert len(rest) == 7
    assert journal.tally(conn, campaign.id)["unknown"] == 3
    assert [e.recipient.email for e in journal.unknown_entries(conn, campaign.id)] == \
        ["r1@example.org", "r2@example.org", "r3@example.org"]
    # Only when the operator asks are they sent again.
    assert journal.requeue_unknown(conn, campaign.id) == 3
    assert len(journal.claim(conn, campaign.id, 100)) == 3


def test_parallel_claims_never_hand_out_a_row_twice(tmp_path):
    path = tmp_path / "state.sqlite3"
    conn = connect(path)
    c = journal.create_campaign(conn, "x", ["everyone"], PARTS, "outbox://o")
    journal.snapshot(conn, c.id, iter(people(2000)))
    seen: list[int] = []
    lock = threading.Lock()

    def worker():
        own = connect(path, migrate=False)
        while batch := journal.claim(own, c.id, 7):
            journal.record(own, [journal.Outcome(e.row_id, "sent") for e in batch])
            with lock:
                seen.extend(e.row_id for e in batch)
        own.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == len(set(seen)) == 2000
    assert journal.tally(conn, c.id)["sent"] == 2000


def test_tally_by_locale_and_quota_count(conn):
    c = journal.create_campaign(conn, "x", ["everyone"], PARTS, "outbox://o")
    journal.snapshot(conn, c.id, iter(people(3, "en") + [
        Recipient(9, "ar@example.org", None, "ar", "formal", None, "everyone")]))
    claimed = journal.claim(conn, c.id, 10)
    journal.record(conn, [journal.Outcome(e.row_id, "sent") for e in claimed])
    by = journal.tally_by_locale(conn, c.id)
    assert by["en"]["sent"] == 3 and by["ar"]["sent"] == 1 and by[None]["sent"] == 4
    import time
    assert journal.sent_since(conn, time.time() - 60) == 4
    assert journal.sent_since(conn, time.time() + 60) == 0


def test_changed_parts_names_the_files():
    new = dict(PARTS, **{"templates/email.html": "cc", "locales/en/LC_MESSAGES/x.po": "dd"})
    assert journal.changed_parts(PARTS, new) == ["locales/en/LC_MESSAGES/x.po",
                                                 "templates/email.html"]
    assert journal.content_hash(PARTS) != journal.content_hash(new)


def test_unknown_campaign_is_a_clear_error(conn, campaign):
    with pytest.raises(CampaignError, match="no campaign 'nope'.*x--everyone"):
        journal.require_campaign(conn, "nope")


def test_csv_rows_are_streamed_in_order(conn, campaign):
    rows = list(journal.iter_rows(conn, campaign.id, batch_size=3))
    assert [r["email"] for r in rows] == [f"r{i}@example.org" for i in range(1, 11)]


def test_states_are_str_enums_equal_to_their_names(conn, campaign):
    assert journal.State.SENT == "sent" and journal.STATES[0] == "pending"
    stored = journal.get_campaign(conn, campaign.id)
    assert stored.status is journal.CampaignStatus.READY
    journal.set_status(conn, campaign.id, "sending")
    assert journal.get_campaign(conn, campaign.id).status == journal.CampaignStatus.SENDING
    with pytest.raises(ValueError):
        journal.set_status(conn, campaign.id, "sent-ish")


def test_claim_ahead_claims_the_row_looked_at_and_looks_at_the_next(conn, campaign):
    from postbode.campaign.states import RowState

    claimed, ahead = journal.claim_ahead(conn, campaign.id, None, stamp=lambda e: f"<{e.row_id}@x>")
    assert [e.recipient.email for e in claimed] == ["r1@example.org"]
    assert ahead.recipient.email == "r2@example.org" and ahead.state == "pending"   # not claimed
    done = journal.Outcome(claimed[0].row_id, RowState.SENT, 250, "ok")
    claimed, following = journal.claim_ahead(conn, campaign.id, ahead, settle=[done])
    assert [e.row_id for e in claimed] == [ahead.row_id] and claimed[0].state == "claimed"
    assert following.recipient.email == "r3@example.org"
    assert journal.tally(conn, campaign.id)[RowState.SENT] == 1


def test_claim_ahead_takes_the_next_due_row_when_another_sender_took_the_one_looked_at(conn, campaign):
    _, ahead = journal.claim_ahead(conn, campaign.id, None)
    (taken,) = journal.claim(conn, campaign.id, 1)          # someone else claims r2 meanwhile
    assert taken.row_id == ahead.row_id
    claimed, following = journal.claim_ahead(conn, campaign.id, ahead)
    assert [e.recipient.email for e in claimed] == ["r3@example.org"]
    assert following.recipient.email == "r4@example.org"


def test_claim_ahead_on_the_last_row_looks_at_nothing(conn, campaign):
    claimed = journal.claim(conn, campaign.id, 9)
    assert len(claimed) == 9
    last, ahead = journal.claim_ahead(conn, campaign.id, None)
    assert len(last) == 1 and ahead is None
    assert journal.claim_ahead(conn, campaign.id, None) == ([], None)
