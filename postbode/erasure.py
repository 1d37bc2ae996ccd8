"""Erasure (the right to be forgotten): a person's address and name leave every table and file.

What stays is what keeps promises to them and the counts honest: the address's
hash on the suppression list (so no import brings them back), and their journal
rows with that hash and their state (so reports still add up). The event logs
keep their rows by hash with the address and name cut out of any text; the
outbox files of their mails are deleted. SQLite runs with `secure_delete`, and
the write-ahead log is emptied afterwards, so the bytes are gone from both files.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from sqlalchemy import Connection, select, update

from postbode import journal, store
from postbode.audience import consent
from postbode.audience.addresses import address_key, email_hash
from postbode.config import Settings
from postbode.errors import PostbodeError
from postbode.store.schema import bounce_events
from postbode.transports import open_transport, parse_url
from postbode.transports import outbox


@dataclass(frozen=True)
class Erased:
    """What `forget` did: whether the person was a subscriber, rows made anonymous, files deleted."""

    known: bool
    journal_rows: int
    files: int
    log_emptied: bool
    in_flight: int = 0      # mails still being written to an outbox when forget gave up waiting


# A mail claimed before the erasure may still be written to an outbox: wait this long
# (seconds) for it to settle, so its file is deleted with the others.
IN_FLIGHT_WAIT = 30.0


def forget(conn: Connection, email: str, settings: Settings, source: str = "postbode") -> Erased:
    """Erase a person everywhere postbode keeps them; see the module's docstring."""
    key = address_key(email)
    hash_ = email_hash(key)
    with store.atomic(conn):
        row = consent.find_subscriber(conn, email)
        typed = {email.strip(), key} | ({row["email"]} if row else set())
        names = {row["name"]} if row and row["name"] else set()
        rows, journal_names = journal.erase(conn, key, hash_, row["id"] if row else None,
                                            typed | names)
        names |= journal_names
        known = consent.forget(conn, email, source, names=names)
        _redact_bounce_events(conn, hash_, typed | names)
    in_flight = _wait_for_outbox_mails(conn, settings, rows)
    files = _remove_files(conn, settings, rows, typed)
    return Erased(known, len(rows), files, store.checkpoint(conn), in_flight)


def _wait_for_outbox_mails(conn: Connection, settings: Settings, rows: list[journal.ErasedRow]) -> int:
    """Wait until the person's mails being written to an outbox are written (or the wait ends).

    A sender that claimed a row before the erasure writes its file afterwards; deleting
    the files first would leave that one. Returns how many are still on their way.
    """
    ids = [r.row_id for r in rows if r.claimed and _writes_files(conn, settings, r.campaign_id)]
    deadline = time.monotonic() + IN_FLIGHT_WAIT
    left = journal.still_claimed(conn, ids)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = journal.still_claimed(conn, ids)
    return left


def _writes_files(conn: Connection, settings: Settings, campaign_id: str) -> bool:
    campaign = journal.get_campaign(conn, campaign_id)
    return campaign is not None and _outbox_folder(campaign.transport, settings) is not None


def _redact_bounce_events(conn: Connection, hash_: str, needles: set[str]) -> None:
    """A bounce's diagnostic may quote the address ("550 <x@example.org>: no such user")."""
    query = select(bounce_events.c.id, bounce_events.c.diagnostic).where(
        bounce_events.c.email_hash == hash_)
    for event_id, text in conn.execute(query).all():
        clean = journal.redact(text, needles)
        if clean != text:
            conn.execute(update(bounce_events).where(bounce_events.c.id == event_id)
                         .values(diagnostic=clean))


def _remove_files(conn: Connection, settings: Settings, rows: list[journal.ErasedRow],
                  addresses: set[str]) -> int:
    """Delete the person's mails from every outbox: by the journal's Message-IDs, then by search."""
    folders: dict[str, Path] = {}
    removed = 0
    by_campaign: dict[str, list[str]] = {}
    for r in rows:
        if r.message_id:
            by_campaign.setdefault(r.campaign_id, []).append(r.message_id)
    for campaign_id, message_ids in by_campaign.items():
        campaign = journal.get_campaign(conn, campaign_id)
        folder = _outbox_folder(campaign.transport, settings) if campaign else None
        if folder is not None:
            folders[str(folder)] = folder
            removed += outbox.remove_messages(folder, campaign_id, message_ids)
    for url in _outbox_urls(conn, settings):
        folder = _outbox_folder(url, settings)
        if folder is not None:
            folders[str(folder)] = folder
    for folder in folders.values():
        removed += outbox.remove_mentioning(folder, addresses)
    return removed


def _outbox_urls(conn: Connection, settings: Settings) -> Iterable[str]:
    """The configured transport and every campaign's: test mails go to the configured one."""
    yield settings.transport
    yield from {c.transport for c in journal.list_campaigns(conn)}


def _outbox_folder(url: str, settings: Settings) -> Path | None:
    """The folder of an outbox transport URL; None for any other transport."""
    try:
        if parse_url(url).scheme != "outbox":
            return None
        transport = open_transport(url, settings, env={})
    except PostbodeError:
        return None  # a URL that no longer parses wrote no files we could find
    assert isinstance(transport, outbox.OutboxTransport)
    return transport.folder
