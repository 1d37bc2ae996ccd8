"""`bounces receive` with a real MTA: Postfix bounces a campaign's mail for a missing user,
and its DSN, sent to the VERP address, reaches the receiver over LMTP or SMTP."""
from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from postbode import audience, campaign, journal, store

from conftest import SAMPLE
from fixtures.postfix import BOUNCE_DOMAIN, EXISTING, MISSING
from fixtures.state import TEST_SECRET_KEY

FAST = campaign.Policy(concurrency=1, backoff_base=0.01, backoff_cap=0.05, max_wait=5)


def start_receiver(settings, *extra: str) -> tuple[subprocess.Popen, int]:
    """`python -m postbode bounces receive --port 0 …` as its own process; (process, port).

    Its log goes to a file (a pipe nobody reads could fill up and stop it)."""
    env = {**os.environ, "POSTBODE_SECRET_KEY": TEST_SECRET_KEY}
    log = open(settings.root / "receiver.log", "w+", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "postbode", "--config", str(settings.root / "postbode.toml"),
         "bounces", "receive", "--host", "127.0.0.1", "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    process.log = log
    line = process.stdout.readline()
    found = re.search(r"on 127\.0\.0\.1:(\d+)", line)
    if not found:
        process.kill()
        process.wait(timeout=30)
        log.seek(0)
        pytest.fail(f"the receiver did not start: {line}{log.read()}")
    return process, int(found.group(1))


def stop_receiver(process: subprocess.Popen) -> str:
    """Stop it (SIGTERM, as a service manager would); its log."""
    process.terminate()
    process.wait(timeout=30)
    process.stdout.close()
    process.log.seek(0)
    text = process.log.read()
    process.log.close()
    return text


def wait_for(check, what: str, timeout: float = 90.0, server=None):
    """Poll until check() is true (bounded); a failure shows Postfix's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen within {timeout} s\n{server.log() if server else ''}")


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["lmtp", "smtp"])
def test_postfix_dsn_for_a_missing_user_suppresses_it_and_only_it(
        protocol, bounce_settings, subscribe, postfix, monkeypatch, tmp_path, invoke):
    settings = bounce_settings
    subscribe(settings, [EXISTING, MISSING])
    receiver, port = start_receiver(settings, *(["--lmtp"] if protocol == "lmtp" else []))
    try:
        hop = f"lmtp:inet:127.0.0.1:{port}" if protocol == "lmtp" else f"smtp:[127.0.0.1]:{port}"
        mta = postfix(transports={BOUNCE_DOMAIN: hop})
        monkeypatch.setenv("POSTBODE_SECRET_KEY", TEST_SECRET_KEY)
        outcome = campaign.run(settings, Path(SAMPLE), ["everyone"], transport=mta.smtp_url,
                               policy=FAST)
        # Postfix accepted both; the bounce comes back at once, maybe before the row was settled
        assert outcome.totals["sent"] + outcome.totals["bounced"] == 2
        conn = store.connect(settings)
        try:
            wait_for(lambda: audience.is_suppressed(conn, MISSING), "the hard bounce", server=mta)
            rows = {r["email"]: dict(r) for r in journal.iter_rows(conn, outcome.campaign_id)}
            assert not audience.is_suppressed(conn, EXISTING)
            assert audience.get_subscriber(conn, EXISTING).consent == "subscribed"
            assert audience.get_subscriber(conn, MISSING).consent == "bounced"
        finally:
            conn.close()
        assert rows[MISSING]["state"] == "bounced" and rows[MISSING]["bounce_status"] == "5.1.1"
        assert "unknown user" in rows[MISSING]["bounce_diagnostic"]
        assert rows[EXISTING]["state"] == "sent"
        assert len(mta.delivered("reader")) == 1
    finally:
        log = stop_receiver(receiver)
    assert receiver.returncode == 0, log
    assert "dsn applied" in log and MISSING not in log     # logged, without the address
    shown = invoke("report", outcome.campaign_id, "--csv", str(tmp_path / "r.csv"),
                   env={"POSTBODE_SECRET_KEY": TEST_SECRET_KEY})
    assert "delivered 1, bounced 1 (hard 1, soft 0), complained 0, blocked 0" in shown.output
    with open(tmp_path / "r.csv", newline="", encoding="utf-8") as f:
        lines = {row["email"]: row for row in csv.DictReader(f)}
    assert lines[MISSING]["bounce_status"] == "5.1.1"
    assert "unknown user" in lines[MISSING]["bounce_diagnostic"]
    assert lines[EXISTING]["bounce_status"] == ""


def test_the_receiver_refuses_other_domains_and_accepts_unmatched_bounces(bounce_settings):
    import smtplib

    receiver, port = start_receiver(bounce_settings)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.ehlo()
            smtp.mail("")
            code, _ = smtp.rcpt("someone@example.org")
            assert code == 550
            code, _ = smtp.rcpt(f"bounces+{'0' * 32}-{'0' * 16}@{BOUNCE_DOMAIN}")
            assert code == 250
            code, reply = smtp.data(b"From: MAILER-DAEMON@example.net\r\nSubject: x\r\n"
                                    b"Message-ID: <forged@example.net>\r\n\r\nhello\r\n")
            assert code == 250 and b"not a bounce" in reply
    finally:
        stop_receiver(receiver)
