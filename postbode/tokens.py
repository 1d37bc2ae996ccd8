"""Signed tokens for unsubscribe, preferences and confirmation links (HMAC-SHA256).

A token is `<payload>.<signature>`, both url-safe base64 without padding. The
payload is compact JSON: `p` purpose, `e` email, `t` issued (Unix seconds),
plus any extra fields. The signature covers the purpose and the payload, so a
token signed for one purpose never verifies for another.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any

from postbode.config import Settings
from postbode.errors import ConfigError, PostbodeError

PURPOSES = ("unsubscribe", "preferences", "confirm")
RESERVED = ("p", "e", "t")

# Only for previews and the outbox demo; never for mail that leaves the machine.
DEVELOPMENT_KEY = "postbode-development-key-NOT-SECRET-do-not-send-with-it"


class InvalidToken(PostbodeError):
    """A link's token is damaged, forged, expired or meant for something else."""


def key_for(settings: Settings) -> bytes:
    """The signing key; refuses to guess one."""
    if not settings.secret_key:
        raise ConfigError(
            "set POSTBODE_SECRET_KEY to a long random value (for example the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`); "
            "it signs the unsubscribe, preferences and confirmation links"
        )
    return settings.secret_key.encode("utf-8")


def with_development_key(settings: Settings) -> tuple[Settings, bool]:
    """Settings with a signing key: the configured one, or the labelled development key.

    Returns the settings and whether the development key is in use, so the
    caller can say so visibly.
    """
    if settings.secret_key:
        return settings, False
    return settings.with_overrides(secret_key=DEVELOPMENT_KEY), True


def sign(settings: Settings, purpose: str, email: str, *, issued_at: int | None = None,
         **extra: Any) -> str:
    """A url-safe token for `email` and `purpose`, carrying `extra` JSON values."""
    _check_purpose(purpose)
    clash = sorted(set(extra) & set(RESERVED))
    if clash:
        raise ValueError(f"token fields {clash} are reserved")
    issued = int(time.time()) if issued_at is None else int(issued_at)
    payload = {"p": purpose, "e": email, "t": issued, **extra}
    body = _b64encode(json.dumps(payload, separators=(",", ":"), ensure_ascii=False,
                                 sort_keys=True).encode("utf-8"))
    return f"{body}.{_b64encode(_mac(key_for(settings), purpose, body))}"


def verify(settings: Settings, purpose: str, token: str, max_age: int | None = None) -> dict:
    """The payload of a valid token (`email`, `purpose`, `issued_at` and extras); else InvalidToken."""
    _check_purpose(purpose)
    key = key_for(settings)
    body, sep, signature = (token or "").strip().partition(".")
    if not sep or not body or not signature:
        raise InvalidToken("this link is incomplete; copy the whole link from the mail")
    given = _b64decode(signature)
    if given is None or not hmac.compare_digest(given, _mac(key, purpose, body)):
        raise InvalidToken(
            "this link is not valid (it was changed or is not meant for this page); "
            "use the link from the latest mail"
        )
    payload = _decode_payload(body)
    if payload.get("p") != purpose:
        raise InvalidToken("this link is meant for another page")
    issued = int(payload["t"])
    if max_age is not None and time.time() - issued > max_age:
        raise InvalidToken("this link has expired; ask for a new one")
    extras = {k: v for k, v in payload.items() if k not in RESERVED}
    return {"purpose": purpose, "email": payload["e"], "issued_at": issued, **extras}


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}; use one of {', '.join(PURPOSES)}")


def _mac(key: bytes, purpose: str, body: str) -> bytes:
    return hmac.new(key, f"postbode.{purpose}.{body}".encode("utf-8"), hashlib.sha256).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _decode_payload(body: str) -> dict:
    raw = _b64decode(body)
    try:
        payload = json.loads(raw.decode("utf-8")) if raw is not None else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        payload = None
    if not isinstance(payload, dict) or not {"p", "e", "t"} <= payload.keys():
        raise InvalidToken("this link is damaged; copy the whole link from the mail")
    return payload
