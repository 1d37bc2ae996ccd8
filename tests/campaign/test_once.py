"""The rule "once per person per newsletter": who already has it, and what a plan and a snapshot do."""
from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import select, update

from postbode import audience, campaign, journal
from postbode.store.schema import journal as journal_rows

from conftest import SAMPLE

OUTBOX = "outbox://outbox"
LEGACY = Path(__file__).parents[1] / "data" / "state-68e6240.sqlite3"


def plan(settings, *segments: str, **flags) -> campaign.Plan:
    return campaign.plan(settings, Path(SAMPLE), list(segments), transport=OUTBOX, **flags)


def send(settings, *segments: str, **flags) -> campaign.SendSummary:
    return campaign.run(settings, Path(SAMPLE), list(segments), transport=OUTBOX, **flags)


def set_states(conn, campaign_id: str, states: list[str]) -> list[str]:
    """Give the campaign's rows, in order, these states; returns their addresses."""
    rows = conn.execute(select(journal_rows.c.id, journal_rows.c.email)
                        .where(journal_rows.c.campaign_id == campaign_id)
                        .order_by(journal_rows.c.id)).all()
    for row, state in zip(rows, states):
        conn.execute(update(journal_rows).where(journal_rows.c.id == row.id).values(state=state))
    return [row.email for row in rows]


def test_those_who_have_it_from_another_segment_are_left_out_and_counted(send_settings, populate):
    populate(20)
    dutch = send(send_settings, "dutch_speaking").totals["sent"]
    assert 0 < dutch < 20
    p = plan(send_settings, "everyone")
    assert p.already == {"2018-07-resultaten--dutch_speaking": dutch} and p.total == 20 - dutch
    assert p.nothing_to_do() is None
    outcome = send(send_settings, "everyone")
    assert outcome.totals.total == outcome.totals["sent"] == 20 - dutch
    assert plan(send_settings, "subscribers").total == 0
    assert "add --again" in plan(send_settings, "subscribers").nothing_to_do()


def test_again_sends_to_them_and_the_campaign_remembers_it(send_settings, populate, state_conn):
    populate(10)
    send(send_settings, "everyone")
    p = plan(send_settings, "subscribers", again=True)
    assert p.again and p.total == 10 and p.already == {"2018-07-resultaten--everyone": 10}
    assert send(send_settings, "subscribers", again=True).totals["sent"] == 10
    stored = journal.get_campaign(state_conn(), "2018-07-resultaten--subscribers")
    assert stored.sent_again == 10 and stored.already_received == {}


def test_the_snapshot_stores_who_it_left_out_with_the_rows(send_settings, populate, state_conn):
    populate(10)
    dutch = send(send_settings, "dutch_speaking").totals["sent"]
    send(send_settings, "everyone")
    stored = journal.get_campaign(state_conn(), "2018-07-resultaten--everyone")
    assert stored.already_received == {"2018-07-resultaten--dutch_speaking": dutch}
    assert stored.total == 10 - dutch and stored.sent_again == 0
    # resuming (or re-planning) the begun campaign shows what its snapshot left out
    assert plan(send_settings, "everyone").already == dict(stored.already_received)


def test_bounced_complained_and_unknown_count_as_received_rejected_does_not(send_settings,
                                                                           populate, state_conn):
    populate(8)
    send(send_settings, "everyone")
    conn = state_conn()
    first = "2018-07-resultaten--everyone"
    states = ["bounced", "complained", "unknown", "rejected", "rejected", "sent", "sent", "sent"]
    emails = set_states(conn, first, states)
    p = plan(send_settings, "subscribers")
    assert p.total == 2 and p.already == {first: 6}
    send(send_settings, "subscribers")
    rows = conn.execute(select(journal_rows.c.email).where(
        journal_rows.c.campaign_id == "2018-07-resultaten--subscribers")).scalars().all()
    assert sorted(rows) == sorted(emails[3:5])


def test_an_unfinished_campaign_keeps_its_people_a_superseded_one_does_not(send_settings,
                                                                           populate, state_conn):
    populate(10)
    dutch = send(send_settings, "dutch_speaking").totals["sent"]
    assert dutch >= 2
    conn = state_conn()
    paused = "2018-07-resultaten--dutch_speaking"
    set_states(conn, paused, ["pending", "retry"] + ["sent"] * (dutch - 2))
    journal.set_status(conn, paused, "paused")
    p = plan(send_settings, "everyone")
    assert p.queued == {paused: 2} and p.already == ({paused: dutch - 2} if dutch > 2 else {})
    assert p.total == 10 - dutch
    # its resumed run would reach them; a new send to everyone does not
    assert send(send_settings, "everyone").totals["sent"] == 10 - dutch
    # --new-campaign of the paused one supersedes it: its waiting rows no longer hold anyone
    renewed = plan(send_settings, "dutch_speaking", new_campaign=True)
    assert renewed.queued == {} and renewed.total == 2


def test_the_rule_goes_by_the_address_hash_so_it_outlives_erasure(send_settings, populate,
                                                                  state_conn):
    populate(5)
    send(send_settings, "everyone")
    conn = state_conn()
    hashes = conn.execute(select(journal_rows.c.address_hash)).scalars().all()
    assert sorted(hashes) == sorted(audience.address_hash(f"r{i:05d}@example.org")
                                    for i in range(1, 6))
    # addresses gone from the journal, hashes kept: still "already received"
    conn.execute(update(journal_rows).values(email=journal_rows.c.address_hash, name=None))
    assert plan(send_settings, "subscribers").already == {"2018-07-resultaten--everyone": 5}


def test_an_address_in_another_case_is_the_same_person(send_settings, state_conn, tmp_path):
    conn = state_conn()
    audience.import_samples_if_empty(conn, send_settings)  # M.Dekker@Example.org among the funders
    send(send_settings, "funders")
    emails = conn.execute(select(journal_rows.c.email)).scalars().all()
    assert "M.Dekker@example.org" in emails
    csv = tmp_path / "case.csv"
    csv.write_text("email;naam\nm.dekker@EXAMPLE.org;Maarten\n", encoding="utf-8")
    audience.import_csv(conn, csv, "subscribers", send_settings)
    assert plan(send_settings, "subscribers").already.get("2018-07-resultaten--funders") == 1


def test_the_migration_fills_the_hash_of_rows_sent_before_it(send_settings):
    send_settings.database.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(LEGACY, send_settings.database)
    p = plan(send_settings, "everyone")
    assert p.already == {"2018-07-resultaten--donors+funders": 15}
