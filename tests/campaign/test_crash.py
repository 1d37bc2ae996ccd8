"""Crash safety: `send` in a subprocess, killed at random moments, then resumed.

The SMTP server runs in this test process and counts what it receives; the
sender is the real command line in a child process, killed with SIGKILL (no
chance to clean up) or interrupted with SIGINT (Ctrl-C).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from postbode import journal, store
from postbode.config import load_settings

from conftest import REPO, SAMPLE, TEST_SECRET_KEY
from fixtures.smtp import CountingHandler

RECIPIENTS = 2000
CONCURRENCY = 2
pytestmark = pytest.mark.slow


def start_send(project: Path, url: str, *extra: str, concurrency: int = CONCURRENCY) -> subprocess.Popen:
    env = dict(os.environ, POSTBODE_SECRET_KEY=TEST_SECRET_KEY, PYTHONUNBUFFERED="1")
    env.pop("POSTBODE_DB", None)
    command = [sys.executable, str(REPO / "send.py"), "--config", str(project / "postbode.toml"),
               "send", SAMPLE, "--segment", "everyone", "--yes", "--transport", url,
               "--concurrency", str(concurrency), *extra]
    return subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_mail(handler: CountingHandler, process: subprocess.Popen, after: int) -> None:
    """Until the server has more than `after` mails, or the sender has ended."""
    deadline = time.monotonic() + 60
    while handler.total() <= after and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)


def claimed_now(project: Path) -> int:
    """Rows the journal holds as `claimed`: what a resume will list as unknown."""
    path = load_settings(project / "postbode.toml", env={}).database
    if not path.exists():  # killed before the database was made
        return 0
    conn = store.connect(path, migrate=False)
    try:
        return conn.exec_driver_sql("SELECT count(*) FROM journal WHERE state = 'claimed'").fetchone()[0]
    finally:
        conn.close()


def interrupt_at_random(project: Path, handler: CountingHandler, url: str, rng: random.Random,
                        how: signal.Signals, trials: int,
                        concurrency: int = CONCURRENCY) -> list[tuple[int, str]]:
    """Start `send` `trials` times, stopping it with `how` at a random moment while it sends.

    After each stop, at most one row per connection may be left `claimed` (SMTP has one
    message in flight a connection), whatever the moment.
    """
    ended = []
    for trial in range(trials):
        process = start_send(project, url, concurrency=concurrency)
        if trial == 0 and how == signal.SIGKILL:
            time.sleep(rng.uniform(0.1, 1.5))  # anywhere: start-up, snapshot or sending
        else:
            wait_for_mail(handler, process, handler.total())
            time.sleep(rng.uniform(0.0, 0.4))
        if process.poll() is None:
            process.send_signal(how)
        out, err = process.communicate(timeout=120)
        ended.append((process.returncode, out + err))
        left = claimed_now(project)
        assert left <= concurrency, (trial, process.returncode, left)
        if how != signal.SIGKILL:
            assert left == 0, (trial, out + err)
    return ended


def finish(project: Path, url: str, concurrency: int = CONCURRENCY) -> str:
    process = start_send(project, url, concurrency=concurrency)
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, out + err
    return out


def journal_states(settings) -> dict[str, str]:
    conn = store.connect(settings)
    try:
        (c,) = journal.list_campaigns(conn)
        return {r["email"]: r["state"] for r in journal.iter_rows(conn, c.id)}
    finally:
        conn.close()


# With PIPELINING one worker drives both connections in step; without, a thread each;
# with CHUNKING too, each message goes out in one write with its envelope. On one
# connection with PIPELINING, each mail's data goes with the next mail's envelope.
@pytest.mark.parametrize("counting_sink, concurrency",
                         [("pipelining", 2), ("nothing", 2), ("chunking", 2), ("pipelining", 1)],
                         indirect=["counting_sink"],
                         ids=["connections-in-step", "a-thread-a-connection", "chunked-in-step",
                              "one-connection-opening-the-next"])
def test_sigkill_at_random_moments_then_resume_sends_each_mail_once(project, send_settings,
                                                                    populate, counting_sink,
                                                                    concurrency):
    handler, url = counting_sink
    readers = populate(RECIPIENTS)
    kills = interrupt_at_random(project, handler, url, random.Random(20180701),
                                signal.SIGKILL, trials=5, concurrency=concurrency)
    assert sum(code == -signal.SIGKILL for code, _ in kills) >= 4, kills
    finish(project, url, concurrency)
    states = journal_states(send_settings)
    assert len(states) == RECIPIENTS
    unknown = {email for email, state in states.items() if state == "unknown"}
    assert set(states.values()) <= {"sent", "unknown"}
    assert len(unknown) <= concurrency * len(kills)

    for reader in readers:
        got = handler.received[reader.email]
        if reader.email in unknown:
            assert got <= 1, reader.email
        else:
            assert got == 1, (reader.email, got)
    assert sum(handler.received.values()) >= RECIPIENTS - len(unknown)


@pytest.mark.parametrize("concurrency", [2, 1], ids=["connections-in-step", "one-connection-opening-the-next"])
def test_ctrl_c_stops_cleanly_with_nothing_unknown(project, send_settings, populate, counting_sink,
                                                   concurrency):
    handler, url = counting_sink
    readers = populate(RECIPIENTS)
    stops = interrupt_at_random(project, handler, url, random.Random(7), signal.SIGINT, trials=3,
                                concurrency=concurrency)
    interrupted = [text for code, text in stops if code == 130]
    assert interrupted, stops
    assert all("run the same command again" in " ".join(t.split()) for t in interrupted)
    assert all(code in (0, 130) for code, _ in stops), stops
    finish(project, url, concurrency)
    states = journal_states(send_settings)
    assert Counter(states.values()) == {"sent": RECIPIENTS}
    assert handler.received == Counter(r.email for r in readers)


def test_sigterm_stops_like_ctrl_c(project, send_settings, populate, counting_sink):
    handler, url = counting_sink
    readers = populate(RECIPIENTS)
    stops = interrupt_at_random(project, handler, url, random.Random(13), signal.SIGTERM,
                                trials=1)
    ((code, text),) = stops
    assert code == 130 and "run the same command again" in " ".join(text.split()), stops
    finish(project, url)
    assert Counter(journal_states(send_settings).values()) == {"sent": RECIPIENTS}
    assert handler.received == Counter(r.email for r in readers)
