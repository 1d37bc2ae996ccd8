"""Opaque, signed tokens for unsubscribe, preferences and confirmation links.

A token is url-safe base64 (no padding) of: a version byte, the issue time
(8 bytes), a 12-byte nonce, and compact JSON — `k` an opaque subscriber key or
`e` the address, plus any extra fields — sealed with AES-GCM-SIV (encrypted and
authenticated; the version, issue time and purpose are authenticated too, so a
token made for one purpose never opens another page). Encrypted, so a link shows
nobody's address; authenticated, so nobody can make or change one. The cipher
key is derived from the configured secret with HKDF-SHA256.

`POSTBODE_SECRET_KEY` may hold several keys, comma-separated (`new,old,…`):
tokens are made with the first and accepted with any of them, so a new key
never breaks the links in mail already sent. Unsubscribe links never expire;
preferences links expire after `[web] preferences_link_days` (default 365).
Tokens of the earlier `<payload>.<signature>` form are still accepted.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import struct
import time
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from postbode.config import Settings
from postbode.errors import ConfigError, PostbodeError

PURPOSES = ("unsubscribe", "preferences", "confirm", "web")
# Purposes that name no person: "web" opens one segment view of one newsletter (`n`, `v`).
IMPERSONAL = ("web",)
RESERVED = ("p", "e", "k", "t")
VERSION = b"\x01"
HEADER = struct.Struct(">cQ12s")  # version, issued (Unix seconds), nonce
MIN_KEY_BYTES = 32
DAY = 86400
# Unsubscribe links work forever: a reader may act on a mail that is years old.
NEVER = None

# Only for previews and the outbox demo; never for mail that leaves the machine.
DEVELOPMENT_KEY = "postbode-development-key-NOT-SECRET-do-not-send-with-it"
_DEFAULT = object()


class InvalidToken(PostbodeError):
    """A link's token is damaged, forged, expired or meant for something else."""


class ExpiredToken(InvalidToken):
    """A genuine link that is too old; `payload` says whose it was, to offer a fresh one."""

    def __init__(self, message: str, payload: dict):
        super().__init__(message)
        self.payload = payload


def secret_keys(settings: Settings) -> list[str]:
    """Every configured key, newest first; refuses to guess one."""
    keys = [k.strip() for k in (settings.secret_key or "").split(",") if k.strip()]
    if not keys:
        raise ConfigError(
            "set POSTBODE_SECRET_KEY to a long random value (for example the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`); "
            "it signs the unsubscribe, preferences and confirmation links"
        )
    return keys


def key_for(settings: Settings) -> bytes:
    """The key new tokens are made with (the first one listed)."""
    return secret_keys(settings)[0].encode("utf-8")


def require_production_key(settings: Settings) -> None:
    """Refuse keys that must not sign mail leaving this machine: short ones, the development key."""
    for position, key in enumerate(secret_keys(settings), start=1):
        which = "POSTBODE_SECRET_KEY" if position == 1 else f"key {position} in POSTBODE_SECRET_KEY"
        if key == DEVELOPMENT_KEY:
            raise ConfigError(f"{which} is the development key, which is public; set a long "
                              "random key of your own (`python -c 'import secrets; "
                              "print(secrets.token_urlsafe(32))'`)")
        if len(key.encode("utf-8")) < MIN_KEY_BYTES:
            raise ConfigError(f"{which} is shorter than {MIN_KEY_BYTES} bytes, so links signed "
                              "with it can be guessed; use the output of `python -c 'import "
                              "secrets; print(secrets.token_urlsafe(32))'`")


def with_development_key(settings: Settings) -> tuple[Settings, bool]:
    """Settings with a signing key: the configured one, or the labelled development key.

    Returns the settings and whether the development key is in use, so the
    caller can say so visibly.
    """
    if settings.secret_key:
        return settings, False
    return settings.with_overrides(secret_key=DEVELOPMENT_KEY), True


def max_age_for(settings: Settings, purpose: str) -> int | None:
    """How long a link of this purpose stays valid, in seconds (None: forever)."""
    if purpose == "preferences":
        return settings.preferences_link_days * DAY
    if purpose == "confirm":
        return settings.confirm_link_days * DAY
    return NEVER


def sign(settings: Settings, purpose: str, email: str | None = None, *,
         subscriber_key: str | None = None, issued_at: int | None = None, **extra: Any) -> str:
    """A url-safe token for one person (`subscriber_key`, else `email`) and `purpose`."""
    _check_purpose(purpose)
    clash = sorted(set(extra) & set(RESERVED))
    if clash:
        raise ValueError(f"token fields {clash} are reserved")
    who = {"k": subscriber_key} if subscriber_key else {"e": email}
    if purpose in IMPERSONAL:
        who = {}
    elif not next(iter(who.values())):
        raise ValueError("a token needs a subscriber key or an address")
    payload = _payload_json({**who, **extra})
    issued = int(time.time()) if issued_at is None else int(issued_at)
    header = HEADER.pack(VERSION, issued, os.urandom(12))
    authenticated = header[:-12] + purpose.encode()  # version, issue time, purpose
    sealed = _cipher(secret_keys(settings)[0]).encrypt(header[-12:], payload, authenticated)
    return base64.urlsafe_b64encode(header + sealed).rstrip(b"=").decode("ascii")


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _payload_json(fields: dict[str, Any]) -> bytes:
    """The token's JSON, compact and sorted; a mail's links (only a subscriber key) without json."""
    if len(fields) == 1 and isinstance(fields.get("k"), str) and _PLAIN_KEY.fullmatch(fields["k"]):
        return b'{"k":"' + fields["k"].encode("ascii") + b'"}'   # what json.dumps gives, twice a mail
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8")


def verify(settings: Settings, purpose: str, token: str, max_age: Any = _DEFAULT) -> dict:
    """The payload of a valid token (`purpose`, `issued_at`, `email`, `subscriber_key`, extras).

    `max_age` (seconds) defaults to the purpose's (`max_age_for`). A damaged,
    forged or wrong-purpose token raises InvalidToken; a genuine one that is too
    old raises ExpiredToken, which carries the payload.
    """
    _check_purpose(purpose)
    keys = secret_keys(settings)
    token = (token or "").strip()
    if not token:
        raise InvalidToken("this link is incomplete; copy the whole link from the mail")
    raw = _legacy(keys, purpose, token) if "." in token else _open(keys, purpose, token)
    if raw.get("p") != purpose:
        raise InvalidToken("this link is meant for another page")
    if purpose not in IMPERSONAL and not (raw.get("e") or raw.get("k")):
        raise InvalidToken("this link is damaged; copy the whole link from the mail")
    payload = {"purpose": purpose, "issued_at": int(raw["t"]), "email": raw.get("e"),
               "subscriber_key": raw.get("k"),
               **{k: v for k, v in raw.items() if k not in RESERVED}}
    limit = max_age_for(settings, purpose) if max_age is _DEFAULT else max_age
    if limit is not None and time.time() - payload["issued_at"] > limit:
        raise ExpiredToken("this link has expired; ask for a new one", payload)
    return payload


@lru_cache(maxsize=16)
def _cipher(secret: str) -> AESGCMSIV:
    """The cipher for one configured secret (any length, any characters), derived once."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"postbode link tokens").derive(secret.encode("utf-8"))
    return AESGCMSIV(key)


def _open(keys: list[str], purpose: str, token: str) -> dict:
    """The token's JSON, tried with every configured key (newest first)."""
    raw = _b64decode(token)
    if raw is None or len(raw) < HEADER.size + 16 or raw[:1] != VERSION:
        raise InvalidToken("this link is damaged; copy the whole link from the mail")
    header, sealed = raw[:HEADER.size], raw[HEADER.size:]
    _, issued, nonce = HEADER.unpack(header)
    for secret in keys:
        try:
            data = _cipher(secret).decrypt(nonce, sealed, header[:-12] + purpose.encode())
        except InvalidTag:
            continue
        return {**_payload(data), "p": purpose, "t": issued}
    raise InvalidToken("this link is not valid (it was changed or is not meant for this page); "
                       "use the link from the latest mail")


def _payload(data: bytes) -> dict:
    try:
        payload = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        payload = None
    if not isinstance(payload, dict):
        raise InvalidToken("this link is damaged; copy the whole link from the mail")
    return payload


def _legacy(keys: list[str], purpose: str, token: str) -> dict:
    """A token of the earlier readable form (`<payload>.<signature>`), still in old mail."""
    body, _, signature = token.partition(".")
    given = _b64decode(signature)
    for secret in keys:
        expected = hmac.new(secret.encode("utf-8"), f"postbode.{purpose}.{body}".encode("utf-8"),
                            hashlib.sha256).digest()
        if given is not None and body and hmac.compare_digest(given, expected):
            payload = _payload(_b64decode(body) or b"")
            if isinstance(payload.get("t"), int) and "p" in payload:
                return payload
            break
    raise InvalidToken("this link is not valid (it was changed or is not meant for this page); "
                       "use the link from the latest mail")


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}; use one of {', '.join(PURPOSES)}")


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
