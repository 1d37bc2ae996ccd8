"""The state database's engine: SQLite settings on every connection, clear errors, URLs."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from postbode import store
from postbode.errors import PostbodeError


def pragma(conn, name: str):
    return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_connect_creates_the_file_with_its_settings_on_every_connection(tmp_path: Path):
    path = tmp_path / "state" / "postbode.sqlite3"
    first, second = store.connect(path), store.connect(path, migrate=False)
    try:
        assert path.exists()
        for conn in (first, second):
            assert pragma(conn, "journal_mode") == "wal"
            assert pragma(conn, "busy_timeout") == 30000
            assert pragma(conn, "foreign_keys") == 1
            assert pragma(conn, "secure_delete") == 1
            assert pragma(conn, "synchronous") == 1  # NORMAL
    finally:
        first.close()
        second.close()


def test_settings_a_path_and_a_url_name_the_same_database(tmp_path: Path, settings):
    path = settings.database
    assert store.database_url(settings) == store.database_url(path) == f"sqlite:///{path.resolve()}"
    assert store.database_url(f"sqlite:///{path}") == f"sqlite:///{path}"
    conn = store.connect(f"sqlite:///{path}")
    conn.execute(text("INSERT INTO lists(name, created) VALUES ('x', 'now')"))
    conn.close()
    other = store.connect(settings)
    assert other.execute(text("SELECT name FROM lists")).scalars().all() == ["x"]
    other.close()


def test_an_unopenable_path_is_a_clear_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PostbodeError, match="cannot open the state database"):
        store.connect(blocker / "sub" / "db.sqlite3")


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "notes.sqlite3"
    path.write_text("these are notes, not a database\n" * 100)
    with pytest.raises(PostbodeError, match="notes.sqlite3: cannot open the state database"):
        store.connect(path)


def test_messages_name_the_database_without_its_password(tmp_path):
    assert store.shown("postgresql://postbode:s3cret-pw@127.0.0.1:5432/news") == \
        "postgresql+psycopg://postbode:***@127.0.0.1:5432/news"
    assert store.shown(tmp_path / "state.sqlite3") == str((tmp_path / "state.sqlite3").resolve())


def test_the_schemas_claim_states_are_the_journals():
    from postbode.journal import State
    from postbode.store import schema

    assert (schema.PENDING, schema.RETRY) == (State.PENDING, State.RETRY)
