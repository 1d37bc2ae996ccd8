"""Two `worker` processes, one PostgreSQL database, one campaign of 5,000 recipients, a real SMTP server.

The workers split the rows (SKIP LOCKED): every recipient gets the mail once and both
send a share. One worker is SIGKILLed mid-send and started again: nothing is lost, and
a recipient gets it twice only if their row is `unknown`.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing

import pytest
from sqlalchemy import func, select, update

from postbode import store
from postbode.store.schema import journal, schedules

from conftest import REPO, SAMPLE, TEST_SECRET_KEY
from fixtures.postgres import wait_until
from fixtures.state import connect

RECIPIENTS = 5000
pytestmark = [pytest.mark.slow,
              pytest.mark.parametrize("database_engine", ["postgresql"], indirect=True)]


def start_worker(project, url: str) -> subprocess.Popen:
    env = dict(os.environ, POSTBODE_SECRET_KEY=TEST_SECRET_KEY, POSTBODE_TRANSPORT=url,
               PYTHONUNBUFFERED="1")
    command = [sys.executable, str(REPO / "send.py"), "--config", str(project / "postbode.toml"),
               "worker", "--poll", "0.2", "--log-format", "json"]
    return subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def schedule_now(invoke, settings, url: str) -> None:
    """A campaign to everyone in the list, scheduled and then made due at once."""
    result = invoke("send", SAMPLE, "--segment", "subscribers", "--yes",
                    "--at", "2099-01-01 10:00", env={"POSTBODE_TRANSPORT": url})
    assert result.exit_code == 0, result.output
    connect(settings).execute(update(schedules).values(send_at=time.time()))


def stop(*workers: subprocess.Popen) -> list[list[dict]]:
    logs = []
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=180)
        assert worker.returncode in (0, -signal.SIGKILL), err
        logs.append([json.loads(line) for line in out.splitlines() if line.startswith("{")])
    return logs


def states(settings) -> dict[str, str]:
    with closing(store.connect(settings, migrate=False)) as conn:
        return dict(conn.execute(select(journal.c.email, journal.c.state)).all())


def all_settled(settings) -> bool:
    """The schedule is sent and no row is left to send or in flight."""
    with closing(store.connect(settings, migrate=False)) as conn:
        rows = conn.execute(select(schedules.c.status)).scalars().all()
        left = conn.execute(select(func.count()).where(
            journal.c.state.in_(("pending", "claimed", "retry")))).scalar()
    return rows == ["sent"] and not left


def test_two_workers_split_a_campaign_each_recipient_once(invoke, project, send_settings,
                                                          populate, counting_sink):
    handler, url = counting_sink
    readers = populate(RECIPIENTS)
    schedule_now(invoke, send_settings, url)
    workers = [start_worker(project, url), start_worker(project, url)]
    try:
        wait_until(lambda: all_settled(send_settings), 1800, "the campaign to be sent")
    finally:
        logs = stop(*workers)
    assert handler.received == Counter(r.email for r in readers)
    assert Counter(states(send_settings).values()) == {"sent": RECIPIENTS}
    shares = [sum(e.get("by_this_worker", 0) for e in log if e["event"] == "campaign.sent")
              for log in logs]
    assert sum(shares) == RECIPIENTS and all(share > 0 for share in shares), shares


def test_a_worker_killed_mid_send_and_restarted_loses_nothing(invoke, project, send_settings,
                                                              populate, counting_sink):
    handler, url = counting_sink
    readers = populate(RECIPIENTS)
    schedule_now(invoke, send_settings, url)
    keeps, killed = start_worker(project, url), start_worker(project, url)
    restarted = None
    try:
        wait_until(lambda: handler.total() >= RECIPIENTS // 3, 1800, "a third of the mail")
        killed.send_signal(signal.SIGKILL)
        killed.wait(60)
        restarted = start_worker(project, url)
        wait_until(lambda: all_settled(send_settings), 1800, "the campaign to be finished")
    finally:
        stop(*(w for w in (keeps, killed, restarted) if w is not None))
    final = states(send_settings)
    unknown = {email for email, state in final.items() if state == "unknown"}
    assert set(final.values()) <= {"sent", "unknown"} and len(final) == RECIPIENTS
    lost = [r.email for r in readers if handler.received[r.email] == 0 and r.email not in unknown]
    twice = [email for email, n in handler.received.items() if n > 1]
    assert lost == []
    assert len(twice) <= len(unknown) and set(twice) <= unknown
