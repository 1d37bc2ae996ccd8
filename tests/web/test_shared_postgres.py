"""Two web server processes and a worker share one PostgreSQL database while a campaign sends.

A one-click unsubscribe POSTed mid-send is honoured for every row that was not yet
claimed: its recipient gets no mail.
"""
from __future__ import annotations

import subprocess
import sys
import time
from contextlib import ExitStack, closing

import pytest
import requests
from sqlalchemy import func, select, update

from postbode import store, tokens
from postbode.store.schema import journal, schedules

from conftest import REPO, SAMPLE, TEST_SECRET_KEY
from fixtures.postgres import wait_until
from fixtures.web import running, server_env

RECIPIENTS = 400
UNSUBSCRIBING = 40
WAITRESS = [sys.executable, "-m", "waitress", "--listen=127.0.0.1:0", "--threads=4",
            "--call", "postbode.web:create_app"]
READY = r"Serving on (http://127\.0\.0\.1:\d+)"
pytestmark = [pytest.mark.slow,
              pytest.mark.parametrize("database_engine", ["postgresql"], indirect=True)]


def states(settings, emails: list[str]) -> dict[str, str]:
    with closing(store.connect(settings, migrate=False)) as conn:
        return dict(conn.execute(select(journal.c.email, journal.c.state)
                                 .where(journal.c.email.in_(emails))).all())


def sent(settings) -> int:
    with closing(store.connect(settings, migrate=False)) as conn:
        return conn.execute(select(func.count()).where(journal.c.state == "sent")).scalar()


def finished(settings) -> bool:
    with closing(store.connect(settings, migrate=False)) as conn:
        return conn.execute(select(schedules.c.status)).scalars().all() == ["sent"]


def test_an_unsubscribe_during_a_send_is_honoured_for_rows_not_yet_claimed(
        invoke, project, send_settings, populate):
    toml = project / "postbode.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("rate = 0", "rate = 40"), encoding="utf-8")
    readers = populate(RECIPIENTS)
    scheduled = invoke("send", SAMPLE, "--segment", "subscribers", "--yes", "--at", "2099-01-01 10:00")
    assert scheduled.exit_code == 0, scheduled.output
    with closing(store.connect(send_settings)) as conn:
        conn.execute(update(schedules).values(send_at=time.time()))
    # readers of the variant claimed last (nl_BE): still pending while the first mails go out
    leaving = [r.email for r in readers if r.locale == "nl_BE"][-UNSUBSCRIBING:]
    key = send_settings.with_overrides(secret_key=TEST_SECRET_KEY)
    env = server_env(POSTBODE_SECRET_KEY=TEST_SECRET_KEY)
    with ExitStack() as stack:
        servers = [stack.enter_context(running(WAITRESS, cwd=project, env=env, ready=READY))
                   for _ in range(2)]
        worker = subprocess.Popen(
            [sys.executable, str(REPO / "send.py"), "--config", str(toml), "worker", "--poll", "0.2"],
            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stack.callback(worker.wait, 120)
        stack.callback(worker.terminate)
        wait_until(lambda: sent(send_settings) > 0, 600, "the campaign to begin sending")
        for i, email in enumerate(leaving):
            answer = requests.post(f"{servers[i % 2].url}/u/{tokens.sign(key, 'unsubscribe', email)}",
                                   data={"List-Unsubscribe": "One-Click"}, timeout=60)
            assert answer.status_code == 200
        # rows still pending once every unsubscribe is recorded: none of them may be sent
        pending = [e for e, state in states(send_settings, leaving).items() if state == "pending"]
        wait_until(lambda: finished(send_settings), 900, "the campaign to be finished")
    assert len(pending) >= UNSUBSCRIBING // 2, "the send went too fast to test anything"
    final = states(send_settings, pending)
    assert all(state != "sent" for state in final.values()), final
    assert sent(send_settings) <= RECIPIENTS - len(pending)
