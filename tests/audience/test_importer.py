"""CSV import into the state database: the corpus of real-world exports, consent, concurrency."""
from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import text

from postbode import audience
from postbode.config import Settings, load_settings
from postbode.audience.csvsource import sniff_delimiter
from postbode.audience.importer import CsvError
from postbode.errors import AudienceError, InputError
from postbode.store import Connection

from fixtures.state import as_json, connect

# state tests: once on a SQLite file, once on PostgreSQL (tests/fixtures/state.py)
pytestmark = pytest.mark.both_engines

CORPUS = Path(__file__).parents[1] / "data" / "csv"


def subscribers(conn: Connection) -> dict[str, dict]:
    rows = conn.exec_driver_sql("SELECT * FROM subscribers").mappings()
    return {row["email_key"]: row for row in rows}


def members(conn: Connection, list_name: str) -> set[str]:
    rows = conn.execute(text(
        "SELECT s.email_key FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id"
        " WHERE m.list = :name"), {"name": list_name})
    return {key for (key,) in rows}


def run(conn, settings, name: str, list_name: str = "subscribers", **kw):
    return audience.import_csv(conn, CORPUS / name, list_name, settings, **kw)


def test_bom_semicolons_dutch_headers_and_locales(db, settings):
    summary = run(db, settings, "bom_semicolon.csv")
    assert (summary.encoding, summary.delimiter, summary.new) == ("UTF-8 (BOM)", ";", 3)
    rows = subscribers(db)
    kees = rows["kees.ĳzerman@example.org"]
    assert kees["name"] == "Kees Ĳzerman"  # the ĳ ligature arrives intact from UTF-8
    assert (kees["locale"], kees["formality"]) == ("nl_BE", "formal")
    assert rows["anna.groen@example.org"]["formality"] == "informal"
    zoe = rows["zoe.maes@example.org"]
    assert (zoe["name"], zoe["locale"], zoe["formality"]) == ("Zoë Maës", "nl_BE", None)
    assert zoe["consent"] == "subscribed"
    assert zoe["consent_source"] == f"import {CORPUS / 'bom_semicolon.csv'}"


def test_cp1252_accents_arrive_intact_and_ij_as_two_letters(db, settings):
    summary = run(db, settings, "cp1252.csv")
    assert (summary.encoding, summary.delimiter, summary.new) == ("Windows-1252", ";", 3)
    names = {r["email_key"]: r["name"] for r in subscribers(db).values()}
    assert names == {
        "rene@example.org": "René Brël",
        "ijsbrand@example.org": "IJsbrand van Rijswijk",
        "chloe@example.org": "Chloë Müller",
    }


def test_quoted_fields_with_delimiters_and_newlines(db, settings):
    summary = run(db, settings, "quoted.csv")
    assert summary.new == 3
    assert [(p.line, p.field) for p in summary.invalid] == [(5, "email")]
    rows = subscribers(db)
    one = rows["q.one@example.org"]
    assert one["name"] == "Jansen, Piet"
    assert as_json(one["attributes"]) == {"notes": "line one\nline two, with comma"}
    assert as_json(one["tags"]) == ["a", "b"]
    assert rows["q.two@example.org"]["name"] == 'Dubbel "quote" Naam'


def test_tab_delimited_english_headers_unknown_locale_falls_back(db, settings):
    summary = run(db, settings, "tabs.tsv")
    assert (summary.delimiter, summary.new, summary.unknown_locales) == ("\t", 2, 1)
    assert [(w.line, w.field) for w in summary.warnings] == [(3, "locale")]
    rows = subscribers(db)
    assert rows["tab.one@example.org"]["name"] == "Tess Ab"
    assert rows["tab.two@example.org"]["locale"] is None
    recipients = {r.email: r for r in audience.resolve(db, ["everyone"], settings)}
    assert recipients["tab.two@example.org"].locale == settings.default_locale
    assert recipients["tab.one@example.org"].locale == "en"


def test_missing_email_column_is_a_clear_error_and_imports_nothing(db, settings):
    with pytest.raises(CsvError) as err:
        run(db, settings, "missing_email.csv")
    text = str(err.value)
    assert "missing_email.csv:1" in text
    assert "'naam', 'taal', 'telefoon'" in text
    assert "e-mail" in text
    assert isinstance(err.value, InputError) and isinstance(err.value, AudienceError)
    assert db.exec_driver_sql("SELECT count(*) FROM subscribers").fetchone()[0] == 0


def test_empty_file_is_a_clear_error(db, settings):
    with pytest.raises(CsvError, match=r"empty\.csv:1: the file is empty"):
        run(db, settings, "empty.csv")
    assert db.exec_driver_sql("SELECT count(*) FROM lists").fetchone()[0] == 0


def test_header_only_imports_nothing_without_error(db, settings):
    summary = run(db, settings, "header_only.csv")
    assert (summary.rows, summary.new, summary.invalid) == (0, 0, [])
    assert db.exec_driver_sql("SELECT count(*) FROM subscribers").fetchone()[0] == 0


def test_ten_percent_invalid_reported_by_line_rest_imported(db, settings):
    summary = run(db, settings, "ten_percent_invalid.csv")
    assert summary.rows == 20
    assert [p.line for p in summary.invalid] == [11, 21]
    assert all("ten_percent_invalid.csv" in str(p) for p in summary.invalid)
    assert summary.new == 18
    assert len(members(db, "subscribers")) == 18


def test_duplicates_merged_case_insensitively(db, settings):
    summary = run(db, settings, "duplicates.csv")
    assert (summary.rows, summary.new, summary.duplicates) == (3, 1, 2)
    (row,) = subscribers(db).values()
    assert row["email"] == "Dup@example.org"  # local part as first given, domain lower-cased
    assert (row["name"], row["locale"]) == ("Dup Licaat", "en")
    assert as_json(row["tags"]) == ["one", "two"]
    assert as_json(row["attributes"]) == {"donor_tier": "major"}


def test_dry_run_writes_nothing_but_counts_exactly(db, settings):
    summary = run(db, settings, "ten_percent_invalid.csv", dry_run=True)
    assert (summary.new, summary.added_to_list, summary.dry_run) == (18, 18, True)
    for table in ("subscribers", "memberships", "lists", "audience_events"):
        assert db.exec_driver_sql(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_reimport_never_confirms_silently_only_consent_confirmed_does(db, settings):
    run(db, settings, "bom_semicolon.csv", unconfirmed=True)
    assert {r["consent"] for r in subscribers(db).values()} == {"unconfirmed"}
    assert list(audience.resolve(db, ["everyone"], settings)) == []
    assert audience.plan_counts(db, ["everyone"], settings).left_out == {"unconfirmed": 3}
    summary = run(db, settings, "bom_semicolon.csv")
    assert (summary.new, summary.existing, summary.unconfirmed_kept) == (0, 3, 3)
    assert {r["consent"] for r in subscribers(db).values()} == {"unconfirmed"}
    assert list(audience.resolve(db, ["everyone"], settings)) == []
    confirmed = run(db, settings, "bom_semicolon.csv", consent_confirmed="paper forms, gala 2018")
    assert (confirmed.confirmed, confirmed.unconfirmed_kept) == (3, 0)
    rows = subscribers(db).values()
    assert {(r["consent"], r["consent_source"]) for r in rows} == {("subscribed", "paper forms, gala 2018")}
    events = db.exec_driver_sql("SELECT kind, detail FROM audience_events WHERE email_hash IS NOT NULL"
                                " ORDER BY id").all()
    assert [k for k, _ in events] == ["unconfirmed"] * 3 + ["subscribed"] * 3
    assert {as_json(d)["confirmed_by"] for _, d in events[3:]} == {"paper forms, gala 2018"}


def test_unconfirmed_and_consent_confirmed_together_are_refused(db, settings):
    with pytest.raises(AudienceError, match="contradict"):
        run(db, settings, "bom_semicolon.csv", unconfirmed=True, consent_confirmed="forms")
    assert db.exec_driver_sql("SELECT count(*) FROM subscribers").fetchone()[0] == 0


def test_reimport_keeps_unsubscribed_bounced_complained_suppressed(db, settings):
    run(db, settings, "ten_percent_invalid.csv")
    audience.unsubscribe(db, "user1@example.org", source="test")
    audience.suppress(db, "USER2@example.org", "bounced", source="smtp 550 5.1.1")
    audience.suppress(db, "user3@example.org", "complained", source="feedback loop")
    summary = run(db, settings, "ten_percent_invalid.csv", list_name="donors")
    assert summary.suppressed == 3
    rows = subscribers(db)
    assert [rows[f"user{i}@example.org"]["consent"] for i in (1, 2, 3)] == ["unsubscribed", "bounced", "complained"]
    assert "user1@example.org" not in members(db, "donors")
    assert all(audience.is_suppressed(db, f"user{i}@example.org") for i in (1, 2, 3))
    assert not audience.is_suppressed(db, "user4@example.org")
    sent_to = {r.email for r in audience.resolve(db, ["everyone"], settings)}
    assert len(sent_to) == 15 and not sent_to & {f"user{i}@example.org" for i in (1, 2, 3)}


def test_forgotten_address_cannot_come_back_through_import(db, settings):
    run(db, settings, "ten_percent_invalid.csv")
    assert audience.forget(db, "User5@Example.org") is True
    assert audience.find_subscriber(db, "user5@example.org") is None
    assert "user5" not in json.dumps([tuple(r) for r in db.exec_driver_sql("SELECT * FROM audience_events")])
    summary = run(db, settings, "ten_percent_invalid.csv")
    assert summary.suppressed == 1
    assert audience.find_subscriber(db, "user5@example.org") is None
    assert audience.is_suppressed(db, "user5@example.org")


def test_unknown_list_is_refused(db, settings):
    with pytest.raises(AudienceError, match=r"unknown list 'fundrs'.*funders, donors, subscribers"):
        run(db, settings, "bom_semicolon.csv", list_name="fundrs")


def test_typed_fields_from_dutch_excel(db, settings, tmp_path):
    path = tmp_path / "giften.csv"
    path.write_text("e-mail;Donateurtype;Laatste gift;Totaal gegeven\n"
                    "a@example.org;major;31-12-2018;1.250,50\n"
                    "b@example.org;regular;gisteren;veel\n", encoding="utf-8")
    summary = audience.import_csv(db, path, "donors", settings)
    assert [(w.line, w.field) for w in summary.warnings] == [(3, "last_gift"), (3, "total_given")]
    rows = subscribers(db)
    assert as_json(rows["a@example.org"]["attributes"]) == {
        "donor_tier": "major", "last_gift": "2018-12-31", "total_given": 1250.5}
    assert as_json(rows["b@example.org"]["attributes"]) == {"donor_tier": "regular"}


@pytest.mark.slow
@pytest.mark.sqlite_only  # bounded cost: 50,000 rows re-imported twice
def test_fifty_thousand_rows(db, settings, tmp_path):
    path = tmp_path / "big.csv"
    lines = ["E-mail;Naam;Taal;Tags"]
    lines += [f"person{i}@example.org;Persoon {i};{('nl', 'en', 'de', 'ar', 'nl-BE')[i % 5]};t{i % 7}"
              for i in range(50_000)]
    path.write_text("\n".join(lines) + "\n", encoding="cp1252")
    summary = audience.import_csv(db, path, "subscribers", settings)
    assert (summary.rows, summary.new, summary.invalid) == (50_000, 50_000, [])
    plan = audience.plan_counts(db, ["everyone"], settings)
    assert plan.total == 50_000
    assert plan.recipients[("everyone", "nl_BE")] == 10_000
    again = audience.import_csv(db, path, "subscribers", settings)
    assert (again.new, again.existing, again.added_to_list) == (0, 50_000, 0)


# ---------------------------------------------------------------- two imports at once


def _import_in_process(config: str, db_path: str, csv_path: str, list_name: str) -> int:
    settings = load_settings(Path(config), env={"POSTBODE_DB": db_path})
    conn = connect(settings.database)
    summary = audience.import_csv(conn, Path(csv_path), list_name, settings)
    conn.close()
    return summary.new + summary.existing


def _write_people(path: Path, start: int, count: int) -> None:
    rows = [f"shared{i}@example.org,Gedeeld {i}" for i in range(2_000)]  # in both files
    rows += [f"p{i}@example.org,Persoon {i}" for i in range(start, start + count)]
    path.write_text("email,name\n" + "\n".join(rows) + "\n", encoding="utf-8")


@pytest.mark.slow
@pytest.mark.sqlite_only
def test_two_imports_at_once_neither_corrupts_nor_loses_rows(settings: Settings, tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    _write_people(first, 0, 20_000)
    _write_people(second, 20_000, 20_000)
    db_path = str(settings.database)
    connect(db_path).close()
    config = str(settings.root / "postbode.toml")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        jobs = [pool.apply_async(_import_in_process, (config, db_path, str(path), name))
                for path, name in ((first, "donors"), (second, "subscribers"))]
        assert [job.get(timeout=300) for job in jobs] == [22_000, 22_000]
    conn = connect(db_path)
    assert conn.exec_driver_sql("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.exec_driver_sql("SELECT count(*) FROM subscribers").fetchone()[0] == 42_000
    assert len(members(conn, "donors")) == 22_000
    assert len(members(conn, "subscribers")) == 22_000
    both = conn.exec_driver_sql("SELECT count(*) FROM (SELECT subscriber_id FROM memberships"
                        " GROUP BY subscriber_id HAVING count(*) = 2)").fetchone()[0]
    assert both == 2_000


def test_sniff_delimiter():
    assert sniff_delimiter('"a;b",c,d\n1;2;3') == ","
    assert sniff_delimiter("email\nx@example.org") == ","
    assert sniff_delimiter("a\tb;c\tc") == "\t"


def test_utf16_file_with_bom(db, settings, tmp_path):
    path = tmp_path / "utf16.csv"
    path.write_text("email;naam\nzoe@example.org;Zoë\n", encoding="utf-16")
    summary = audience.import_csv(db, path, "subscribers", settings)
    assert (summary.encoding, summary.new) == ("UTF-16", 1)
    assert subscribers(db)["zoe@example.org"]["name"] == "Zoë"


def test_each_domain_is_checked_once_per_import_and_the_check_is_restored(db, settings, tmp_path,
                                                                         monkeypatch):
    import importlib

    validator = importlib.import_module("email_validator.validate_email")
    original = validator.validate_email_domain_name
    checked: list[str] = []

    def counting(domain, **kwargs):
        checked.append(domain)
        return original(domain, **kwargs)

    monkeypatch.setattr(validator, "validate_email_domain_name", counting)
    path = tmp_path / "many.csv"
    path.write_text("email\n" + "".join(f"p{i}@example.org\nq{i}@Example.net\n" for i in range(50)),
                    encoding="utf-8")
    summary = audience.import_csv(db, path, "subscribers", settings)
    assert summary.new == 100
    assert sorted(checked) == ["Example.net", "example.org"]
    assert validator.validate_email_domain_name is counting  # put back after the import
    audience.normalise("r@example.org")
    assert len(checked) == 3  # outside an import every address is checked again


# ---------------------------------------------------------------- numbers in the file's notation


def _giften(tmp_path, delimiter: str, values: list[str]) -> Path:
    path = tmp_path / "giften.csv"
    rows = [f"p{i}@example.org{delimiter}\"{v}\"" for i, v in enumerate(values)]
    path.write_text(f"e-mail{delimiter}Totaal gegeven\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _totals(db) -> dict[str, object]:
    return {k: as_json(r["attributes"]).get("total_given") for k, r in subscribers(db).items()}


def test_dutch_amounts_are_read_the_dutch_way(db, settings, tmp_path):
    summary = audience.import_csv(db, _giften(tmp_path, ";", ["1.000", "1.250,50", "250", "€ 12,5"]),
                                  "donors", settings)
    assert _totals(db) == {"p0@example.org": 1000, "p1@example.org": 1250.5, "p2@example.org": 250,
                           "p3@example.org": 12.5}
    assert summary.delimiter == ";" and summary.number_style.startswith("Dutch (nl: 1.250,50)")
    assert summary.warnings == []


def test_an_ambiguous_thousand_is_read_in_the_source_language(db, settings, tmp_path):
    summary = audience.import_csv(db, _giften(tmp_path, ",", ["1.000", "2.500"]), "donors", settings)
    assert _totals(db) == {"p0@example.org": 1000, "p1@example.org": 2500}
    assert "source language" in summary.number_style


def test_an_english_file_is_read_the_english_way(db, settings, tmp_path):
    summary = audience.import_csv(db, _giften(tmp_path, ",", ["1,250.50", "1000", "12.5"]), "donors", settings)
    assert _totals(db) == {"p0@example.org": 1250.5, "p1@example.org": 1000, "p2@example.org": 12.5}
    assert summary.number_style.startswith("English (en: 1,250.50)")


def test_a_value_in_the_other_notation_is_reported_with_both_readings(db, settings, tmp_path):
    summary = audience.import_csv(db, _giften(tmp_path, ";", ["1.250,50", "2.000,00", "1250.50"]),
                                  "donors", settings)
    (warning,) = summary.warnings
    assert (warning.line, warning.field) == (4, "total_given")
    assert "1250.50" in warning.message and "English" in warning.message and "1.250,50" in warning.message
    assert _totals(db)["p2@example.org"] is None
