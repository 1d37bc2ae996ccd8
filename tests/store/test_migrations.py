"""Alembic migrations: a new database, one made by the code before Alembic, once only."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from postbode import store
from postbode.store import schema
from postbode.store.upgrade import current, head

from fixtures.state import executed

# Made by postbode before Alembic, at commit 68e6240 and at bf20dbc (with the bounce
# tables): the sample lists imported, the sample newsletter sent to funders and donors
# through the outbox, one address unsubscribed and one forgotten.
DATA = Path(__file__).parents[1] / "data"
LEGACY = DATA / "state-68e6240.sqlite3"
LEGACIES = [DATA / "state-68e6240.sqlite3", DATA / "state-bf20dbc.sqlite3"]
TABLES = ("lists", "subscribers", "memberships", "suppressions", "audience_events",
          "webhook_events", "webhook_tokens", "campaigns", "journal")


def raw_rows(path: Path, columns: dict[str, list[str]] | None = None) -> dict[str, list[tuple]]:
    """Every row of every table (of these columns, else all), read without postbode."""
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT {', '.join(columns[t]) if columns else '*'} FROM {t}"
                                " ORDER BY 1, 2").fetchall() for t in TABLES}
    finally:
        conn.close()


def raw_columns(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    try:
        return {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in TABLES}
    finally:
        conn.close()


def test_a_new_database_gets_every_table_at_the_newest_revision(tmp_path: Path):
    conn = store.connect(tmp_path / "new.sqlite3")
    try:
        assert set(inspect(conn).get_table_names()) == {*schema.metadata.tables, "alembic_version"}
        assert current(conn) == head()
        assert store.migrate(conn) is False  # once only
    finally:
        conn.close()


@pytest.mark.parametrize("legacy", LEGACIES, ids=lambda p: p.stem)
def test_a_database_made_before_alembic_keeps_every_row(tmp_path: Path, legacy: Path):
    path = tmp_path / "old.sqlite3"
    shutil.copy(legacy, path)
    before, columns = raw_rows(path), raw_columns(path)
    assert len(before["subscribers"]) == 24 and len(before["journal"]) == 15
    assert len(before["suppressions"]) == 2 and len(before["campaigns"]) == 1
    conn = store.connect(path)
    try:
        assert current(conn) == head()
        assert "migrations" not in inspect(conn).get_table_names()
        indexes = {i["name"] for i in inspect(conn).get_indexes("journal")}
        assert {"journal_unsettled", "journal_pending", "journal_due", "journal_message_id"} <= indexes
        assert "journal_state" not in indexes
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    finally:
        conn.close()
    assert raw_rows(path, columns) == before
    # what later revisions added is there, empty
    journal_columns = raw_columns(path)["journal"]
    assert journal_columns[:len(columns["journal"])] == columns["journal"]
    assert {"bounce_status", "bounce_diagnostic", "subscriber_key"} <= set(journal_columns)
    assert "address_hash" in journal_columns[len(columns["journal"]):]


def test_the_upgraded_database_works_as_a_new_one(tmp_path: Path):
    path = tmp_path / "old.sqlite3"
    shutil.copy(LEGACY, path)
    conn = store.connect(path)
    try:
        campaign = conn.execute(schema.campaigns.select()).one()
        assert campaign.segments == ["donors", "funders"] and campaign.status == "finished"
        tags = conn.execute(schema.subscribers.select().where(schema.subscribers.c.tags != "[]")
                            .limit(1)).one().tags
        assert isinstance(tags, list) and tags
    finally:
        conn.close()


def test_a_failing_upgrade_leaves_the_database_as_it_was(tmp_path: Path, monkeypatch):
    path = tmp_path / "old.sqlite3"
    shutil.copy(LEGACY, path)

    def broken(config, revision):
        config.attributes["connection"].execute(text("CREATE TABLE half_done (x INTEGER)"))
        raise RuntimeError("boom")

    monkeypatch.setattr("alembic.command.upgrade", broken)
    try:
        store.connect(path)
    except RuntimeError:
        pass
    else:
        raise AssertionError("the upgrade should have failed")
    raw = sqlite3.connect(path)
    try:
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        raw.close()
    assert "migrations" in names and not names & {"alembic_version", "half_done"}


def test_opening_the_database_loads_neither_the_web_app_nor_the_stages(tmp_path: Path):
    # A fresh process: in this one the test session may have imported the web app already.
    script = (
        "import sys\n"
        "from postbode import store\n"
        f"conn = store.connect({str(tmp_path / 'db.sqlite3')!r})\n"
        "print('flask' in sys.modules, 'postbode.audience' in sys.modules)\n"
        "conn.close()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[0] == "False False"


def test_every_migration_file_ships_with_the_package():
    import fnmatch
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text("utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["postbode"]
    package = Path(store.__file__).parents[1]
    files = [p.relative_to(package).as_posix()
             for p in (package / "store" / "migrations").rglob("*") if p.is_file()
             and "__pycache__" not in p.parts]
    assert any(f.startswith("store/migrations/versions/") for f in files)
    assert [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)] == []


def test_programs_opening_a_new_database_together_migrate_it_once(tmp_path: Path):
    path = tmp_path / "together.sqlite3"
    script = ("import sys\nfrom postbode import store\n"
              "conn = store.connect(sys.argv[1])\nconn.close()\nprint('ok')\n")
    programs = [subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in programs]
    assert [p.returncode for p in programs] == [0, 0, 0], outputs
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [(head(),)]
    finally:
        raw.close()


def test_the_newest_revision_read_from_the_files_is_alembics_own():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(store.__file__).with_name("migrations")))
    assert head() == ScriptDirectory.from_config(config).get_current_head()
    assert head() in store.upgrade.known()


def test_the_revision_check_reads_the_version_table_alembic_wrote(tmp_path):
    conn = store.connect(tmp_path / "state.sqlite3")
    try:
        from alembic.migration import MigrationContext

        assert current(conn) == MigrationContext.configure(conn).get_current_revision() == head()
    finally:
        conn.close()


def _index_sql(path: Path) -> dict[str, str]:
    """Each index of the journal as SQLite keeps it, spelled without quotes or extra spaces."""
    raw = sqlite3.connect(path)
    try:
        rows = raw.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                           "AND tbl_name = 'journal' AND sql IS NOT NULL").fetchall()
    finally:
        raw.close()
    return {name: " ".join(sql.replace('"', "").replace("\n", " ").split()).lower()
            for name, sql in rows}


def test_an_upgraded_journal_has_the_indexes_of_a_new_one(tmp_path: Path):
    old, new = tmp_path / "old.sqlite3", tmp_path / "new.sqlite3"
    shutil.copy(LEGACY, old)
    for path in (old, new):
        store.connect(path).close()
    assert _index_sql(old) == _index_sql(new)
    assert "where state = 'pending'" in _index_sql(new)["journal_pending"]


def test_the_claim_finds_its_rows_through_the_partial_indexes(tmp_path: Path):
    from postbode import journal
    from postbode.store.sql import _compiled

    conn = store.connect(tmp_path / "state.sqlite3")
    try:
        for statement, index in ((journal._PENDING, "journal_pending"), (journal._DUE, "journal_due")):
            sql, order, _defaults = _compiled(conn, statement, True)
            values = {"campaign": "c", "limit": 1, "now": 0.0, "param_1": 0}
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql,
                                        tuple(values.get(name, 0) for name in order)).fetchall()
            assert any(index in row[-1] for row in plan), (index, plan)
    finally:
        conn.close()


def test_recovery_resends_and_counts_find_their_rows_through_the_partial_indexes(tmp_path: Path):
    from postbode import journal

    conn = store.connect(tmp_path / "state.sqlite3")
    try:
        queries = {"journal_unsettled": [journal.recover, journal.requeue_unknown, journal.unknown_entries],
                   "journal_pending": [journal.open_count], "journal_due": [journal.open_count,
                                                                            journal.next_retry_at]}
        for index, functions in queries.items():
            for function in functions:
                plans = _plans_of(conn, lambda: function(conn, "c"))
                assert any(index in step for plan in plans for step in plan), (function, index, plans)
        plans = _plans_of(conn, lambda: journal.sent_or_claimed_since(conn, 0.0))
        assert all("SCAN journal" not in step.replace("USING", "") or "INDEX" in step
                   for plan in plans for step in plan), plans
    finally:
        conn.close()


def _plans_of(conn, call) -> list[list[str]]:
    """EXPLAIN QUERY PLAN of every journal SELECT and UPDATE `call` runs (they still run)."""
    raw = conn.connection.dbapi_connection.cursor()
    return [[row[-1] for row in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters)]
            for statement, parameters, many in executed(conn, call)
            if "journal" in statement and not many and statement.lstrip()[:6] in ("SELECT", "UPDATE")]
