"""Writing an import, one chunk of rows per call (the caller holds the chunk's transaction).

Consent already in the database wins over the file: a suppressed address stays
suppressed, an unconfirmed one stays unconfirmed unless the import names where
its consent was confirmed. Rows whose status suppresses (unsubscribed, cleaned,
blocklisted, …) are written as suppressions and never as subscribers. A later
row for an address this import already wrote (in this chunk or an earlier one)
fills in its values: the later row's values win where it has them.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from sqlalchemy import Column, Connection, Integer, MetaData, Row as DbRow, Table, Text, insert, select, update

from postbode.audience.addresses import email_hash, now
from postbode.audience.consent import log_event
from postbode.audience.importrows import Row
from postbode.audience.model import WITHDRAWN, Consent
from postbode.audience.statuses import SUPPRESSING, FileStatus
from postbode.errors import Problem
from postbode.store import insert_ignore
from postbode.store.schema import audience_events, lists, memberships, subscribers, suppressions

# Duplicate notes kept for the summary; the rest are only counted.
MAX_MERGED_SHOWN = 1000

_temp = MetaData()
# The addresses this import has written so far, with the line they first came from. A
# temporary table: per connection, gone when it closes, and outside the write lock.
seen = Table("postbode_import_seen", _temp, Column("email_key", Text, primary_key=True),
             Column("line", Integer, nullable=False), prefixes=["TEMPORARY"])


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


@dataclass
class Merge:
    """One import's merge into the database, chunk by chunk."""

    conn: Connection
    summary: object
    source: str
    consent: Consent
    confirmed_by: str | None = None
    at: str = field(default_factory=now)
    list_created: bool = False

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
        keys = list(unique)
        earlier = dict(self.conn.execute(select(seen.c.email_key, seen.c.line)
                                         .where(seen.c.email_key.in_(keys))).all())
        for key, line in earlier.items():
            self.note(unique[key].line, line)
        first_seen = [{"email_key": k, "line": r.line} for k, r in unique.items() if k not in earlier]
        if first_seen:
            self.conn.execute(insert(seen), first_seen)
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
        known = {r.email_key: r for r in self.conn.execute(
            select(subscribers).where(subscribers.c.email_key.in_(keys)))}
        hashes = {r.key: email_hash(r.key) for r in rows}
        blocked = set(self.conn.execute(select(suppressions.c.email_hash)
                                        .where(suppressions.c.email_hash.in_(hashes.values()))).scalars())
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
        self.add_to_list([r.key for r in fresh] + [r.key for r, _, _ in existing])

    def suppress(self, pairs: list[tuple[Row, DbRow | None]], hashes: dict[str, str]) -> None:
        """Rows whose status suppresses: a suppression each; a known subscriber's consent follows."""
        if not pairs:
            return
        self.conn.execute(insert_ignore(self.conn, suppressions), [
            {"email_hash": hashes[r.key], "reason": str(SUPPRESSING[r.status]),
             "source": f"{self.source} ({r.status})", "created": r.at or self.at} for r, _ in pairs])
        for row, old in pairs:
            self.summary.newly_suppressed[str(row.status)] += 1
            if old is not None:
                consent = SUPPRESSING[row.status] if SUPPRESSING[row.status] in WITHDRAWN else Consent.UNSUBSCRIBED
                self.conn.execute(update(subscribers).where(subscribers.c.id == old.id).values(
                    consent=str(consent), consent_at=row.at or self.at, consent_source=f"{self.source} ({row.status})"))
        self.conn.execute(insert(audience_events), [
            {"at": self.at, "kind": str(SUPPRESSING[r.status]), "email_hash": hashes[r.key],
             "source": self.source, "detail": {"status": str(r.status), "line": r.line, "time": r.at}}
            for r, _ in pairs])

    def update(self, triples: list[tuple[Row, DbRow, bool]], hashes: dict[str, str]) -> None:
        confirmed = []
        for row, old, again in triples:
            if not again:
                self.summary.existing += 1
            values = {"name": row.name or old.name, "formality": row.formality or old.formality,
                      "locale": row.locale or old.locale,
                      "attributes": {**(old.attributes or {}), **row.attributes},
                      "tags": sorted(set(old.tags or ()) | row.tags)}
            if old.consent == Consent.UNCONFIRMED:
                if self.confirmed_by and row.status == FileStatus.SUBSCRIBED:
                    values.update(consent=str(Consent.SUBSCRIBED), consent_at=self.at,
                                  consent_source=self.confirmed_by)
                    confirmed.append(hashes[row.key])
                elif not again:
                    self.summary.unconfirmed_kept += 1
            self.conn.execute(update(subscribers).where(subscribers.c.id == old.id).values(values))
        self.summary.confirmed += len(confirmed)
        self.events(Consent.SUBSCRIBED, confirmed, confirmed_by=self.confirmed_by)

    def new_consent(self, row: Row) -> Consent:
        if row.status == FileStatus.UNCONFIRMED:
            return Consent.UNCONFIRMED
        return self.consent

    def insert(self, rows: list[Row], hashes: dict[str, str]) -> None:
        self.summary.new += len(rows)
        if not rows:
            return
        source = self.confirmed_by or self.source
        self.conn.execute(insert(subscribers), [
            {"email": r.email, "email_key": r.key, "email_hash": hashes[r.key], "name": r.name,
             "formality": r.formality, "locale": r.locale, "attributes": r.attributes,
             "tags": sorted(r.tags), "source": self.source, "created": self.at,
             "consent": str(self.new_consent(r)), "consent_at": self.at, "consent_source": source}
            for r in rows])
        for consent in (Consent.SUBSCRIBED, Consent.UNCONFIRMED):
            self.events(consent, [hashes[r.key] for r in rows if self.new_consent(r) == consent],
                        confirmed_by=self.confirmed_by if consent == Consent.SUBSCRIBED else None)

    def add_to_list(self, keys: list[str]) -> None:
        if not keys:
            return
        ids = list(self.conn.execute(select(subscribers.c.id)
                                     .where(subscribers.c.email_key.in_(keys))).scalars())
        name = self.summary.list_name
        already = set(self.conn.execute(select(memberships.c.subscriber_id).where(
            memberships.c.list == name, memberships.c.subscriber_id.in_(ids))).scalars())
        added = [i for i in ids if i not in already]
        if added:
            self.conn.execute(insert(memberships), [
                {"subscriber_id": i, "list": name, "added": self.at, "source": self.source} for i in added])
        self.summary.added_to_list += len(added)

    def events(self, kind: str, hashes: list[str], confirmed_by: str | None = None) -> None:
        if hashes:
            detail = {"confirmed_by": confirmed_by} if confirmed_by else {}
            self.conn.execute(insert(audience_events), [
                {"at": self.at, "kind": str(kind), "email_hash": h, "source": self.source, "detail": detail}
                for h in hashes])

    def finish(self) -> None:
        """The import's own line in the event log, with its counts."""
        s = self.summary
        log_event(self.conn, "import", None, self.source, list=s.list_name, new=s.new, existing=s.existing,
                  suppressed=s.suppressed, newly_suppressed=dict(s.newly_suppressed),
                  invalid=len(s.invalid), confirmed=s.confirmed, confirmed_by=self.confirmed_by)
