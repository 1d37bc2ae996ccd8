"""Sign-up with double opt-in: pending sign-ups, confirmation, proof of consent, rate limits.

`request` decides, for one submitted form, whether a confirmation mail goes out; the
web page answers the same whatever it decided, so nobody learns whether an address is
known. `confirm` turns a pending sign-up into a subscription and records the proof of
consent (GDPR art. 7). Rate limits live in the database, so every web worker shares them.
Nothing here knows Flask or mail: the web app and the confirmation campaign call in.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, func, insert, select, text, update

from postbode.audience.addresses import address_key, email_hash, normalise, now
from postbode.audience.consent import log_event
from postbode.audience.model import DEFAULT_FORMALITY, Consent, Formality, SuppressionReason
from postbode.errors import AudienceError
from postbode.store import atomic, insert_ignore
from postbode.store.schema import (campaigns, consent_records, journal, lists as lists_table,
                                   memberships, rate_events, signups, subscribers, suppressions)

if TYPE_CHECKING:
    from postbode.config import Settings

log = logging.getLogger("postbode.signup")

HOUR, DAY = 3600, 86400
IP_LIMIT = (5, HOUR)          # sign-ups per IP address (hashed) per hour
ADDRESS_LIMIT = (3, DAY)      # confirmation mails per address per day
RESEND_AFTER = HOUR           # a pending address gets the confirmation again at most this often
SOURCE = "signup"
CONFIRMATION_KIND = "confirmation"   # journal.CampaignKind.CONFIRMATION (journal imports audience)
# A confirmed sign-up lifts only the person's own unsubscribe; bounces, complaints,
# erasure and manual blocks stay, and such an address is silently sent nothing.
LIFTABLE = (SuppressionReason.UNSUBSCRIBED,)


class Decision(StrEnum):
    """What a submitted sign-up led to (never shown to the person: the page is the same)."""

    CONFIRM = "confirm"               # a confirmation mail goes out
    ALREADY = "already subscribed"
    BLOCKED = "suppressed"            # bounced, complained, forgotten or blocked
    TOO_SOON = "confirmation sent within the hour"
    LIMITED = "rate limit"


@dataclass(frozen=True)
class SignupForm:
    """One submitted sign-up: who, which lists, where from, which consent text they saw."""

    email: str
    name: str | None
    locale: str
    lists: tuple[str, ...]
    source: str                   # form:<list> or the origin's host
    consent_version: str
    ip: str


@dataclass(frozen=True)
class Pending:
    """A sign-up waiting for its confirmation: the mail needs these."""

    key: str
    email: str
    name: str | None
    locale: str
    lists: tuple[str, ...]


@dataclass(frozen=True)
class Confirmed:
    """A confirmed sign-up: the person is subscribed to `lists`."""

    email: str
    locale: str
    lists: tuple[str, ...]
    subscriber_id: int
    name: str | None = None
    formality: Formality = DEFAULT_FORMALITY


class SignupLinkUsed(AudienceError):
    """The confirmation link was used already, or its sign-up no longer exists."""


def ip_hash(settings: "Settings", ip: str) -> str:
    """A keyed hash of an IP address: comparable for rate limits, not reversible by trying all IPs."""
    from postbode import tokens  # the signing key doubles as the hashing key

    key = tokens.secret_keys(settings)[0].encode("utf-8")
    return hmac.new(key, f"ip:{ip}".encode("utf-8"), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- rate limits

def allow(conn: Connection, bucket: str, key: str, limit: tuple[int, int], *,
          at: float | None = None) -> bool:
    """Count one act for `key`, if fewer than `limit` = (n, seconds) happened in the window.

    Call it inside the caller's transaction: on SQLite that is BEGIN IMMEDIATE, so two
    workers cannot both take the last place. PostgreSQL lets both count at once, so there
    the key's turn is an advisory lock held to the end of the transaction.
    """
    at = time.time() if at is None else at
    most, window = limit
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_number(bucket, key)})
    done = conn.execute(select(func.count()).where(
        rate_events.c.bucket == bucket, rate_events.c.key == key,
        rate_events.c.at > at - window)).scalar()
    if done >= most:
        return False
    conn.execute(insert(rate_events).values(bucket=bucket, key=key, at=at))
    return True


def _lock_number(bucket: str, key: str) -> int:
    """A signed 64-bit advisory lock number for one rate-limit key."""
    digest = hashlib.sha256(f"rate:{bucket}:{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def forget_old_rate_events(conn: Connection, *, at: float | None = None) -> int:
    """Rate-limit rows older than a day count for nothing any more."""
    at = time.time() if at is None else at
    with atomic(conn):
        return conn.execute(delete(rate_events).where(rate_events.c.at < at - DAY)).rowcount


# ---------------------------------------------------------------- a submitted form

def request(conn: Connection, settings: "Settings", form: SignupForm) -> tuple[Decision, Pending | None]:
    """Decide what one sign-up leads to; a Pending when a confirmation mail is to go out."""
    with atomic(conn):
        if not allow(conn, "signup-ip", ip_hash(settings, form.ip), IP_LIMIT):
            return Decision.LIMITED, None
        key = address_key(form.email)
        hash_ = email_hash(key)
        reason = conn.execute(select(suppressions.c.reason)
                              .where(suppressions.c.email_hash == hash_)).scalar()
        if reason is not None and reason not in LIFTABLE:
            return Decision.BLOCKED, None
        row = conn.execute(select(subscribers).where(subscribers.c.email_key == key)).mappings().first()
        if row is not None and row["consent"] == Consent.SUBSCRIBED and reason is None:
            return Decision.ALREADY, None
        if row is not None and _recently_asked(conn, row["id"]):
            return Decision.TOO_SOON, None
        if not allow(conn, "confirm-address", hash_, ADDRESS_LIMIT):
            return Decision.LIMITED, None
        subscriber_id = row["id"] if row is not None else _new_subscriber(conn, form, key, hash_)
        pending = _pending(conn, settings, form, subscriber_id)
        log_event(conn, "signup_requested", hash_, pending_source(form), lists=list(form.lists))
    return Decision.CONFIRM, pending


def pending_source(form: SignupForm) -> str:
    return f"{SOURCE} {form.source}"


def _recently_asked(conn: Connection, subscriber_id: int) -> bool:
    last = conn.execute(select(func.max(signups.c.created_at))
                        .where(signups.c.subscriber_id == subscriber_id)).scalar()
    return last is not None and time.time() - last < RESEND_AFTER


def _new_subscriber(conn: Connection, form: SignupForm, key: str, hash_: str) -> int:
    """An unconfirmed subscriber: they receive nothing until they confirm."""
    email, _ = normalise(form.email)
    stamp = now()
    return conn.execute(insert(subscribers).values(
        email=email, email_key=key, email_hash=hash_, name=(form.name or "").strip() or None,
        locale=form.locale, source=SOURCE, created=stamp, consent=Consent.UNCONFIRMED,
        consent_at=stamp, consent_source=pending_source(form))).inserted_primary_key[0]


def _pending(conn: Connection, settings: "Settings", form: SignupForm, subscriber_id: int) -> Pending:
    key = secrets.token_urlsafe(24)
    conn.execute(insert(signups).values(
        key=key, subscriber_id=subscriber_id, lists=list(form.lists), source=form.source,
        consent_version=form.consent_version, locale=form.locale,
        ip_hash=ip_hash(settings, form.ip), created_at=time.time()))
    row = conn.execute(select(subscribers.c.email, subscribers.c.name)
                       .where(subscribers.c.id == subscriber_id)).one()
    return Pending(key, row.email, row.name, form.locale, tuple(form.lists))


def renewal(conn: Connection, key: str) -> SignupForm | None:
    """The form behind an old confirmation link, to ask for a fresh one (None if it is gone)."""
    query = (select(signups, subscribers.c.email, subscribers.c.name)
             .join(subscribers, subscribers.c.id == signups.c.subscriber_id)
             .where(signups.c.key == key))
    row = conn.execute(query).mappings().first()
    if row is None:
        return None
    return SignupForm(row["email"], row["name"], row["locale"], tuple(row["lists"]), row["source"],
                      row["consent_version"], "")


# ---------------------------------------------------------------- confirmation

def is_used(conn: Connection, key: str) -> bool:
    """Whether the sign-up behind a confirmation link was confirmed already."""
    return conn.execute(select(signups.c.used_at).where(signups.c.key == key)).scalar() is not None


def confirm(conn: Connection, key: str, consent_text: str, ip: str, settings: "Settings") -> Confirmed:
    """Subscribe the person of a pending sign-up and record the proof; once per link."""
    with atomic(conn):
        row = conn.execute(select(signups).where(signups.c.key == key)).mappings().first()
        if row is None or row["used_at"] is not None:
            raise SignupLinkUsed("this confirmation link was used already")
        at = time.time()
        conn.execute(update(signups).where(signups.c.id == row["id"]).values(used_at=at))
        person = conn.execute(select(subscribers).where(subscribers.c.id == row["subscriber_id"])
                              ).mappings().one()
        _subscribe(conn, person, row, at)
        conn.execute(insert(consent_records).values(
            subscriber_id=person["id"], at=at, source=row["source"], lists=list(row["lists"]),
            consent_version=row["consent_version"], consent_text=consent_text, locale=row["locale"],
            ip_hash=ip_hash(settings, ip)))
        log_event(conn, "signup_confirmed", person["email_hash"], f"{SOURCE} {row['source']}",
                  lists=list(row["lists"]), consent_version=row["consent_version"])
    return Confirmed(person["email"], row["locale"], tuple(row["lists"]), person["id"], person["name"],
                     person["formality"] or DEFAULT_FORMALITY)


def _subscribe(conn: Connection, person: Any, signup: Any, at: float) -> None:
    """Consent goes up by this explicit act: subscribed, the own unsubscribe lifted, lists joined."""
    conn.execute(delete(suppressions).where(suppressions.c.email_hash == person["email_hash"],
                                            suppressions.c.reason.in_([str(r) for r in LIFTABLE])))
    stamp = _stamp(at)
    conn.execute(update(subscribers).where(subscribers.c.id == person["id"]).values(
        consent=Consent.SUBSCRIBED, consent_at=stamp, consent_source=f"{SOURCE} {signup['source']}",
        locale=func.coalesce(subscribers.c.locale, signup["locale"])))
    for name in signup["lists"]:
        conn.execute(insert_ignore(conn, lists_table).values(name=name, created=stamp))
        conn.execute(insert_ignore(conn, memberships).values(
            subscriber_id=person["id"], list=name, added=stamp, source=SOURCE))


# ---------------------------------------------------------------- retention

def purge_unconfirmed(conn: Connection, days: int, *, at: float | None = None) -> int:
    """Erase people who signed up and never confirmed within `days`; returns how many."""
    at = time.time() if at is None else at
    cutoff = _stamp(at - days * DAY)
    stale = (select(subscribers.c.id).where(subscribers.c.consent == Consent.UNCONFIRMED,
                                            subscribers.c.source == SOURCE,
                                            subscribers.c.created < cutoff))
    with atomic(conn):
        ids = list(conn.execute(stale).scalars())
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            _forget_confirmations(conn, chunk)
            conn.execute(delete(signups).where(signups.c.subscriber_id.in_(chunk)))
            conn.execute(delete(memberships).where(memberships.c.subscriber_id.in_(chunk)))
            conn.execute(delete(subscribers).where(subscribers.c.id.in_(chunk)))
        log_event(conn, "unconfirmed_purged", None, "purge-unconfirmed", count=len(ids), days=days)
    log.info("purged %d unconfirmed sign-up(s) older than %d days", len(ids), days)
    return len(ids)


def _forget_confirmations(conn: Connection, subscriber_ids: list[int]) -> None:
    """The confirmation mails' journal rows of these people: the only other place with their address."""
    emails = select(subscribers.c.email).where(subscribers.c.id.in_(subscriber_ids))
    confirmations = select(campaigns.c.id).where(campaigns.c.kind == CONFIRMATION_KIND)
    conn.execute(delete(journal).where(journal.c.campaign_id.in_(confirmations),
                                       journal.c.email.in_(emails)))


def _stamp(at: float) -> str:
    """A time as the subscribers table stores it (addresses.now's format)."""
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
