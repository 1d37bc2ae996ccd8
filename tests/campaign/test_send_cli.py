"""The `send` and `report` commands, run as a user runs them, in a temporary project."""
from __future__ import annotations

import csv
import email
import email.policy
import re

import pytest

from postbode import journal, store

from conftest import SAMPLE

CAMPAIGN = "2018-07-resultaten--everyone"


def flat(text: str) -> str:
    return " ".join(text.split())


def outbox_files(project) -> list:
    return sorted((project / "outbox").rglob("*.eml"))


@pytest.mark.parametrize("command", ["send", "report"])
def test_help_has_a_summary_and_an_example(invoke, command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output and "python send.py " + command in result.output


def test_main_command_imports_the_samples_sends_and_a_rerun_sends_nothing(invoke, project,
                                                                          send_settings,
                                                                          monkeypatch):
    monkeypatch.delenv("POSTBODE_SECRET_KEY")
    result = invoke("send", SAMPLE, "--segment", "everyone", "--yes")
    out = flat(result.output)
    assert result.exit_code == 0, result.output
    assert "had no subscribers: imported the sample lists" in out
    assert "development key" in out
    total = re.search(r"total │ (\d+) │ 0 │ 0 │ 0 │ 0", out)
    assert total, out
    assert len(outbox_files(project)) == int(total.group(1)) > 0
    again = invoke("send", SAMPLE, "--segment", "everyone", "--yes")
    assert again.exit_code == 0
    assert "is finished; nothing left to send" in flat(again.output)
    assert "imported" not in again.output
    assert len(outbox_files(project)) == int(total.group(1))


def test_without_a_terminal_it_refuses_to_send_unless_yes(invoke, project, send_settings,
                                                          state_conn):
    result = invoke("send", SAMPLE, "--segment", "everyone")
    assert result.exit_code == 1
    assert "add --yes" in flat(result.output)
    assert "Traceback" not in result.output
    assert outbox_files(project) == []
    conn = state_conn()
    assert journal.list_campaigns(conn) == []


def test_dry_run_builds_every_message_and_sends_none(invoke, project, send_settings):
    result = invoke("send", SAMPLE, "--segment", "funders", "--segment", "donors", "--dry-run")
    assert result.exit_code == 0, result.output
    built = re.search(r"dry run: built (\d+) messages", flat(result.output))
    assert built and int(built.group(1)) > 0
    assert outbox_files(project) == []
    assert "no campaigns yet" in flat(invoke("report").output)


def test_test_to_sends_one_marked_mail_per_variant_and_journals_nothing(invoke, project,
                                                                        send_settings):
    result = invoke("send", SAMPLE, "--segment", "everyone", "--test-to", "proef@example.net")
    assert result.exit_code == 0, result.output
    files = outbox_files(project)
    subjects = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default)["Subject"]
                for f in files]
    assert files and all(re.match(r"\[TEST [a-z_A-Z]+ · [a-z]+\] ", s) for s in subjects), subjects
    assert all(b"To: proef@example.net" in f.read_bytes() for f in files)
    assert "no campaigns yet" in flat(invoke("report").output)


def test_test_to_narrows_to_a_locale_and_a_segment_and_names_each_variant(invoke, project,
                                                                           send_settings):
    result = invoke("send", SAMPLE, "--segment", "funders", "--locale", "nl",
                    "--test-to", "proef@example.net")
    assert result.exit_code == 0, result.output
    parsed = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
              for f in outbox_files(project)]
    assert parsed and {m["X-Postbode-Test"] for m in parsed} <= {"locale=nl; view=funders",
                                                                 "locale=nl_BE; view=funders"}
    assert all(m["Subject"].startswith(("[TEST nl · funders] ", "[TEST nl_BE · funders] ")) for m in parsed)
    unknown = invoke("send", SAMPLE, "--segment", "funders", "--locale", "fr", "--test-to", "p@example.net")
    assert unknown.exit_code == 1 and "reads fr" in flat(unknown.output)


def test_report_lists_counts_and_writes_the_csv(invoke, project, send_settings, tmp_path):
    assert invoke("send", SAMPLE, "--segment", "everyone", "--yes").exit_code == 0
    listing = flat(invoke("report").output)
    assert CAMPAIGN in listing and "finished" in listing
    detail = invoke("report", CAMPAIGN)
    assert detail.exit_code == 0 and re.search(r"total │ 0 │ 0 │ \d+ │ 0 │", flat(detail.output))
    target = tmp_path / "sent.csv"
    assert invoke("report", CAMPAIGN, "--csv", str(target)).exit_code == 0
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert rows and all(r["state"] == "sent" and r["message_id"].startswith("<") and
                        r["provider_id"].endswith(".eml") and r["time"] for r in rows)
    assert len({r["email"].lower() for r in rows}) == len(rows)


def test_report_of_an_unknown_campaign_is_a_clear_error(invoke, send_settings):
    result = invoke("report", "nope")
    assert result.exit_code == 1
    assert "no campaign 'nope'" in flat(result.output) and "Traceback" not in result.output
    assert invoke("report", "--csv", "x.csv").exit_code == 1


def test_a_changed_newsletter_needs_new_campaign(invoke, project, send_settings):
    assert invoke("send", SAMPLE, "--segment", "everyone", "--yes").exit_code == 0
    source = project / SAMPLE
    source.write_text(source.read_text(encoding="utf-8").replace("2018", "2018 ", 1),
                      encoding="utf-8")
    refused = invoke("send", SAMPLE, "--segment", "everyone", "--yes")
    assert refused.exit_code == 1
    assert SAMPLE in flat(refused.output) and "--new-campaign" in refused.output
    again = invoke("send", SAMPLE, "--segment", "everyone", "--yes", "--new-campaign", "--again")
    assert again.exit_code == 0, again.output
    assert f"{CAMPAIGN}--2" in flat(again.output) and "--again: sending again to" in flat(again.output)


def test_real_transports_need_a_signing_key(invoke, project, monkeypatch):
    monkeypatch.delenv("POSTBODE_SECRET_KEY", raising=False)
    result = invoke("send", SAMPLE, "--segment", "everyone", "--yes",
                    "--transport", "smtp://127.0.0.1:2525?tls=none")
    assert result.exit_code == 1
    assert "POSTBODE_SECRET_KEY" in result.output and "Traceback" not in result.output


def test_a_used_up_quota_pauses_with_exit_code_3(invoke, project, send_settings):
    toml = project / "postbode.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("hourly_quota = 0",
                                                             "hourly_quota = 7"))
    result = invoke("send", SAMPLE, "--segment", "everyone", "--yes", "--concurrency", "1")
    assert result.exit_code == 3, result.output
    assert "run the same command again" in flat(result.output)
    assert len(outbox_files(project)) == 7
    assert re.search(r"total │ 7 │ 0 │ 0 │ 0 │ \d+", flat(result.output))


def test_unknown_segment_is_a_clear_error(invoke, send_settings):
    result = invoke("send", SAMPLE, "--segment", "nobody", "--yes")
    assert result.exit_code == 1
    assert "nobody" in result.output and "Traceback" not in result.output


def test_a_segment_without_recipients_sends_nothing_and_says_so(invoke, project, send_settings,
                                                                state_conn):
    from postbode import audience

    conn = state_conn()
    audience.import_samples_if_empty(conn, send_settings)
    for row in conn.exec_driver_sql("SELECT email FROM subscribers").mappings().all():
        audience.unsubscribe(conn, row["email"], "test")
    result = invoke("send", SAMPLE, "--segment", "funders", "--yes")
    assert result.exit_code == 0, result.output
    assert "nothing to send" in flat(result.output)
    assert journal.list_campaigns(conn) == []


def _mails(project) -> dict[str, str]:
    """Recipient address → HTML part of the mail the outbox holds for them (one each, asserted)."""
    import email
    import email.policy
    from email.utils import parseaddr

    mails: dict[str, str] = {}
    for path in outbox_files(project):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        address = parseaddr(str(parsed["To"]))[1].lower()
        assert address not in mails, f"{address} got two mails"
        mails[address] = parsed.get_body(("html",)).get_content()
    return mails


def test_funders_and_donors_each_get_their_own_view_once(invoke, project, send_settings,
                                                         state_conn):
    from postbode import audience

    conn = state_conn()
    audience.import_samples_if_empty(conn, send_settings)
    funders = {r.email.lower() for r in audience.resolve(conn, ["funders"], send_settings)}
    donors = {r.email.lower() for r in audience.resolve(conn, ["donors"], send_settings)}
    assert funders & donors, "the sample should have someone on both lists"
    result = invoke("send", SAMPLE, "--segment", "funders", "--segment", "donors", "--yes")
    assert result.exit_code == 0, result.output
    mails = _mails(project)
    assert set(mails) == funders | donors
    funders_only, donors_only = 'id="verantwoording"', 'id="donateurs"'  # the sections' ids
    for address in funders:                       # first segment asked for wins for people in both
        assert funders_only in mails[address] and donors_only not in mails[address], address
    for address in donors - funders:
        assert donors_only in mails[address] and funders_only not in mails[address], address


def test_unsubscribed_between_two_runs_of_a_campaign_is_skipped(invoke, project, send_settings,
                                                                state_conn):
    toml = project / "postbode.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("hourly_quota = 0", "hourly_quota = 5"))
    paused = invoke("send", SAMPLE, "--segment", "everyone", "--yes", "--concurrency", "1")
    assert paused.exit_code == 3, paused.output
    conn = state_conn()
    campaign_id = journal.list_campaigns(conn)[0].id
    waiting = [row["email"] for row in journal.iter_rows(conn, campaign_id) if row["state"] == "pending"]
    assert waiting
    late = waiting[-1]
    assert invoke("subscribers", "unsubscribe", late).exit_code == 0
    toml.write_text(toml.read_text(encoding="utf-8").replace("hourly_quota = 5", "hourly_quota = 0"))
    resumed = invoke("send", SAMPLE, "--segment", "everyone", "--yes")
    assert resumed.exit_code == 0, resumed.output
    mails = _mails(project)
    assert late.lower() not in mails
    assert len(mails) == len(list(journal.iter_rows(conn, campaign_id))) - 1


def test_forget_then_reimport_leaves_the_address_out(invoke, project, send_settings):
    first = invoke("subscribers", "import", "subscribers/donors.csv", "--list", "donors")
    assert first.exit_code == 0, first.output
    forgotten = "marieke.vandam@example.org"
    assert forgotten in invoke("subscribers", "list").output
    assert invoke("subscribers", "forget", forgotten).exit_code == 0
    again = invoke("subscribers", "import", "subscribers/donors.csv", "--list", "donors")
    assert again.exit_code == 0, again.output
    assert forgotten not in invoke("subscribers", "list").output
    result = invoke("send", SAMPLE, "--segment", "donors", "--yes")
    assert result.exit_code == 0, result.output
    assert forgotten not in _mails(project)


def test_a_bad_transport_url_in_postbode_toml_is_named_before_anything_happens(invoke, project,
                                                                              send_settings):
    toml = project / "postbode.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('transport = "outbox://outbox"',
                                                             'transport = "outbx://outbox"'))
    result = invoke("send", SAMPLE, "--segment", "everyone", "--yes")
    assert result.exit_code == 1
    out = flat(result.output)
    assert "unknown transport outbx://" in out and "[send] transport in" in out
    assert not send_settings.database.exists()
    result = invoke("send", SAMPLE, "--segment", "everyone", "--yes", "--transport", "smtp://h:port")
    assert result.exit_code == 1 and "(the URL comes from --transport)" in flat(result.output)


def test_a_run_of_transient_failures_pauses_with_exit_code_3_and_says_how_to_resume(
        invoke, project, send_settings, smtp_server, monkeypatch, state_conn):
    monkeypatch.setenv("POSTBODE_SMTP_PASSWORD", smtp_server.password)
    smtp_server.faults.random_451_rate = 1.0
    result = invoke("send", SAMPLE, "--segment", "everyone", "--yes", "--transport", smtp_server.url)
    assert result.exit_code == 3, result.output
    out = flat(result.output)
    assert "sends in a row failed" in out and "451" in out and "run the same command again" in out
    assert "Traceback" not in result.output
    assert smtp_server.received == []
    conn = state_conn()
    (paused,) = journal.list_campaigns(conn)
    states = {row["state"] for row in journal.iter_rows(conn, paused.id)}
    assert "claimed" not in states and "sent" not in states and "retry" in states


def test_the_plan_shows_who_is_left_out_and_which_locales_fall_back(invoke, project, send_settings,
                                                                    state_conn):
    from postbode import audience, i18n
    from postbode.content import load_newsletter

    conn = state_conn()
    audience.import_samples_if_empty(conn, send_settings)
    audience.unsubscribe(conn, "marieke.vandam@example.org", "test")
    (project / "late.csv").write_text("e-mail;naam;taal\nlaat@example.org;Laat;de_AT\n", encoding="utf-8")
    assert invoke("subscribers", "import", "late.csv", "--list", "donors", "--unconfirmed").exit_code == 0
    result = invoke("send", SAMPLE, "--segment", "everyone", "--dry-run")
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    left = re.search(r"left out: ([^\n]*?) transport:", out)
    assert left and sorted(left.group(1).split(", ")) == ["1 unconfirmed", "1 unsubscribed"]
    sample = load_newsletter(project / SAMPLE)
    for language in ("de", "ar"):
        report = i18n.completeness(sample, language, send_settings)
        lacking = len(report.missing) + len(report.fuzzy)
        assert lacking > 0
        assert re.search(rf"everyone │ {language} │ {language} → nl │ {lacking} of \d+ texts │ \d+ │", out)
    assert re.search(r"everyone │ en │ en → nl │ │ \d+ │", out)
    assert re.search(r"everyone │ nl_BE │ nl │ │ \d+ │", out)
    assert "check newsletters/2018-07-resultaten.yaml --locale L" in out


def test_on_a_terminal_a_progress_bar_counts_to_the_end(invoke, project, send_settings, monkeypatch):
    import io

    from rich.console import Console

    from postbode.cli import send as send_cli

    screen = io.StringIO()
    monkeypatch.setattr(send_cli, "console", Console(file=screen, force_terminal=True, width=120,
                                                     color_system=None, highlight=False))
    result = invoke("send", SAMPLE, "--segment", "everyone", "--yes")
    assert result.exit_code == 0, result.output
    shown = screen.getvalue()
    total = len(outbox_files(project))
    assert total > 0
    assert re.search(rf"sending .*\b{total}/{total}\b.*100%", shown), repr(shown[-1500:])


def test_the_progress_bar_shows_the_rate_and_the_time_left(monkeypatch):
    import io

    from rich.console import Console

    from postbode.cli import send as send_cli

    clock = [1000.0]
    screen = io.StringIO()
    monkeypatch.setattr(send_cli, "console", Console(
        file=screen, force_terminal=True, width=120, color_system=None, highlight=False,
        get_time=lambda: clock[0]))
    with send_cli._progress() as update:
        for done in range(0, 600, 100):   # 100 mails a second, for five seconds
            update(done, 1000)
            clock[0] += 1.0
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())   # cursor codes
    last = [line for line in shown.splitlines() if "sending" in line][-1]
    assert re.search(r"500/1000\s+50%\s+100 msg/s\s+0:00:05", last), repr(last)


def test_the_plan_counts_who_gets_a_personal_fields_fallback(invoke, project, send_settings):
    newsletter = project / SAMPLE
    text = newsletter.read_text(encoding="utf-8")
    newsletter.write_text(text.replace("  in gang hebben gezet.",
                                       "  in gang hebben gezet. Dank voor {total_given|uw steun}."),
                          encoding="utf-8")
    result = invoke("send", SAMPLE, "--segment", "donors", "--segment", "funders", "--dry-run")
    assert result.exit_code == 0, result.output
    from postbode import audience, store
    conn = store.connect(send_settings)
    try:
        without = sum(1 for r in audience.resolve(conn, ["donors", "funders"], send_settings)
                      if "total_given" not in r.fields)
    finally:
        conn.close()
    assert without > 0
    assert f"{{total_given}} falls back for {without}" in flat(result.output)
