"""Editions only for their readers: drafts stay off the web, a segment's view needs its mail's link."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from postbode import build, journal, message, store, tokens
from postbode.audience import Recipient
from postbode.config import Settings

from conftest import SAMPLE

NEWSLETTER = "2018-07-resultaten"
DRAFT = "2026-12-concept"


def mail_web_link(settings: Settings, view: str | None, locale: str = "nl") -> str:
    """The "view in your browser" link of a real mail of this view, as a reader gets it."""
    result = build.build_variants(Path(SAMPLE), [locale], [view], settings)
    variant = build.prepare_all(result, settings)[(locale, view)]
    reader = Recipient(1, "fonds@example.org", "Fonds Voorbeeld", locale, "formal", view, "funders")
    mail = message.build(variant, reader, "test-campaign", settings)
    links = re.findall(r'href="([^"]*/v/[^"]*)"', mail.html)
    assert links, "the mail has no web-version link"
    return links[0].replace("&amp;", "&")


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture
def draft(web_settings: Settings) -> str:
    """A new issue saved in newsletters/ but never sent: the sample without `published: true`."""
    text = (web_settings.newsletters_dir / f"{NEWSLETTER}.yaml").read_text(encoding="utf-8")
    text = text.replace(f"id: {NEWSLETTER}", f"id: {DRAFT}").replace("published: true", "")
    (web_settings.newsletters_dir / f"{DRAFT}.yaml").write_text(text, encoding="utf-8")
    return DRAFT


def test_segment_view_without_token_is_404(client):
    assert client.get(f"/v/{NEWSLETTER}/nl/funders").status_code == 404


@pytest.mark.parametrize("token", ["", "garbage", "AAAA" * 20])
def test_segment_view_with_a_bad_token_is_404(client, token):
    assert client.get(f"/v/{NEWSLETTER}/nl/funders?t={token}").status_code == 404


def test_segment_view_through_the_link_of_a_funders_mail(client, web_settings):
    link = mail_web_link(web_settings, "funders")
    assert urlsplit(link).path == f"/v/{NEWSLETTER}/nl/funders" and "t=" in urlsplit(link).query
    response = client.get(local(link))
    assert response.status_code == 200
    assert response.get_data(as_text=True) != client.get(f"/v/{NEWSLETTER}/nl").get_data(as_text=True)
    assert response.headers["X-Robots-Tag"] == "noindex"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response.headers["Cache-Control"]


def test_a_view_token_opens_only_its_own_view(client, web_settings):
    other = tokens.sign(web_settings, "web", n=NEWSLETTER, v="donors")
    assert client.get(f"/v/{NEWSLETTER}/nl/funders?t={other}").status_code == 404
    elsewhere = tokens.sign(web_settings, "web", n="another-letter", v="funders")
    assert client.get(f"/v/{NEWSLETTER}/nl/funders?t={elsewhere}").status_code == 404
    personal = tokens.sign(web_settings, "unsubscribe", "fonds@example.org")
    assert client.get(f"/v/{NEWSLETTER}/nl/funders?t={personal}").status_code == 404


def test_the_public_mail_links_the_public_view_without_token(web_settings):
    link = mail_web_link(web_settings, None)
    assert urlsplit(link).path == f"/v/{NEWSLETTER}/nl" and not urlsplit(link).query


def test_the_public_view_may_be_indexed(client):
    response = client.get(f"/v/{NEWSLETTER}/nl")
    assert response.status_code == 200
    assert "X-Robots-Tag" not in response.headers
    assert response.headers["Cache-Control"].startswith("public")


def test_a_draft_is_absent_from_the_archive_and_its_web_versions(client, draft):
    index = client.get("/").get_data(as_text=True)
    assert f"/v/{NEWSLETTER}/nl" in index
    assert draft not in index
    assert client.get(f"/v/{draft}/nl").status_code == 404
    assert client.get(f"/v/{draft}/en").status_code == 404


def test_a_draft_appears_once_it_was_sent(client, web_settings, draft):
    conn = store.connect(web_settings)
    try:
        journal.create_campaign(conn, draft, ["everyone"], {}, "outbox://outbox")
    finally:
        conn.close()
    assert f"/v/{draft}/nl" in client.get("/").get_data(as_text=True)
    assert client.get(f"/v/{draft}/nl").status_code == 200


def test_the_archive_offers_only_translated_languages(client, web_settings, draft):
    conn = store.connect(web_settings)
    try:
        journal.create_campaign(conn, draft, ["everyone"], {}, "outbox://outbox")
    finally:
        conn.close()
    (web_settings.locales_dir / "de" / "LC_MESSAGES" / f"{NEWSLETTER}.po").unlink()
    index = client.get("/").get_data(as_text=True)
    offered = set(re.findall(r'href="/v/([^/"]+)/([^/"]+)"', index))
    # the draft has no catalog at all: only its source language
    assert {code for letter, code in offered if letter == draft} == {"nl"}
    sample = {code for letter, code in offered if letter == NEWSLETTER}
    assert "nl" in sample and "de" not in sample


def test_personal_pages_are_not_indexed_and_send_no_referrer(client, web_settings):
    for path in (f"/u/{tokens.sign(web_settings, 'unsubscribe', 'lotte@example.org')}",
                 f"/p/{tokens.sign(web_settings, 'preferences', 'lotte@example.org')}"):
        response = client.get(path)
        assert response.headers["X-Robots-Tag"] == "noindex", path
        assert response.headers["Referrer-Policy"] == "no-referrer", path


def test_the_static_archive_holds_no_segment_view_and_no_draft(invoke, project, tmp_path, draft):
    toml = project / "postbode.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('= "require"', '= "fallback"'),
                    encoding="utf-8")
    out = tmp_path / "public"
    assert invoke("archive", SAMPLE, "--out", str(out)).exit_code == 0
    assert (out / "v" / NEWSLETTER / "nl" / "index.html").is_file()
    assert not (out / "v" / NEWSLETTER / "nl" / "funders").exists()
    refused = invoke("archive", draft, "--out", str(tmp_path / "other"))
    assert refused.exit_code == 1 and "draft" in refused.output
    assert not (tmp_path / "other").exists()


def test_without_a_database_only_published_issues_are_shown(web_settings, draft):
    from postbode.web import create_app

    missing = web_settings.with_overrides(database=web_settings.database.parent / "none" / "x.sqlite3")
    client = create_app(missing, {"TESTING": True, "READ_ONLY": True}).test_client()
    index = client.get("/")
    assert index.status_code == 200
    assert f"/v/{NEWSLETTER}/nl" in index.get_data(as_text=True)
    assert draft not in index.get_data(as_text=True)
