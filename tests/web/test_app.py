"""The subscriber web app through Flask's test client, on a real SQLite file."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from postbode import audience, store, tokens
from postbode.config import Settings

from fixtures.state import read_rows

# state tests: once on a SQLite file, once on PostgreSQL (tests/fixtures/state.py)
pytestmark = pytest.mark.both_engines


NEWSLETTER = "2018-07-resultaten"
SAMPLE = f"newsletters/{NEWSLETTER}.yaml"


def add_subscriber(settings: Settings, tmp_path: Path, email: str, *, locale: str = "nl",
                   aanhef: str = "u", list_name: str = "subscribers") -> None:
    """Import one subscriber the way a fundraiser would: a CSV file into a list."""
    csv = tmp_path / f"{list_name}-{email.split('@')[0]}.csv"
    csv.write_text(f"email,name,language,aanhef\n{email},Lotte Voorbeeld,{locale},{aanhef}\n",
                   encoding="utf-8")
    conn = store.connect(settings)
    try:
        audience.import_csv(conn, csv, list_name, settings)
    finally:
        conn.close()


def stored(settings: Settings, email: str):
    """The subscriber's row, read from the database by a connection of its own."""
    found = read_rows(settings, "SELECT * FROM subscribers WHERE email_key = ?", email.lower())
    return found[0] if found else None


def web_events(settings: Settings) -> list[str]:
    return [r[0] for r in read_rows(
        settings, "SELECT kind FROM audience_events WHERE source = 'web' ORDER BY id")]


def html_tag(page: str) -> str:
    return re.search(r"<html[^>]*>", page).group(0)


@pytest.fixture
def subscriber(web_settings: Settings, tmp_path: Path) -> str:
    email = "lotte@example.org"
    add_subscriber(web_settings, tmp_path, email)
    return email


# ------------------------------------------------------------------ unsubscribe

def test_one_click_post_unsubscribes_without_cookies(client, web_settings, subscriber):
    token = tokens.sign(web_settings, "unsubscribe", subscriber)
    response = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"},
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert stored(web_settings, subscriber)["consent"] == "unsubscribed"
    assert "unsubscribed" in web_events(web_settings)


def test_one_click_post_as_multipart_form(client, web_settings, subscriber):
    token = tokens.sign(web_settings, "unsubscribe", subscriber)
    response = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"},
                           content_type="multipart/form-data")
    assert response.status_code == 200
    assert stored(web_settings, subscriber)["consent"] == "unsubscribed"


def test_get_only_asks_and_never_unsubscribes(client, web_settings, subscriber):
    token = tokens.sign(web_settings, "unsubscribe", subscriber)
    for _ in range(2):  # a link scanner may fetch it more than once
        response = client.get(f"/u/{token}")
        assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<form method="post">' in page and "<button" in page
    assert subscriber in page
    assert response.headers["Cache-Control"] == "no-store"
    assert stored(web_settings, subscriber)["consent"] == "subscribed"
    assert web_events(web_settings) == []


def test_button_unsubscribes_and_is_idempotent(client, web_settings, subscriber):
    token = tokens.sign(web_settings, "unsubscribe", subscriber)
    first = client.post(f"/u/{token}")
    second = client.post(f"/u/{token}")
    assert first.status_code == second.status_code == 200
    assert "U bent afgemeld" in first.get_data(as_text=True)  # aanhef u, as the mail says
    assert stored(web_settings, subscriber)["consent"] == "unsubscribed"
    assert web_events(web_settings) == ["unsubscribed"]  # recorded once
    again = client.get(f"/u/{token}").get_data(as_text=True)
    assert "U bent al afgemeld" in again and "<button" not in again


def test_unsubscribe_of_an_unknown_address_is_still_recorded(client, web_settings):
    token = tokens.sign(web_settings, "unsubscribe", "nobody@example.net")
    assert client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    conn = store.connect(web_settings)
    try:
        assert audience.is_suppressed(conn, "nobody@example.net")
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/u/{token}", "/p/{token}"])
def test_tampered_token_gets_400_with_a_way_out(client, web_settings, subscriber, path):
    token = tokens.sign(web_settings, "unsubscribe", subscriber)
    other = tokens.sign(web_settings, "unsubscribe", "other@example.org")
    middle = len(token) // 2
    for bad in (token[:middle] + other[middle:], token[:-2], token[:10], "x", token + ".x"):
        response = client.post(path.format(token=bad), data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 400, bad
        page = response.get_data(as_text=True)
        assert "beschadigd" in page
        assert "mailto:afmelden@example.org" in page  # [mail] unsubscribe_mailto of the sample
    assert stored(web_settings, subscriber)["consent"] == "subscribed"


def test_token_for_another_purpose_is_refused(client, web_settings, subscriber):
    preferences_token = tokens.sign(web_settings, "preferences", subscriber)
    response = client.post(f"/u/{preferences_token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    assert stored(web_settings, subscriber)["consent"] == "subscribed"


def test_pages_follow_the_subscribers_language_and_direction(client, web_settings, tmp_path):
    add_subscriber(web_settings, tmp_path, "samira@example.org", locale="ar")
    token = tokens.sign(web_settings, "unsubscribe", "samira@example.org")
    response = client.get(f"/u/{token}")
    assert html_tag(response.get_data(as_text=True)) == '<html lang="ar" dir="rtl">'
    assert response.headers["Content-Language"] == "ar"


# ------------------------------------------------------------------ preferences

def test_preferences_change_language_formality_and_lists(client, web_settings, subscriber, tmp_path):
    add_subscriber(web_settings, tmp_path, "someone@example.org", list_name="donors")  # a second list exists
    token = tokens.sign(web_settings, "preferences", subscriber)
    form = client.get(f"/p/{token}").get_data(as_text=True)
    assert 'value="nl" checked' in form and 'value="de"' in form
    # only self-service lists are offered (segments.yaml): donors is not one
    assert 'value="subscribers" checked' in form and 'value="donors"' not in form

    response = client.post(f"/p/{token}", data={
        "action": "save", "locale": "de", "formality": "informal"})  # leaves the newsletter list
    assert response.status_code == 200
    assert html_tag(response.get_data(as_text=True)) == '<html lang="de" dir="ltr">'
    row = stored(web_settings, subscriber)
    assert (row["locale"], row["formality"]) == ("de", "informal")
    assert web_events(web_settings) == ["locale_changed", "formality_changed", "lists_changed"]
    assert 'value="de" checked' in client.get(f"/p/{token}").get_data(as_text=True)
    lists = {r[0] for r in read_rows(
        web_settings, "SELECT list FROM memberships WHERE subscriber_id = ?", row["id"])}
    assert lists == set()


def test_preferences_refuse_a_language_not_offered(client, web_settings, subscriber):
    token = tokens.sign(web_settings, "preferences", subscriber)
    response = client.post(f"/p/{token}", data={"action": "save", "locale": "fr", "formality": "formal"})
    assert response.status_code == 400
    assert stored(web_settings, subscriber)["locale"] == "nl"


def test_preferences_unsubscribe_from_everything(client, web_settings, subscriber):
    token = tokens.sign(web_settings, "preferences", subscriber)
    response = client.post(f"/p/{token}", data={"action": "unsubscribe"})
    assert response.status_code == 200
    assert stored(web_settings, subscriber)["consent"] == "unsubscribed"


def test_preferences_of_a_forgotten_address(client, web_settings, subscriber):
    conn = store.connect(web_settings)
    try:
        audience.forget(conn, subscriber)
    finally:
        conn.close()
    token = tokens.sign(web_settings, "preferences", subscriber)
    assert client.get(f"/p/{token}").status_code == 404


# ------------------------------------------------------------------ web versions and archive

@pytest.fixture
def lenient_client(web_settings):
    """A client whose locales may fall back field by field, whatever the sample's translation state."""
    from postbode.web import create_app

    return create_app(web_settings.with_overrides(completeness={}), {"TESTING": True}).test_client()


@pytest.mark.parametrize("locale, direction", [("nl", "ltr"), ("en", "ltr"), ("ar", "rtl")])
def test_web_version_of_the_sample(lenient_client, locale, direction):
    response = lenient_client.get(f"/v/{NEWSLETTER}/{locale}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'lang="{locale}"' in html_tag(page) and f'dir="{direction}"' in html_tag(page)
    assert "__PB_" not in page
    assert f"/manage/{locale}" in page          # not a personal unsubscribe link
    assert "/u/" not in page and "/p/" not in page
    assert response.headers["Content-Language"] == locale


def test_web_version_of_a_regional_locale(client):
    """Mails to nl_BE readers link /v/<id>/nl_BE: Dutch text, Belgian formatting."""
    response = client.get(f"/v/{NEWSLETTER}/nl_BE")
    assert response.status_code == 200
    assert 'lang="nl-BE"' in html_tag(response.get_data(as_text=True))


def test_web_version_of_a_segment_view_differs(client, web_settings):
    general = client.get(f"/v/{NEWSLETTER}/nl").get_data(as_text=True)
    token = tokens.sign(web_settings, "web", n=NEWSLETTER, v="funders")  # as its mails link it
    funders = client.get(f"/v/{NEWSLETTER}/nl/funders?t={token}")
    assert funders.status_code == 200
    assert funders.get_data(as_text=True) != general


@pytest.mark.parametrize("path", [f"/v/{NEWSLETTER}/fr", f"/v/{NEWSLETTER}/fr_BE", f"/v/{NEWSLETTER}/nl-be",
                                  f"/v/{NEWSLETTER}/xx_YY", f"/v/{NEWSLETTER}/nl/nobody",
                                  "/v/no-such-letter/nl", "/v/..%2Fpostbode/nl"])
def test_unknown_web_versions_are_404(client, path):
    assert client.get(path).status_code == 404


def test_archive_index_and_manage_page(client):
    index = client.get("/", headers={"Accept-Language": "de-AT,de;q=0.9"})
    assert index.status_code == 200
    assert f"/v/{NEWSLETTER}/ar" in index.get_data(as_text=True)
    assert 'lang="de"' in html_tag(index.get_data(as_text=True))
    manage = client.get("/manage/ar").get_data(as_text=True)
    assert html_tag(manage) == '<html lang="ar" dir="rtl">'


def test_preview_is_not_on_the_public_app(client):
    assert client.get(f"/preview/{NEWSLETTER}").status_code == 404


def test_preview_shows_source_and_translation_side_by_side(web_settings):
    from postbode.web import create_app

    client = create_app(web_settings, {"TESTING": True, "PREVIEW": True}).test_client()
    page = client.get(f"/preview/{NEWSLETTER}?locale=de&segment=funders").get_data(as_text=True)
    frames = re.findall(r'<iframe[^>]*src="([^"]+)"', page)
    assert frames == [f"/preview/{NEWSLETTER}/frame?locale=nl&amp;segment=funders&amp;scheme=light",
                      f"/preview/{NEWSLETTER}/frame?locale=de&amp;segment=funders&amp;scheme=light"]
    frame = client.get(frames[1].replace("&amp;", "&"))
    assert frame.status_code == 200
    assert 'lang="de"' in html_tag(frame.get_data(as_text=True))


def test_archive_command_writes_every_locale(invoke, project, tmp_path):
    toml = project / "postbode.toml"  # let every locale fall back, whatever the translation state
    toml.write_text(toml.read_text(encoding="utf-8").replace('= "require"', '= "fallback"'), encoding="utf-8")
    out = tmp_path / "public"
    result = invoke("archive", SAMPLE, "--out", str(out))
    assert result.exit_code == 0, result.output
    for locale in ("nl", "en", "de", "ar"):
        assert (out / "v" / NEWSLETTER / locale / "index.html").is_file()
        assert not (out / "v" / NEWSLETTER / locale / "funders").exists()  # only via a signed link
    arabic = (out / "v" / NEWSLETTER / "ar" / "index.html").read_text(encoding="utf-8")
    assert 'dir="rtl"' in html_tag(arabic)
    assert "https://nieuwsbrief.example.org/manage/ar" in arabic
    assert (out / "index.html").is_file() and (out / "manage" / "nl" / "index.html").is_file()
    assert (out / "images" / "toerisme-training.png").is_file()


def test_archive_of_an_unknown_newsletter_fails_cleanly(invoke, tmp_path):
    result = invoke("archive", "no-such-letter", "--out", str(tmp_path / "public"))
    assert result.exit_code == 1
    assert "no such newsletter" in result.output
    assert not (tmp_path / "public").exists()


def test_serve_refuses_to_start_without_a_signing_key(invoke):
    result = invoke("serve", "--port", "0")
    assert result.exit_code == 1
    assert "POSTBODE_SECRET_KEY" in result.output


@pytest.mark.parametrize("command", ["serve", "preview", "archive"])
def test_web_commands_have_help_with_an_example(invoke, command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output


def test_page_texts_come_from_the_messages_catalog(client, web_settings, tmp_path):
    """A translator's entry in locales/<lang>/LC_MESSAGES/messages.po reaches the page."""
    from babel.messages.pofile import read_po, write_po

    po = web_settings.locales_dir / "de" / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as fh:
        catalog = read_po(fh)
    catalog["Ja, meld mij af"].string = "Ja, abmelden <script>alert(1)</script>"
    catalog["Ja, meld mij af"].flags.discard("fuzzy")
    with po.open("wb") as fh:
        write_po(fh, catalog)
    add_subscriber(web_settings, tmp_path, "jonas@example.org", locale="de_AT")
    token = tokens.sign(web_settings, "unsubscribe", "jonas@example.org")
    page = client.get(f"/u/{token}").get_data(as_text=True)
    assert html_tag(page) == '<html lang="de" dir="ltr">'
    assert "Ja, abmelden" in page and "<script>" not in page


@pytest.mark.sqlite_only
def test_a_setup_problem_shows_a_calm_page(subscriber, web_settings, tmp_path):
    from postbode.web import create_app

    # The database is there when the app starts, then gone: its path is now a folder.
    client = create_app(web_settings, {"TESTING": True}).test_client()
    database = Path(web_settings.database)
    for leftover in database.parent.glob(database.name + "*"):
        leftover.unlink()
    (database.parent / (database.name)).mkdir()
    token = tokens.sign(web_settings, "unsubscribe", subscriber)
    response = client.post(f"/u/{token}")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Traceback" not in page and database.name not in page
    assert "mailto:info@example.org" in page


def test_the_app_refuses_to_start_without_a_real_key(web_settings):
    """The fault: the WSGI app started without a key and answered 500 to every unsubscribe."""
    from postbode.errors import ConfigError
    from postbode.web import create_app

    for weak in ("", "a", tokens.DEVELOPMENT_KEY):
        with pytest.raises(ConfigError, match="POSTBODE_SECRET_KEY"):
            create_app(web_settings.with_overrides(secret_key=weak))


def test_archive_writes_nothing_when_a_version_fails(invoke, project, tmp_path):
    broken = project / "locales" / "ar" / "LC_MESSAGES" / f"{NEWSLETTER}.po"
    broken.write_text('msgid "unterminated\n', encoding="utf-8")
    out = tmp_path / "public"
    result = invoke("archive", SAMPLE, "--out", str(out))
    assert result.exit_code == 1
    assert "the archive was not written" in result.output
    assert f"{NEWSLETTER}.po" in result.output
    assert not out.exists()
