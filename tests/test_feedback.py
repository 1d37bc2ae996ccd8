"""Feedback on its own (no web app): provider events → suppression, event log and journal note."""
from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import select

from postbode import audience, feedback, journal, store
from postbode.audience import Recipient
from postbode.store.schema import audience_events
from postbode.store.schema import journal as journal_table

PARTS = {"newsletters/x.yaml": "aa"}


@pytest.fixture
def sent(db):
    """A campaign with one mail sent to ana@example.org, with its Message-ID."""
    campaign = journal.create_campaign(db, "x", ["everyone"], PARTS, "outbox://o")
    journal.snapshot(db, campaign.id, [Recipient(None, "ana@example.org", "Ana", "nl", "formal",
                                                 None, "everyone")])
    (entry,) = journal.claim(db, campaign.id, 10, stamp=lambda e: "<m1@example.org>")
    journal.record(db, [journal.Outcome(entry.row_id, journal.State.SENT, 250, "ok")])
    return db


def event(action: str, event_id: str = "e1") -> feedback.Event:
    return feedback.Event(provider="postmark", event_id=event_id, email="Ana@Example.org",
                          action=action, kind="HardBounce", code=550, text="no such user",
                          message_id="<m1@example.org>")


def note(conn) -> tuple[str, int, str]:
    return conn.execute(select(journal_table.c.state, journal_table.c.last_code,
                               journal_table.c.last_text)).one()


def test_a_hard_bounce_suppresses_and_notes_the_row_once(sent):
    with store.atomic(sent):
        assert feedback.apply_event(sent, event("bounced")) == "suppressed"
    assert audience.is_suppressed(sent, "ana@example.org")
    state, code, text = note(sent)
    assert (state, code) == ("sent", 550) and text == "bounced after sending: no such user"
    with store.atomic(sent):
        assert feedback.apply_event(sent, event("bounced")) == "duplicate"


def test_a_soft_bounce_is_only_logged(sent):
    with store.atomic(sent):
        assert feedback.apply_event(sent, event("soft_bounce", "e2")) == "noted"
    assert not audience.is_suppressed(sent, "ana@example.org")
    kinds = sent.execute(select(audience_events.c.kind)).scalars().all()
    assert kinds[-1] == "soft_bounce"
    assert note(sent)[2].startswith("soft bounce after sending")


def test_a_replayed_signature_token_is_refused_within_its_lifetime(db):
    assert feedback.remember_token(db, "tok", at=1000.0, lifetime=60) is True
    assert feedback.remember_token(db, "tok", at=1030.0, lifetime=60) is False
    assert feedback.remember_token(db, "tok", at=2000.0, lifetime=60) is True  # forgotten by then


def test_feedback_does_not_load_flask():
    script = "import sys, postbode.feedback; print('flask' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_bounce_back_before_the_sender_settles_the_row_is_kept_when_it_does(db):
    # A local MTA can bounce a mail before the worker commits its outcome (with its next claim).
    campaign = journal.create_campaign(db, "x", ["everyone"], PARTS, "smtp://mta")
    journal.snapshot(db, campaign.id, [Recipient(None, "ana@example.org", "Ana", "nl", "formal",
                                                 None, "everyone")])
    (entry,) = journal.claim(db, campaign.id, 10, stamp=lambda e: "<m1@example.org>")
    with store.atomic(db):
        assert journal.note_feedback(db, "ana@example.org", 550, "bounced: no such user",
                                     message_id="<m1@example.org>", state="bounced") == 1
    journal.record(db, [journal.Outcome(entry.row_id, journal.State.SENT, 250, "2.0.0 queued")])
    state, code, text = note(db)
    assert (state, code, text) == ("bounced", 550, "bounced: no such user")
    assert db.execute(select(journal_table.c.sent_at)).scalar() is not None
