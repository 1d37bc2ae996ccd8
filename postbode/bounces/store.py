"""The bounce tables and every query on them, in one place.

`bounce_messages` remembers each mail read (by Message-ID or hash), so reading it
again changes nothing; `bounce_events` keeps what each bounce or complaint said
about a journal row (the address only as its hash, so it survives `forget`).
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from postbode.db import migration

# journal states of a mail that left (or may have): only those can bounce
SENT_STATES = ("sent", "unknown", "bounced", "complained")


@migration("0301_bounces")
def _schema(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE bounce_messages ("
        " message_key TEXT PRIMARY KEY,"
        " received_at REAL NOT NULL,"
        " source TEXT NOT NULL,"          # receiver | imap
        " kind TEXT NOT NULL,"            # parse.Kind
        " outcome TEXT NOT NULL)"         # process.Outcome
        " WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE bounce_events ("
        " id INTEGER PRIMARY KEY,"
        " at REAL NOT NULL,"
        " message_key TEXT NOT NULL,"
        " journal_id INTEGER,"
        " campaign_id TEXT,"
        " email_hash TEXT NOT NULL,"
        " class TEXT NOT NULL,"           # policy.BounceClass
        " status TEXT NOT NULL,"
        " diagnostic TEXT NOT NULL,"
        " action TEXT NOT NULL)"          # what was done: bounced, soft_bounce, blocked, complained
    )
    conn.execute("CREATE INDEX bounce_events_by_hash ON bounce_events(email_hash, class, at)")
    conn.execute("CREATE INDEX bounce_events_by_campaign ON bounce_events(campaign_id, class)")
    conn.execute("CREATE INDEX bounce_events_by_at ON bounce_events(at)")


@dataclass(frozen=True)
class JournalRow:
    """The journal row a bounce is about."""

    id: int
    campaign_id: str
    email: str
    message_id: str | None


@dataclass(frozen=True)
class BounceEvent:
    at: float
    message_key: str
    row: JournalRow
    email_hash: str
    bounce_class: str
    status: str
    diagnostic: str
    action: str


# ---------------------------------------------------------------- messages read

def earlier_outcome(conn: sqlite3.Connection, message_key: str) -> str | None:
    """The outcome recorded when this mail was read before, or None."""
    row = conn.execute("SELECT outcome FROM bounce_messages WHERE message_key = ?",
                       (message_key,)).fetchone()
    return row[0] if row else None


def remember(conn: sqlite3.Connection, message_key: str, at: float, source: str, kind: str,
             outcome: str) -> None:
    conn.execute("INSERT INTO bounce_messages(message_key, received_at, source, kind, outcome)"
                 " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                 (message_key, at, source, kind, outcome))


# ---------------------------------------------------------------- finding the journal row

_ROW = f"SELECT id, campaign_id, email, message_id FROM journal WHERE state IN {SENT_STATES}"


def row_by_opaque(conn: sqlite3.Connection, opaque: str) -> JournalRow | None:
    """The row whose Message-ID is `<opaque@…>` (the VERP id), whatever the domain."""
    # a range on the indexed column instead of LIKE, which SQLite would not index
    found = conn.execute(f"{_ROW} AND message_id >= ? AND message_id < ? LIMIT 1",
                         (f"<{opaque}@", f"<{opaque}@\x7f")).fetchone()
    return _row(found)


def row_by_message_id(conn: sqlite3.Connection, message_id: str) -> JournalRow | None:
    found = conn.execute(f"{_ROW} AND message_id = ? LIMIT 1", (message_id,)).fetchone()
    return _row(found)


def row_by_address(conn: sqlite3.Connection, address: str) -> JournalRow | None:
    """The latest mail postbode sent to this address (a bounce naming neither VERP nor id)."""
    found = conn.execute(f"{_ROW} AND email = ? COLLATE NOCASE ORDER BY sent_at DESC LIMIT 1",
                         (address.strip(),)).fetchone()
    return _row(found)


def _row(found: sqlite3.Row | None) -> JournalRow | None:
    return JournalRow(found[0], found[1], found[2], found[3]) if found else None


# ---------------------------------------------------------------- events

def add_event(conn: sqlite3.Connection, e: BounceEvent) -> None:
    conn.execute(
        "INSERT INTO bounce_events(at, message_key, journal_id, campaign_id, email_hash, class,"
        " status, diagnostic, action) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (e.at, e.message_key, e.row.id, e.row.campaign_id, e.email_hash, e.bounce_class,
         e.status, e.diagnostic, e.action))


def soft_count(conn: sqlite3.Connection, email_hash: str, since: float) -> int:
    """Soft bounces of this address since `since`."""
    return conn.execute("SELECT COUNT(*) FROM bounce_events WHERE email_hash = ?"
                        " AND class = 'soft' AND at >= ?", (email_hash, since)).fetchone()[0]


def campaign_counts(conn: sqlite3.Connection, campaign_id: str) -> dict[str, int]:
    """Recipients of a campaign per bounce class (hard, soft, blocked, complaint)."""
    rows = conn.execute("SELECT class, COUNT(DISTINCT journal_id) FROM bounce_events"
                        " WHERE campaign_id = ? GROUP BY class", (campaign_id,))
    return {r[0]: r[1] for r in rows}


def blocked_examples(conn: sqlite3.Connection, campaign_id: str, limit: int = 3) -> list[str]:
    """A few distinct diagnostics of blocks, for the warning about the sender."""
    rows = conn.execute("SELECT status, diagnostic FROM bounce_events WHERE campaign_id = ?"
                        " AND class = 'blocked' GROUP BY status, diagnostic ORDER BY MIN(at)"
                        " LIMIT ?", (campaign_id, limit))
    return [f"{r[0]} {r[1]}".strip() for r in rows]


def recent_events(conn: sqlite3.Connection, since: float, limit: int) -> list[sqlite3.Row]:
    """Newest first, with the address while the journal still holds it."""
    return conn.execute(
        "SELECT e.at, e.class, e.status, e.diagnostic, e.action, e.campaign_id, j.email"
        " FROM bounce_events e LEFT JOIN journal j ON j.id = e.journal_id"
        " WHERE e.at >= ? ORDER BY e.at DESC, e.id DESC LIMIT ?", (since, limit)).fetchall()


def message_counts(conn: sqlite3.Connection, since: float) -> dict[tuple[str, str], int]:
    """Mails read since `since`, by (kind, outcome): auto-replies ignored, unmatched …"""
    rows = conn.execute("SELECT kind, outcome, COUNT(*) FROM bounce_messages"
                        " WHERE received_at >= ? GROUP BY kind, outcome", (since,))
    return {(r[0], r[1]): r[2] for r in rows}
