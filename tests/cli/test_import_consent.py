"""Consent that no import undoes: Mailchimp's and listmonk's exports as they are, sent through the CLI."""
from __future__ import annotations

from pathlib import Path

from postbode import audience

from conftest import SAMPLE
from fixtures.state import connect

# Mailchimp's export header rows, one file per status (merge field "Taal" after the names).
MC_START = '"Email Address","First Name","Last Name","Taal","MEMBER_RATING","OPTIN_TIME","OPTIN_IP",' \
           '"CONFIRM_TIME","CONFIRM_IP","LATITUDE","LONGITUDE","GMTOFF","DSTOFF","TIMEZONE","CC","REGION",'
MC_END = '"LEID","EUID","NOTES","TAGS"'
MC_SUBSCRIBED = MC_START + '"LAST_CHANGED",' + MC_END
MC_UNSUBSCRIBED = MC_START + '"UNSUB_TIME","UNSUB_CAMPAIGN_TITLE","UNSUB_CAMPAIGN_ID","UNSUB_REASON",' \
                             '"UNSUB_REASON_OTHER",' + MC_END
MC_CLEANED = MC_START + '"CLEAN_TIME","CLEAN_CAMPAIGN_TITLE","CLEAN_CAMPAIGN_ID",' + MC_END
TECH = '2,"2018-01-05 10:00:00",192.0.2.1,"2018-01-05 10:01:00",192.0.2.1,52.1,5.1,1,2,Europe/Amsterdam,NL,UT,'


def mc_row(email: str, first: str, last: str, taal: str, *middle: str, tags: str = "") -> str:
    quoted_tags = '"' + tags.replace('"', '""') + '"'
    return f'{email},{first},{last},{taal},{TECH}' + ",".join(middle) + f",123,abc,,{quoted_tags}"


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def mailchimp_files(folder: Path) -> tuple[Path, Path, Path]:
    """An old subscribed export (everyone), and today's unsubscribed and cleaned exports."""
    subscribed = write(folder / "subscribed_members_export_1a2b.csv", MC_SUBSCRIBED, [
        mc_row("anna@example.org", "Anna", "Groen", "Nederlands", '"2018-06-01 12:00:00"',
               tags='"Donateur","Gala 2018"'),
        mc_row("bram@example.org", "Bram", "de Vries", "Engels", '"2018-06-01 12:00:00"'),
        mc_row("chris@example.org", "Chris", "Smit", "Arabisch", '"2018-06-01 12:00:00"'),
        mc_row("dirk@example.org", "Dirk", "Maes", "Klingon", '"2018-06-01 12:00:00"'),
    ])
    unsubscribed = write(folder / "unsubscribed_members_export_1a2b.csv", MC_UNSUBSCRIBED, [
        mc_row("bram@example.org", "Bram", "de Vries", "Engels", '"2018-09-14 08:30:00"',
               '"Resultaten juli"', "c0ffee", "NORMAL", ""),
    ])
    cleaned = write(folder / "cleaned_members_export_1a2b.csv", MC_CLEANED, [
        mc_row("chris@example.org", "Chris", "Smit", "Arabisch", '"2018-10-01 09:00:00"',
               '"Resultaten juli"', "c0ffee"),
        mc_row("eva@example.org", "Eva", "Jansen", "Frans", '"2018-10-01 09:00:00"',
               '"Resultaten juli"', "c0ffee"),
    ])
    return subscribed, unsubscribed, cleaned


def listmonk_file(folder: Path) -> Path:
    return write(folder / "subscribers.csv", "uuid,email,name,attributes,status,created_at,updated_at", [
        '5e1c3a0e-0000-4000-8000-000000000001,dirk@example.org,Dirk Maes,"{}",blocklisted,'
        '2020-01-01 10:00:00.000000+01:00,2020-03-01 10:00:00.000000+01:00',
        '5e1c3a0e-0000-4000-8000-000000000002,fenna@example.org,Fenna Bakker,'
        '"{""lang"": ""en"", ""city"": ""Utrecht""}",enabled,'
        '2020-01-01 10:00:00.000000+01:00,2020-01-01 10:00:00.000000+01:00',
        '5e1c3a0e-0000-4000-8000-000000000003,gijs@example.org,Gijs Visser,"{}",disabled,'
        '2020-01-01 10:00:00.000000+01:00,2020-01-01 10:00:00.000000+01:00',
    ])


def imported(invoke, path: Path, *extra: str) -> str:
    result = invoke("subscribers", "import", str(path), "--list", "subscribers", *extra)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def sent_to(project: Path) -> set[str]:
    addresses = set()
    for path in (project / "outbox").rglob("*.eml"):
        for line in path.read_bytes().decode("utf-8", "replace").splitlines():
            if line.startswith("To:"):
                addresses.add(line.rsplit("<", 1)[-1].rstrip(">").strip().split()[-1])
    return addresses


def test_mailchimp_and_listmonk_exports_suppress_and_a_reimport_changes_nothing(invoke, project, tmp_path,
                                                                                send_settings):
    subscribed, unsubscribed, cleaned = mailchimp_files(tmp_path)
    first = imported(invoke, subscribed)
    assert "Mailchimp (subscribed)" in first and "new subscribers │ 4" in first
    assert "Klingon" in first  # an unknown language, reported by line
    out = imported(invoke, unsubscribed)
    assert "Mailchimp (unsubscribed)" in out and "suppressed now: unsubscribed in the file │ 1" in out
    out = imported(invoke, cleaned)
    assert "suppressed now: bounced in the file │ 2" in out
    out = imported(invoke, listmonk_file(tmp_path))
    assert "listmonk" in out and "suppressed now: blocklisted in the file │ 1" in out
    again = imported(invoke, subscribed)  # the old subscribed export, once more
    assert "already suppressed" in again and "new subscribers │ 0" in again

    conn = connect(send_settings.database)
    consent = {k: audience.find_subscriber(conn, k)["consent"] for k in
               ("anna@example.org", "bram@example.org", "chris@example.org", "dirk@example.org",
                "fenna@example.org", "gijs@example.org")}
    assert consent == {"anna@example.org": "subscribed", "bram@example.org": "unsubscribed",
                       "chris@example.org": "bounced", "dirk@example.org": "unsubscribed",
                       "fenna@example.org": "subscribed", "gijs@example.org": "unconfirmed"}
    assert audience.find_subscriber(conn, "eva@example.org") is None  # never a subscriber
    for address in ("bram@example.org", "chris@example.org", "dirk@example.org", "eva@example.org"):
        assert audience.is_suppressed(conn, address)
    reasons = dict(conn.exec_driver_sql("SELECT reason, count(*) FROM suppressions GROUP BY reason").all())
    assert reasons == {"unsubscribed": 1, "bounced": 2, "manual": 1}
    created = conn.exec_driver_sql("SELECT created FROM suppressions WHERE reason = 'unsubscribed'").scalar()
    assert created == "2018-09-14T08:30:00Z"  # UNSUB_TIME, not the time of the import

    result = invoke("send", SAMPLE, "--segment", "everyone", "--yes")
    assert result.exit_code == 0, result.output
    assert sent_to(project) == {"anna@example.org", "fenna@example.org"}


def test_mailchimp_tags_languages_and_no_technical_columns(invoke, tmp_path, settings):
    subscribed, _, _ = mailchimp_files(tmp_path)
    imported(invoke, subscribed)
    conn = connect(settings.database)
    anna = audience.find_subscriber(conn, "anna@example.org")
    assert anna["tags"] == ["donateur", "gala 2018"]
    assert (anna["name"], anna["locale"]) == ("Anna Groen", "nl")
    assert audience.find_subscriber(conn, "bram@example.org")["locale"] == "en"
    assert audience.find_subscriber(conn, "chris@example.org")["locale"] == "ar"
    attributes = anna["attributes"]
    assert not ({"optin_ip", "leid", "euid", "member_rating", "latitude"} & set(attributes))


def test_listmonk_attributes_become_fields_and_lang_the_locale(invoke, tmp_path, settings):
    imported(invoke, listmonk_file(tmp_path))
    conn = connect(settings.database)
    fenna = audience.find_subscriber(conn, "fenna@example.org")
    assert (fenna["name"], fenna["locale"], fenna["attributes"]) == ("Fenna Bakker", "en", {"city": "Utrecht"})


def test_reimport_without_unconfirmed_leaves_unconfirmed_people_unconfirmed(invoke, tmp_path, settings):
    path = write(tmp_path / "aanmeldingen.csv", "e-mail;naam", ["nieuw@example.org;Nieuw Lid"])
    imported(invoke, path, "--unconfirmed")
    out = imported(invoke, path)
    assert "unconfirmed, left unconfirmed │ 1" in out
    conn = connect(settings.database)
    assert audience.find_subscriber(conn, "nieuw@example.org")["consent"] == "unconfirmed"
    out = imported(invoke, path, "--consent-confirmed", "paper forms, gala 2018")
    assert "confirmed now (consent: paper forms, gala 2018) │ 1" in out
    assert audience.find_subscriber(conn, "nieuw@example.org")["consent"] == "subscribed"


def test_generic_status_column_in_dutch(invoke, tmp_path, settings):
    path = write(tmp_path / "crm.csv", "e-mail;naam;status", [
        "een@example.org;Een;ingeschreven", "twee@example.org;Twee;afgemeld",
        "drie@example.org;Drie;gebounced", "vier@example.org;Vier;geblokkeerd",
        "vijf@example.org;Vijf;misschien"])
    out = imported(invoke, path)
    assert "crm.csv:6: status: unknown status 'misschien'" in out
    for status in ("unsubscribed", "bounced", "blocklisted"):
        assert f"suppressed now: {status} in the file │ 1" in out
    conn = connect(settings.database)
    assert audience.find_subscriber(conn, "vijf@example.org") is None
    assert {r.email for r in audience.resolve(conn, ["everyone"], settings)} == {"een@example.org"}


def test_suppress_command_from_a_list_and_from_a_csv(invoke, tmp_path, settings):
    imported(invoke, write(tmp_path / "leden.csv", "email", ["a@example.org", "b@example.org", "c@example.org"]))
    plain = tmp_path / "weg.txt"
    plain.write_text("A@example.org\nniet-een-adres\n\nx@example.org\ny@example.org;Yvonne\n", encoding="utf-8")
    result = invoke("subscribers", "suppress", str(plain))
    out = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "weg.txt:2: email:" in out and "3 addresses suppressed now (unsubscribed)" in out
    bounced = write(tmp_path / "bounces.csv", "Naam;E-mailadres", ["Bee;b@example.org"])
    result = invoke("subscribers", "suppress", str(bounced), "--reason", "bounced")
    assert result.exit_code == 0 and "1 subscribers changed to bounced" in " ".join(result.output.split())
    conn = connect(settings.database)
    assert {r.email for r in audience.resolve(conn, ["everyone"], settings)} == {"c@example.org"}
    assert audience.is_suppressed(conn, "x@example.org") and audience.is_suppressed(conn, "y@example.org")
    imported(invoke, tmp_path / "leden.csv")
    assert {r.email for r in audience.resolve(conn, ["everyone"], settings)} == {"c@example.org"}


def test_duplicates_say_which_row_was_kept(invoke, repo_root):
    out = imported(invoke, repo_root / "tests/data/csv/duplicates.csv")
    assert "duplicates.csv:3: email: same address as line 2; merged: line 3's values kept" in out
    assert "duplicates.csv:4: email: same address as line 2" in out
