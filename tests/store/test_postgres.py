"""PostgreSQL as the state database: URLs, migrations, `db upgrade`, and claims that never overlap."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import insert, select, text, update

from postbode import journal, store
from postbode.audience.model import Recipient
from postbode.config import load_settings
from postbode.errors import PostbodeError
from postbode.store.schema import campaigns, schedules, subscribers

from fixtures.smtp import free_port
from fixtures.state import connect


def test_a_plain_postgresql_url_opens_with_psycopg_3_and_is_migrated(postgres_url):
    conn = connect(postgres_url)
    assert conn.dialect.name == "postgresql"
    assert conn.dialect.driver == "psycopg"
    assert store.current(conn) == store.head()
    assert conn.execute(select(schedules.c.id)).all() == []


def test_postbode_db_and_the_toml_take_a_url_as_it_is(project, postgres_url):
    from_env = load_settings(project / "postbode.toml", env={"POSTBODE_DB": postgres_url})
    assert from_env.database == postgres_url
    toml = project / "postbode.toml"
    toml.write_text(toml.read_text().replace('"state/postbode.sqlite3"', f'"{postgres_url}"'))
    assert load_settings(toml, env={}).database == postgres_url


def test_an_unreachable_server_is_a_clear_error_without_the_password():
    url = f"postgresql://postbode:s3cret-pw@127.0.0.1:{free_port()}/postbode"
    with pytest.raises(PostbodeError, match="cannot open the state database") as caught:
        store.connect(url)
    assert "s3cret-pw" not in str(caught.value)


def test_a_read_only_connection_refuses_writes(postgres_url):
    conn = connect(postgres_url, read_only=True)
    with pytest.raises(Exception, match="read-only"):
        conn.execute(insert(campaigns).values(
            id="x", base_id="x", sequence=1, newsletter_id="n", segments=[], content_hash="h",
            content_parts={}, transport="outbox://", status="ready", created_at=0.0))


def test_db_upgrade_migrates_a_new_database_and_then_says_it_is_up_to_date(
        postgres_server, invoke, monkeypatch):
    name = postgres_server.new_database()
    try:
        postgres_server.sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public", name)
        monkeypatch.setenv("POSTBODE_DB", postgres_server.url(name))
        first = invoke("db", "upgrade")
        assert first.exit_code == 0, first.output
        assert f"from schema none to {store.head()}" in first.output
        again = invoke("db", "upgrade")
        assert again.exit_code == 0 and "up to date" in again.output
    finally:
        postgres_server.drop(name)


def test_a_schema_newer_than_postbode_is_refused(postgres_url, invoke, monkeypatch):
    conn = connect(postgres_url)
    conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    monkeypatch.setenv("POSTBODE_DB", postgres_url)
    result = invoke("db", "upgrade")
    assert result.exit_code == 1
    assert "schema revision 9999, newer than this postbode" in result.output


def _campaign_with_rows(conn, n: int) -> str:
    found = journal.create_campaign(conn, "n", ["everyone"], {"a": "1"}, "outbox://outbox")
    journal.snapshot(conn, found.id, (Recipient(i, f"r{i}@example.org", None, "nl", "formal",
                                                None, "everyone") for i in range(n)))
    return found.id


def test_two_connections_claiming_at_once_never_get_the_same_row(postgres_url):
    setup = connect(postgres_url)
    cid = _campaign_with_rows(setup, 2000)
    claimed: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def claimer(i: int) -> None:
        conn = store.connect(postgres_url, migrate=False)
        try:
            start.wait()
            while batch := journal.claim(conn, cid, 25):
                claimed[i] += [e.row_id for e in batch]
        finally:
            conn.close()

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    both = claimed[0] + claimed[1]
    assert len(both) == len(set(both)) == 2000
    assert claimed[0] and claimed[1]


def test_a_row_locked_by_one_claim_is_skipped_by_the_other(postgres_url):
    first, second = connect(postgres_url), connect(postgres_url)
    cid = _campaign_with_rows(first, 10)
    with store.atomic(first):
        # one sender is in the middle of its claim: it holds the first three rows
        held = first.execute(text("SELECT id FROM journal WHERE campaign_id = :c"
                                  " ORDER BY id LIMIT 3 FOR UPDATE"), {"c": cid}).scalars().all()
        got = [e.row_id for e in journal.claim(second, cid, 10)]
    assert len(got) == 7 and not set(got) & set(held)


def test_subscribers_json_and_case_of_email_work_on_postgresql(postgres_url):
    conn = connect(postgres_url)
    conn.execute(insert(subscribers).values(
        email="A@Example.org", email_key="a@example.org", email_hash="h", source="t", created="now",
        consent="subscribed", consent_at="now", consent_source="t", attributes={"n": 3}, tags=["x"]))
    row = conn.execute(select(subscribers.c.attributes, subscribers.c.tags)).one()
    assert row.attributes == {"n": 3} and row.tags == ["x"]
    conn.execute(update(subscribers).values(tags=["y"]))
    assert conn.execute(select(subscribers.c.tags)).scalar() == ["y"]


def test_the_senders_of_a_campaign_are_the_holders_of_its_advisory_lock(postgres_url):
    """The rate is divided by this count: each process holding the shared lock is one sender."""
    from postbode.campaign import guard

    key = guard.lock_key("2018-07-resultaten@everyone")
    holders = [connect(postgres_url) for _ in range(3)]
    try:
        for conn in holders[:2]:
            conn.execute(text("SELECT pg_advisory_lock_shared(:k)"), {"k": key})
        assert guard.senders(holders[2], key) == 2
        assert guard.senders(holders[2], guard.lock_key("another")) == 1
        holders[0].execute(text("SELECT pg_advisory_unlock_shared(:k)"), {"k": key})
        assert guard.senders(holders[2], key) == 1
    finally:
        for conn in holders:
            conn.close()


def test_snapshots_of_one_newsletter_take_turns_through_the_database(project, postgres_url,
                                                                     monkeypatch):
    """On PostgreSQL the turn is an advisory lock (senders on other machines wait too), not a file."""
    from postbode.campaign import guard

    monkeypatch.chdir(project)     # a lock file named after the URL would land here

    settings = load_settings(project / "postbode.toml", env={"POSTBODE_DB": postgres_url})
    key = guard.lock_key("newsletter:2018-07-resultaten")
    other = connect(postgres_url)
    try:
        with guard.newsletter_lock(settings, "2018-07-resultaten"):
            assert other.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar() is False
        assert other.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar() is True
    finally:
        other.close()
    assert not any(p.name.startswith("postgresql") for p in project.iterdir())


def test_two_web_workers_cannot_both_take_the_last_place_of_a_rate_limit(postgres_url):
    """The second count waits for the first transaction, then sees its act."""
    from postbode.audience import signup

    first, second = connect(postgres_url), connect(postgres_url)
    answers: list[bool] = []
    try:
        with store.atomic(first):
            assert signup.allow(first, "signup-ip", "same-key", (1, 3600))
            other = threading.Thread(target=lambda: _allow_in_transaction(second, answers))
            other.start()
            other.join(1.0)
            assert other.is_alive(), "the second count should wait for the first transaction"
        other.join(30)
        assert answers == [False]
    finally:
        first.close()
        second.close()


def _allow_in_transaction(conn, answers: list[bool]) -> None:
    from postbode.audience import signup

    with store.atomic(conn):
        answers.append(signup.allow(conn, "signup-ip", "same-key", (1, 3600)))


def test_the_journal_indexes_go_down_and_up_on_postgresql_as_made_new(postgres_url):
    from alembic import command

    from postbode.store.upgrade import _config

    conn = connect(postgres_url)
    try:
        def indexes() -> dict[str, str]:
            return dict(conn.execute(text("SELECT indexname, indexdef FROM pg_indexes "
                                          "WHERE tablename = 'journal'")).all())

        made_new = indexes()
        assert "WHERE (state = 'pending'::text)" in made_new["journal_pending"]
        assert "<> ALL (ARRAY['pending'::text, 'sent'::text])" in made_new["journal_unsettled"]
        assert "state" not in made_new["journal_by_address"]
        with store.atomic(conn):
            command.downgrade(_config(conn), "0008")
        assert "journal_state" in indexes() and "journal_unsettled" not in indexes()
        assert "state" in indexes()["journal_by_address"]
        with store.atomic(conn):
            command.downgrade(_config(conn), "0007")
        assert "journal_variant" in indexes() and "journal_pending" not in indexes()
        assert store.migrate(conn)
        assert indexes() == made_new
    finally:
        conn.close()
