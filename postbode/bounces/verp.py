"""VERP envelope senders: `bounces+<opaque id>@<bounce domain>`, one per mail.

The id is the hash part of the mail's Message-ID (which the journal row keeps)
and an HMAC of it with POSTBODE_SECRET_KEY, so a bounce names its journal row
without carrying the address, and nobody can make up a bounce for someone else.
Hex only: some servers change the case of local parts.
"""
from __future__ import annotations

import hashlib
import hmac
import re

from postbode import tokens
from postbode.config import Settings

LOCAL_PART = "bounces"
_SIGNATURE_LENGTH = 16
_ID = re.compile(rf"^{LOCAL_PART}\+([0-9a-f]{{32}})-([0-9a-f]{{{_SIGNATURE_LENGTH}}})$")
_MESSAGE_ID = re.compile(r"^<?([0-9a-f]{32})@[^>]+>?$")


def envelope_sender(settings: Settings, message_id: str) -> str | None:
    """The VERP address for the mail with this Message-ID; None without [bounces] domain."""
    if not settings.bounce_domain:
        return None
    found = _MESSAGE_ID.match(message_id)
    if not found:
        return None
    opaque = found.group(1)
    return f"{LOCAL_PART}+{opaque}-{_signature(settings, opaque)}@{settings.bounce_domain}"


def message_key(settings: Settings, address: str) -> str | None:
    """The Message-ID hash a genuine VERP address of ours names, else None (forged or foreign)."""
    local, _, domain = address.strip().strip("<>").rpartition("@")
    if not settings.bounce_domain or domain.lower() != settings.bounce_domain:
        return None
    found = _ID.match(local.lower())
    if not found or not settings.secret_key:
        return None
    opaque, given = found.groups()
    return opaque if hmac.compare_digest(given, _signature(settings, opaque)) else None


def is_ours(settings: Settings, address: str) -> bool:
    """True when the address is at the bounce domain (genuine or not)."""
    domain = address.strip().strip("<>").rpartition("@")[2].lower()
    return bool(settings.bounce_domain) and domain == settings.bounce_domain


def _signature(settings: Settings, opaque: str) -> str:
    mac = hmac.new(tokens.key_for(settings), f"postbode.verp.{opaque}".encode("ascii"),
                   hashlib.sha256)
    return mac.hexdigest()[:_SIGNATURE_LENGTH]
