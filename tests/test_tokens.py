"""Tokens: round trip, tampering, purpose, age, opacity, key rotation and weak keys."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest

from postbode import tokens
from postbode.config import Settings
from postbode.errors import ConfigError, PostbodeError

KEY = "test-signing-key-0123456789abcdef"
OLD_KEY = "the-key-before-this-one-0123456789abcdef"


@pytest.fixture
def keyed() -> Settings:
    return Settings(root=Path("/nonexistent"), secret_key=KEY)


def test_round_trip_carries_email_purpose_and_extras(keyed: Settings) -> None:
    token = tokens.sign(keyed, "preferences", "Lezer@example.org", campaign="c-7", lists=["donors"])
    data = tokens.verify(keyed, "preferences", token)
    assert data["email"] == "Lezer@example.org"
    assert data["purpose"] == "preferences"
    assert data["campaign"] == "c-7"
    assert data["lists"] == ["donors"]
    assert abs(data["issued_at"] - time.time()) < 3600


def test_token_is_url_safe(keyed: Settings) -> None:
    token = tokens.sign(keyed, "unsubscribe", "ëlise+news@example.org")
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert tokens.verify(keyed, "unsubscribe", token)["email"] == "ëlise+news@example.org"


def test_token_shows_no_address_and_no_readable_payload(keyed: Settings) -> None:
    """The attack: base64-decode a link from a forwarded mail and read whose it is."""
    token = tokens.sign(keyed, "unsubscribe", "lezer@example.org")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert b"lezer" not in raw and b"example" not in raw and b"unsubscribe" not in raw
    assert "lezer" not in token


def test_a_subscriber_key_replaces_the_address(keyed: Settings) -> None:
    token = tokens.sign(keyed, "preferences", subscriber_key="sk_9f2c7d")
    data = tokens.verify(keyed, "preferences", token)
    assert data["subscriber_key"] == "sk_9f2c7d" and data["email"] is None


def test_changed_token_is_refused(keyed: Settings) -> None:
    token = tokens.sign(keyed, "unsubscribe", "a@example.org")
    middle = len(token) // 2
    forged = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]
    with pytest.raises(tokens.InvalidToken, match="not valid"):
        tokens.verify(keyed, "unsubscribe", forged)


@pytest.mark.parametrize("damage", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    lambda t: t[:40],
    lambda t: "",
    lambda t: "not a token at all",
    lambda t: t + ".é",
    lambda t: t[:20] + "é" + t[21:],
])
def test_damaged_tokens_are_refused(keyed: Settings, damage) -> None:
    token = tokens.sign(keyed, "unsubscribe", "a@example.org")
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(keyed, "unsubscribe", damage(token))


def test_invalid_token_is_a_postbode_error() -> None:
    assert issubclass(tokens.InvalidToken, PostbodeError)


def test_token_for_one_purpose_does_not_work_for_another(keyed: Settings) -> None:
    token = tokens.sign(keyed, "preferences", "a@example.org")
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(keyed, "unsubscribe", token)


def test_token_signed_with_another_key_is_refused(keyed: Settings) -> None:
    token = tokens.sign(keyed.with_overrides(secret_key="another-key-entirely-000000000"),
                        "confirm", "a@example.org")
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(keyed, "confirm", token)


def test_max_age(keyed: Settings) -> None:
    old = tokens.sign(keyed, "confirm", "a@example.org", issued_at=int(time.time()) - 7200)
    assert tokens.verify(keyed, "confirm", old, max_age=86400)["email"] == "a@example.org"
    with pytest.raises(tokens.InvalidToken, match="expired"):
        tokens.verify(keyed, "confirm", old, max_age=3600)


def test_no_key_is_a_config_error_naming_the_variable() -> None:
    bare = Settings(root=Path("/nonexistent"))
    with pytest.raises(ConfigError, match="POSTBODE_SECRET_KEY"):
        tokens.sign(bare, "unsubscribe", "a@example.org")
    with pytest.raises(ConfigError, match="POSTBODE_SECRET_KEY"):
        tokens.verify(bare, "unsubscribe", "x.y")
    with pytest.raises(ConfigError, match="POSTBODE_SECRET_KEY"):
        tokens.verify(bare.with_overrides(secret_key=" , "), "unsubscribe", "x.y")


def test_development_key_only_when_none_is_set(keyed: Settings) -> None:
    bare = Settings(root=Path("/nonexistent"))
    dev, used = tokens.with_development_key(bare)
    assert used and dev.secret_key == tokens.DEVELOPMENT_KEY
    same, used = tokens.with_development_key(keyed)
    assert not used and same.secret_key == KEY


def test_unknown_purpose_and_reserved_fields(keyed: Settings) -> None:
    with pytest.raises(ValueError, match="purpose"):
        tokens.sign(keyed, "login", "a@example.org")
    with pytest.raises(ValueError, match="reserved"):
        tokens.sign(keyed, "confirm", "a@example.org", e="b@example.org")


def test_rotation_keeps_links_in_mail_already_sent_working(keyed: Settings) -> None:
    """The fault: a new key broke every unsubscribe link in mail already sent."""
    before = keyed.with_overrides(secret_key=OLD_KEY)
    old_link = tokens.sign(before, "unsubscribe", "a@example.org", issued_at=946684800)  # year 2000
    rotated = keyed.with_overrides(secret_key=f"{KEY},{OLD_KEY}")
    assert tokens.verify(rotated, "unsubscribe", old_link)["email"] == "a@example.org"
    new_link = tokens.sign(rotated, "unsubscribe", "a@example.org")
    assert tokens.verify(keyed, "unsubscribe", new_link)["email"] == "a@example.org"  # signed with the first
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(before, "unsubscribe", new_link)
    with pytest.raises(tokens.InvalidToken):  # the old key, once removed, is no longer accepted
        tokens.verify(keyed, "unsubscribe", old_link)


def test_unsubscribe_never_expires_but_preferences_do(keyed: Settings) -> None:
    """The fault: a preferences link from the year 2000 still opened the page."""
    year_2000 = 946684800
    assert tokens.verify(keyed, "unsubscribe",
                         tokens.sign(keyed, "unsubscribe", "a@example.org", issued_at=year_2000))
    old = tokens.sign(keyed, "preferences", "a@example.org", issued_at=year_2000)
    with pytest.raises(tokens.ExpiredToken, match="expired") as caught:
        tokens.verify(keyed, "preferences", old)
    assert caught.value.payload["email"] == "a@example.org"  # to mail that person a fresh link
    recent = tokens.sign(keyed, "preferences", "a@example.org", issued_at=int(time.time()) - 300 * 86400)
    assert tokens.verify(keyed, "preferences", recent)["email"] == "a@example.org"
    with pytest.raises(tokens.ExpiredToken):
        tokens.verify(keyed.with_overrides(preferences_link_days=30), "preferences", recent)


def test_links_of_the_earlier_readable_form_still_unsubscribe(keyed: Settings) -> None:
    body = base64.urlsafe_b64encode(json.dumps(
        {"p": "unsubscribe", "e": "a@example.org", "t": 1600000000}).encode()).rstrip(b"=").decode()
    mac = hmac.new(OLD_KEY.encode(), f"postbode.unsubscribe.{body}".encode(), hashlib.sha256).digest()
    legacy = f"{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    rotated = keyed.with_overrides(secret_key=f"{KEY},{OLD_KEY}")
    assert tokens.verify(rotated, "unsubscribe", legacy)["email"] == "a@example.org"
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(rotated, "preferences", legacy)
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(keyed, "unsubscribe", legacy)


@pytest.mark.parametrize("secret, problem", [
    ("a", "shorter than 32 bytes"),
    (tokens.DEVELOPMENT_KEY, "development key"),
    (f"{KEY},short", "key 2 in POSTBODE_SECRET_KEY is shorter"),
    (None, "set POSTBODE_SECRET_KEY"),
])
def test_weak_keys_are_refused_for_real_use(keyed: Settings, secret, problem) -> None:
    with pytest.raises(ConfigError, match=problem):
        tokens.require_production_key(keyed.with_overrides(secret_key=secret or ""))
    tokens.require_production_key(keyed.with_overrides(secret_key=f"{KEY},{OLD_KEY}"))


def test_the_issue_time_cannot_be_moved_to_revive_an_old_link(keyed: Settings) -> None:
    old = tokens.sign(keyed, "preferences", "a@example.org", issued_at=946684800)
    raw = bytearray(base64.urlsafe_b64decode(old + "=" * (-len(old) % 4)))
    raw[1:9] = int(time.time()).to_bytes(8, "big")  # the clear-text issue time, made recent
    revived = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(tokens.InvalidToken, match="not valid"):
        tokens.verify(keyed, "preferences", revived)


@pytest.mark.parametrize("fields", [{"k": "abc_DEF-123"}, {"k": 'a"b'}, {"k": "é"}, {"e": "x@example.org"},
                                    {"k": "ab", "n": 1}, {"k": ""}])
def test_the_short_way_to_a_links_payload_is_the_json_it_stands_for(fields):
    from postbode.tokens import _payload_json

    assert _payload_json(fields) == json.dumps(fields, separators=(",", ":"), ensure_ascii=False,
                                               sort_keys=True).encode("utf-8")
