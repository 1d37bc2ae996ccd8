"""Writing an import, one chunk of rows per call (the caller holds the chunk's transaction).

Consent already in the database wins over the file: a suppressed address stays
suppressed, an unconfirmed one stays unconfirmed unless the import names where
its consent was confirmed. Rows whose status suppresses (unsubscribed, cleaned,
blocklisted, …) are written as suppressions and never as subscribers. A later
row for an address this import already wrote (in this chunk or an earlier one)
fills in its values: the later row's values win where it has them.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Iterator, NamedTuple

from sqlalchemy import Column, Connection, Integer, MetaData, Table, Text, bindparam, insert, select, update

from postbode.audience.addresses import email_hash, now
from postbode.audience.consent import log_event
from postbode.audience.importrows import Row
from postbode.audience.model import WITHDRAWN, Consent
from postbode.audience.statuses import SUPPRESSING, FileStatus
from postbode.errors import Problem
from postbode.store import driver_fetch, execute_many, insert_ignore
from postbode.store.schema import (audience_events, lists, memberships, new_subscriber_keys, subscribers,
                                   suppressions)

# Duplicate notes kept for the summary; the rest are only counted.
MAX_MERGED_SHOWN = 1000

_temp = MetaData()
# The addresses this import has written so far, with the line they first came from. A
# temporary table: per connection, gone when it closes, and outside the write lock.
seen = Table("postbode_import_seen", _temp, Column("email_key", Text, primary_key=True),
             Column("line", Integer, nullable=False), prefixes=["TEMPORARY"])


# Statements with a fixed number of IN parameters, compiled once per (query, size, dialect):
# SQLAlchemy's expanding IN costs more per chunk than the lookup itself.
_IN_CACHE: dict[tuple[str, int, str], tuple[str, tuple[str, ...] | None, bool]] = {}
_KNOWN_COLUMNS = (subscribers.c.id, subscribers.c.email_key, subscribers.c.name, subscribers.c.formality,
                  subscribers.c.locale, subscribers.c.attributes, subscribers.c.tags, subscribers.c.consent)


def _query(name: str, size: int) -> Any:
    values = [bindparam(f"v{i}") for i in range(size)]
    if name == "known":
        return select(*_KNOWN_COLUMNS).where(subscribers.c.email_key.in_(values))
    if name == "blocked":
        return select(suppressions.c.email_hash).where(suppressions.c.email_hash.in_(values))
    if name == "seen":
        return select(seen.c.email_key, seen.c.line).where(seen.c.email_key.in_(values))
    return select(subscribers.c.id, subscribers.c.email_key).where(subscribers.c.email_key.in_(values))


def select_in(conn: Connection, name: str, values: list[str]) -> list[tuple]:
    """The rows of query `name` for these values (one round trip, compiled once per size)."""
    if not values:
        return []
    key = (name, len(values), conn.dialect.name)
    if key not in _IN_CACHE:
        compiled = _query(name, len(values)).compile(dialect=conn.dialect)
        order = compiled.positiontup
        # positional parameters in the values' own order (the usual case): hand them as they are
        in_order = order is not None and list(order) == [f"v{i}" for i in range(len(values))]
        _IN_CACHE[key] = (str(compiled), None if in_order else order, in_order)
    sql, order, in_order = _IN_CACHE[key]
    if in_order:
        params: Any = tuple(values)
    else:
        by_name = {f"v{i}": v for i, v in enumerate(values)}
        params = tuple(by_name[n] for n in order) if order is not None else by_name
    return driver_fetch(conn, sql, params)


def _json(value: Any) -> Any:
    """A JSON column's value as read through the driver (text on SQLite)."""
    return json.loads(value) if isinstance(value, str) else value


_INSERTS: dict[tuple[str, tuple[str, ...], str], tuple[str, Any]] = {}
# Every column a new subscriber gets, its opaque key included (no column default applies here).
SUBSCRIBER_COLUMNS = ("email", "email_key", "email_hash", "name", "formality", "locale", "attributes", "tags",
                      "source", "created", "consent", "consent_at", "consent_source", "subscriber_key")
EVENT_COLUMNS = ("at", "kind", "email_hash", "source", "detail")
MEMBER_COLUMNS = ("subscriber_id", "list", "added", "source")


def insert_rows(conn: Connection, table: Table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """INSERT of plain-value tuples (in `columns` order), compiled once and handed to the driver as
    they are: building a mapping per row costs more than the insert (JSON given as text)."""
    key = (table.name, columns, conn.dialect.name)
    if key not in _INSERTS:
        statement = insert(table).values({c: bindparam(f"p_{c}") for c in columns})
        compiled = statement.compile(dialect=conn.dialect)
        order = compiled.positiontup
        if order is None:  # a dialect with named parameters
            names = [f"p_{c}" for c in columns]
            arrange: Any = lambda row: dict(zip(names, row))  # noqa: E731
        else:
            indices = [columns.index(name[2:]) for name in order]
            arrange = itemgetter(*indices) if len(indices) > 1 else (lambda row: (row[indices[0]],))
        _INSERTS[key] = (str(compiled), arrange)
    sql, arrange = _INSERTS[key]
    if rows:
        conn.exec_driver_sql(sql, [arrange(row) for row in rows])
_UPDATE_SUBSCRIBER = update(subscribers).where(subscribers.c.id == bindparam("b_id")).values(
    name=bindparam("b_name"), formality=bindparam("b_formality"), locale=bindparam("b_locale"),
    attributes=bindparam("b_attributes"), tags=bindparam("b_tags"))
_CONFIRM_SUBSCRIBER = update(subscribers).where(subscribers.c.id == bindparam("b_id")).values(
    consent=str(Consent.SUBSCRIBED), consent_at=bindparam("b_at"), consent_source=bindparam("b_source"))


def fill_in(first: Row, later: Row) -> None:
    """A later line for the same address: its values win where it has them, tags of both are kept,
    and of two statuses the one that allows less mail."""
    first.name = later.name or first.name
    first.formality = later.formality or first.formality
    first.locale = later.locale or first.locale
    first.attributes.update(later.attributes)
    first.tags |= later.tags
    if later.status.rank > first.status.rank:
        first.status, first.at = later.status, later.at


class Known(NamedTuple):
    """A subscriber already in the database, as the merge needs it."""

    id: int
    email_key: str
    name: str | None
    formality: str | None
    locale: str | None
    attributes: Any
    tags: Any
    consent: str


class JsonTexts:
    """The JSON text of attributes and tags, made once per distinct value: an import's rows
    repeat the same few (a donor tier, a tag), and json.dumps costs more than the insert."""

    MOST = 10_000

    def __init__(self) -> None:
        self._made: dict[object, str] = {}

    def attributes(self, values: dict[str, Any]) -> str:
        try:   # the type too: True, 1 and 1.0 are equal keys but different JSON
            key: object = (tuple(values.items()), tuple(map(type, values.values())))
            return self._text(key, values)
        except TypeError:  # a value that cannot be a key (a list from listmonk's JSON)
            return json.dumps(values)

    def tags(self, tags: set[str]) -> str:
        return self._text(frozenset(tags), sorted(tags))

    def _text(self, key: object, value: object) -> str:
        text = self._made.get(key)
        if text is None:
            if len(self._made) >= self.MOST:
                self._made.clear()
            text = self._made[key] = json.dumps(value)
        return text


@dataclass
class Merge:
    """One import's merge into the database, chunk by chunk."""

    conn: Connection
    summary: Any
    source: str
    consent: Consent
    confirmed_by: str | None = None
    at: str = field(default_factory=now)
    list_created: bool = False
    json: JsonTexts = field(default_factory=JsonTexts)

    @contextmanager
    def seen_table(self) -> Iterator[None]:
        seen.create(self.conn, checkfirst=True)
        try:
            yield
        finally:
            seen.drop(self.conn, checkfirst=True)

    def chunk(self, rows: list[Row]) -> None:
        if not self.list_created:
            self.conn.execute(insert_ignore(self.conn, lists).values(name=self.summary.list_name,
                                                                     created=self.at))
            self.list_created = True
        unique = self.dedupe(rows)
        earlier = dict(select_in(self.conn, "seen", list(unique)))
        for key, line in earlier.items():
            self.note(unique[key].line, line)
        insert_rows(self.conn, seen, ("email_key", "line"),
                    [(k, r.line) for k, r in unique.items() if k not in earlier])
        self.write(list(unique.values()), earlier)

    def dedupe(self, rows: list[Row]) -> dict[str, Row]:
        """The chunk's rows by address; a later one in the chunk is merged into the first."""
        unique: dict[str, Row] = {}
        for row in rows:
            first = unique.setdefault(row.key, row)
            if first is not row:
                self.note(row.line, first.line)
                fill_in(first, row)
        return unique

    def note(self, line: int, first_line: int) -> None:
        summary = self.summary
        summary.duplicates += 1
        if len(summary.merged) < MAX_MERGED_SHOWN:
            summary.merged.append(Problem(str(summary.file), line, None, "email", (
                f"same address as line {first_line}; merged: line {line}'s values kept where it has "
                f"them, line {first_line}'s otherwise, tags of both")))

    def write(self, rows: list[Row], earlier: dict[str, int]) -> None:
        keys = [r.key for r in rows]
        known = {k.email_key: k for k in map(Known._make, select_in(self.conn, "known", keys))}
        hashes = {r.key: email_hash(r.key) for r in rows}
        blocked = {h for (h,) in select_in(self.conn, "blocked", list(hashes.values()))}
        fresh, existing, suppress = [], [], []
        for row in rows:
            old = known.get(row.key)
            if hashes[row.key] in blocked or (old is not None and old.consent in WITHDRAWN):
                if row.key not in earlier:
                    self.summary.suppressed += 1
            elif row.status.suppresses:
                suppress.append((row, old))
            elif old is None:
                fresh.append(row)
            else:
                existing.append((row, old, row.key in earlier))
        self.suppress(suppress, hashes)
        self.update(existing, hashes)
        self.insert(fresh, hashes)
        self.add_to_list([r.key for r in fresh], [r.key for r, _, _ in existing])

    def suppress(self, pairs: list[tuple[Row, Known | None]], hashes: dict[str, str]) -> None:
        """Rows whose status suppresses: a suppression each; a known subscriber's consent follows."""
        if not pairs:
            return
        self.conn.execute(insert_ignore(self.conn, suppressions), [
            {"email_hash": hashes[r.key], "reason": str(SUPPRESSING[r.status]),
             "source": f"{self.source} ({r.status})", "created": r.at or self.at} for r, _ in pairs])
        for row, old in pairs:
            self.summary.newly_suppressed[str(row.status)] += 1
            if old is not None:
                reason = SUPPRESSING[row.status]
                consent = reason if reason in WITHDRAWN else Consent.UNSUBSCRIBED
                self.conn.execute(update(subscribers).where(subscribers.c.id == old.id).values(
                    consent=str(consent), consent_at=row.at or self.at,
                    consent_source=f"{self.source} ({row.status})"))
        self.conn.execute(insert(audience_events), [
            {"at": self.at, "kind": str(SUPPRESSING[r.status]), "email_hash": hashes[r.key],
             "source": self.source, "detail": {"status": str(r.status), "line": r.line, "time": r.at}}
            for r, _ in pairs])

    def update(self, triples: list[tuple[Row, Known, bool]], hashes: dict[str, str]) -> None:
        confirmed: list[int] = []
        for row, old, again in triples:
            if not again:
                self.summary.existing += 1
            if old.consent == Consent.UNCONFIRMED:
                if self.confirmed_by and row.status == FileStatus.SUBSCRIBED:
                    confirmed.append(old.id)
                elif not again:
                    self.summary.unconfirmed_kept += 1
        if triples:
            execute_many(self.conn, _UPDATE_SUBSCRIBER, [self.updated(row, old) for row, old, _ in triples])
        if confirmed:
            execute_many(self.conn, _CONFIRM_SUBSCRIBER, [
                {"b_id": i, "b_at": self.at, "b_source": self.confirmed_by} for i in confirmed])
        self.summary.confirmed += len(confirmed)
        by_id = {old.id: hashes[row.key] for row, old, _ in triples}
        self.events(Consent.SUBSCRIBED, [by_id[i] for i in confirmed], confirmed_by=self.confirmed_by)

    @staticmethod
    def updated(row: Row, old: Known) -> dict:
        """The new values of a known subscriber: the file's where it has them, the database's otherwise."""
        tags = sorted(set(_json(old.tags) or ()) | row.tags)
        return {"b_id": old.id, "b_name": row.name or old.name, "b_formality": row.formality or old.formality,
                "b_locale": row.locale or old.locale,
                "b_attributes": json.dumps({**(_json(old.attributes) or {}), **row.attributes}),
                "b_tags": json.dumps(tags)}

    def new_consent(self, row: Row) -> Consent:
        if row.status == FileStatus.UNCONFIRMED:
            return Consent.UNCONFIRMED
        return self.consent

    def insert(self, rows: list[Row], hashes: dict[str, str]) -> None:
        self.summary.new += len(rows)
        if not rows:
            return
        source = self.confirmed_by or self.source
        consents = [self.new_consent(r) for r in rows]
        insert_rows(self.conn, subscribers, SUBSCRIBER_COLUMNS, [
            (r.email, r.key, hashes[r.key], r.name, r.formality, r.locale, self.json.attributes(r.attributes),
             self.json.tags(r.tags), self.source, self.at, str(c), self.at, source, key)
            for r, c, key in zip(rows, consents, new_subscriber_keys(len(rows)))])
        for consent in (Consent.SUBSCRIBED, Consent.UNCONFIRMED):
            self.events(consent, [hashes[r.key] for r, c in zip(rows, consents) if c == consent],
                        confirmed_by=self.confirmed_by if consent == Consent.SUBSCRIBED else None)

    def add_to_list(self, fresh: list[str], existing: list[str]) -> None:
        """Everyone written in this chunk onto the import's list; only known people can be on it already."""
        name = self.summary.list_name
        already: set[int] = set()
        if existing:
            ids = [i for i, _ in select_in(self.conn, "ids", existing)]
            already = set(self.conn.execute(select(memberships.c.subscriber_id).where(
                memberships.c.list == name, memberships.c.subscriber_id.in_(ids))).scalars())
        added = [i for i, _ in select_in(self.conn, "ids", fresh + existing) if i not in already]
        insert_rows(self.conn, memberships, MEMBER_COLUMNS, [(i, name, self.at, self.source) for i in added])
        self.summary.added_to_list += len(added)

    def events(self, kind: str, hashes: list[str], confirmed_by: str | None = None) -> None:
        if hashes:
            detail = json.dumps({"confirmed_by": confirmed_by} if confirmed_by else {})
            insert_rows(self.conn, audience_events, EVENT_COLUMNS,
                        [(self.at, str(kind), h, self.source, detail) for h in hashes])

    def finish(self) -> None:
        """The import's own line in the event log, with its counts."""
        s = self.summary
        log_event(self.conn, "import", None, self.source, list=s.list_name, new=s.new, existing=s.existing,
                  suppressed=s.suppressed, newly_suppressed=dict(s.newly_suppressed),
                  invalid=s.invalid_count, confirmed=s.confirmed, confirmed_by=self.confirmed_by)
