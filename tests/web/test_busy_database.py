"""Writes never block an unsubscribe: while another program holds the write lock, one-click
POSTs to the real app under waitress are answered 503 with Retry-After (never 500, never a
200 that was not recorded), pages that only read still open, and a retry after the lock is
released records every one."""
from __future__ import annotations

import csv
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from postbode import audience, tokens

from conftest import TEST_SECRET_KEY
from fixtures.state import connect, make_readers
from fixtures.web import running, server_env

PEOPLE = 8
WAITRESS = [sys.executable, "-m", "waitress", "--listen=127.0.0.1:0", "--threads=4",
            "--call", "postbode.web:create_app"]
READY = r"Serving on (http://127\.0\.0\.1:\d+)"
HOLD_AT_LEAST = 10  # seconds
# Holds SQLite's write lock (BEGIN IMMEDIATE) for at least HOLD_AT_LEAST seconds and until
# told to let go on stdin (bounded: two minutes at most), like a long import would.
HOLDER = """
import select, sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
start = time.monotonic()
print("locked", flush=True)
select.select([sys.stdin], [], [], 120)
time.sleep(max(0.0, %d - (time.monotonic() - start)))
conn.execute("ROLLBACK")
print("released", flush=True)
""" % HOLD_AT_LEAST


@pytest.fixture
def readers(invoke, tmp_path: Path) -> list[str]:
    people = make_readers(PEOPLE)
    path = tmp_path / "readers.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([["email", "name", "language"],
                                  *([r.email, r.name, r.locale] for r in people)])
    assert invoke("subscribers", "import", str(path), "--list", "subscribers").exit_code == 0
    return [r.email for r in people]


def consent(settings, email: str) -> str:
    return audience.find_subscriber(connect(settings, migrate=False), email)["consent"]


def wait_for_line(process: subprocess.Popen, expected: str, timeout: float = 60) -> None:
    """Read the process's output until `expected` (in a thread, so a silent process fails the test)."""
    seen: list[str] = []

    def read() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            seen.append(line.strip())
            if line.strip() == expected:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert expected in seen, f"the lock holder did not say {expected!r}: {seen}"


def one_click(url: str) -> requests.Response:
    return requests.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=60)


def test_one_click_posts_during_a_10_s_write_lock_are_503_then_recorded_on_retry(
        project, settings, readers):
    signing = settings.with_overrides(secret_key=TEST_SECRET_KEY)
    key = {e: audience.find_subscriber(connect(settings), e)["subscriber_key"] for e in readers}
    links = {e: tokens.sign(signing, "unsubscribe", subscriber_key=key[e]) for e in readers}
    preferences = tokens.sign(signing, "preferences", subscriber_key=key[readers[0]])
    env = server_env(POSTBODE_SECRET_KEY=TEST_SECRET_KEY)
    with running(WAITRESS, cwd=project, env=env, ready=READY) as server:
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(settings.database)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            wait_for_line(holder, "locked")
            with ThreadPoolExecutor(4) as pool:
                during = dict(zip(readers, pool.map(lambda e: one_click(f"{server.url}/u/{links[e]}"),
                                                    readers)))
            page = requests.get(f"{server.url}/p/{preferences}", timeout=60)
            assert holder.poll() is None  # every answer above came while the lock was held
            holder.stdin.write("release\n")  # type: ignore[union-attr]
            holder.stdin.flush()  # type: ignore[union-attr]
            wait_for_line(holder, "released")
            holder.wait(timeout=60)
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait(timeout=15)
        assert page.status_code == 200  # reading needs no lock: no migration per request
        assert {r.status_code for r in during.values()} == {503}, server.output()[-3000:]
        assert all(r.headers.get("Retry-After", "").isdigit() for r in during.values())
        assert all(consent(settings, e) == "subscribed" for e in readers)  # nothing pretended
        retried = {e: one_click(f"{server.url}/u/{links[e]}") for e in readers}
    assert {r.status_code for r in retried.values()} == {200}
    assert all(consent(settings, e) == "unsubscribed" for e in readers)


def test_requests_never_migrate_and_wait_only_briefly_for_a_lock(app, client, web_settings, monkeypatch,
                                                                  invoke, readers):
    from postbode import store
    from postbode.web.db import get_db

    def migrating(_conn) -> None:
        raise AssertionError("a request ran the migrations")

    monkeypatch.setattr(store, "_migrate", migrating)
    link = tokens.sign(web_settings, "unsubscribe", readers[0])
    assert client.post(f"/u/{link}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert client.get(f"/p/{tokens.sign(web_settings, 'preferences', readers[1])}").status_code == 200
    with app.test_request_context("/"):
        waits = get_db().exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert 0 < waits <= 5000  # milliseconds: a busy database is a quick 503, not a 30 s wait
