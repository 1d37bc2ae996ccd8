"""Lists say who may join them: the preferences page offers and accepts only self-service lists."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from postbode import audience, store, tokens
from postbode.config import Settings


def add(settings: Settings, tmp_path: Path, email: str, list_name: str) -> None:
    csv = tmp_path / f"{list_name}-{email.split('@')[0]}.csv"
    csv.write_text(f"email,name,language\n{email},Lotte Voorbeeld,nl\n", encoding="utf-8")
    conn = store.connect(settings)
    try:
        audience.import_csv(conn, csv, list_name, settings)
    finally:
        conn.close()


def lists_of(settings: Settings, email: str) -> set[str]:
    conn = sqlite3.connect(settings.database)
    try:
        return {r[0] for r in conn.execute(
            "SELECT m.list FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id "
            "WHERE s.email_key = ?", (email,))}
    finally:
        conn.close()


def test_a_newsletter_subscriber_cannot_join_the_funders(client, web_settings, invoke, tmp_path):
    add(web_settings, tmp_path, "fonds@example.org", "funders")
    add(web_settings, tmp_path, "lezer@example.org", "subscribers")
    before = invoke("subscribers", "list", "--segment", "funders")
    assert "fonds@example.org" in before.output and "lezer@example.org" not in before.output
    token = tokens.sign(web_settings, "preferences", "lezer@example.org")

    response = client.post(f"/p/{token}", data={
        "action": "save", "locale": "nl", "formality": "formal", "lists": ["subscribers", "funders"]})

    assert response.status_code == 400
    assert lists_of(web_settings, "lezer@example.org") == {"subscribers"}
    after = invoke("subscribers", "list", "--segment", "funders")
    assert after.exit_code == 0 and after.output == before.output


def test_the_page_offers_only_self_service_lists(client, web_settings, tmp_path):
    add(web_settings, tmp_path, "lezer@example.org", "subscribers")
    page = client.get(f"/p/{tokens.sign(web_settings, 'preferences', 'lezer@example.org')}")
    html = page.get_data(as_text=True)
    assert 'name="lists" value="subscribers"' in html
    assert 'value="funders"' not in html and 'value="donors"' not in html


def test_a_funder_saving_preferences_stays_a_funder(client, web_settings, tmp_path):
    add(web_settings, tmp_path, "fonds@example.org", "funders")
    token = tokens.sign(web_settings, "preferences", "fonds@example.org")

    response = client.post(f"/p/{token}", data={
        "action": "save", "locale": "en", "formality": "formal", "lists": ["subscribers"]})

    assert response.status_code == 200
    assert lists_of(web_settings, "fonds@example.org") == {"funders", "subscribers"}
