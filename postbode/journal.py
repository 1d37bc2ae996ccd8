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
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import (ColumnElement, Connection, RowMapping, ScalarSelect, and_, bindparam, case,
                        delete, exists, func, insert, literal, literal_column, or_, select, text,
                        update)

from postbode.audience.addresses import address_key, email_hash
from postbode.audience.model import Recipient
from postbode.errors import CampaignError
from postbode.files import write_csv
from postbode.store import atomic, driver_many, driver_rows, execute_many, insert_ignore
from postbode.store.schema import UNSETTLED, campaign_sends, campaigns, journal, suppressions


class State(StrEnum):
    """A journal row's state."""

    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    REJECTED = "rejected"
    RETRY = "retry"
    UNKNOWN = "unknown"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class CampaignStatus(StrEnum):
    """A campaign's state: snapshot (being written) → ready → sending ⇄ paused → finished."""

    SNAPSHOT = "snapshot"
    READY = "ready"
    SENDING = "sending"
    PAUSED = "paused"
    FINISHED = "finished"


class CampaignKind(StrEnum):
    """What a campaign sends: a newsletter, or the sign-up's confirmation mails."""

    NEWSLETTER = "newsletter"
    CONFIRMATION = "confirmation"
    WELCOME = "welcome"            # a list's welcome newsletter, once per person on confirmation


STATES = tuple(State)
OUTCOME_STATES = (State.SENT, State.REJECTED, State.RETRY, State.UNKNOWN)
# States a bounce or complaint may move on from: the mail left, may have left, or is
# leaving (a local MTA's bounce can come back before the sender has settled the row)
FEEDBACK_FROM = (State.SENT, State.UNKNOWN, State.BOUNCED, State.CLAIMED)
FEEDBACK_STATES = (State.BOUNCED, State.COMPLAINED)
# A person has a newsletter when a row of any of its campaigns is in one of these states
# (the mail left, may have left, or left and bounced or drew a complaint) ...
RECEIVED = (State.SENT, State.UNKNOWN, State.BOUNCED, State.COMPLAINED)
# ... or will have it: a row still to be sent by a campaign that can still be resumed.
QUEUED = (State.PENDING, State.CLAIMED, State.RETRY)


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
    status: CampaignStatus
    total: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    already_received: Mapping[str, int] = field(default_factory=dict)  # left out: {campaign: n}
    sent_again: int = 0              # had it already, sent again (--again)


@dataclass(frozen=True)
class Send:
    """One time `send` worked on a campaign: the transport (no secrets), when, how many left."""

    transport: str
    started_at: float
    ended_at: float | None
    sent: int


@dataclass(frozen=True, slots=True)
class Entry:
    """A journal row as the send loop sees it."""

    row_id: int
    recipient: Recipient
    state: str
    attempts: int
    message_id: str | None = None
    suppressed: bool = False        # claimed while the address is on the suppression list


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


def _campaign(row: RowMapping) -> Campaign:
    return Campaign(
        id=row["id"], base_id=row["base_id"], sequence=row["sequence"],
        newsletter_id=row["newsletter_id"], segments=tuple(row["segments"]),
        content_hash=row["content_hash"], content_parts=row["content_parts"],
        transport=row["transport"], status=CampaignStatus(row["status"]), total=row["total"],
        created_at=row["created_at"], started_at=row["started_at"], finished_at=row["finished_at"],
        already_received=row["already_received"] or {}, sent_again=row["sent_again"] or 0,
    )


def _one_campaign(conn: Connection, query) -> Campaign | None:
    row = conn.execute(query).mappings().first()
    return _campaign(row) if row else None


def get_campaign(conn: Connection, campaign_id: str) -> Campaign | None:
    return _one_campaign(conn, select(campaigns).where(campaigns.c.id == campaign_id))


def latest_campaign(conn: Connection, newsletter_id: str,
                    segments: Iterable[str]) -> Campaign | None:
    """The most recent campaign of this newsletter to these segments, if any."""
    return _one_campaign(conn, select(campaigns)
                         .where(campaigns.c.base_id == base_id(newsletter_id, segments))
                         .order_by(campaigns.c.sequence.desc()).limit(1))


def list_campaigns(conn: Connection) -> list[Campaign]:
    rows = conn.execute(select(campaigns).order_by(campaigns.c.created_at, campaigns.c.id)).mappings()
    return [_campaign(r) for r in rows]


def create_campaign(conn: Connection, newsletter_id: str, segments: Iterable[str],
                    parts: Mapping[str, str], transport: str) -> Campaign:
    """Register a new campaign (the next sequence number of its base id); no rows yet."""
    names = sorted(set(segments))
    base = base_id(newsletter_id, names)
    with atomic(conn):
        last = conn.execute(select(func.max(campaigns.c.sequence))
                            .where(campaigns.c.base_id == base)).scalar()
        sequence = (last or 0) + 1
        cid = base if sequence == 1 else f"{base}--{sequence}"
        conn.execute(insert(campaigns).values(
            id=cid, base_id=base, sequence=sequence, newsletter_id=newsletter_id, segments=names,
            content_hash=content_hash(parts), content_parts=dict(sorted(parts.items())),
            transport=transport, status=CampaignStatus.SNAPSHOT, created_at=time.time()))
    campaign = get_campaign(conn, cid)
    assert campaign is not None
    return campaign


def open_transactional(conn: Connection, campaign_id: str, kind: CampaignKind, transport: str,
                       newsletter_id: str | None = None) -> None:
    """The campaign of mails sent one at a time as people ask (confirmations), made once.

    Its rows are added one by one (`add_row`) and claimed by id (`claim_row`); the
    journal's unique (campaign, address) makes each mail leave at most once per campaign.
    """
    with atomic(conn):
        conn.execute(insert_ignore(conn, campaigns).values(
            id=campaign_id, base_id=campaign_id, sequence=1, newsletter_id=newsletter_id or str(kind),
            segments=[],
            content_hash="", content_parts={}, transport=transport, status=CampaignStatus.SENDING,
            created_at=time.time(), started_at=time.time(), kind=str(kind)))


def add_row(conn: Connection, campaign_id: str, recipient: Recipient) -> int | None:
    """One pending row for this recipient; None when the campaign already has one for the address."""
    with atomic(conn):
        if not _insert(conn, [_row_values(campaign_id, recipient)]):
            return None
        conn.execute(update(campaigns).where(campaigns.c.id == campaign_id)
                     .values(total=campaigns.c.total + 1))
        return conn.execute(select(journal.c.id).where(journal.c.campaign_id == campaign_id,
                                                       journal.c.email == recipient.email)).scalar()


def claim_row(conn: Connection, row_id: int, message_id: str) -> bool:
    """Claim one pending row (committed before its mail leaves); False if someone else did."""
    with atomic(conn):
        now = time.time()
        return conn.execute(update(journal).where(journal.c.id == row_id, journal.c.state == State.PENDING)
                            .values(state=State.CLAIMED, attempts=journal.c.attempts + 1, claimed_at=now,
                                    updated_at=now, message_id=message_id)).rowcount == 1


def set_status(conn: Connection, campaign_id: str, status: CampaignStatus | str) -> None:
    """Record the campaign's status; `sending` stamps the start, `finished` the end."""
    now = time.time()
    values: dict[str, object] = {"status": str(CampaignStatus(status))}
    if status == CampaignStatus.SENDING:
        values["started_at"] = func.coalesce(campaigns.c.started_at, now)
    if status == CampaignStatus.FINISHED:
        values["finished_at"] = now
    with atomic(conn):
        conn.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(values))


# ---------------------------------------------------------------- the snapshot

def snapshot(conn: Connection, campaign_id: str, recipients: Iterable[Recipient],
             batch_size: int = 2000, *, already: Mapping[str, int] | None = None,
             again: int = 0) -> int:
    """Write one pending row per recipient, in batches, then mark the campaign ready.

    Nothing is sent before the snapshot is complete, so an interrupted snapshot
    is simply started again (its partial rows are removed first). `already` (who was
    left out because they have this newsletter, per campaign) and `again` (how many of
    them were sent to anyway) are stored with the ready mark, in its transaction.
    """
    with atomic(conn):
        conn.execute(delete(journal).where(journal.c.campaign_id == campaign_id))
    total = 0
    batch: list[dict] = []
    for recipient in recipients:
        batch.append(_row_values(campaign_id, recipient))
        if len(batch) >= batch_size:
            total += _insert(conn, batch)
            batch = []
    total += _insert(conn, batch)
    with atomic(conn):
        conn.execute(update(campaigns).where(campaigns.c.id == campaign_id)
                     .values(status=CampaignStatus.READY, total=total,
                             already_received=dict(already or {}), sent_again=again))
    return total


def _row_values(campaign_id: str, r: Recipient) -> dict:
    # a recipient's address is stored normalised, so its key is its lower case (no validation)
    return {"campaign_id": campaign_id, "subscriber_id": r.subscriber_id, "email": r.email,
            "name": r.name, "locale": r.locale, "formality": r.formality, "view": r.view,
            "segment": r.segment, "subscriber_key": r.key, "created_at": time.time(),
            "address_hash": email_hash(r.email.lower())}


def _insert(conn: Connection, rows: list[dict]) -> int:
    """Insert rows, skipping addresses already in the campaign; returns how many were new."""
    if not rows:
        return 0
    with atomic(conn):
        statement = insert_ignore(conn, journal).values({name: bindparam(name) for name in rows[0]})
        return execute_many(conn, statement, rows, cache=False).rowcount


def variants(conn: Connection, campaign_id: str) -> list[tuple[str, str | None]]:
    """Every (locale, view) pair among the campaign's recipients."""
    query = (select(journal.c.locale, journal.c.view).distinct()
             .where(journal.c.campaign_id == campaign_id).order_by(journal.c.locale, journal.c.view))
    return [(locale, view) for locale, view in conn.execute(query)]


# ---------------------------------------------------------------- once per person per newsletter

def _holder_rows(newsletter_id: str, base: str, own: str | None,
                 hash_column: ColumnElement[str]) -> ColumnElement[bool]:
    """Journal rows that give the person behind `hash_column` this newsletter already.

    Rows of any other campaign of the newsletter in a RECEIVED state; and rows still
    QUEUED in a campaign that can still be resumed (not finished, the latest of its own
    segments, not an earlier version of the campaign being planned), so a paused send
    and a new one never both reach the same person.
    """
    later = campaigns.alias("later")
    superseded = exists().where(later.c.base_id == campaigns.c.base_id,
                                later.c.sequence > campaigns.c.sequence)
    queued = and_(journal.c.state.in_(QUEUED), campaigns.c.base_id != base,
                  campaigns.c.status != CampaignStatus.FINISHED, ~superseded)
    return and_(journal.c.address_hash == hash_column, campaigns.c.id == journal.c.campaign_id,
                campaigns.c.newsletter_id == newsletter_id,
                campaigns.c.id != (own or ""),
                or_(journal.c.state.in_(RECEIVED), queued))


def has_newsletter(newsletter_id: str, base: str, own: str | None,
                   hash_column: ColumnElement[str]) -> ColumnElement[bool]:
    """EXISTS: the person already has (or is queued for) this newsletter; one index probe."""
    return exists().where(_holder_rows(newsletter_id, base, own, hash_column))


def holder(newsletter_id: str, base: str, own: str | None,
           hash_column: ColumnElement[str]) -> ScalarSelect:
    """`received:<campaign>` or `queued:<campaign>` for a person who has the newsletter, else NULL.

    The campaign named is the first that sent it to them (or, if none did yet, the first
    that will).
    """
    received = case((journal.c.state.in_(RECEIVED), 0), else_=1)
    kind = case((journal.c.state.in_(RECEIVED), literal("received")), else_=literal("queued"))
    return (select(kind.concat(":").concat(campaigns.c.id))
            .where(_holder_rows(newsletter_id, base, own, hash_column))
            .order_by(received, campaigns.c.created_at, campaigns.c.id).limit(1).scalar_subquery())


# ---------------------------------------------------------------- send attempts

def begin_send(conn: Connection, campaign_id: str, transport: str) -> int:
    """Note that `send` starts working on the campaign through `transport` (no secrets in it)."""
    with atomic(conn):
        return conn.execute(insert(campaign_sends).values(
            campaign_id=campaign_id, transport=transport, started_at=time.time())
        ).inserted_primary_key[0]


def end_send(conn: Connection, send_id: int) -> None:
    with atomic(conn):
        conn.execute(update(campaign_sends).where(campaign_sends.c.id == send_id)
                     .values(ended_at=time.time()))


def sends(conn: Connection, campaign_id: str) -> list[Send]:
    """Every time the campaign was worked on, in order, with the mails sent meanwhile."""
    sent = (select(func.count()).where(
        journal.c.campaign_id == campaign_id, journal.c.sent_at >= campaign_sends.c.started_at,
        journal.c.sent_at <= func.coalesce(campaign_sends.c.ended_at, time.time()))
        .scalar_subquery())
    query = (select(campaign_sends.c.transport, campaign_sends.c.started_at,
                    campaign_sends.c.ended_at, sent.label("sent"))
             .where(campaign_sends.c.campaign_id == campaign_id)
             .order_by(campaign_sends.c.started_at, campaign_sends.c.id))
    return [Send(r.transport, r.started_at, r.ended_at, r.sent) for r in conn.execute(query)]


# ---------------------------------------------------------------- resume

def recover(conn: Connection, campaign_id: str) -> int:
    """Rows left `claimed` by an earlier run become `unknown`; returns how many."""
    with atomic(conn):
        return conn.execute(
            update(journal).where(journal.c.campaign_id == campaign_id,
                                  _unsettled_in(State.CLAIMED))
            .values(state=State.UNKNOWN, updated_at=time.time(), last_text=func.coalesce(
                journal.c.last_text, "interrupted while sending; the mail may have left"))
        ).rowcount


def requeue_unknown(conn: Connection, campaign_id: str) -> int:
    """Put `unknown` rows back to `pending` (the operator chose to resend them)."""
    with atomic(conn):
        return conn.execute(
            update(journal).where(journal.c.campaign_id == campaign_id,
                                  _unsettled_in(State.UNKNOWN),
                                  ~journal.c.email.startswith(ERASED))  # nobody to send to
            .values(state=State.PENDING, next_at=None, updated_at=time.time())
        ).rowcount


# ---------------------------------------------------------------- the send loop

_ENTRY_COLUMNS = (journal.c.id, journal.c.subscriber_id, journal.c.email, journal.c.name,
                  journal.c.locale, journal.c.formality, journal.c.view, journal.c.segment,
                  journal.c.state, journal.c.attempts, journal.c.message_id, journal.c.subscriber_key)


# For a claim, also whether the address is suppressed now (unsubscribed, bounced or
# complained since the snapshot): asked in the claim's own SELECT, not in a query of its own.
_CLAIM_COLUMNS = (*_ENTRY_COLUMNS, exists().where(suppressions.c.email_hash == journal.c.address_hash))


def _entry(row: tuple) -> Entry:
    """An Entry from a row of _ENTRY_COLUMNS (or _CLAIM_COLUMNS), in their order."""
    row_id, subscriber_id, email, name, locale, formality, view, segment, state, attempts, mid, key = row[:12]
    recipient = Recipient(subscriber_id=subscriber_id, email=email, name=name, locale=locale,
                          formality=formality, view=view, segment=segment, key=key)
    return Entry(row_id, recipient, state, attempts, mid, bool(row[12]) if len(row) > 12 else False)


def _written(state: State) -> ColumnElement:
    """A state as an SQL literal (a row state is a plain word: nothing to quote)."""
    assert str(state).isalpha()
    return literal_column(f"'{state}'")


def _unsettled_in(state: State) -> ColumnElement[bool]:
    """`state = '<state>'` for a state neither pending nor sent, found through journal_unsettled.

    SQLite uses a partial index only for a query that repeats its WHERE term as written.
    """
    assert state not in (State.PENDING, State.SENT)
    return and_(journal.c.state == _written(state), text(UNSETTLED))


# The send loop's statements, built once and compiled once per dialect (store.driver_rows):
# per message a claim is one short SELECT and one UPDATE, its settling one UPDATE, all in
# the transaction of the next claim. On PostgreSQL the SELECTs lock the rows they return
# and skip rows another worker holds (FOR UPDATE SKIP LOCKED; SQLite writes one at a time
# and renders nothing for it).
#
# The states are written into the SQL, not bound: only then may the database use the
# partial indexes journal_due and journal_pending for them (store.schema).
_DUE = (select(*_CLAIM_COLUMNS)
        .where(journal.c.campaign_id == bindparam("campaign"), journal.c.state == _written(State.RETRY),
               journal.c.next_at <= bindparam("now"))
        .order_by(journal.c.next_at).limit(bindparam("limit")).with_for_update(skip_locked=True))
_PENDING = (select(*_CLAIM_COLUMNS)
            .where(journal.c.campaign_id == bindparam("campaign"),
                   journal.c.state == _written(State.PENDING))
            .order_by(journal.c.locale, journal.c.view, journal.c.id)  # one variant per batch
            .limit(bindparam("limit")).with_for_update(skip_locked=True))

_CLAIM = (update(journal).where(journal.c.id == bindparam("row_id"))
          .values(state=State.CLAIMED, attempts=journal.c.attempts + 1, claimed_at=bindparam("now"),
                  updated_at=bindparam("now"),
                  message_id=func.coalesce(bindparam("stamped"), journal.c.message_id)))
# The row looked at in the last claim (claim_ahead), if it is still waiting to be sent.
_CLAIM_IF_PENDING = _CLAIM.where(journal.c.state.in_([_written(State.PENDING), _written(State.RETRY)]))


def claim(conn: Connection, campaign_id: str, limit: int, *, now: float | None = None,
          stamp: Callable[[Entry], str | None] | None = None,
          settle: Iterable[Outcome] = (), retries_first: bool = True) -> list[Entry]:
    """Claim up to `limit` due rows (retries whose time has come first, then pending), committed.

    `stamp(entry)` may return the Message-ID the entry's mail will carry; it is
    stored with the claim, so even a mail whose fate is unknown can be traced.
    `settle` are outcomes of an earlier batch, recorded in the same transaction.
    `retries_first=False` takes pending rows first and looks for due retries only when
    they run short: one statement in the steady state (the send loop puts retries
    first now and then, not before every message).
    """
    now = time.time() if now is None else now
    with atomic(conn):
        _record(conn, settle)
        return _claim_rows(conn, _due(conn, campaign_id, limit, now, retries_first), stamp, now)


def claim_ahead(conn: Connection, campaign_id: str, first: Entry | None, *,
                stamp: Callable[[Entry], str | None] | None = None, settle: Iterable[Outcome] = (),
                retries_first: bool = True) -> tuple[list[Entry], Entry | None]:
    """Claim one row, and look at the one due after it without claiming it (committed).

    For a connection that opens the next mail's transaction with this mail's data
    (SMTP PIPELINING): `first` is the row looked at last time, claimed if it is still
    pending (nobody took it meanwhile), else the next due row is. Returns the claimed
    rows (none: nothing is due) and the row to open next (None: none).
    """
    now = time.time()
    with atomic(conn):
        _record(conn, settle)
        claimed = _claim_rows(conn, [first], stamp, now, if_waiting=True) if first else []
        if not claimed:
            claimed = _claim_rows(conn, _due(conn, campaign_id, 1, now, retries_first), stamp, now)
        ahead = _due(conn, campaign_id, 1, now, retries_first) if claimed else []
    return claimed, (ahead[0] if ahead else None)


def _due(conn: Connection, campaign_id: str, limit: int, now: float, retries_first: bool) -> list[Entry]:
    """Up to `limit` rows to send now: due retries first (or when pending rows run short)."""
    due = {"campaign": campaign_id, "now": now, "limit": limit}
    rows = driver_rows(conn, _DUE, due) if retries_first else []
    if len(rows) < limit:
        rows += driver_rows(conn, _PENDING, {"campaign": campaign_id, "limit": limit - len(rows)})
    if not retries_first and len(rows) < limit:
        rows += driver_rows(conn, _DUE, {**due, "limit": limit - len(rows)})
    return [_entry(r) for r in rows]


def _claim_rows(conn: Connection, entries: list[Entry], stamp: Callable[[Entry], str | None] | None,
                now: float, *, if_waiting: bool = False) -> list[Entry]:
    """Mark the rows claimed, each with its mail's Message-ID; the entries as claimed.

    `if_waiting`: one row looked at in an earlier transaction, claimed only if it still
    waits to be sent ([] if not).
    """
    stamps = [stamp(entry) if stamp else None for entry in entries]
    changed = driver_many(conn, _CLAIM_IF_PENDING if if_waiting else _CLAIM,
                          [{"row_id": e.row_id, "now": now, "stamped": m} for e, m in zip(entries, stamps)])
    if if_waiting and not changed:
        return []
    return [Entry(e.row_id, e.recipient, State.CLAIMED, e.attempts + 1, m or e.message_id, e.suppressed)
            for e, m in zip(entries, stamps)]


def record(conn: Connection, outcomes: Iterable[Outcome]) -> None:
    """Store the outcome of claimed rows, in one transaction."""
    with atomic(conn):
        _record(conn, outcomes)


# A bounce or complaint that came back while the row was still claimed keeps its state
# and its words when the sender then settles the row.
_HAS_FEEDBACK = journal.c.state.in_([_written(state) for state in FEEDBACK_STATES])
_RECORD = (update(journal).where(journal.c.id == bindparam("row_id"))
           .values(state=case((_HAS_FEEDBACK, journal.c.state), else_=bindparam("new_state")),
                   last_code=case((_HAS_FEEDBACK, journal.c.last_code), else_=bindparam("code")),
                   last_text=case((_HAS_FEEDBACK, journal.c.last_text), else_=bindparam("text")),
                   provider_id=func.coalesce(bindparam("provider"), journal.c.provider_id),
                   next_at=bindparam("next"),
                   message_id=func.coalesce(bindparam("stamped"), journal.c.message_id),
                   updated_at=bindparam("now"), sent_at=bindparam("sent")))


def _record(conn: Connection, outcomes: Iterable[Outcome]) -> None:
    """One UPDATE for all outcomes (executemany), inside the caller's transaction."""
    now = time.time()
    values = []
    for o in outcomes:
        if o.state not in OUTCOME_STATES:
            raise ValueError(f"not an outcome state: {o.state!r}")
        values.append({"new_state": str(o.state), "code": o.code, "text": o.text,
                       "provider": o.provider_id, "next": o.next_at, "stamped": o.message_id,
                       "now": now, "sent": now if o.state == State.SENT else None,
                       "row_id": o.row_id})
    driver_many(conn, _RECORD, values)


def release(conn: Connection, row_ids: Iterable[int]) -> None:
    """Claimed rows whose mail was never handed to a transport go back to `pending`."""
    ids = list(row_ids)
    if not ids:
        return
    with atomic(conn):
        conn.execute(update(journal).where(journal.c.id.in_(ids), journal.c.state == State.CLAIMED)
                     .values(state=State.PENDING, attempts=journal.c.attempts - 1,
                             updated_at=time.time()))


def next_retry_at(conn: Connection, campaign_id: str) -> float | None:
    """When the earliest waiting retry becomes due (None when no row waits)."""
    return conn.execute(select(func.min(journal.c.next_at)).where(
        journal.c.campaign_id == campaign_id, journal.c.state == _written(State.RETRY))).scalar()


def open_count(conn: Connection, campaign_id: str) -> int:
    """Rows still to be sent: pending or waiting for a retry."""
    # one count per state, each through its partial index
    return sum(conn.execute(select(func.count()).where(
        journal.c.campaign_id == campaign_id, journal.c.state == _written(state))).scalar()
        for state in (State.PENDING, State.RETRY))


def sent_since(conn: Connection, since: float) -> int:
    """Mails sent by any campaign since `since` (for hourly and daily quotas)."""
    return conn.execute(select(func.count()).where(journal.c.sent_at >= since)).scalar()


def sent_or_claimed_since(conn: Connection, since: float) -> int:
    """sent_since plus every row claimed now by any sender (quotas shared by several senders)."""
    claimed_now = select(func.count()).where(   # journal_unsettled: only the few rows in flight
        _unsettled_in(State.CLAIMED),
        or_(journal.c.sent_at.is_(None), journal.c.sent_at < since))
    return sent_since(conn, since) + conn.execute(claimed_now).scalar()


# ---------------------------------------------------------------- reporting

def tally(conn: Connection, campaign_id: str) -> Tally:
    """Counts by state for the whole campaign."""
    return tally_by_locale(conn, campaign_id).get(None, Tally())


def tally_by_locale(conn: Connection, campaign_id: str) -> dict[str | None, Tally]:
    """Counts by state per locale; the key None holds the totals."""
    return tally_by(conn, campaign_id, "locale")


def tally_by_segment(conn: Connection, campaign_id: str) -> dict[str | None, Tally]:
    """Counts by state per segment (the one that put each row in the send); None: totals."""
    return tally_by(conn, campaign_id, "segment")


def tally_by(conn: Connection, campaign_id: str, column: str) -> dict[str | None, Tally]:
    """Counts by state per value of a journal column (locale, segment); None holds the totals."""
    group = journal.c[column]
    retried = func.sum(case((journal.c.attempts > 1, 1), else_=0))
    query = (select(group.label("key"), journal.c.state, func.count().label("n"),
                    retried.label("retried"))
             .where(journal.c.campaign_id == campaign_id)
             .group_by(group, journal.c.state).order_by(group))
    result: dict[str | None, Tally] = {None: Tally()}
    for r in conn.execute(query).mappings():
        for key in (r["key"], None):
            t = result.setdefault(key, Tally())
            t.by_state[r["state"]] = t.by_state.get(r["state"], 0) + r["n"]
            t.retried += r["retried"] or 0
    return result


def unknown_entries(conn: Connection, campaign_id: str, limit: int = 50) -> list[Entry]:
    query = (select(*_ENTRY_COLUMNS).where(journal.c.campaign_id == campaign_id,
                                           _unsettled_in(State.UNKNOWN))
             .order_by(journal.c.id).limit(limit))
    return [_entry(r) for r in conn.execute(query)]


def iter_rows(conn: Connection, campaign_id: str,
              batch_size: int = 5000) -> Iterator[RowMapping]:
    """Every row of a campaign, in order, fetched in batches (for the CSV report)."""
    last = 0
    while True:
        rows = conn.execute(select(journal).where(journal.c.campaign_id == campaign_id,
                                                  journal.c.id > last)
                            .order_by(journal.c.id).limit(batch_size)).mappings().all()
        if not rows:
            return
        yield from rows
        last = rows[-1]["id"]


def note_feedback(conn: Connection, email: str, code: int | None, text: str, *,
                  message_id: str | None = None, provider_id: str | None = None,
                  state: str | None = None, status: str | None = None,
                  diagnostic: str | None = None) -> int:
    """Put what a provider or bounce mail reported after sending on the mail's row.

    The row keeps its state unless `state` (bounced, complained) is given, and then only
    moves on from FEEDBACK_FROM. It is found by postbode's Message-ID, else by the
    provider's id and the address. Returns how many rows were noted; the caller holds
    the transaction.
    """
    if state not in (None, *FEEDBACK_STATES):
        raise ValueError(f"not a feedback state: {state!r}")
    moved = journal.c.state if state is None else case(
        (journal.c.state.in_(FEEDBACK_FROM), str(state)), else_=journal.c.state)
    values = {"last_code": code, "last_text": text, "updated_at": time.time(), "state": moved,
              "bounce_status": func.coalesce(status, journal.c.bounce_status),
              "bounce_diagnostic": func.coalesce(diagnostic, journal.c.bounce_diagnostic)}
    if message_id:
        rows = conn.execute(update(journal).where(journal.c.message_id == message_id)
                            .values(values)).rowcount
        if rows:
            return rows
    if not provider_id:
        return 0
    # Mailgun's id names a whole batch call, so the address picks the row in it
    key = address_key(email)
    ids = [row_id for row_id, address in conn.execute(
        select(journal.c.id, journal.c.email).where(journal.c.provider_id == provider_id))
        if address_key(address) == key]
    if ids:
        conn.execute(update(journal).where(journal.c.id.in_(ids)).values(values))
    return len(ids)


REPORT_FIELDS = ("email", "locale", "segment", "state", "time", "attempts", "message_id",
                 "provider_id", "last_code", "last_text", "bounce_status", "bounce_diagnostic")


def write_report_csv(conn: Connection, campaign_id: str, path: Path, *,
                     zone: str | None = None) -> int:
    """Every recipient of the campaign, one line each (REPORT_FIELDS), all or nothing; returns the count.

    Times are ISO 8601 with their offset, in the time zone `zone` (else the machine's).
    """
    return write_csv(path, REPORT_FIELDS, _report_rows(conn, campaign_id, zone), what="the report")


def _report_rows(conn: Connection, campaign_id: str, zone: str | None) -> Iterator[tuple]:
    tz = ZoneInfo(zone) if zone else None
    for r in iter_rows(conn, campaign_id):
        when = r["sent_at"] or r["updated_at"] or r["created_at"]
        yield (shown_address(r["email"]), r["locale"], r["segment"], r["state"],
               datetime.fromtimestamp(when, tz).astimezone(tz).isoformat(timespec="seconds")
               if when else "",
               r["attempts"], r["message_id"] or "", r["provider_id"] or "", r["last_code"] or "",
               r["last_text"] or "", r["bounce_status"] or "", r["bounce_diagnostic"] or "")


def require_campaign(conn: Connection, campaign_id: str) -> Campaign:
    """The campaign with this id, or a CampaignError listing the ones that exist."""
    campaign = get_campaign(conn, campaign_id)
    if campaign is None:
        known = ", ".join(c.id for c in list_campaigns(conn)[-10:]) or "none yet"
        raise CampaignError(f"no campaign {campaign_id!r} in the journal (known: {known}); "
                            "run `report` without arguments to list them")
    return campaign


def discard(conn: Connection, campaign_id: str) -> None:
    """Remove a campaign that never sent anything (its variants could not be built)."""
    with atomic(conn):
        busy = conn.execute(select(journal.c.id).where(journal.c.campaign_id == campaign_id,
                                                       journal.c.state != State.PENDING).limit(1)).first()
        if busy:
            raise CampaignError(f"campaign {campaign_id} has already sent mail; it is kept")
        conn.execute(delete(journal).where(journal.c.campaign_id == campaign_id))
        conn.execute(delete(campaigns).where(campaigns.c.id == campaign_id))


# ---------------------------------------------------------------- erasure

# What an erased row keeps instead of the address: this prefix and the address's hash
# (the suppression list's), so the campaign's counts still add up.
ERASED = "erased:"
REDACTED = "[erased]"
NOT_YET_SENT = (State.PENDING, State.RETRY)
ERASED_BEFORE_SENDING = "erased before it was sent"


def shown_address(stored: str) -> str:
    """A row's address as reports show it: `erased` for a forgotten person."""
    return "erased" if stored.startswith(ERASED) else stored


@dataclass(frozen=True)
class ErasedRow:
    """Where an erased row's mail may have been written (the outbox names files by Message-ID)."""

    campaign_id: str
    message_id: str | None
    provider_id: str | None
    row_id: int = 0
    claimed: bool = False       # its mail was being sent when the row was erased


def erase(conn: Connection, key: str, hash_: str, subscriber_id: int | None,
          needles: Iterable[str]) -> tuple[list[ErasedRow], set[str]]:
    """Take a person's address and name out of every journal row of theirs; states are kept.

    `key` is the address's comparison key, `hash_` its hash; `needles` (the address as
    typed, names) are cut out of the servers' texts on the rows. Returns the rows and the
    names they held. The caller holds the transaction.
    """
    rows = _rows_of(conn, key, subscriber_id)
    names = {r["name"] for r in rows if r["name"]}
    cut = [n for n in {*needles, *names, key} if n]
    taken: dict[str, int] = {}
    for r in rows:
        n = taken[r["campaign_id"]] = taken.get(r["campaign_id"], 0) + 1
        values = {"email": ERASED + hash_ + (f"#{n}" if n > 1 else ""), "name": None,
                  "subscriber_key": None, "last_text": redact(r["last_text"], cut),
                  "bounce_diagnostic": redact(r["bounce_diagnostic"], cut)}
        if r["state"] in NOT_YET_SENT:  # never to be sent now: it says why
            values.update(state=State.REJECTED, next_at=None, last_text=ERASED_BEFORE_SENDING)
        conn.execute(update(journal).where(journal.c.id == r["id"]).values(values))
    erased = [ErasedRow(r["campaign_id"], r["message_id"], r["provider_id"], r["id"],
                        r["state"] == State.CLAIMED) for r in rows]
    return erased, names


def still_claimed(conn: Connection, row_ids: Iterable[int]) -> int:
    """How many of these rows are still `claimed` (their mail still on its way)."""
    ids = list(row_ids)
    if not ids:
        return 0
    return conn.execute(select(func.count()).select_from(journal).where(
        journal.c.id.in_(ids), journal.c.state == State.CLAIMED)).scalar_one()


def _rows_of(conn: Connection, key: str, subscriber_id: int | None) -> list[RowMapping]:
    """The person's rows: by address (compared as keys), or by their subscriber id."""
    match = func.lower(journal.c.email) == key
    if subscriber_id is not None:
        match = match | (journal.c.subscriber_id == subscriber_id)
    query = select(journal.c.id, journal.c.campaign_id, journal.c.email, journal.c.name, journal.c.state,
                   journal.c.message_id, journal.c.provider_id, journal.c.last_text,
                   journal.c.bounce_diagnostic).where(match)
    # an id may have been given to someone new after its subscriber was deleted: the address decides
    return [r for r in conn.execute(query).mappings() if address_key(r["email"]) == key]


def redact(text: str | None, needles: Iterable[str]) -> str | None:
    """`text` with every needle (ignoring case) replaced by REDACTED."""
    if not text:
        return text
    for needle in sorted({n for n in needles if n}, key=len, reverse=True):
        text = re.sub(re.escape(needle), REDACTED, text, flags=re.IGNORECASE)
    return text
