"""`send --at`, `schedule list|cancel` and a running `worker`, as an operator runs them."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from contextlib import closing
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from postbode import store
from postbode.store.schema import campaigns, journal, schedules, subscribers

from conftest import REPO, SAMPLE
from fixtures.postgres import wait_until
from fixtures.state import connect


def at_text(settings, seconds: float) -> str:
    """A time `seconds` from now, as --at takes it (the project's time zone, to the second)."""
    moment = datetime.fromtimestamp(time.time() + seconds, ZoneInfo(settings.timezone))
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def schedule_rows(settings) -> dict[int, dict]:
    with closing(store.connect(settings)) as conn:
        return {r["id"]: dict(r) for r in conn.execute(select(schedules)).mappings()}


def worker_process(project, *args: str) -> subprocess.Popen:
    command = [sys.executable, str(REPO / "send.py"), "--config", str(project / "postbode.toml"),
               "worker", "--poll", "0.2", "--log-format", "json", *args]
    return subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def events(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_at_in_the_past_or_unreadable_is_refused_before_anything(invoke, send_settings):
    past = invoke("send", SAMPLE, "--segment", "everyone", "--yes", "--at", "2018-07-12 10:00")
    assert past.exit_code == 1 and "is in the past" in past.output
    wrong = invoke("send", SAMPLE, "--segment", "everyone", "--yes", "--at", "Thursday")
    assert wrong.exit_code == 1 and "YYYY-MM-DD HH:MM" in wrong.output
    assert schedule_rows(send_settings) == {}


def test_at_with_another_transport_is_refused_and_again_is_kept(invoke, send_settings, tmp_path):
    """The worker sends through its own configured transport: a --transport URL cannot come along."""
    other = invoke("send", SAMPLE, "--segment", "everyone", "--yes", "--at", at_text(send_settings, 3600),
                   "--transport", f"outbox://{tmp_path / 'elsewhere'}")
    assert other.exit_code != 0 and "configured transport" in other.output, other.output
    assert schedule_rows(send_settings) == {}
    kept = invoke("send", SAMPLE, "--segment", "funders", "--yes", "--again",
                  "--at", at_text(send_settings, 3600))
    assert kept.exit_code == 0, kept.output
    assert [row["again"] for row in schedule_rows(send_settings).values()] == [1]


@pytest.mark.both_engines
def test_a_running_worker_sends_at_the_time_not_before_and_skips_a_cancelled_one(
        invoke, project, send_settings):
    # the first one also imports the samples and loads the sender: the second is quick
    kept = invoke("send", SAMPLE, "--segment", "funders", "--yes", "--at", at_text(send_settings, 60))
    assert kept.exit_code == 0, kept.output
    due = invoke("send", SAMPLE, "--segment", "everyone", "--yes", "--at", at_text(send_settings, 3))
    assert due.exit_code == 0, due.output
    assert "scheduled campaign 2" in due.output
    cancelled = invoke("schedule", "cancel", "1")
    assert cancelled.exit_code == 0 and "cancelled scheduled campaign 1" in cancelled.output
    worker = worker_process(project)
    try:
        wait_until(lambda: schedule_rows(send_settings)[2]["status"] in ("sent", "failed"),
                   300, "the scheduled campaign to be sent")
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    rows = schedule_rows(send_settings)
    assert rows[2]["status"] == "sent", rows[2]
    assert rows[1]["status"] == "cancelled"
    conn = connect(send_settings)
    first_sent = conn.execute(select(func.min(journal.c.sent_at))).scalar()
    assert first_sent >= rows[2]["send_at"]
    assert conn.execute(select(campaigns.c.id)).scalars().all() == [rows[2]["campaign_id"]]
    names = [e["event"] for e in events(out)]
    assert names[0] == "worker.started" and names[-1] == "worker.stopped"
    assert "campaign.sent" in names
    listed = invoke("schedule", "list")
    assert "sent" in listed.output and "cancelled" in listed.output


@pytest.mark.both_engines
def test_a_newsletter_changed_after_scheduling_is_refused_with_the_reason(
        invoke, project, send_settings):
    assert invoke("send", SAMPLE, "--segment", "everyone", "--yes",
                  "--at", at_text(send_settings, 3600)).exit_code == 0
    path = project / SAMPLE
    path.write_text(path.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    conn = connect(send_settings)
    conn.execute(update(schedules).values(send_at=time.time() - 1))   # due now
    worker = worker_process(project, "--once")
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    refused = [e for e in events(out) if e["event"] == "schedule.refused"]
    assert refused and SAMPLE in refused[0]["reason"]
    assert schedule_rows(send_settings)[1]["status"] == "refused"
    assert conn.execute(select(func.count()).select_from(journal)).scalar() == 0
    listed = invoke("schedule", "list")
    assert "refused" in listed.output and "changed after it was scheduled" in listed.output


def test_plain_log_lines_name_the_event(project, send_settings):
    worker = subprocess.run([sys.executable, str(REPO / "send.py"), "--config",
                             str(project / "postbode.toml"), "worker", "--once"],
                            cwd=project, capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0, worker.stderr
    lines = worker.stdout.splitlines()
    assert len(lines) == 2 and " worker.started " in lines[0] and " worker.stopped " in lines[1]


def test_cancelling_a_sent_or_unknown_schedule_says_why(invoke, send_settings):
    missing = invoke("schedule", "cancel", "7")
    assert missing.exit_code == 1 and "no scheduled campaign 7" in missing.output


def test_a_round_purges_unconfirmed_sign_ups_past_their_age(project, settings):
    from cli.test_signup_commands import signed_up   # a sign-up as the web form records it

    signed_up(settings, "oud@example.org", confirm=False)
    signed_up(settings, "nieuw@example.org", confirm=False)
    with closing(store.connect(settings)) as conn:
        conn.execute(update(subscribers).where(subscribers.c.email_key == "oud@example.org")
                     .values(created="2020-01-01T00:00:00Z"))
    worker = worker_process(project, "--once")
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    purged = [e for e in events(out) if e["event"] == "signups.purged"]
    assert purged and purged[0]["removed"] == 1
    with closing(store.connect(settings)) as conn:
        left = set(conn.execute(select(subscribers.c.email_key)).scalars())
    assert left == {"nieuw@example.org"}
