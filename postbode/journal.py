"""Journal: exactly-once bookkeeping of a campaign, one row per (campaign, recipient).

A row moves `pending → claimed → sent | rejected | retry(next_at) | unknown`; a mail
that bounces or draws a complaint after it was sent moves on to `bounced` or `complained`.
`claimed` is committed before the network call and the outcome after it, so
after a crash every row says what may have happened to its recipient. A row
still `claimed` when a campaign resumes is turned into `unknown`: the mail may
or may not have left, and only the operator can decide to send it again.
"""
from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from postbode.audience import Recipient, address_key
from postbode.db import migration, transaction
from postbode.errors import CampaignError
from postbode.files import write_csv

STATES = ("pending", "claimed", "sent", "rejected", "retry", "unknown", "bounced", "complained")
# States a bounce or complaint may move on from (the mail left, or may have left)
FEEDBACK_FROM = ("sent", "unknown", "bounced")


@migration("0101_journal")
def _create_tables(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE campaigns (
            id TEXT PRIMARY KEY,
            base_id TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            newsletter_id TEXT NOT NULL,
            segments TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            content_parts TEXT NOT NULL,
            transport TEXT NOT NULL,
            status TEXT NOT NULL,
            total INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            UNIQUE (base_id, sequence)
        )"""
    )
    conn.execute(
        """CREATE TABLE journal (
            id INTEGER PRIMARY KEY,
            campaign_id TEXT NOT NULL REFERENCES campaigns(id),
            subscriber_id INTEGER,
            email TEXT NOT NULL,
            name TEXT,
            locale TEXT NOT NULL,
            formality TEXT NOT NULL,
            view TEXT,
            segment TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at REAL,
            last_code INTEGER,
            last_text TEXT,
            message_id TEXT,
            provider_id TEXT,
            created_at REAL NOT NULL,
            claimed_at REAL,
            updated_at REAL,
            sent_at REAL,
            UNIQUE (campaign_id, email)
        )"""
    )
    conn.execute("CREATE INDEX journal_due ON journal (campaign_id, state, next_at)")
    conn.execute("CREATE INDEX journal_sent_at ON journal (sent_at) WHERE sent_at IS NOT NULL")


@migration("0102_journal_state_index")
def _index_by_state(conn: sqlite3.Connection) -> None:
    # Rows of one state in id order straight from the index: claiming stays O(batch),
    # not O(campaign), however many rows are already sent.
    conn.execute("CREATE INDEX journal_state ON journal (campaign_id, state)")


@migration("0103_journal_variant_order")
def _index_by_variant(conn: sqlite3.Connection) -> None:
    # Pending rows are claimed variant by variant, so one batch holds one variant
    # where it can: a provider's batch call (Mailgun) is one call per variant.
    conn.execute("CREATE INDEX journal_variant ON journal (campaign_id, state, locale, view)")


@migration("0104_journal_ids_index")
def _index_by_ids(conn: sqlite3.Connection) -> None:
    # A bounce or complaint webhook names the mail by postbode's Message-ID (Mailgun)
    # or the provider's id (Postmark); it finds its row without scanning every campaign.
    conn.execute("CREATE INDEX journal_message_id ON journal (message_id) WHERE message_id IS NOT NULL")
    conn.execute("CREATE INDEX journal_provider_id ON journal (provider_id)"
                 " WHERE provider_id IS NOT NULL")


@migration("0105_journal_bounce")
def _bounce_columns(conn: sqlite3.Connection) -> None:
    # What a bounce mail said about the row's mail: RFC 3463 status (5.1.1) and diagnostic
    conn.execute("ALTER TABLE journal ADD COLUMN bounce_status TEXT")
    conn.execute("ALTER TABLE journal ADD COLUMN bounce_diagnostic TEXT")


@dataclass(frozen=True)
class Campaign:
    """One send of one newsletter to a set of segments."""

    id: str
    base_id: str
    sequence: int
    newsletter_id: str
    segments: tuple[str, ...]
    content_hash: str
    content_parts: Mapping[str, str]
    transport: str
    status: str
    total: int
    created_at: float
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class Entry:
    """A journal row as the send loop sees it."""

    row_id: int
    recipient: Recipient
    state: str
    attempts: int
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one claimed row; `state` is sent, rejected, retry or unknown."""

    row_id: int
    state: str
    code: int | None = None
    text: str | None = None
    provider_id: str | None = None
    next_at: float | None = None
    message_id: str | None = None


@dataclass
class Tally:
    """Counts per state (and `retried`: rows that needed more than one attempt)."""

    by_state: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    retried: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    def __getitem__(self, state: str) -> int:
        return self.by_state.get(state, 0)


# ---------------------------------------------------------------- campaigns

def base_id(newsletter_id: str, segments: Iterable[str]) -> str:
    """The campaign id shared by every send of this newsletter to these segments."""
    names = sorted(set(segments))
    slug = re.sub(r"[^A-Za-z0-9_.+-]+", "-", f"{newsletter_id}--{'+'.join(names)}").strip("-")
    if len(slug) > 80:  # keep ids usable as folder names
        slug = slug[:70] + "-" + hashlib.sha256(slug.encode()).hexdigest()[:9]
    return slug


def content_hash(parts: Mapping[str, str]) -> str:
    """One hash over the hashes of everything that changes what recipients get."""
    return hashlib.sha256(json.dumps(dict(parts), sort_keys=True).encode()).hexdigest()


def changed_parts(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Names of the parts (files) added, removed or changed between two content snapshots."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def _campaign(row: sqlite3.Row) -> Campaign:
    return Campaign(
        id=row["id"], base_id=row["base_id"], sequence=row["sequence"],
        newsletter_id=row["newsletter_id"], segments=tuple(json.loads(row["segments"])),
        content_hash=row["content_hash"], content_parts=json.loads(row["content_parts"]),
        transport=row["transport"], status=row["status"], total=row["total"],
        created_at=row["created_at"], started_at=row["started_at"], finished_at=row["finished_at"],
    )


def get_campaign(conn: sqlite3.Connection, campaign_id: str) -> Campaign | None:
    row = conn.execute("SELECT * FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
    return _campaign(row) if row else None


def latest_campaign(conn: sqlite3.Connection, newsletter_id: str,
                    segments: Iterable[str]) -> Campaign | None:
    """The most recent campaign of this newsletter to these segments, if any."""
    row = conn.execute(
        "SELECT * FROM campaigns WHERE base_id = ? ORDER BY sequence DESC LIMIT 1",
        (base_id(newsletter_id, segments),),
    ).fetchone()
    return _campaign(row) if row else None


def list_campaigns(conn: sqlite3.Connection) -> list[Campaign]:
    rows = conn.execute("SELECT * FROM campaigns ORDER BY created_at, id").fetchall()
    return [_campaign(r) for r in rows]


def create_campaign(conn: sqlite3.Connection, newsletter_id: str, segments: Iterable[str],
                    parts: Mapping[str, str], transport: str) -> Campaign:
    """Register a new campaign (the next sequence number of its base id); no rows yet."""
    names = sorted(set(segments))
    base = base_id(newsletter_id, names)
    with transaction(conn):
        last = conn.execute("SELECT MAX(sequence) FROM campaigns WHERE base_id = ?",
                            (base,)).fetchone()[0]
        sequence = (last or 0) + 1
        cid = base if sequence == 1 else f"{base}--{sequence}"
        conn.execute(
            "INSERT INTO campaigns (id, base_id, sequence, newsletter_id, segments, content_hash,"
            " content_parts, transport, status, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (cid, base, sequence, newsletter_id, json.dumps(names), content_hash(parts),
             json.dumps(dict(parts), sort_keys=True), transport, "snapshot", time.time()),
        )
    campaign = get_campaign(conn, cid)
    assert campaign is not None
    return campaign


def set_status(conn: sqlite3.Connection, campaign_id: str, status: str) -> None:
    """Record the campaign's status; `sending` stamps the start, `finished` the end."""
    now = time.time()
    with transaction(conn):
        conn.execute("UPDATE campaigns SET status = ? WHERE id = ?", (status, campaign_id))
        if status == "sending":
            conn.execute("UPDATE campaigns SET started_at = COALESCE(started_at, ?)"
                         " WHERE id = ?", (now, campaign_id))
        if status == "finished":
            conn.execute("UPDATE campaigns SET finished_at = ? WHERE id = ?", (now, campaign_id))


# ---------------------------------------------------------------- the snapshot

def snapshot(conn: sqlite3.Connection, campaign_id: str, recipients: Iterable[Recipient],
             batch_size: int = 2000) -> int:
    """Write one pending row per recipient, in batches, then mark the campaign ready.

    Nothing is sent before the snapshot is complete, so an interrupted snapshot
    is simply started again (its partial rows are removed first).
    """
    with transaction(conn):
        conn.execute("DELETE FROM journal WHERE campaign_id = ?", (campaign_id,))
    total = 0
    batch: list[tuple] = []
    for recipient in recipients:
        batch.append(_row_values(campaign_id, recipient))
        if len(batch) >= batch_size:
            total += _insert(conn, batch)
            batch = []
    total += _insert(conn, batch)
    with transaction(conn):
        conn.execute("UPDATE campaigns SET status = 'ready', total = ? WHERE id = ?",
                     (total, campaign_id))
    return total


def _row_values(campaign_id: str, r: Recipient) -> tuple:
    return (campaign_id, r.subscriber_id, r.email, r.name, r.locale, r.formality, r.view,
            r.segment, time.time())


def _insert(conn: sqlite3.Connection, rows: list[tuple]) -> int:
    if not rows:
        return 0
    with transaction(conn):
        before = conn.total_changes
        conn.executemany(
            "INSERT OR IGNORE INTO journal (campaign_id, subscriber_id, email, name, locale,"
            " formality, view, segment, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
            rows,
        )
        return conn.total_changes - before


def variants(conn: sqlite3.Connection, campaign_id: str) -> list[tuple[str, str | None]]:
    """Every (locale, view) pair among the campaign's recipients."""
    rows = conn.execute("SELECT DISTINCT locale, view FROM journal WHERE campaign_id = ?"
                        " ORDER BY locale, view", (campaign_id,)).fetchall()
    return [(r["locale"], r["view"]) for r in rows]


# ---------------------------------------------------------------- resume

def recover(conn: sqlite3.Connection, campaign_id: str) -> int:
    """Rows left `claimed` by an earlier run become `unknown`; returns how many."""
    with transaction(conn):
        cur = conn.execute(
            "UPDATE journal SET state = 'unknown', updated_at = ?,"
            " last_text = COALESCE(last_text, 'interrupted while sending; the mail may have left')"
            " WHERE campaign_id = ? AND state = 'claimed'",
            (time.time(), campaign_id),
        )
        return cur.rowcount


def requeue_unknown(conn: sqlite3.Connection, campaign_id: str) -> int:
    """Put `unknown` rows back to `pending` (the operator chose to resend them)."""
    with transaction(conn):
        cur = conn.execute("UPDATE journal SET state = 'pending', next_at = NULL, updated_at = ?"
                           " WHERE campaign_id = ? AND state = 'unknown'",
                           (time.time(), campaign_id))
        return cur.rowcount


# ---------------------------------------------------------------- the send loop

_ENTRY_COLUMNS = ("id, subscriber_id, email, name, locale, formality, view, segment,"
                  " state, attempts, message_id")


def _entry(row: sqlite3.Row) -> Entry:
    recipient = Recipient(
        subscriber_id=row["subscriber_id"], email=row["email"], name=row["name"],
        locale=row["locale"], formality=row["formality"], view=row["view"],
        segment=row["segment"],
    )
    return Entry(row["id"], recipient, row["state"], row["attempts"], row["message_id"])


def claim(conn: sqlite3.Connection, campaign_id: str, limit: int, *, now: float | None = None,
          stamp: Callable[[Entry], str | None] | None = None,
          settle: Iterable[Outcome] = ()) -> list[Entry]:
    """Claim up to `limit` due rows (pending, or retry whose time has come), committed.

    `stamp(entry)` may return the Message-ID the entry's mail will carry; it is
    stored with the claim, so even a mail whose fate is unknown can be traced.
    `settle` are outcomes of an earlier batch, recorded in the same transaction.
    """
    now = time.time() if now is None else now
    with transaction(conn):
        _record(conn, settle)
        rows = conn.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM journal WHERE campaign_id = ? AND state = 'retry'"
            " AND next_at <= ? ORDER BY next_at LIMIT ?", (campaign_id, now, limit),
        ).fetchall()
        if len(rows) < limit:
            rows += conn.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM journal WHERE campaign_id = ? AND state = 'pending'"
                " ORDER BY locale, view, id LIMIT ?", (campaign_id, limit - len(rows)),
            ).fetchall()
        entries = [_entry(r) for r in rows]
        updates = []
        for entry in entries:
            message_id = stamp(entry) if stamp else None
            updates.append((now, message_id, entry.row_id))
        conn.executemany(
            "UPDATE journal SET state = 'claimed', attempts = attempts + 1, claimed_at = ?,"
            " updated_at = claimed_at, message_id = COALESCE(?, message_id) WHERE id = ?",
            updates,
        )
    return [Entry(e.row_id, e.recipient, "claimed", e.attempts + 1, u[1] or e.message_id)
            for e, u in zip(entries, updates)]


def record(conn: sqlite3.Connection, outcomes: Iterable[Outcome]) -> None:
    """Store the outcome of claimed rows, in one transaction."""
    with transaction(conn):
        _record(conn, outcomes)


def _record(conn: sqlite3.Connection, outcomes: Iterable[Outcome]) -> None:
    now = time.time()
    values = []
    for o in outcomes:
        if o.state not in ("sent", "rejected", "retry", "unknown"):
            raise ValueError(f"not an outcome state: {o.state!r}")
        values.append((o.state, o.code, o.text, o.provider_id, o.next_at, o.message_id, now,
                       now if o.state == "sent" else None, o.row_id))
    if values:
        conn.executemany(
            "UPDATE journal SET state = ?, last_code = ?, last_text = ?,"
            " provider_id = COALESCE(?, provider_id), next_at = ?,"
            " message_id = COALESCE(?, message_id), updated_at = ?, sent_at = ? WHERE id = ?",
            values,
        )


def release(conn: sqlite3.Connection, row_ids: Iterable[int]) -> None:
    """Claimed rows whose mail was never handed to a transport go back to `pending`."""
    with transaction(conn):
        conn.executemany("UPDATE journal SET state = 'pending', attempts = attempts - 1,"
                         " updated_at = ? WHERE id = ? AND state = 'claimed'",
                         [(time.time(), row_id) for row_id in row_ids])


def next_retry_at(conn: sqlite3.Connection, campaign_id: str) -> float | None:
    """When the earliest waiting retry becomes due (None when no row waits)."""
    row = conn.execute("SELECT MIN(next_at) FROM journal WHERE campaign_id = ?"
                       " AND state = 'retry'", (campaign_id,)).fetchone()
    return row[0]


def open_count(conn: sqlite3.Connection, campaign_id: str) -> int:
    """Rows still to be sent: pending or waiting for a retry."""
    return conn.execute("SELECT COUNT(*) FROM journal WHERE campaign_id = ?"
                        " AND state IN ('pending', 'retry')", (campaign_id,)).fetchone()[0]


def sent_since(conn: sqlite3.Connection, since: float) -> int:
    """Mails sent by any campaign since `since` (for hourly and daily quotas)."""
    return conn.execute("SELECT COUNT(*) FROM journal WHERE sent_at >= ?", (since,)).fetchone()[0]


# ---------------------------------------------------------------- reporting

def tally(conn: sqlite3.Connection, campaign_id: str) -> Tally:
    """Counts by state for the whole campaign."""
    return tally_by_locale(conn, campaign_id).get(None, Tally())


def tally_by_locale(conn: sqlite3.Connection, campaign_id: str) -> dict[str | None, Tally]:
    """Counts by state per locale; the key None holds the totals."""
    rows = conn.execute(
        "SELECT locale, state, COUNT(*) AS n, SUM(attempts > 1) AS retried FROM journal"
        " WHERE campaign_id = ? GROUP BY locale, state ORDER BY locale",
        (campaign_id,),
    ).fetchall()
    result: dict[str | None, Tally] = {None: Tally()}
    for r in rows:
        for key in (r["locale"], None):
            t = result.setdefault(key, Tally())
            t.by_state[r["state"]] = t.by_state.get(r["state"], 0) + r["n"]
            t.retried += r["retried"] or 0
    return result


def unknown_entries(conn: sqlite3.Connection, campaign_id: str, limit: int = 50) -> list[Entry]:
    rows = conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM journal WHERE campaign_id = ?"
                        " AND state = 'unknown' ORDER BY id LIMIT ?",
                        (campaign_id, limit)).fetchall()
    return [_entry(r) for r in rows]


def iter_rows(conn: sqlite3.Connection, campaign_id: str,
              batch_size: int = 5000) -> Iterator[sqlite3.Row]:
    """Every row of a campaign, in order, fetched in batches (for the CSV report)."""
    last = 0
    while True:
        rows = conn.execute(
            "SELECT * FROM journal WHERE campaign_id = ? AND id > ? ORDER BY id LIMIT ?",
            (campaign_id, last, batch_size),
        ).fetchall()
        if not rows:
            return
        yield from rows
        last = rows[-1]["id"]


def note_feedback(conn: sqlite3.Connection, email: str, code: int | None, text: str, *,
                  message_id: str | None = None, provider_id: str | None = None,
                  state: str | None = None, status: str | None = None,
                  diagnostic: str | None = None) -> int:
    """Put what a provider or bounce mail reported after sending on the mail's row.

    The row keeps its state unless `state` (bounced, complained) is given, and then only
    moves on from FEEDBACK_FROM. It is found by postbode's Message-ID, else by the
    provider's id and the address. Returns how many rows were noted; the caller holds
    the transaction.
    """
    if state not in (None, "bounced", "complained"):
        raise ValueError(f"not a feedback state: {state!r}")
    values = (code, text, time.time(), state, state, status, diagnostic)
    update = ("UPDATE journal SET last_code = ?, last_text = ?, updated_at = ?,"
              f" state = CASE WHEN ? IS NOT NULL AND state IN {FEEDBACK_FROM} THEN ? ELSE state END,"
              " bounce_status = COALESCE(?, bounce_status),"
              " bounce_diagnostic = COALESCE(?, bounce_diagnostic)")
    if message_id:
        rows = conn.execute(f"{update} WHERE message_id = ?", (*values, message_id)).rowcount
        if rows:
            return rows
    if not provider_id:
        return 0
    # Mailgun's id names a whole batch call, so the address picks the row in it
    key = address_key(email)
    ids = [(*values, row["id"]) for row in conn.execute(
        "SELECT id, email FROM journal WHERE provider_id = ?", (provider_id,))
        if address_key(row["email"]) == key]
    conn.executemany(f"{update} WHERE id = ?", ids)
    return len(ids)


REPORT_FIELDS = ("email", "locale", "segment", "state", "time", "attempts", "message_id",
                 "provider_id", "last_code", "last_text", "bounce_status", "bounce_diagnostic")


def write_report_csv(conn: sqlite3.Connection, campaign_id: str, path: Path) -> int:
    """Every recipient of the campaign, one line each (REPORT_FIELDS), all or nothing; returns the count."""
    return write_csv(path, REPORT_FIELDS, _report_rows(conn, campaign_id), what="the report")


def _report_rows(conn: sqlite3.Connection, campaign_id: str) -> Iterator[tuple]:
    for r in iter_rows(conn, campaign_id):
        when = r["sent_at"] or r["updated_at"] or r["created_at"]
        yield (r["email"], r["locale"], r["segment"], r["state"],
               datetime.fromtimestamp(when).isoformat(timespec="seconds") if when else "",
               r["attempts"], r["message_id"] or "", r["provider_id"] or "", r["last_code"] or "",
               r["last_text"] or "", r["bounce_status"] or "", r["bounce_diagnostic"] or "")


def require_campaign(conn: sqlite3.Connection, campaign_id: str) -> Campaign:
    """The campaign with this id, or a CampaignError listing the ones that exist."""
    campaign = get_campaign(conn, campaign_id)
    if campaign is None:
        known = ", ".join(c.id for c in list_campaigns(conn)[-10:]) or "none yet"
        raise CampaignError(f"no campaign {campaign_id!r} in the journal (known: {known}); "
                            "run `report` without arguments to list them")
    return campaign


def discard(conn: sqlite3.Connection, campaign_id: str) -> None:
    """Remove a campaign that never sent anything (its variants could not be built)."""
    with transaction(conn):
        busy = conn.execute("SELECT 1 FROM journal WHERE campaign_id = ? AND state != 'pending'"
                            " LIMIT 1", (campaign_id,)).fetchone()
        if busy:
            raise CampaignError(f"campaign {campaign_id} has already sent mail; it is kept")
        conn.execute("DELETE FROM journal WHERE campaign_id = ?", (campaign_id,))
        conn.execute("DELETE FROM campaigns WHERE id = ?", (campaign_id,))
