"""`subscribers show / consent / purge-unconfirmed` and `signup-snippet` on a real state database."""
from __future__ import annotations

import json
import sqlite3

from postbode import store
from postbode.audience import signup

KEY = "cli-test-signing-key-not-secret-0123456789"


def signed_up(settings, email: str, *, confirm: bool) -> None:
    keyed = settings.with_overrides(secret_key=KEY)
    conn = store.connect(keyed)
    try:
        form = signup.SignupForm(email, "Lotte", "nl", ("subscribers",), "form:subscribers",
                                 "nieuwsbrief-2026-12", "192.0.2.1")
        decision, pending = signup.request(conn, keyed, form)
        assert decision == signup.Decision.CONFIRM
        if confirm:
            signup.confirm(conn, pending.key, "Ja, stuur mij de nieuwsbrief", "192.0.2.1", keyed)
    finally:
        conn.close()


def test_show_prints_everything_held_as_json(invoke, settings):
    signed_up(settings, "lotte@example.org", confirm=True)
    result = invoke("subscribers", "show", "lotte@example.org", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["subscriber"]["consent"] == "subscribed"
    assert data["consent"][0]["source"] == "form:subscribers"
    assert {e["kind"] for e in data["events"]} == {"signup_requested", "signup_confirmed"}


def test_show_of_an_unknown_address_says_so(invoke):
    result = invoke("subscribers", "show", "niemand@example.org")
    assert result.exit_code == 1 and "nothing is held" in result.output


def test_consent_prints_when_where_and_which_text(invoke, settings):
    signed_up(settings, "lotte@example.org", confirm=True)
    result = invoke("subscribers", "consent", "lotte@example.org")
    assert result.exit_code == 0, result.output
    assert "form:subscribers" in result.output and "nieuwsbrief-2026-12" in result.output
    assert "Ja, stuur mij de nieuwsbrief" in result.output


def test_purge_unconfirmed_erases_only_old_unconfirmed_sign_ups(invoke, settings):
    signed_up(settings, "oud@example.org", confirm=False)
    signed_up(settings, "nieuw@example.org", confirm=False)
    signed_up(settings, "bevestigd@example.org", confirm=True)
    raw = sqlite3.connect(settings.database)
    try:
        raw.execute("UPDATE subscribers SET created = '2020-01-01T00:00:00Z' "
                    "WHERE email_key IN ('oud@example.org', 'bevestigd@example.org')")
        raw.commit()
    finally:
        raw.close()
    result = invoke("subscribers", "purge-unconfirmed")
    assert result.exit_code == 0 and "1 unconfirmed sign-up(s) older than 30 days" in result.output
    raw = sqlite3.connect(settings.database)
    try:
        left = {r[0] for r in raw.execute("SELECT email_key FROM subscribers")}
        logged = raw.execute("SELECT detail FROM audience_events WHERE kind = 'unconfirmed_purged'").fetchall()
    finally:
        raw.close()
    assert left == {"nieuw@example.org", "bevestigd@example.org"}
    assert b"oud@example.org" not in settings.database.read_bytes()
    assert json.loads(logged[0][0]) == {"count": 1, "days": 30}


def test_signup_snippet_prints_a_plain_form_for_a_list(invoke):
    result = invoke("signup-snippet", "--list", "subscribers", "--locale", "en")
    assert result.exit_code == 0, result.output
    assert '<form class="postbode-signup" method="post" action="https://nieuwsbrief.example.org/subscribe/subscribers"' in result.output
    assert "Yes, send me the newsletter" in result.output and "<script" not in result.output
    assert 'name="website"' in result.output


def test_signup_snippet_refuses_a_list_people_may_not_join(invoke):
    result = invoke("signup-snippet", "--list", "funders")
    assert result.exit_code == 1 and "not a self-service list" in result.output
