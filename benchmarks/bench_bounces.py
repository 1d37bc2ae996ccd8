"""Bounce benchmark: DSNs parsed and applied per second, over a generated mailbox.

    python benchmarks/bench_bounces.py [--messages 10000]

A campaign of N sent journal rows is made in a temporary state database, and one
Postfix-style DSN (RFC 3464, to the row's VERP address, the original headers
attached) per row: 80 % hard bounces, 15 % soft, 5 % blocks. Printed, each as
messages per second and as a ratio to the baseline measured in the same run:
- baseline: a bare `email.message_from_bytes` loop over the same bytes;
- parse: `bounces.parse.parse` (what kind, the failures, the original Message-ID);
- apply: `bounces.process.process_message` (parse, verify VERP, find the row, policy,
  suppress or note, journal update; one transaction per message, as the receiver does).
"""
from __future__ import annotations

import argparse
import email
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from postbode import journal, store  # noqa: E402
from postbode.audience import Recipient  # noqa: E402
from postbode.bounces import parse, verp  # noqa: E402
from postbode.bounces.process import process_message  # noqa: E402
from postbode.config import Settings  # noqa: E402
from postbode.message import make_message_id  # noqa: E402

DOMAIN = "bounces.example.org"
KINDS = [("5.1.1", "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown")] * 16 + \
        [("4.2.2", "452 4.2.2 <{rcpt}>: Mailbox full")] * 3 + \
        [("5.7.1", "550 5.7.1 Message rejected because of the sender's reputation")]
DSN = """\
Return-Path: <>
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: {verp}
Subject: Undelivered Mail Returned to Sender
Message-ID: <{n}.bounce@mx.example.net>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B{n}"

--B{n}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.net.
I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--B{n}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Tue,  1 Dec 2026 09:47:13 +0000 (UTC)

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822;{rcpt}
Action: failed
Status: {status}
Remote-MTA: dns; mx2.example.net
Diagnostic-Code: smtp; {diagnostic}

--B{n}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Return-Path: <{verp}>
From: Nieuwsbrief <nieuwsbrief@example.org>
To: Lezer {n} <{rcpt}>
Subject: Resultaten 2018
Message-ID: {message_id}
List-Id: Nieuwsbrief <nieuwsbrief.example.org>

--B{n}--
"""


def setup(folder: Path, count: int) -> tuple[Settings, list[bytes]]:
    """The state database with one sent row per recipient, and one DSN per row."""
    settings = Settings(root=folder, database=folder / "state.sqlite3", bounce_domain=DOMAIN,
                        secret_key="benchmark-key-not-secret")
    conn = store.connect(settings)
    camp = journal.create_campaign(conn, "bench", ["everyone"], {}, "smtp://127.0.0.1")
    recipients = [Recipient(i, f"r{i:06d}@example.net", None, "nl", "formal", None, "everyone")
                  for i in range(count)]
    journal.snapshot(conn, camp.id, recipients)
    ids = {r.email: make_message_id(camp.id, r.email, "example.org") for r in recipients}
    with store.atomic(conn):
        conn.executemany("UPDATE journal SET state = 'sent', sent_at = 1, message_id = ?"
                         " WHERE campaign_id = ? AND email = ?",
                         [(mid, camp.id, address) for address, mid in ids.items()])
    conn.close()
    mailbox = []
    for n, r in enumerate(recipients):
        status, diagnostic = KINDS[n % len(KINDS)]
        mid = ids[r.email]
        text = DSN.format(n=n, rcpt=r.email, verp=verp.envelope_sender(settings, mid),
                          message_id=mid, status=status, diagnostic=diagnostic.format(rcpt=r.email))
        mailbox.append(text.replace("\n", "\r\n").encode("ascii"))
    return settings, mailbox


def timed(label: str, fn, mailbox: list[bytes]) -> float:
    start = time.perf_counter()
    for data in mailbox:
        fn(data)
    elapsed = time.perf_counter() - start
    return len(mailbox) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings, mailbox = setup(Path(tmp), args.messages)
        size = sum(map(len, mailbox)) / len(mailbox)
        print(f"mailbox: {len(mailbox):,} DSNs, {size:,.0f} bytes each on average")
        baseline = timed("baseline", email.message_from_bytes, mailbox)
        parsed = timed("parse", parse.parse, mailbox)
        conn = store.connect(settings)
        try:
            applied = timed("apply", lambda d: process_message(conn, settings, d), mailbox)
            counts = dict(conn.exec_driver_sql("SELECT class, COUNT(*) FROM bounce_events GROUP BY class"))
            again = timed("again", lambda d: process_message(conn, settings, d), mailbox[:1000])
        finally:
            conn.close()
    print(f"email.message_from_bytes (baseline): {baseline:10,.0f} msg/s")
    print(f"parse (DSN fields, original id):     {parsed:10,.0f} msg/s  "
          f"= {parsed / baseline:.2f} × baseline")
    print(f"parse + match + apply, one tx each:  {applied:10,.0f} msg/s  "
          f"= {applied / baseline:.2f} × baseline")
    print(f"reading an applied DSN again:        {again:10,.0f} msg/s  "
          f"= {again / baseline:.2f} × baseline")
    print(f"events applied by class: {counts}")
    if sum(counts.values()) != len(mailbox):
        sys.exit(f"expected {len(mailbox)} events, got {sum(counts.values())}")


if __name__ == "__main__":
    main()
