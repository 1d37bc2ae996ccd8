"""`backup FILE`: a consistent copy of the state database, even while a campaign is sending."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing

from conftest import REPO, SAMPLE
from fixtures.postgres import wait_until
from fixtures.state import connect, read_rows


def sent_count(target) -> int:
    return read_rows(target, "SELECT count(*) AS n FROM journal WHERE state = 'sent'")[0]["n"]


def test_a_backup_taken_during_a_send_opens_and_passes_integrity_check(
        invoke, project, send_settings, populate, tmp_path):
    populate(300)
    send = subprocess.Popen(
        [sys.executable, str(REPO / "send.py"), "--config", str(project / "postbode.toml"), "send",
         SAMPLE, "--segment", "subscribers", "--yes", "--rate", "40"],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: send_settings.database.exists() and sent_count(send_settings) > 0,
                   120, "the send to begin")
        copy = tmp_path / "backups" / "copy.sqlite3"
        result = invoke("backup", str(copy))
        assert result.exit_code == 0, result.output
        assert "backed up the state database" in result.output
    finally:
        out, err = send.communicate(timeout=300)
    assert send.returncode == 0, err
    with closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        in_copy = conn.execute("SELECT count(*) FROM journal WHERE state = 'sent'").fetchone()[0]
        total = conn.execute("SELECT count(*) FROM journal").fetchone()[0]
    # taken mid-send: some mails were sent, not yet all
    assert total == 300 and 0 < in_copy < 300
    assert sent_count(send_settings) == 300
    assert oct(copy.stat().st_mode & 0o777) == "0o600"


def test_backup_refuses_to_overwrite_the_database_itself(invoke, send_settings):
    connect(send_settings).close()
    result = invoke("backup", str(send_settings.database))
    assert result.exit_code == 1 and "that is the database itself" in result.output


def test_backup_of_postgresql_prints_the_pg_dump_command_without_the_password(invoke, monkeypatch,
                                                                              tmp_path):
    monkeypatch.setenv("POSTBODE_DB", "postgresql://postbode:s3cret@db.example.org:5433/postbode")
    result = invoke("backup", str(tmp_path / "postbode.dump"))
    assert result.exit_code == 0, result.output
    assert "pg_dump --format=custom --file" in result.output
    assert "postgresql://postbode@db.example.org:5433/postbode" in result.output
    assert "s3cret" not in result.output
