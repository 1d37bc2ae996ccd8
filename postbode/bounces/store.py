"""Every query on the bounce tables (defined in postbode.store.schema), in one place.

`bounce_messages` remembers each mail read (by Message-ID or hash), so reading it
again changes nothing; `bounce_events` keeps what each bounce or complaint said
about a journal row (the address only as its hash, so it survives `forget`).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Row, RowMapping, func, insert, select

from postbode.store import insert_ignore
from postbode.store.schema import bounce_events, bounce_messages, journal

# journal states of a mail that left, may have left or is leaving: only those can bounce
# (a local MTA's bounce can come back before the sender has settled the row)
SENT_STATES = ("sent", "unknown", "bounced", "complained", "claimed")


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
    return conn.execute(select(bounce_messages.c.outcome)
                        .where(bounce_messages.c.message_key == message_key)).scalar()


def remember(conn: Connection, message_key: str, at: float, source: str, kind: str,
             outcome: str) -> None:
    conn.execute(insert_ignore(conn, bounce_messages).values(
        message_key=message_key, received_at=at, source=source, kind=kind, outcome=outcome))


# ---------------------------------------------------------------- finding the journal row

def _rows(*conditions):
    return (select(journal.c.id, journal.c.campaign_id, journal.c.email, journal.c.message_id)
            .where(journal.c.state.in_(SENT_STATES), *conditions).limit(1))


def row_by_opaque(conn: Connection, opaque: str) -> JournalRow | None:
    """The row whose Message-ID is `<opaque@…>` (the VERP id), whatever the domain."""
    # a range on the indexed column instead of LIKE, which SQLite would not index
    found = conn.execute(_rows(journal.c.message_id >= f"<{opaque}@",
                               journal.c.message_id < f"<{opaque}@\x7f")).first()
    return _row(found)


def row_by_message_id(conn: Connection, message_id: str) -> JournalRow | None:
    return _row(conn.execute(_rows(journal.c.message_id == message_id)).first())


def row_by_address(conn: Connection, address: str) -> JournalRow | None:
    """The latest mail postbode sent to this address (a bounce naming neither VERP nor id)."""
    query = _rows(func.lower(journal.c.email) == address.strip().lower())
    return _row(conn.execute(query.order_by(journal.c.sent_at.desc())).first())


def _row(found: Row | None) -> JournalRow | None:
    return JournalRow(found[0], found[1], found[2], found[3]) if found else None


# ---------------------------------------------------------------- events

def add_event(conn: Connection, e: BounceEvent) -> None:
    conn.execute(insert(bounce_events).values(
        at=e.at, message_key=e.message_key, journal_id=e.row.id, campaign_id=e.row.campaign_id,
        email_hash=e.email_hash, **{"class": e.bounce_class}, status=e.status,
        diagnostic=e.diagnostic, action=e.action))


_CLASS = bounce_events.c["class"]


def soft_count(conn: Connection, email_hash: str, since: float) -> int:
    """Soft bounces of this address since `since`."""
    return conn.execute(select(func.count()).where(
        bounce_events.c.email_hash == email_hash, _CLASS == "soft",
        bounce_events.c.at >= since)).scalar_one()


def campaign_counts(conn: Connection, campaign_id: str) -> dict[str, int]:
    """Recipients of a campaign per bounce class (hard, soft, blocked, complaint)."""
    rows = conn.execute(select(_CLASS, func.count(bounce_events.c.journal_id.distinct()))
                        .where(bounce_events.c.campaign_id == campaign_id).group_by(_CLASS))
    return {r[0]: r[1] for r in rows}


def blocked_examples(conn: Connection, campaign_id: str, limit: int = 3) -> list[str]:
    """A few distinct diagnostics of blocks, for the warning about the sender."""
    e = bounce_events.c
    rows = conn.execute(select(e.status, e.diagnostic)
                        .where(e.campaign_id == campaign_id, _CLASS == "blocked")
                        .group_by(e.status, e.diagnostic).order_by(func.min(e.at)).limit(limit))
    return [f"{r[0]} {r[1]}".strip() for r in rows]


def recent_events(conn: Connection, since: float, limit: int) -> list[RowMapping]:
    """Newest first, with the address while the journal still holds it."""
    e = bounce_events.c
    query = (select(e.at, _CLASS, e.status, e.diagnostic, e.action, e.campaign_id, journal.c.email)
             .select_from(bounce_events.outerjoin(journal, journal.c.id == e.journal_id))
             .where(e.at >= since).order_by(e.at.desc(), e.id.desc()).limit(limit))
    return conn.execute(query).mappings().all()


def message_counts(conn: Connection, since: float) -> dict[tuple[str, str], int]:
    """Mails read since `since`, by (kind, outcome): auto-replies ignored, unmatched …"""
    m = bounce_messages.c
    rows = conn.execute(select(m.kind, m.outcome, func.count()).where(m.received_at >= since)
                        .group_by(m.kind, m.outcome))
    return {(r[0], r[1]): r[2] for r in rows}
