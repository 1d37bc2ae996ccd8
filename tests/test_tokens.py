"""Signed tokens: round trip, tampering, purpose, age and the missing key."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from postbode import tokens
from postbode.config import Settings
from postbode.errors import ConfigError, PostbodeError

KEY = "test-signing-key-0123456789abcdef"


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
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert tokens.verify(keyed, "unsubscribe", token)["email"] == "ëlise+news@example.org"


def test_changed_payload_is_refused(keyed: Settings) -> None:
    token = tokens.sign(keyed, "unsubscribe", "a@example.org")
    other = tokens.sign(keyed, "unsubscribe", "b@example.org")
    forged = other.split(".")[0] + "." + token.split(".")[1]
    with pytest.raises(tokens.InvalidToken, match="not valid"):
        tokens.verify(keyed, "unsubscribe", forged)


@pytest.mark.parametrize("damage", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    lambda t: t.split(".")[0],
    lambda t: "",
    lambda t: "not a token at all",
    lambda t: t.replace(".", ".é"),
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
