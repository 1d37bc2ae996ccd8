"""The web app under waitress, started for real: 2,000 one-click unsubscribes, every one answered."""
from __future__ import annotations

import csv
import re
import sqlite3
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from postbode import tokens
from postbode.config import Settings

from conftest import TEST_SECRET_KEY
from fixtures.state import make_readers
from fixtures.web import running, server_env

POSTS = 2000
CLIENTS = 8
THREADS = 4
MAX_RETRIES = 5
# The README's command, with a free port (0) on loopback.
WAITRESS = [sys.executable, "-m", "waitress", "--listen=127.0.0.1:0", f"--threads={THREADS}",
            "--call", "postbode.web:create_app"]
READY = r"Serving on (http://127\.0\.0\.1:\d+)"


@pytest.fixture
def audience_of_2000(invoke, tmp_path: Path) -> list[str]:
    readers = make_readers(POSTS)
    path = tmp_path / "readers.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["email", "name", "language"])
        writer.writerows([r.email, r.name, r.locale] for r in readers)
    result = invoke("subscribers", "import", str(path), "--list", "subscribers")
    assert result.exit_code == 0, result.output
    return [r.email for r in readers]


def unsubscribed(settings: Settings) -> int:
    conn = sqlite3.connect(settings.database)
    try:
        return conn.execute("SELECT count(*) FROM subscribers WHERE consent = 'unsubscribed'").fetchone()[0]
    finally:
        conn.close()


def one_click(http: requests.Session, url: str) -> list[int]:
    """POST as a mail provider does (RFC 8058); a 503 is retried as the provider would."""
    answers = []
    while len(answers) < MAX_RETRIES and (not answers or answers[-1] == 503):
        answers.append(http.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=60).status_code)
    return answers


def test_waitress_answers_2000_one_click_posts_and_records_each(project, settings, audience_of_2000):
    links = [tokens.sign(settings.with_overrides(secret_key=TEST_SECRET_KEY), "unsubscribe", email)
             for email in audience_of_2000]
    env = server_env(POSTBODE_SECRET_KEY=TEST_SECRET_KEY)
    with running(WAITRESS, cwd=project, env=env, ready=READY) as server:
        connections = [requests.Session() for _ in range(CLIENTS)]
        with ThreadPoolExecutor(CLIENTS) as pool:
            per_link = list(pool.map(lambda i: one_click(connections[i % CLIENTS],
                                                         f"{server.url}/u/{links[i]}"), range(POSTS)))
        headers = requests.get(f"{server.url}/", timeout=30).headers
    answers = Counter(status for statuses in per_link for status in statuses)
    assert set(answers) <= {200, 503}, (answers, server.output()[-6000:])
    assert all(statuses[-1] == 200 for statuses in per_link)  # a 503 was retried until recorded
    assert unsubscribed(settings) == POSTS
    access = [line for line in server.lines if '"POST /u/' in line]
    assert len(access) >= POSTS
    assert all('"POST /u/[token]"' in line for line in access)
    log = server.output()
    assert not any(link[:40] in log for link in links[:50])
    assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "private"


@pytest.mark.parametrize("key", ["", "too-short", tokens.DEVELOPMENT_KEY])
def test_waitress_refuses_to_start_without_a_real_key(project, key):
    """The fault: the app started without a key and answered 500 to every unsubscribe."""
    import subprocess

    env = server_env(**({"POSTBODE_SECRET_KEY": key} if key else {}))
    done = subprocess.run(WAITRESS, cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "POSTBODE_SECRET_KEY" in done.stderr
    assert not re.search(r"Serving on", done.stderr)


def test_serve_runs_the_same_server(project, settings):
    env = server_env(POSTBODE_SECRET_KEY=TEST_SECRET_KEY)
    command = [sys.executable, "-m", "postbode", "serve", "--port", "0"]
    with running(command, cwd=project, env=env, ready=r"serving on (http://127\.0\.0\.1:\d+)") as server:
        index = requests.get(f"{server.url}/", timeout=30)
        link = tokens.sign(settings.with_overrides(secret_key=TEST_SECRET_KEY), "unsubscribe",
                           "nobody@example.org")
        refused = requests.post(f"{server.url}/u/{link}", headers={"Sec-Fetch-Site": "cross-site"},
                                timeout=30)
    assert index.status_code == 200 and index.headers["Server"] == "postbode"
    assert refused.status_code == 403
    assert any('"POST /u/[token]" 403' in line for line in server.lines)
