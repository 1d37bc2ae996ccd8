"""Consent and suppression: unsubscribing, bounces, complaints and erasure.

Consent is one state per subscriber (not per list): unsubscribing, a bounce or
a complaint stops every mail, and puts the address on the suppression list so
that no later import brings it back. The event log keeps only address hashes.
"""
from __future__ import annotations

import re
from typing import Iterable

from sqlalchemy import (Connection, RowMapping, Text, cast, delete, func, insert, select,
                        update)

from postbode.audience.addresses import address_key, email_hash, now
from postbode.audience.model import SUPPRESSION_REASONS, WITHDRAWN, Recipient, SuppressionReason
from postbode.errors import AudienceError
from postbode.store import atomic, insert_ignore
from postbode.store.schema import audience_events, subscribers, suppressions

REDACTED = "[erased]"


def log_event(conn: Connection, kind: str, hash_: str | None, source: str, **detail: object) -> None:
    """One row in the audience's event log (never an address, only its hash)."""
    conn.execute(insert(audience_events).values(at=now(), kind=kind, email_hash=hash_,
                                                source=source, detail=detail))


def suppress(conn: Connection, email: str, reason: SuppressionReason | str,
             source: str = "postbode") -> None:
    """Never mail this address again; an existing subscriber's consent becomes the reason."""
    if reason not in SUPPRESSION_REASONS:
        raise AudienceError(f"unknown suppression reason {reason!r}; use one of {', '.join(SUPPRESSION_REASONS)}")
    key = address_key(email)
    hash_ = email_hash(key)
    with atomic(conn):
        conn.execute(insert_ignore(conn, suppressions).values(
            email_hash=hash_, reason=str(reason), source=source, created=now()))
        if reason in WITHDRAWN:
            conn.execute(update(subscribers).where(subscribers.c.email_key == key)
                         .values(consent=str(reason), consent_at=now(), consent_source=source))
        log_event(conn, str(reason), hash_, source)


def unsubscribe(conn: Connection, email: str, source: str = "postbode") -> None:
    """The person asked to receive nothing more."""
    suppress(conn, email, SuppressionReason.UNSUBSCRIBED, source)


def is_suppressed(conn: Connection, email: str) -> bool:
    return _suppressed(conn, email_hash(address_key(email)))


def recipient_is_suppressed(conn: Connection, recipient: Recipient) -> bool:
    """is_suppressed for a Recipient: its address was normalised when stored, so its key is
    its lower-case form, without validating it again (a send asks this once per mail)."""
    return _suppressed(conn, email_hash(recipient.email.lower()))


def _suppressed(conn: Connection, hash_: str) -> bool:
    query = select(1).where(suppressions.c.email_hash == hash_)
    return conn.execute(query).first() is not None


def forget(conn: Connection, email: str, source: str = "postbode", *,
           names: Iterable[str] = ()) -> bool:
    """Erase a person: delete their data, keep only the suppression hash. True if they were known.

    The event log keeps its rows (by hash), with the address and `names` cut out of
    their details. The journal and files are erased by `postbode.erasure`.
    """
    key = address_key(email)
    hash_ = email_hash(key)
    with atomic(conn):
        row = find_subscriber(conn, email)
        suppress(conn, email, SuppressionReason.FORGOTTEN, source)
        deleted = conn.execute(delete(subscribers).where(subscribers.c.email_key == key)).rowcount
        addresses = {email.strip(), key} | ({row["email"]} if row else set())
        personal = addresses | {n for n in names if n} | ({row["name"]} if row and row["name"] else set())
        _scrub_events(conn, audience_events.c.email_hash == hash_, personal)
        for address in addresses:  # an address named in someone else's event (an import's notes)
            _scrub_events(conn, func.lower(cast(audience_events.c.detail, Text))
                          .contains(address.lower(), autoescape=True), addresses)
    return deleted > 0


def _scrub_events(conn: Connection, where, needles: set[str]) -> None:
    """Cut `needles` out of the details of the events that match `where`."""
    for event_id, detail in conn.execute(select(audience_events.c.id, audience_events.c.detail)
                                         .where(where)).all():
        clean = _redacted(detail, needles)
        if clean != detail:
            conn.execute(update(audience_events).where(audience_events.c.id == event_id)
                         .values(detail=clean))


def _redacted(value: object, needles: set[str]) -> object:
    """A JSON value with every needle (ignoring case) in its strings replaced by `[erased]`."""
    if isinstance(value, str):
        for needle in sorted(needles, key=len, reverse=True):
            value = re.sub(re.escape(needle), REDACTED, value, flags=re.IGNORECASE)
        return value
    if isinstance(value, dict):
        return {_redacted(k, needles): _redacted(v, needles) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, needles) for v in value]
    return value


def find_subscriber(conn: Connection, email: str) -> RowMapping | None:
    """The subscriber's row (as a mapping) with this address, or None."""
    query = select(subscribers).where(subscribers.c.email_key == address_key(email))
    return conn.execute(query).mappings().first()


def email_for_key(conn: Connection, key: str) -> str | None:
    """The address of the subscriber with this opaque key (what links carry), or None."""
    query = select(subscribers.c.email).where(subscribers.c.subscriber_key == key)
    return conn.execute(query).scalar()


def count_by_consent(conn: Connection) -> dict[str, int]:
    """Subscribers per consent state."""
    query = (select(subscribers.c.consent, func.count()).group_by(subscribers.c.consent)
             .order_by(subscribers.c.consent))
    return {consent: count for consent, count in conn.execute(query)}
