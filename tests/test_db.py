"""The state database: WAL mode, named migrations recorded once, transactions."""
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from postbode import db


def test_connect_creates_the_file_in_wal_mode(tmp_path: Path):
    path = tmp_path / "state" / "postbode.sqlite3"
    conn = db.connect(path)
    assert path.exists()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000


def test_migrations_run_once_and_are_recorded(tmp_path: Path):
    path = tmp_path / "db.sqlite3"
    conn = db.connect(path)
    recorded = {r["name"] for r in conn.execute("SELECT name FROM migrations")}
    assert recorded == set(db.MIGRATIONS)
    conn.close()
    again = db.connect(path, migrate=False)
    assert db.apply_migrations(again) == []


def test_a_failing_migration_leaves_nothing_behind(tmp_path: Path, monkeypatch):
    conn = db.connect(tmp_path / "db.sqlite3")

    def broken(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("boom")

    monkeypatch.setitem(db.MIGRATIONS, "9999_broken", broken)
    with pytest.raises(RuntimeError):
        db.apply_migrations(conn)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half_done" not in tables
    assert not conn.execute("SELECT 1 FROM migrations WHERE name='9999_broken'").fetchone()


def test_transaction_rolls_back_on_error(tmp_path: Path):
    conn = db.connect(tmp_path / "db.sqlite3")
    conn.execute("CREATE TABLE t (x)")
    with pytest.raises(ValueError):
        with db.transaction(conn):
            conn.execute("INSERT INTO t VALUES (1)")
            raise ValueError
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0


def test_an_unopenable_path_is_a_clear_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(db.PostbodeError, match="cannot open the state database"):
        db.connect(blocker / "sub" / "db.sqlite3")


def test_the_webhook_tables_come_with_every_database_without_loading_the_web_app(tmp_path: Path):
    # A fresh process: in this one the test session may have imported the web app already.
    script = (
        "import sys\n"
        "from postbode import db\n"
        f"conn = db.connect({str(tmp_path / 'db.sqlite3')!r})\n"
        "names = {r[0] for r in conn.execute(\"SELECT name FROM sqlite_master WHERE type='table'\")}\n"
        "print(sorted(names & {'webhook_events', 'webhook_tokens'}), 'flask' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[0] == "['webhook_events', 'webhook_tokens'] False"
