"""Feedback: what providers and bounce mail report after sending, applied to the state.

A hard bounce or a complaint suppresses the address (so no later campaign or
import mails it again); a soft bounce is only logged. The journal row of the
mail gets the provider's code and text; its state stays `sent`, because the
mail did leave exactly once. Every event is remembered by its provider id, so a
second delivery of the same event changes nothing. No addresses are logged,
only their hash.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, delete

from postbode import journal
from postbode.audience import consent
from postbode.audience.addresses import address_hash, now
from postbode.store import insert_ignore
from postbode.store.schema import webhook_events, webhook_tokens

log = logging.getLogger(__name__)

# blocked: the receiving server refused the sender (policy, reputation); only noted
Action = Literal["bounced", "complained", "soft_bounce", "unsubscribed", "blocked"]
NOTED_ONLY = ("soft_bounce", "blocked")
MAX_TEXT = 500
LABELS = {"bounced": "bounced after sending", "complained": "spam complaint after sending",
          "soft_bounce": "soft bounce after sending", "unsubscribed": "unsubscribed after sending",
          "blocked": "blocked by the receiving server"}
SOURCE = {"postmark": "postmark webhook", "mailgun": "mailgun webhook", "bounces": "bounce mail"}


@dataclass(frozen=True)
class Event:
    """One bounce or complaint, whichever provider (or bounce mail) reported it."""

    provider: str
    event_id: str
    email: str
    action: Action
    kind: str                       # the provider's own name for it, e.g. HardBounce
    code: int | None
    text: str
    provider_id: str | None = None  # the provider's message id (journal.provider_id)
    message_id: str | None = None   # postbode's Message-ID (journal.message_id)
    state: str | None = None        # the journal state it moves the row to (None: kept)
    status: str | None = None       # RFC 3463 status of a bounce mail, e.g. 5.1.1
    diagnostic: str | None = None   # the receiving server's own words


def stored_event_id(event_id: str) -> str:
    """How an event id is remembered: hashed when it holds an address (some providers' ids
    do), so the table never keeps one and a repeated delivery still matches."""
    if "@" not in event_id:
        return event_id
    return "sha256:" + hashlib.sha256(event_id.encode("utf-8")).hexdigest()


def source_of(event: Event) -> str:
    """How the event's changes are recorded as their source, e.g. `postmark webhook`."""
    return SOURCE.get(event.provider, f"{event.provider} webhook")


def apply_event(conn: Connection, event: Event) -> str:
    """Suppress or log the address and note it on the journal row, once per event.

    Returns `suppressed`, `noted` (soft bounce, blocked) or `duplicate`. Call inside `store.atomic`.
    """
    source = source_of(event)
    fresh = conn.execute(insert_ignore(conn, webhook_events).values(
        provider=event.provider, event_id=stored_event_id(event.event_id),
        received_at=now())).rowcount
    if not fresh:
        return "duplicate"
    hash_ = address_hash(event.email)
    if event.action in NOTED_ONLY:
        consent.log_event(conn, event.action, hash_, source, type=event.kind, code=event.code)
    else:
        consent.suppress(conn, event.email, event.action, source)
    rows = note_on_journal(conn, event)
    log.info("%s: %s for address %s… (%d journal row(s))", source, event.kind, hash_[:12], rows)
    return "noted" if event.action in NOTED_ONLY else "suppressed"


def note_on_journal(conn: Connection, event: Event) -> int:
    """Put the provider's code and text on the journal row of the mail; its state is kept."""
    return journal.note_feedback(conn, event.email, event.code,
                                 f"{LABELS[event.action]}: {event.text}"[:MAX_TEXT],
                                 message_id=event.message_id, provider_id=event.provider_id,
                                 state=event.state, status=event.status,
                                 diagnostic=event.diagnostic and event.diagnostic[:MAX_TEXT])


def remember_token(conn: Connection, token: str, at: float, lifetime: float) -> bool:
    """Record a webhook signature token; False when it was seen within `lifetime` (a replay)."""
    conn.execute(delete(webhook_tokens).where(webhook_tokens.c.seen_at < at - lifetime))
    return bool(conn.execute(insert_ignore(conn, webhook_tokens).values(token=token, seen_at=at)).rowcount)
