"""VERP on a campaign through SMTP, and what bounces do to an address: soft bounces count,
hard ones suppress at once, blocks never suppress and warn about the sender."""
from __future__ import annotations

import email
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from postbode import audience, campaign, journal, store
from postbode.bounces import parse, policy, verp
from postbode.bounces.process import Outcome, process_message

from conftest import SAMPLE
from fixtures.postfix import BOUNCE_DOMAIN

FAST = campaign.Policy(concurrency=2, backoff_base=0.01, backoff_cap=0.05, max_wait=5)
DAY = 86400.0


def dsn(to: str, recipient: str, status: str, diagnostic: str, *, action: str = "failed",
        original_id: str | None = None) -> bytes:
    """An RFC 3464 report as a receiving server would write it."""
    return f"""\
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: {to}
Subject: Undelivered Mail Returned to Sender
Message-ID: {make_msgid(domain="mx.example.net")}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Your message could not be delivered.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--b1
Content-Type: text/rfc822-headers

Message-ID: {original_id or "<unknown@example.org>"}
To: {recipient}
Subject: Resultaten

--b1--
""".replace("\n", "\r\n").encode()


@pytest.fixture
def sent(bounce_settings, populate, smtp_server, monkeypatch):
    """A campaign of 4 through a real SMTP server with VERP on: (settings, rows by address, server)."""
    monkeypatch.setenv("POSTBODE_SMTP_PASSWORD", smtp_server.password)
    populate(4)
    outcome = campaign.run(bounce_settings, Path(SAMPLE), ["everyone"], transport=smtp_server.url,
                           policy=FAST)
    assert outcome.totals["sent"] == 4
    conn = store.connect(bounce_settings)
    rows = {r["email"]: dict(r) for r in journal.iter_rows(conn, outcome.campaign_id)}
    yield bounce_settings, conn, rows, smtp_server, outcome.campaign_id
    conn.close()


def verp_of(settings, row) -> str:
    return verp.envelope_sender(settings, row["message_id"])


def test_every_mail_from_is_a_verp_address_without_the_recipients_address(sent):
    settings, conn, rows, server, _ = sent
    assert len(server.received) == 4
    for mail in server.received:
        (rcpt,) = mail.rcpt_tos
        local, _, domain = mail.mail_from.partition("@")
        assert domain == BOUNCE_DOMAIN and local.startswith("bounces+")
        assert rcpt.lower() not in mail.mail_from.lower()
        assert rcpt.split("@")[0].lower() not in local.lower()
        assert mail.mail_from == verp_of(settings, rows[rcpt])       # it names the journal row
        assert mail.message["From"].addresses[0].addr_spec == settings.sender_email
    assert len({m.mail_from for m in server.received}) == 4


def test_without_a_bounce_domain_the_envelope_sender_is_the_sender(send_settings, populate,
                                                                    smtp_server, monkeypatch):
    monkeypatch.setenv("POSTBODE_SMTP_PASSWORD", smtp_server.password)
    populate(2)
    campaign.run(send_settings, Path(SAMPLE), ["everyone"], transport=smtp_server.url, policy=FAST)
    assert {m.mail_from for m in smtp_server.received} == {send_settings.sender_email}


def test_three_soft_bounces_within_the_window_suppress_two_do_not(sent):
    settings, conn, rows, _, _ = sent
    one, two = sorted(rows)[:2]
    now = 1_900_000_000.0
    for n, when in enumerate((now - 20 * DAY, now - 1 * DAY)):
        result = process_message(conn, settings, dsn(verp_of(settings, rows[one]), one, "4.2.2",
                                                     "452 4.2.2 Mailbox full"), now=when)
        assert result.outcome is Outcome.APPLIED and result.actions == ("noted",)
        assert not audience.is_suppressed(conn, one)
    # two soft bounces long ago and one now: outside the 30 days, they do not add up
    for when in (now - 90 * DAY, now - 80 * DAY, now):
        process_message(conn, settings, dsn(verp_of(settings, rows[two]), two, "4.2.2",
                                            "452 4.2.2 Mailbox full"), now=when)
    assert not audience.is_suppressed(conn, two)
    third = process_message(conn, settings, dsn(verp_of(settings, rows[one]), one, "4.2.2",
                                                "452 4.2.2 Mailbox full"), now=now)
    assert third.actions == ("suppressed",)
    assert audience.is_suppressed(conn, one)
    assert audience.get_subscriber(conn, one).consent == "bounced"


def test_a_block_never_suppresses_and_report_warns_about_the_sender(sent, invoke):
    settings, conn, rows, _, campaign_id = sent
    blocked = sorted(rows)[0]
    for n in range(5):
        result = process_message(conn, settings, dsn(
            verp_of(settings, rows[blocked]), blocked, "5.7.1",
            f"550 5.7.1 Message rejected due to the sender's reputation ({n})"))
        assert result.outcome is Outcome.APPLIED and result.actions == ("noted",)
    assert not audience.is_suppressed(conn, blocked)
    assert audience.get_subscriber(conn, blocked).consent == "subscribed"
    shown = invoke("report", campaign_id)
    assert "blocked 1" in shown.output and "about the sender" in shown.output


def test_a_hard_bounce_suppresses_at_once_and_reading_it_again_changes_nothing(sent):
    settings, conn, rows, _, _ = sent
    address = sorted(rows)[1]
    data = dsn(verp_of(settings, rows[address]), address, "5.1.10",
               "550 5.1.10 Recipient address has null MX")
    first = process_message(conn, settings, data)
    assert first.actions == ("suppressed",) and audience.is_suppressed(conn, address)
    events = conn.exec_driver_sql("SELECT COUNT(*) FROM audience_events").fetchone()[0]
    again = process_message(conn, settings, data)
    assert again.duplicate and again.outcome is Outcome.APPLIED
    assert conn.exec_driver_sql("SELECT COUNT(*) FROM audience_events").fetchone()[0] == events
    row = conn.exec_driver_sql("SELECT state, bounce_status, last_code FROM journal WHERE email = ?",
                       (address,)).fetchone()
    assert tuple(row) == ("bounced", "5.1.10", 550)


def test_a_forged_verp_address_is_never_applied_but_the_message_id_still_matches(sent):
    settings, conn, rows, _, _ = sent
    victim = sorted(rows)[2]
    genuine = verp_of(settings, rows[victim])
    local = genuine.split("@")[0]
    forged = local[:-1] + ("0" if local[-1] != "0" else "1") + "@" + BOUNCE_DOMAIN
    assert verp.message_key(settings, forged) is None
    result = process_message(conn, settings, dsn(forged, "someone-else@example.org", "5.1.1",
                                                 "550 5.1.1 User unknown"))
    assert result.outcome is Outcome.UNMATCHED and not audience.is_suppressed(conn, victim)
    by_id = process_message(conn, settings, dsn(f"postmaster@{BOUNCE_DOMAIN}", victim, "5.1.1",
                                                "550 5.1.1 User unknown",
                                                original_id=rows[victim]["message_id"]))
    assert by_id.outcome is Outcome.APPLIED and audience.is_suppressed(conn, victim)


def test_a_delay_warning_and_an_auto_reply_change_nothing(sent):
    settings, conn, rows, _, _ = sent
    address = sorted(rows)[3]
    delayed = process_message(conn, settings, dsn(verp_of(settings, rows[address]), address,
                                                  "4.4.1", "connection timed out",
                                                  action="delayed"))
    assert delayed.outcome is Outcome.IGNORED
    reply = EmailMessage()
    reply["From"] = address
    reply["To"] = verp_of(settings, rows[address])
    reply["Subject"] = "Out of Office: Resultaten 2018"
    reply["Message-ID"] = make_msgid(domain="example.org")
    reply.set_content("I am away until Monday.")
    assert process_message(conn, settings, reply.as_bytes()).outcome is Outcome.IGNORED
    assert conn.exec_driver_sql("SELECT COUNT(*) FROM bounce_events").fetchone()[0] == 0
    assert not audience.is_suppressed(conn, address)


@pytest.mark.parametrize("status, expected", [
    ("5.1.1", "hard"), ("5.1.10", "hard"), ("5.2.2", "soft"), ("4.2.2", "soft"),
    ("4.4.7", "soft"), ("5.7.1", "blocked"), ("5.7.26", "blocked"), ("5.4.4", "soft")])
def test_classes_by_status(status, expected):
    assert policy.classify(status) == expected


def test_a_non_standard_bounce_is_read_with_flufl_bounce():
    raw = (b"From: MAILER-DAEMON@mail.example.net\r\nTo: bounces@example.org\r\n"
           b"Subject: failure notice\r\nMessage-ID: <q1@mail.example.net>\r\n\r\n"
           b"Hi. This is the qmail-send program at mail.example.net.\r\n"
           b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
           b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
           b"<nobody-here@example.net>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
           b"--- Below this line is a copy of the message.\r\n")
    report = parse.parse(raw)
    assert report.kind is parse.Kind.NONSTANDARD
    assert [f.recipient for f in report.failures] == ["nobody-here@example.net"]
    ordinary = parse.parse(email.message_from_bytes(
        b"From: someone@example.net\r\nSubject: hello\r\n\r\nnobody-here@example.net said hi\r\n"))
    assert ordinary.kind is parse.Kind.OTHER


def test_damaged_mail_is_read_without_an_error_and_changes_nothing(sent):
    settings, conn, rows, _, _ = sent
    for data in (b"\xff\xfe\x00garbage", b"Content-Type: multipart/report; report-type="
                 b"delivery-status; boundary=x\r\nFrom: MAILER-DAEMON@x\r\n\r\n--x\r\n"
                 b"Content-Type: message/delivery-status\r\n\r\nAction: failed\r\n"):
        result = process_message(conn, settings, data)
        assert result.outcome in (Outcome.NOT_BOUNCE, Outcome.UNMATCHED, Outcome.IGNORED)
    assert conn.exec_driver_sql("SELECT COUNT(*) FROM bounce_events").fetchone()[0] == 0
