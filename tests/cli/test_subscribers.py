"""The `subscribers` commands, run through the real CLI against the project's state database."""
from __future__ import annotations

import csv
import io

import pytest

from postbode import audience

from fixtures.state import connect

CORPUS_INVALID = "tests/data/csv/ten_percent_invalid.csv"


@pytest.fixture
def imported(invoke):
    for name, file in (("funders", "funders.csv"), ("donors", "donors.csv"), ("subscribers", "newsletter.csv")):
        result = invoke("subscribers", "import", f"subscribers/{file}", "--list", name)
        assert result.exit_code == 0, result.output
    return invoke


@pytest.mark.parametrize("command", ["import", "suppress", "list", "export", "forget", "unsubscribe", "segments"])
def test_every_command_has_help_with_an_example(invoke, command):
    result = invoke("subscribers", command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output and f"subscribers {command}" in result.output


def test_import_prints_a_summary_with_invalid_lines(invoke, repo_root, settings):
    result = invoke("subscribers", "import", str(repo_root / CORPUS_INVALID), "--list", "subscribers")
    assert result.exit_code == 0, result.output
    assert "ten_percent_invalid.csv:11: email:" in result.output
    assert "ten_percent_invalid.csv:21: email:" in result.output
    assert "new subscribers" in result.output and "18" in result.output
    conn = connect(settings.database)
    assert conn.exec_driver_sql("SELECT count(*) FROM subscribers").fetchone()[0] == 18


def test_dry_run_writes_nothing(invoke, settings):
    result = invoke("subscribers", "import", "subscribers/donors.csv", "--list", "donors", "--dry-run")
    assert result.exit_code == 0
    assert "dry run: nothing written" in result.output
    conn = connect(settings.database)
    assert conn.exec_driver_sql("SELECT count(*) FROM subscribers").fetchone()[0] == 0


def test_missing_email_column_exits_1_without_traceback(invoke, repo_root, settings):
    result = invoke("subscribers", "import", str(repo_root / "tests/data/csv/missing_email.csv"), "--list", "donors")
    assert result.exit_code == 1
    assert "missing_email.csv:1" in result.output and "no email column" in result.output
    assert "Traceback" not in result.output
    conn = connect(settings.database)
    assert conn.exec_driver_sql("SELECT count(*) FROM subscribers").fetchone()[0] == 0


def test_unknown_list_exits_1(invoke):
    result = invoke("subscribers", "import", "subscribers/donors.csv", "--list", "fundrs")
    assert result.exit_code == 1 and "unknown list 'fundrs'" in result.output


def test_list_segment_and_counts(imported):
    result = imported("subscribers", "list", "--segment", "funders")
    assert result.exit_code == 0
    assert "sophie.lambrecht@example.org" in result.output and "funders" in result.output
    counts = imported("subscribers", "list", "--segment", "donors", "--count")
    assert counts.exit_code == 0
    assert "nl_BE" in counts.output and "total" in counts.output and "10" in counts.output
    consent = imported("subscribers", "list", "--count")
    assert "subscribed" in consent.output and "25" in consent.output


def test_export_segment_and_everything(imported, project):
    result = imported("subscribers", "export", "--segment", "major_donors", "major.csv")
    assert result.exit_code == 0 and "3 rows written" in result.output
    rows = list(csv.DictReader(io.StringIO((project / "major.csv").read_text(encoding="utf-8"))))
    assert {r["email"] for r in rows} == {
        "pieter.ijsselstein@example.org", "noor.haddad@example.org", "emma.brouwer@example.org"}
    assert {(r["view"], r["formality"]) for r in rows} == {("donors", "formal")}
    result = imported("subscribers", "export", "all.csv")
    assert "25 rows written" in result.output
    rows = list(csv.DictReader(io.StringIO((project / "all.csv").read_text(encoding="utf-8"))))
    anouk = next(r for r in rows if r["email"] == "anouk.verbeek@example.org")
    assert anouk["lists"] == "donors;funders" and anouk["organisation"] == "Stichting Voorbeeldfonds"


def test_export_to_an_unwritable_place_is_a_clean_error_and_leaves_nothing(imported, project):
    blocked = project / "postbode.toml" / "all.csv"          # a folder inside a file cannot be made
    result = imported("subscribers", "export", str(blocked))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{blocked}: could not write the export" in " ".join(result.output.split())
    assert not list(project.glob(".all.csv.*"))


def test_export_reimports_into_a_fresh_database(imported, project):
    imported("subscribers", "export", "all.csv")
    fresh = project / "state" / "fresh.sqlite3"
    result = imported("subscribers", "import", "all.csv", "--list", "subscribers",
                      env={"POSTBODE_DB": str(fresh)})
    assert result.exit_code == 0, result.output
    conn = connect(fresh)
    row = audience.find_subscriber(conn, "pieter.ijsselstein@example.org")
    assert (row["name"], row["formality"], row["locale"]) == ("Pieter Ĳsselstein", "formal", "nl")
    assert conn.exec_driver_sql("SELECT count(*) FROM subscribers").fetchone()[0] == 25


def test_forget_and_unsubscribe_then_reimport(imported, settings):
    assert imported("subscribers", "forget", "Fleur.Smit@example.org").exit_code == 0
    assert imported("subscribers", "unsubscribe", "bram.devries@example.org").exit_code == 0
    again = imported("subscribers", "import", "subscribers/newsletter.csv", "--list", "subscribers")
    assert again.exit_code == 0
    conn = connect(settings.database)
    assert audience.find_subscriber(conn, "fleur.smit@example.org") is None
    assert audience.find_subscriber(conn, "bram.devries@example.org")["consent"] == "unsubscribed"
    emails = {r.email for r in audience.resolve(conn, ["everyone"], settings)}
    assert len(emails) == 23 and not emails & {"fleur.smit@example.org", "bram.devries@example.org"}


def test_segments_command_shows_views_and_counts(imported):
    result = imported("subscribers", "segments")
    assert result.exit_code == 0
    for name in ("funders", "donors", "subscribers", "everyone", "major_donors"):
        assert name in result.output


def test_import_summary_names_delimiter_and_number_style(invoke, project, settings):
    (project / "giften.csv").write_text("E-mail;Naam;Totaal gegeven\nanna@example.org;Anna;1.000\n",
                                        encoding="utf-8")
    result = invoke("subscribers", "import", "giften.csv", "--list", "donors")
    out = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "UTF-8, ;" in out and "numbers read as │ Dutch (nl: 1.250,50)" in out
    conn = connect(settings.database)
    assert audience.find_subscriber(conn, "anna@example.org")["attributes"]["total_given"] == 1000


def test_import_summary_reports_mixed_encoding_and_refused_names_by_line(invoke, project):
    (project / "gemengd.csv").write_bytes(
        "email;naam\n".encode() + "jose@example.org;José\n".encode("utf-8")
        + "rene@example.org;René\n".encode("cp1252") + b"x@example.org;X\x1b[31mrood\n")
    result = invoke("subscribers", "import", "gemengd.csv", "--list", "subscribers")
    out = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "mixed: UTF-8, some lines" in out and "Windows-1252" in out
    assert "gemengd.csv:3: encoding: not valid UTF-8" in out
    assert "gemengd.csv:4: name:" in out and "\\x1b" in out and "\x1b" not in result.output
