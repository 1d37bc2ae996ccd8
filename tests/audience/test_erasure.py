"""`subscribers forget`: after it, neither the database file, its write-ahead log nor the outbox
holds the person's address or name; the journal keeps their rows (as `erased`) and states."""
from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import insert, select, update

from postbode import audience, feedback, journal, store
from postbode.store.schema import audience_events, bounce_events
from postbode.store.schema import journal as journal_table

from conftest import SAMPLE

CAMPAIGN = "2018-07-resultaten--everyone"
# As written in subscribers/funders.csv: mixed case, so every stored form is checked.
TYPED = "M.Dekker@Example.org"
FORMS = (TYPED, "M.Dekker@example.org", "m.dekker@example.org", "M.DEKKER@EXAMPLE.ORG")
NAMES = ("Maarten Dekker", "maarten dekker")


def raw_bytes(database: Path) -> bytes:
    """The database file and its -wal, as bytes on disk."""
    wal = database.with_name(database.name + "-wal")
    return database.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def mentions(data: bytes, text: str) -> bool:
    return text.encode("utf-8") in data or text.lower().encode("utf-8") in data.lower()


def outbox_mentioning(project: Path, text: str) -> list[Path]:
    return [p for p in (project / "outbox").rglob("*") if p.is_file()
            and text.lower().encode() in p.read_bytes().lower()]


def leave_traces(conn, message_id: str) -> None:
    """What a bounce, a provider webhook and an import's notes keep about the person."""
    hash_ = audience.address_hash(TYPED)
    with store.atomic(conn):
        conn.execute(update(journal_table).where(journal_table.c.message_id == message_id).values(
            last_text=f"550 5.1.1 <{TYPED.lower()}>: no mailbox for Maarten Dekker",
            bounce_diagnostic=f"smtp; 550 {TYPED} unknown"))
        conn.execute(insert(bounce_events).values(
            at=1.0, message_key="<b1@example.org>", journal_id=None, campaign_id=CAMPAIGN,
            email_hash=hash_, **{"class": "hard"}, status="5.1.1",
            diagnostic=f"550 <{TYPED}> user unknown", action="bounced"))
        conn.execute(insert(audience_events).values(
            at="2026-01-01T00:00:00Z", kind="import", email_hash=None, source="test",
            detail={"kept": {"email": TYPED, "line": 3}}))
        feedback.apply_event(conn, feedback.Event(
            provider="sesish", event_id=f"fb-1:{TYPED}", email=TYPED, action="soft_bounce",
            kind="Transient", code=450, text=f"mailbox of {TYPED} full"))


def test_forget_leaves_no_address_or_name_in_the_database_files_the_report_or_the_outbox(
        invoke, project, send_settings, state_conn, tmp_path):
    assert invoke("send", SAMPLE, "--segment", "everyone", "--yes").exit_code == 0
    assert invoke("send", SAMPLE, "--segment", "funders", "--test-to", TYPED, "--yes").exit_code == 0
    conn = state_conn()
    (row,) = conn.execute(select(journal_table).where(
        journal_table.c.email == "M.Dekker@example.org")).mappings()
    leave_traces(conn, row["message_id"])
    assert outbox_mentioning(project, TYPED)
    before = journal.tally(conn, CAMPAIGN)
    # kept open, as a running web app keeps the database: closing the last connection would
    # empty the write-ahead log anyway, so only an open one shows that forget empties it
    assert mentions(raw_bytes(send_settings.database), TYPED)  # the test can see it before

    result = invoke("subscribers", "forget", TYPED)

    assert result.exit_code == 0, result.output
    assert "1 journal row(s) made anonymous" in " ".join(result.output.split())
    data = raw_bytes(send_settings.database)
    for text in FORMS + NAMES:
        assert not mentions(data, text), f"{text!r} is still in the database files"
        assert not outbox_mentioning(project, text)
    target = tmp_path / "report.csv"
    assert invoke("report", CAMPAIGN, "--csv", str(target)).exit_code == 0
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    erased = [r for r in rows if r["email"] == "erased"]
    assert len(erased) == 1 and erased[0]["state"] == row["state"]
    assert "[erased]" in erased[0]["last_text"] and "Dekker" not in erased[0]["last_text"]
    assert journal.tally(conn, CAMPAIGN).by_state == before.by_state  # the counts still add up
    assert audience.is_suppressed(conn, TYPED)


def test_a_forgotten_person_is_not_imported_again_and_others_keep_their_data(
        invoke, send_settings, state_conn):
    assert invoke("subscribers", "import", "subscribers/funders.csv", "--list", "funders").exit_code == 0
    assert invoke("subscribers", "forget", TYPED).exit_code == 0
    assert invoke("subscribers", "import", "subscribers/funders.csv", "--list", "funders").exit_code == 0
    conn = state_conn()
    assert audience.find_subscriber(conn, TYPED) is None
    assert audience.find_subscriber(conn, "anouk.verbeek@example.org")["name"]


def test_forgetting_an_unknown_address_says_so_and_blocks_it(invoke, send_settings, state_conn):
    result = invoke("subscribers", "forget", "nobody@example.org")
    assert result.exit_code == 0 and "was not a subscriber" in result.output
    assert audience.is_suppressed(state_conn(), "nobody@example.org")


def test_webhook_ids_with_an_address_are_kept_hashed_and_still_match_a_repeat(db):
    from postbode.store.schema import webhook_events

    event = feedback.Event(provider="mailjet", event_id=f"17:bounce:{TYPED}", email=TYPED,
                           action="soft_bounce", kind="bounce", code=450, text="full")
    with store.atomic(db):
        assert feedback.apply_event(db, event) == "noted"
    with store.atomic(db):
        assert feedback.apply_event(db, event) == "duplicate"
    stored = db.execute(select(webhook_events.c.event_id)).scalars().all()
    assert len(stored) == 1 and "@" not in stored[0] and "dekker" not in stored[0].lower()


def test_rows_not_yet_sent_are_never_sent_after_forget_and_unknown_ones_never_requeued(db):
    from postbode.audience import Recipient

    campaign = journal.create_campaign(db, "x", ["everyone"], {"a": "b"}, "outbox://outbox")
    people = [Recipient(None, f"{n}@example.org", n, "nl", "formal", None, "everyone")
              for n in ("wacht", "onbekend", "ander")]
    journal.snapshot(db, campaign.id, people)
    (unsure,) = [e for e in journal.claim(db, campaign.id, 3) if e.recipient.email == "onbekend@example.org"]
    with store.atomic(db):
        db.execute(update(journal_table).values(state="pending"))
        db.execute(update(journal_table).where(journal_table.c.id == unsure.row_id).values(state="unknown"))
    for email in ("wacht@example.org", "onbekend@example.org"):
        with store.atomic(db):
            journal.erase(db, email, audience.address_hash(email), None, [email])
    assert journal.requeue_unknown(db, campaign.id) == 0
    claimed = journal.claim(db, campaign.id, 10)
    assert [e.recipient.email for e in claimed] == ["ander@example.org"]
    states = dict(db.execute(select(journal_table.c.email, journal_table.c.state)).all())
    assert states[journal.ERASED + audience.address_hash("wacht@example.org")] == "rejected"
    assert states[journal.ERASED + audience.address_hash("onbekend@example.org")] == "unknown"


def _claimed_outbox_mail(db, settings, email: str):
    """A row of an outbox campaign claimed for `email`, as a sender holds it while writing its file."""
    from postbode.audience import Recipient

    campaign = journal.create_campaign(db, "x", ["everyone"], {"a": "b"}, "outbox://outbox")
    journal.snapshot(db, campaign.id, [Recipient(None, email, "Wacht Even", "nl", "formal", None, "everyone")])
    (entry,) = journal.claim(db, campaign.id, 1, stamp=lambda e: "<wacht.1@example.org>")
    folder = settings.root / "outbox" / campaign.id
    return campaign, entry, folder


def test_forget_waits_for_a_mail_being_written_to_the_outbox_and_deletes_it(db, settings, monkeypatch):
    import threading

    from postbode import erasure
    from postbode.campaign.states import RowState

    email = "wacht.even@example.org"
    campaign, entry, folder = _claimed_outbox_mail(db, settings, email)

    def sender_finishes() -> None:     # the sender, in its own connection: file first, then settle
        conn = store.connect(settings)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "wacht.eml").write_text(f"To: Wacht Even <{email}>\r\n\r\nhallo\r\n", encoding="utf-8")
            journal.record(conn, [journal.Outcome(entry.row_id, RowState.SENT, 250, "ok")])
        finally:
            conn.close()

    later = threading.Timer(0.5, sender_finishes)
    later.start()
    try:
        done = erasure.forget(db, email, settings)
    finally:
        later.join()
    assert done.in_flight == 0 and done.files == 1
    assert not list(folder.glob("*.eml"))


def test_forget_says_so_when_a_claimed_mail_never_settles(db, settings, monkeypatch):
    from postbode import erasure

    monkeypatch.setattr(erasure, "IN_FLIGHT_WAIT", 0.3)
    _claimed_outbox_mail(db, settings, "hangt@example.org")   # a sender that died while holding it
    assert erasure.forget(db, "hangt@example.org", settings).in_flight == 1
