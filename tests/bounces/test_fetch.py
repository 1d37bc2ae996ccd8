"""`bounces fetch` against a real Dovecot whose INBOX Postfix filled with real DSNs, plus a
complaint (ARF), an out-of-office reply, a bounce about no mail of ours and ordinary mail."""
from __future__ import annotations

import email
import imaplib
import re
import smtplib
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from postbode import audience, campaign, journal, store

from conftest import SAMPLE
from fixtures.postfix import BOUNCE_DOMAIN, BOUNCE_MAILBOX, EXISTING, EXISTING_TOO, MISSING
from fixtures.state import TEST_SECRET_KEY

FAST = campaign.Policy(concurrency=1, backoff_base=0.01, backoff_cap=0.05, max_wait=5)
NEVER_MAILED = "stranger@local.example.org"


def wait_for(check, what: str, server, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen within {timeout} s\n{server.log()}")


def return_path(delivered: Path) -> str:
    """The envelope sender Postfix recorded when it delivered our mail: the VERP address."""
    found = re.search(rb"^Return-Path: <([^>]+)>", delivered.read_bytes(), re.MULTILINE)
    return found.group(1).decode()


def arf_complaint(original: bytes, verp: str) -> bytes:
    """An RFC 5965 abuse report about a mail as the recipient's provider would send it."""
    report = EmailMessage()
    report["From"] = "feedback@isp.example.net"
    report["To"] = verp
    report["Subject"] = "Abuse report"
    report["Message-ID"] = make_msgid(domain="isp.example.net")
    report.set_content("This is an email abuse report for an email message received.")
    report.make_mixed()
    fields = EmailMessage()
    fields.set_content("Feedback-Type: abuse\nUser-Agent: ExampleFBL/1.0\nVersion: 1\n"
                       f"Original-Rcpt-To: <{EXISTING}>\n")
    fields.replace_header("Content-Type", "message/feedback-report")
    report.attach(fields)
    report.add_attachment(email.message_from_bytes(original))
    report.replace_header("Content-Type", 'multipart/report; report-type=feedback-report; '
                          f'boundary="{report.get_boundary()}"')
    return report.as_bytes()


def out_of_office(verp: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Lotte <{EXISTING_TOO}>"
    mail["To"] = verp
    mail["Subject"] = "Automatisch antwoord: Resultaten 2018"
    mail["Auto-Submitted"] = "auto-replied"
    mail["Message-ID"] = make_msgid(domain="local.example.org")
    mail.set_content("Ik ben tot 1 september afwezig.")
    return mail.as_bytes()


def ordinary(n: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Iemand {n} <iemand{n}@example.net>"
    mail["To"] = f"{BOUNCE_MAILBOX}@{BOUNCE_DOMAIN}"
    mail["Subject"] = f"Vraag {n} over de nieuwsbrief"
    mail["Message-ID"] = make_msgid(domain="example.net")
    mail.set_content(f"Gewone mail nummer {n}.")
    return mail.as_bytes()


def folder_state(imap: imaplib.IMAP4, folder: str) -> list[tuple[str, bool]]:
    """(Subject, seen) of every message in a folder, sorted."""
    status, _ = imap.select(f'"{folder}"', readonly=True)
    if status != "OK":
        return []
    _, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    found = []
    for item in data:
        if isinstance(item, tuple):
            subject = email.message_from_bytes(item[1])["Subject"] or ""
            found.append((" ".join(subject.split()), b"\\Seen" in item[0]))
    return sorted(found)


def state_counts(settings) -> dict:
    conn = store.connect(settings)
    try:
        return {table: conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("suppressions", "audience_events", "bounce_events",
                              "bounce_messages", "webhook_events")}
    finally:
        conn.close()


@pytest.mark.slow
def test_fetch_applies_bounce_and_complaint_and_leaves_everything_else(
        bounce_settings, subscribe, postfix, dovecot, monkeypatch, invoke):
    settings = bounce_settings
    subscribe(settings, [EXISTING, EXISTING_TOO, MISSING])
    mta = postfix(maildir_domains=(BOUNCE_DOMAIN,))
    monkeypatch.setenv("POSTBODE_SECRET_KEY", TEST_SECRET_KEY)
    outcome = campaign.run(settings, Path(SAMPLE), ["everyone"], transport=mta.smtp_url,
                           policy=FAST)
    assert outcome.totals["sent"] == 3
    # a bounce Postfix makes for an address postbode never mailed, to a made-up VERP address
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as smtp:
        smtp.sendmail(f"bounces+{'ab' * 16}-{'cd' * 8}@{BOUNCE_DOMAIN}", [NEVER_MAILED],
                      b"From: someone@example.net\r\nSubject: not from postbode\r\n"
                      b"Message-ID: <elsewhere@example.net>\r\n\r\nhello\r\n")
    wait_for(lambda: len(mta.delivered(BOUNCE_MAILBOX)) == 2, "two Postfix DSNs", mta)
    wait_for(lambda: mta.delivered("reader") and mta.delivered("lotte"), "delivery", mta)
    reader_mail = mta.delivered("reader")[0]
    imap_server = dovecot(mta.maildir)
    imap = imap_server.connect()
    try:
        imap.append("INBOX", None, None, arf_complaint(reader_mail.read_bytes(),
                                                       return_path(reader_mail)))
        imap.append("INBOX", None, None, out_of_office(return_path(mta.delivered("lotte")[0])))
        imap.append("INBOX", None, None, ordinary(1))
        imap.append("INBOX", None, None, ordinary(2))
        inbox_before = folder_state(imap, "INBOX")
        assert len(inbox_before) == 6 and not any(seen for _, seen in inbox_before)

        env = {"POSTBODE_SECRET_KEY": TEST_SECRET_KEY, "POSTBODE_IMAP_PASSWORD": imap_server.password}
        first = invoke("bounces", "fetch", "--imap", imap_server.url(), env=env)
        assert first.exit_code == 0, first.output
        assert "moved 2" in first.output

        conn = store.connect(settings)
        try:
            assert audience.get_subscriber(conn, MISSING).consent == "bounced"
            assert audience.get_subscriber(conn, EXISTING).consent == "complained"
            assert audience.get_subscriber(conn, EXISTING_TOO).consent == "subscribed"
            assert not audience.is_suppressed(conn, NEVER_MAILED)
            rows = {r["email"]: r["state"] for r in journal.iter_rows(conn, outcome.campaign_id)}
        finally:
            conn.close()
        assert rows == {MISSING: "bounced", EXISTING: "complained", EXISTING_TOO: "sent"}

        inbox = folder_state(imap, "INBOX")
        assert [s for s, _ in inbox] == sorted(
            [s for s, _ in inbox_before if not s.startswith(("Undelivered Mail Returned", "Abuse"))]
            + ["Undelivered Mail Returned to Sender"])   # the one about the stranger stays
        assert len(inbox) == 4 and not any(seen for _, seen in inbox)
        processed = folder_state(imap, settings.bounce_folder)
        assert sorted(s for s, _ in processed) == ["Abuse report",
                                                   "Undelivered Mail Returned to Sender"]

        before = state_counts(settings)
        second = invoke("bounces", "fetch", "--imap", imap_server.url(), env=env)
        assert second.exit_code == 0 and "moved 0" in second.output
        assert "read 0 message(s) (4 left as before)" in " ".join(second.output.split())
        assert state_counts(settings) == before
        assert folder_state(imap, "INBOX") == inbox
        assert folder_state(imap, settings.bounce_folder) == processed
    finally:
        imap.logout()
    listed = invoke("bounces", "list", env={"POSTBODE_SECRET_KEY": TEST_SECRET_KEY})
    assert MISSING in listed.output and EXISTING in listed.output and "5.1.1" in listed.output
    assert "auto-reply ignored" in listed.output


def test_fetch_refuses_a_password_in_the_url_and_a_missing_password(bounce_settings, invoke):
    shown = invoke("bounces", "fetch", "--imap", "imaps://u:secret@imap.example.org/INBOX")
    assert shown.exit_code == 1 and "POSTBODE_IMAP_PASSWORD" in shown.output
    assert "secret" not in shown.output
    shown = invoke("bounces", "fetch", "--imap", "imaps://u@imap.example.org/INBOX", env={})
    assert shown.exit_code == 1 and "set POSTBODE_IMAP_PASSWORD" in shown.output


@pytest.mark.slow
def test_the_worker_fetches_bounces_in_its_round(bounce_settings, subscribe, postfix, dovecot,
                                                 monkeypatch, invoke):
    settings = bounce_settings
    subscribe(settings, [EXISTING, MISSING])
    mta = postfix(maildir_domains=(BOUNCE_DOMAIN,))
    monkeypatch.setenv("POSTBODE_SECRET_KEY", TEST_SECRET_KEY)
    outcome = campaign.run(settings, Path(SAMPLE), ["everyone"], transport=mta.smtp_url,
                           policy=FAST)
    assert outcome.totals["sent"] == 2
    wait_for(lambda: len(mta.delivered(BOUNCE_MAILBOX)) == 1, "the Postfix DSN", mta)
    imap_server = dovecot(mta.maildir)
    env = {"POSTBODE_SECRET_KEY": TEST_SECRET_KEY, "POSTBODE_IMAP_PASSWORD": imap_server.password}
    result = invoke("worker", "--once", "--log-format", "json", "--imap", imap_server.url(), env=env)
    assert result.exit_code == 0, result.output
    assert '"bounces.fetched"' in result.output
    conn = store.connect(settings)
    try:
        assert audience.get_subscriber(conn, MISSING).consent == "bounced"
        assert audience.get_subscriber(conn, EXISTING).consent == "subscribed"
    finally:
        conn.close()
