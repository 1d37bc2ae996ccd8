"""`store.atomic`: commit, roll back, savepoints when nested, the write lock taken at once."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from postbode import store


@pytest.fixture
def conn(tmp_path: Path):
    c = store.connect(tmp_path / "db.sqlite3")
    c.execute(text("CREATE TABLE t (x INTEGER)"))
    yield c
    c.close()


def count(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM t")).scalar()


def test_a_block_commits_and_an_error_rolls_it_back(conn):
    with store.atomic(conn):
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with pytest.raises(ValueError):
        with store.atomic(conn):
            conn.execute(text("INSERT INTO t VALUES (2)"))
            raise ValueError
    assert count(conn) == 1


def test_a_nested_block_is_a_savepoint(conn):
    with store.atomic(conn):
        conn.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(ValueError):
            with store.atomic(conn):
                conn.execute(text("INSERT INTO t VALUES (2)"))
                raise ValueError
        with store.atomic(conn):
            conn.execute(text("INSERT INTO t VALUES (3)"))
        assert store.in_atomic(conn)
    assert not store.in_atomic(conn)
    assert conn.execute(text("SELECT x FROM t ORDER BY x")).scalars().all() == [1, 3]


def test_the_write_lock_is_taken_when_the_block_begins(conn, tmp_path: Path):
    # Another program (a raw SQLite connection, no busy wait) cannot begin writing meanwhile.
    other = sqlite3.connect(tmp_path / "db.sqlite3", timeout=0, isolation_level=None)
    try:
        with store.atomic(conn):
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_outside_a_block_every_statement_commits_on_its_own(conn, tmp_path: Path):
    conn.execute(text("INSERT INTO t VALUES (7)"))
    other = store.connect(tmp_path / "db.sqlite3", migrate=False)
    try:
        assert count(other) == 1
    finally:
        other.close()
