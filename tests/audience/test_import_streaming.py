"""The import streams and writes in short transactions; its input hygiene (control characters,
long names, mixed encodings) reports by line."""
from __future__ import annotations

from pathlib import Path

from postbode import audience
from postbode.audience import importer


def _commits(monkeypatch) -> list[str]:
    """Every COMMIT the transaction helper sends (it runs them on the driver's own cursor)."""
    from postbode.store import transaction

    seen: list[str] = []
    original = transaction.driver_sql

    def counting(conn, statement, *args, **kwargs):
        if statement.strip().upper() == "COMMIT":
            seen.append(statement)
        return original(conn, statement, *args, **kwargs)

    monkeypatch.setattr(transaction, "driver_sql", counting)
    return seen


def _people(path: Path, count: int, extra: list[str] = ()) -> Path:
    lines = ["email;naam;tags"] + [f"p{i}@example.org;Persoon {i};t{i % 3}" for i in range(count)]
    path.write_text("\n".join([*lines[:2], *extra, *lines[2:]]) + "\n", encoding="utf-8")
    return path


def test_rows_are_committed_in_chunks_and_duplicates_merge_across_them(db, settings, tmp_path, monkeypatch):
    # line 2 is p0; the same person comes back 2,500 rows later, in another chunk, with a new name
    path = _people(tmp_path / "groot.csv", 2_500)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("P0@example.org;Persoon Nul;extra\n")
    commits = _commits(monkeypatch)
    summary = audience.import_csv(db, path, "subscribers", settings)
    assert len(commits) >= 2_500 // importer.CHUNK + 1  # one per chunk (and the summary's own)
    assert (summary.rows, summary.new, summary.duplicates, summary.existing) == (2_501, 2_500, 1, 0)
    (note,) = summary.merged
    assert (note.line, "same address as line 2") == (2_502, note.message[:22])
    row = audience.find_subscriber(db, "p0@example.org")
    assert row["name"] == "Persoon Nul" and row["tags"] == ["extra", "t0"]
    assert db.exec_driver_sql("SELECT count(*) FROM memberships").scalar() == 2_500


def test_a_suppression_later_in_the_file_wins_over_an_earlier_subscribed_line(db, settings, tmp_path):
    path = tmp_path / "status.csv"
    lines = ["email;status"] + [f"p{i}@example.org;subscribed" for i in range(1_200)] + ["p1@example.org;afgemeld"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = audience.import_csv(db, path, "subscribers", settings)
    assert summary.newly_suppressed == {"unsubscribed": 1}
    assert audience.find_subscriber(db, "p1@example.org")["consent"] == "unsubscribed"
    assert "p1@example.org" not in {r.email for r in audience.resolve(db, ["everyone"], settings)}


def test_names_with_control_characters_or_too_long_are_skipped_by_line(db, settings, tmp_path):
    path = tmp_path / "vies.csv"
    path.write_bytes(("email;naam\n"
                      "a@example.org;\"Anna\r\nBcc: x@example.org\"\n"
                      "b@example.org;\"Bram\x1b]8;;https://example.org\x07klik\x1b]8;;\x07\"\n"
                      "c@example.org;Chris\x00\n"
                      f"d@example.org;{'D' * 201}\n"
                      f"e@example.org;{'E' * 200}\n").encode("utf-8"))
    summary = audience.import_csv(db, path, "subscribers", settings)
    assert [(p.line, p.field) for p in summary.invalid] == [(2, "name"), (4, "name"), (5, "name"), (6, "name")]
    assert "control characters" in summary.invalid[1].message and "\\x1b" in summary.invalid[1].message
    assert "201 characters" in summary.invalid[3].message
    assert summary.new == 1 and audience.find_subscriber(db, "e@example.org")["name"] == "E" * 200
    assert audience.find_subscriber(db, "a@example.org") is None


def test_a_mixed_utf8_and_cp1252_file_reads_each_line_right_and_says_which(db, settings, tmp_path):
    path = tmp_path / "gemengd.csv"
    path.write_bytes("email;naam\n".encode() + "jose@example.org;José Müller\n".encode("utf-8")
                     + "rene@example.org;René Brël\n".encode("cp1252")
                     + "zoe@example.org;Zoë Maës\n".encode("utf-8"))
    summary = audience.import_csv(db, path, "subscribers", settings)
    assert summary.encoding == "mixed: UTF-8, some lines Windows-1252"
    assert summary.cp1252_lines == [3]
    assert [(w.line, w.field) for w in summary.warnings] == [(3, "encoding")]
    names = {k: audience.find_subscriber(db, k)["name"] for k in
             ("jose@example.org", "rene@example.org", "zoe@example.org")}
    assert names == {"jose@example.org": "José Müller", "rene@example.org": "René Brël",
                     "zoe@example.org": "Zoë Maës"}


def test_the_file_is_never_read_whole(db, settings, tmp_path, monkeypatch):
    path = _people(tmp_path / "stroom.csv", 3_000)
    for method in ("read_bytes", "read_text"):
        original = getattr(Path, method)

        def guarded(self, *args, _original=original, **kwargs):
            assert self != path, f"{path.name} read whole"
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Path, method, guarded)
    summary = audience.import_csv(db, path, "subscribers", settings)
    assert summary.new == 3_000


def test_overlong_field_values_are_reported_by_line_and_left_out(db, settings, tmp_path):
    path = tmp_path / "lang.csv"
    path.write_text(f"email;notities;tags\na@example.org;{'n' * 1001};{'t' * 1001}\nb@example.org;kort;x\n",
                    encoding="utf-8")
    summary = audience.import_csv(db, path, "subscribers", settings)
    assert [(w.line, w.field) for w in summary.warnings] == [(2, "tags"), (2, "notities")]
    assert audience.find_subscriber(db, "a@example.org")["attributes"] == {}
    assert audience.find_subscriber(db, "b@example.org")["attributes"] == {"notities": "kort"}


def test_a_file_full_of_bad_lines_keeps_a_bounded_report(db, settings, tmp_path, monkeypatch):
    from postbode.audience import importrows

    monkeypatch.setattr(importrows, "MAX_KEPT", 5)
    path = tmp_path / "slecht.csv"
    path.write_text("email\n" + "".join(f"geen-adres-{i}\n" for i in range(12)) + "ok@example.org\n",
                    encoding="utf-8")
    summary = audience.import_csv(db, path, "subscribers", settings)
    assert (len(summary.invalid), summary.invalid_count, summary.new) == (5, 12, 1)
