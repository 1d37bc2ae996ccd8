"""Every query on the bounce tables (defined in postbode.store.schema), in one place.

`bounce_messages` remembers each mail read (by Message-ID or hash), so reading it
again changes nothing; `bounce_events` keeps what each bounce or complaint said
about a journal row (the address only as its hash, so it survives `forget`).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Row, RowMapping

# journal states of a mail that left (or may have): only those can bounce
SENT_STATES = ("sent", "unknown", "bounced", "complained")


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

def earlier_outcome(conn: Connection, message_key: str) -> str | None:
    """The outcome recorded when this mail was read before, or None."""
    row = conn.exec_driver_sql("SELECT outcome FROM bounce_messages WHERE message_key = ?",
                       (message_key,)).fetchone()
    return row[0] if row else None


def remember(conn: Connection, message_key: str, at: float, source: str, kind: str,
             outcome: str) -> None:
    conn.exec_driver_sql("INSERT INTO bounce_messages(message_key, received_at, source, kind, outcome)"
                 " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                 (message_key, at, source, kind, outcome))


# ---------------------------------------------------------------- finding the journal row

_ROW = f"SELECT id, campaign_id, email, message_id FROM journal WHERE state IN {SENT_STATES}"


def row_by_opaque(conn: Connection, opaque: str) -> JournalRow | None:
    """The row whose Message-ID is `<opaque@…>` (the VERP id), whatever the domain."""
    # a range on the indexed column instead of LIKE, which SQLite would not index
    found = conn.exec_driver_sql(f"{_ROW} AND message_id >= ? AND message_id < ? LIMIT 1",
                         (f"<{opaque}@", f"<{opaque}@\x7f")).fetchone()
    return _row(found)


def row_by_message_id(conn: Connection, message_id: str) -> JournalRow | None:
    found = conn.exec_driver_sql(f"{_ROW} AND message_id = ? LIMIT 1", (message_id,)).fetchone()
    return _row(found)


def row_by_address(conn: Connection, address: str) -> JournalRow | None:
    """The latest mail postbode sent to this address (a bounce naming neither VERP nor id)."""
    found = conn.exec_driver_sql(f"{_ROW} AND email = ? COLLATE NOCASE ORDER BY sent_at DESC LIMIT 1",
                         (address.strip(),)).fetchone()
    return _row(found)


def _row(found: Row | None) -> JournalRow | None:
    return JournalRow(found[0], found[1], found[2], found[3]) if found else None


# ---------------------------------------------------------------- events

def add_event(conn: Connection, e: BounceEvent) -> None:
    conn.exec_driver_sql(
        "INSERT INTO bounce_events(at, message_key, journal_id, campaign_id, email_hash, class,"
        " status, diagnostic, action) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (e.at, e.message_key, e.row.id, e.row.campaign_id, e.email_hash, e.bounce_class,
         e.status, e.diagnostic, e.action))


def soft_count(conn: Connection, email_hash: str, since: float) -> int:
    """Soft bounces of this address since `since`."""
    return conn.exec_driver_sql("SELECT COUNT(*) FROM bounce_events WHERE email_hash = ?"
                        " AND class = 'soft' AND at >= ?", (email_hash, since)).fetchone()[0]


def campaign_counts(conn: Connection, campaign_id: str) -> dict[str, int]:
    """Recipients of a campaign per bounce class (hard, soft, blocked, complaint)."""
    rows = conn.exec_driver_sql("SELECT class, COUNT(DISTINCT journal_id) FROM bounce_events"
                        " WHERE campaign_id = ? GROUP BY class", (campaign_id,))
    return {r[0]: r[1] for r in rows}


def blocked_examples(conn: Connection, campaign_id: str, limit: int = 3) -> list[str]:
    """A few distinct diagnostics of blocks, for the warning about the sender."""
    rows = conn.exec_driver_sql("SELECT status, diagnostic FROM bounce_events WHERE campaign_id = ?"
                        " AND class = 'blocked' GROUP BY status, diagnostic ORDER BY MIN(at)"
                        " LIMIT ?", (campaign_id, limit))
    return [f"{r[0]} {r[1]}".strip() for r in rows]


def recent_events(conn: Connection, since: float, limit: int) -> list[RowMapping]:
    """Newest first, with the address while the journal still holds it."""
    return conn.exec_driver_sql(
        "SELECT e.at, e.class, e.status, e.diagnostic, e.action, e.campaign_id, j.email"
        " FROM bounce_events e LEFT JOIN journal j ON j.id = e.journal_id"
        " WHERE e.at >= ? ORDER BY e.at DESC, e.id DESC LIMIT ?", (since, limit)).mappings().all()


def message_counts(conn: Connection, since: float) -> dict[tuple[str, str], int]:
    """Mails read since `since`, by (kind, outcome): auto-replies ignored, unmatched …"""
    rows = conn.exec_driver_sql("SELECT kind, outcome, COUNT(*) FROM bounce_messages"
                        " WHERE received_at >= ? GROUP BY kind, outcome", (since,))
    return {(r[0], r[1]): r[2] for r in rows}
