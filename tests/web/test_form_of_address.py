"""The same form of address everywhere: a reader the mail calls "je" is "je" on the web pages too."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from postbode import audience, store, tokens
from postbode.config import Settings


def add(settings: Settings, tmp_path: Path, email: str, aanhef: str, locale: str = "nl") -> str:
    """One subscriber imported from a CSV with an `aanhef` column, as a fundraiser would."""
    csv = tmp_path / f"{email.split('@')[0]}.csv"
    header = "email,name,language" + (",aanhef" if aanhef else "")
    csv.write_text(f"{header}\n{email},Sam Voorbeeld,{locale}{',' + aanhef if aanhef else ''}\n",
                   encoding="utf-8")
    conn = store.connect(settings)
    try:
        audience.import_csv(conn, csv, "subscribers", settings)
    finally:
        conn.close()
    return email


def text_of(page: str) -> str:
    """The visible words of a page (style and tags dropped), lower-cased."""
    page = re.sub(r"<style.*?</style>", " ", page, flags=re.DOTALL)
    return " ".join(re.sub(r"<[^>]+>", " ", page).split()).lower()


def words(page: str) -> set[str]:
    return set(re.findall(r"\w+", text_of(page)))


def pages(client, settings: Settings, email: str, formality: str) -> dict[str, str]:
    """Unsubscribe, preferences, preferences saved (same form of address) and unsubscribed."""
    unsubscribe = tokens.sign(settings, "unsubscribe", email)
    preferences = tokens.sign(settings, "preferences", email)
    found = {"unsubscribe": client.get(f"/u/{unsubscribe}"),
             "preferences": client.get(f"/p/{preferences}"),
             "saved": client.post(f"/p/{preferences}",
                                  data={"locale": "nl", "formality": formality,
                                        "lists": ["subscribers"]}),
             "unsubscribed": client.post(f"/u/{unsubscribe}")}
    assert all(r.status_code == 200 for r in found.values()), {k: r.status_code for k, r in found.items()}
    return {name: r.get_data(as_text=True) for name, r in found.items()}


def test_pages_for_aanhef_je_say_je(client, web_settings, tmp_path):
    email = add(web_settings, tmp_path, "sam-informal@example.org", "je")
    shown = pages(client, web_settings, email, "informal")
    for name, page in shown.items():
        # "u" is only allowed in the choice "Formeel (u)" of the preferences form
        found = set(re.findall(r"\w+", text_of(page).replace("formeel (u)", "")))
        assert "je" in found, name
        assert not found & {"u", "uw", "wilt"}, (name, found & {"u", "uw", "wilt"})
    assert "je voorkeuren" in text_of(shown["preferences"])
    assert "wil je dat" in text_of(shown["unsubscribe"])
    assert "je bent afgemeld" in text_of(shown["unsubscribed"])


def test_pages_for_aanhef_u_say_u(client, web_settings, tmp_path):
    email = add(web_settings, tmp_path, "sam-formal@example.org", "u")
    shown = pages(client, web_settings, email, "formal")
    for name, page in shown.items():
        found = words(page)
        assert found & {"u", "uw", "wilt"}, name
        # "je" is only allowed in the choice "Informeel (je)" of the preferences form
        informal = [w for w in re.findall(r"\w+", text_of(page).replace("informeel (je)", ""))
                    if w in {"je", "jij", "jouw"}]
        assert informal == [], (name, informal)
    assert "uw voorkeuren" in text_of(shown["preferences"])
    assert "hoe spreken we u aan" in text_of(shown["preferences"])
    assert "wilt u dat" in text_of(shown["unsubscribe"])
    assert "u bent afgemeld" in text_of(shown["unsubscribed"])


def test_without_aanhef_the_pages_say_u_as_the_mail_does(client, web_settings, tmp_path):
    email = add(web_settings, tmp_path, "sam-formal-default@example.org", "")
    assert audience.DEFAULT_FORMALITY == "formal"
    page = client.get(f"/u/{tokens.sign(web_settings, 'unsubscribe', email)}").get_data(as_text=True)
    assert "wilt u dat" in text_of(page)


@pytest.mark.parametrize("aanhef, expected", [("u", "Ihre Einstellungen"), ("je", "Deine Einstellungen")])
def test_the_form_of_address_is_translated(client, web_settings, tmp_path, aanhef, expected):
    email = add(web_settings, tmp_path, f"jonas-{aanhef}@example.org", aanhef, locale="de")
    page = client.get(f"/p/{tokens.sign(web_settings, 'preferences', email)}").get_data(as_text=True)
    assert expected in page


@pytest.mark.parametrize("aanhef, expected, other", [("u", "uw voorkeuren", "je voorkeuren"),
                                                     ("je", "je voorkeuren", "uw voorkeuren")])
def test_an_expired_link_and_its_renewal_keep_the_form_of_address(client, web_settings, tmp_path,
                                                                   aanhef, expected, other):
    import time

    email = add(web_settings, tmp_path, f"sam-expired-{aanhef}@example.org", aanhef)
    old = int(time.time()) - (web_settings.preferences_link_days + 10) * 86400
    token = tokens.sign(web_settings, "preferences", email, issued_at=old)
    expired = client.get(f"/p/{token}")
    assert expired.status_code == 410
    assert expected in text_of(expired.get_data(as_text=True))
    assert other not in text_of(expired.get_data(as_text=True))
    renewed = text_of(client.post(f"/p/{token}/renew").get_data(as_text=True))
    assert ("u krijgt" in renewed) == (aanhef == "u") and ("je krijgt" in renewed) == (aanhef == "je")
