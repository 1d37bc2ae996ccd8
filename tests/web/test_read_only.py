"""Preview is read-only: no route that acts on a person, the database opened read-only, loopback only."""
from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
import requests
import sqlalchemy.exc

from postbode import tokens
from postbode.config import Settings

from conftest import SAMPLE
from fixtures.web import running, server_env

NEWSLETTER = "2018-07-resultaten"
LOTTE = "lotte@example.org"


@pytest.fixture
def lotte(invoke, tmp_path: Path) -> str:
    csv = tmp_path / "readers.csv"
    csv.write_text(f"email,name,language\n{LOTTE},Lotte Voorbeeld,nl\n", encoding="utf-8")
    assert invoke("subscribers", "import", str(csv), "--list", "subscribers").exit_code == 0
    return LOTTE


def snapshot(settings: Settings) -> dict[str, list]:
    conn = sqlite3.connect(settings.database)
    try:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in ("subscribers", "memberships", "suppressions", "audience_events")}
    finally:
        conn.close()


def test_a_forged_development_key_token_changes_nothing_through_a_running_preview(
        project, settings, lotte):
    """The attack: the public development key signs an unsubscribe the preview server accepts."""
    before = snapshot(settings)
    dev = settings.with_overrides(secret_key=tokens.DEVELOPMENT_KEY)
    unsubscribe = tokens.sign(dev, "unsubscribe", lotte)
    preferences = tokens.sign(dev, "preferences", lotte)
    command = [sys.executable, "-m", "postbode", "preview", SAMPLE, "--port", "0"]
    with running(command, cwd=project, env=server_env(), ready=r"serving on (http://\S+?)/preview") as server:
        assert requests.get(f"{server.url}/preview/{NEWSLETTER}", timeout=30).status_code == 200
        answers = [
            requests.post(f"{server.url}/u/{unsubscribe}", data={"List-Unsubscribe": "One-Click"},
                          timeout=30),
            requests.get(f"{server.url}/u/{unsubscribe}", timeout=30),
            requests.get(f"{server.url}/p/{preferences}", timeout=30),
            requests.post(f"{server.url}/p/{preferences}", data={"action": "unsubscribe"}, timeout=30),
            requests.post(f"{server.url}/webhooks/mailgun", json={}, timeout=30),
            requests.post(f"{server.url}/webhooks/postmark", json={}, timeout=30),
        ]
    assert [a.status_code for a in answers] == [404] * len(answers)
    assert LOTTE not in "".join(a.text for a in answers)
    assert snapshot(settings) == before


def test_the_read_only_app_has_no_writing_routes_and_a_read_only_database(settings, db, lotte):
    from postbode.web import create_app
    from postbode.web.db import get_db

    app = create_app(settings, {"PREVIEW": True})  # no key needed: it signs and checks nothing
    writing = {rule.rule for rule in app.url_map.iter_rules()
               if rule.methods - {"GET", "HEAD", "OPTIONS"}}
    assert writing == set()
    assert not any(r.rule.startswith(("/u/", "/p/", "/webhooks")) for r in app.url_map.iter_rules())
    before = snapshot(settings)
    with app.app_context():
        with pytest.raises(sqlalchemy.exc.OperationalError, match="readonly"):
            get_db().exec_driver_sql("DELETE FROM subscribers")
    assert snapshot(settings) == before


@pytest.mark.parametrize("command", [["preview", SAMPLE], ["serve", "--preview"]])
def test_the_preview_refuses_another_host_without_a_real_key(invoke, command):
    for env in ({}, {"POSTBODE_SECRET_KEY": "short"}, {"POSTBODE_SECRET_KEY": tokens.DEVELOPMENT_KEY}):
        result = invoke(*command, "--host", "0.0.0.0", "--port", "0", env=env)
        assert result.exit_code == 1, result.output
        assert "127.0.0.1 only" in result.output and "POSTBODE_SECRET_KEY" in result.output


def test_serve_refuses_a_short_or_development_key(invoke):
    for key in ("a", tokens.DEVELOPMENT_KEY):
        result = invoke("serve", "--port", "0", env={"POSTBODE_SECRET_KEY": key})
        assert result.exit_code == 1
        assert "POSTBODE_SECRET_KEY" in result.output
