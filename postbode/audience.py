"""Audience stage: subscribers, consent, lists, segments and suppression in the state database.

Entry point for sending: `resolve(conn, segments, settings)` streams the
`Recipient`s of the requested segments. Importing CSV files lives in
`postbode.importer`, the segment rules in `postbode.segments`.

Addresses: the local part is kept as given for display, the domain is
lower-cased (email-validator's normalisation). Two addresses are the same
person when they are equal ignoring case (`email_key`); that key, hashed with
SHA-256, is what the suppression list keeps after a subscriber is forgotten.

Consent is one state per subscriber (not per list): unsubscribing, a bounce or
a complaint stops every mail, and puts the address on the suppression list so
that no later import brings it back.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Literal, Mapping

from email_validator import EmailNotValidError, validate_email

from postbode.db import migration
from postbode.errors import AudienceError
from postbode.files import write_csv
from postbode.segments import Segment, find_segments, load_file, load_lists

if TYPE_CHECKING:
    from postbode.config import Settings
    from postbode.importer import ImportSummary

Formality = Literal["formal", "informal"]
Consent = Literal["unconfirmed", "subscribed", "unsubscribed", "bounced", "complained"]
SuppressionReason = Literal["unsubscribed", "bounced", "complained", "forgotten", "manual"]

SUPPRESSION_REASONS = ("unsubscribed", "bounced", "complained", "forgotten", "manual")
# Formality when neither the segment nor the subscriber says: "u" is never rude.
DEFAULT_FORMALITY: Formality = "formal"
BATCH_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Recipient:
    """One address a campaign sends to, with what it needs to be personalised."""

    subscriber_id: int
    email: str
    name: str | None
    locale: str
    formality: Formality
    view: str | None
    segment: str
    # The subscriber's attribute fields declared in segments.yaml `fields:` (personal fields).
    fields: Mapping[str, object] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Subscriber:
    """One person as the preferences page shows them: their own settings and lists."""

    id: int
    email: str
    name: str | None
    locale: str | None
    formality: Formality | None
    consent: Consent
    lists: tuple[str, ...]


@dataclass
class PlanCounts:
    """What a send to some segments would reach: recipients per segment × locale, and who is left out."""

    recipients: dict[tuple[str, str], int] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.recipients.values())


@migration("0001_audience")
def _schema(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE lists ("
        " name TEXT PRIMARY KEY,"
        " created TEXT NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE subscribers ("
        " id INTEGER PRIMARY KEY,"
        " email TEXT NOT NULL,"
        " email_key TEXT NOT NULL UNIQUE,"
        " email_hash TEXT NOT NULL,"
        " name TEXT,"
        " formality TEXT CHECK (formality IN ('formal', 'informal')),"
        " locale TEXT,"
        " attributes TEXT NOT NULL DEFAULT '{}',"
        " tags TEXT NOT NULL DEFAULT '[]',"
        " source TEXT NOT NULL,"
        " created TEXT NOT NULL,"
        " consent TEXT NOT NULL CHECK (consent IN"
        "  ('unconfirmed', 'subscribed', 'unsubscribed', 'bounced', 'complained')),"
        " consent_at TEXT NOT NULL,"
        " consent_source TEXT NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE memberships ("
        " subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,"
        " list TEXT NOT NULL REFERENCES lists(name),"
        " added TEXT NOT NULL,"
        " source TEXT NOT NULL,"
        " PRIMARY KEY (subscriber_id, list)) WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX memberships_by_list ON memberships(list, subscriber_id)")
    conn.execute(
        "CREATE TABLE suppressions ("
        " email_hash TEXT PRIMARY KEY,"
        " reason TEXT NOT NULL CHECK (reason IN"
        "  ('unsubscribed', 'bounced', 'complained', 'forgotten', 'manual')),"
        " source TEXT NOT NULL,"
        " created TEXT NOT NULL) WITHOUT ROWID"
    )
    # The event log never holds an address, only its hash: it survives `forget`.
    conn.execute(
        "CREATE TABLE audience_events ("
        " id INTEGER PRIMARY KEY,"
        " at TEXT NOT NULL,"
        " kind TEXT NOT NULL,"
        " email_hash TEXT,"
        " source TEXT NOT NULL,"
        " detail TEXT NOT NULL DEFAULT '{}')"
    )
    conn.execute("CREATE INDEX audience_events_by_hash ON audience_events(email_hash)")


# The provider webhooks' tables (postbode/web/webhooks.py) are registered here, with the
# others that db.apply_migrations loads, not in the web module: there they were created
# only once the web app had been imported, so a database's schema depended on which
# program opened it first, and the migration order on import order. Registering them from
# the web module through db would load Flask for every command. A bounce or complaint
# webhook acts on the audience (suppression), so its bookkeeping lives beside it.
@migration("0201_webhooks")
def _webhook_schema(conn: sqlite3.Connection) -> None:
    # Events already handled, by the provider's own id: a retried delivery is a no-op.
    conn.execute(
        "CREATE TABLE webhook_events ("
        " provider TEXT NOT NULL,"
        " event_id TEXT NOT NULL,"
        " received_at TEXT NOT NULL,"
        " PRIMARY KEY (provider, event_id)) WITHOUT ROWID"
    )
    # Mailgun signature tokens seen within the signature's lifetime (replay protection).
    conn.execute(
        "CREATE TABLE webhook_tokens ("
        " token TEXT PRIMARY KEY,"
        " seen_at REAL NOT NULL) WITHOUT ROWID"
    )


# ---------------------------------------------------------------- addresses


def now() -> str:
    """The current UTC time as stored in the database."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalise(email: str) -> tuple[str, str]:
    """(address as shown, comparison key) of a valid address; AudienceError if invalid."""
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as err:
        raise AudienceError(f"{email!r} is not an email address ({err})") from None
    return result.normalized, result.normalized.lower()


def address_key(email: str) -> str:
    """The comparison key of any address, even one email-validator refuses (e.g. from a bounce)."""
    try:
        return normalise(email)[1]
    except AudienceError:
        return email.strip().lower()


def email_hash(key: str) -> str:
    """What the suppression list keeps of an address: SHA-256 of its comparison key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@contextmanager
def atomic(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction, or a savepoint when the caller already has one open."""
    if conn.in_transaction:
        conn.execute("SAVEPOINT audience")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK TO audience")
            conn.execute("RELEASE audience")
            raise
        conn.execute("RELEASE audience")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def log_event(conn: sqlite3.Connection, kind: str, hash_: str | None, source: str, **detail: object) -> None:
    conn.execute(
        "INSERT INTO audience_events(at, kind, email_hash, source, detail) VALUES (?, ?, ?, ?, ?)",
        (now(), kind, hash_, source, json.dumps(detail, ensure_ascii=False)),
    )


# ---------------------------------------------------------------- consent and suppression


def suppress(conn: sqlite3.Connection, email: str, reason: SuppressionReason,
             source: str = "postbode") -> None:
    """Never mail this address again; an existing subscriber's consent becomes the reason."""
    if reason not in SUPPRESSION_REASONS:
        raise AudienceError(f"unknown suppression reason {reason!r}; use one of {', '.join(SUPPRESSION_REASONS)}")
    key = address_key(email)
    hash_ = email_hash(key)
    with atomic(conn):
        conn.execute(
            "INSERT INTO suppressions(email_hash, reason, source, created) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(email_hash) DO NOTHING",
            (hash_, reason, source, now()),
        )
        if reason in ("unsubscribed", "bounced", "complained"):
            conn.execute(
                "UPDATE subscribers SET consent = ?, consent_at = ?, consent_source = ? WHERE email_key = ?",
                (reason, now(), source, key),
            )
        log_event(conn, reason, hash_, source)


def unsubscribe(conn: sqlite3.Connection, email: str, source: str = "postbode") -> None:
    """The person asked to receive nothing more."""
    suppress(conn, email, "unsubscribed", source)


def is_suppressed(conn: sqlite3.Connection, email: str) -> bool:
    return _suppressed(conn, email_hash(address_key(email)))


def recipient_is_suppressed(conn: sqlite3.Connection, recipient: Recipient) -> bool:
    """is_suppressed for a Recipient: its address was normalised when stored, so its key is
    its lower-case form, without validating it again (a send asks this once per mail)."""
    return _suppressed(conn, email_hash(recipient.email.lower()))


def suppressed_among(conn: sqlite3.Connection, recipients: Iterable[Recipient]) -> set[str]:
    """The addresses of these recipients that are suppressed, one query per 500 (a send asks per batch)."""
    by_hash = {email_hash(r.email.lower()): r.email for r in recipients}
    hashes, found = list(by_hash), set()
    for start in range(0, len(hashes), 500):
        chunk = hashes[start:start + 500]
        rows = conn.execute("SELECT email_hash FROM suppressions WHERE email_hash IN"
                            f" ({','.join('?' * len(chunk))})", chunk)
        found |= {by_hash[row[0]] for row in rows}
    return found


def _suppressed(conn: sqlite3.Connection, hash_: str) -> bool:
    return conn.execute("SELECT 1 FROM suppressions WHERE email_hash = ?", (hash_,)).fetchone() is not None


def forget(conn: sqlite3.Connection, email: str, source: str = "postbode") -> bool:
    """Erase a person: delete their data, keep only the suppression hash. True if they were known."""
    key = address_key(email)
    with atomic(conn):
        suppress(conn, email, "forgotten", source)
        deleted = conn.execute("DELETE FROM subscribers WHERE email_key = ?", (key,)).rowcount
    return deleted > 0


def find_subscriber(conn: sqlite3.Connection, email: str) -> sqlite3.Row | None:
    return conn.execute(
        "SELECT * FROM subscribers WHERE email_key = ?", (address_key(email),)
    ).fetchone()


# ---------------------------------------------------------------- preferences


def get_subscriber(conn: sqlite3.Connection, email: str) -> Subscriber | None:
    """The subscriber with this address and their lists, or None."""
    row = find_subscriber(conn, email)
    if row is None:
        return None
    lists = tuple(r[0] for r in conn.execute(
        "SELECT list FROM memberships WHERE subscriber_id = ? ORDER BY list", (row["id"],)))
    return Subscriber(id=row["id"], email=row["email"], name=row["name"], locale=row["locale"],
                      formality=row["formality"], consent=row["consent"], lists=lists)


def list_names(conn: sqlite3.Connection) -> list[str]:
    """Every list a subscriber can be on."""
    return [r[0] for r in conn.execute("SELECT name FROM lists ORDER BY name")]


def update_preferences(conn: sqlite3.Connection, email: str, *, locale: str | None = None,
                       formality: Formality | None = None, lists: list[str] | None = None,
                       source: str) -> list[str]:
    """Apply the changes that differ from what is stored; one event per changed field. Returns those fields."""
    subscriber = get_subscriber(conn, email)
    if subscriber is None:
        return []
    hash_ = email_hash(address_key(email))
    changed: list[str] = []
    with atomic(conn):
        for column, value in (("locale", locale), ("formality", formality)):
            old = getattr(subscriber, column)
            if value is not None and value != old:
                conn.execute(f"UPDATE subscribers SET {column} = ? WHERE id = ?", (value, subscriber.id))
                log_event(conn, f"{column}_changed", hash_, source, old=old, new=value)
                changed.append(column)
        if lists is not None and set(lists) != set(subscriber.lists):
            _set_lists(conn, subscriber, set(lists), source)
            log_event(conn, "lists_changed", hash_, source, old=list(subscriber.lists), new=sorted(lists))
            changed.append("lists")
    return changed


def _set_lists(conn: sqlite3.Connection, subscriber: Subscriber, wanted: set[str], source: str) -> None:
    for name in set(subscriber.lists) - wanted:
        conn.execute("DELETE FROM memberships WHERE subscriber_id = ? AND list = ?", (subscriber.id, name))
    for name in wanted - set(subscriber.lists):
        conn.execute("INSERT INTO memberships(subscriber_id, list, added, source) VALUES (?, ?, ?, ?)",
                     (subscriber.id, name, now(), source))


# ---------------------------------------------------------------- resolution


def effective_locale(locale: str | None, settings: "Settings") -> str:
    """The subscriber's own locale when its language is one we send in, else the default."""
    if locale:
        languages = {loc.split("_")[0] for loc in settings.locales}
        if locale.split("_")[0] in languages:
            return locale
    return settings.default_locale


def _segment_case(chosen: list[Segment]) -> tuple[str, list[object]]:
    """SQL giving the index of the first requested segment a subscriber belongs to (NULL: none)."""
    parts, params = [], []
    for i, segment in enumerate(chosen):
        parts.append(f"WHEN ({segment.sql}) THEN {i}")
        params.extend(segment.params)
    return f"CASE {' '.join(parts)} END", params


def _chosen(segment_names: list[str], settings: "Settings") -> list[Segment]:
    if not segment_names:
        raise AudienceError("no segment given; name at least one, e.g. --segment everyone")
    return find_segments(settings, segment_names)


def resolve(conn: sqlite3.Connection, segments: list[str], settings: "Settings") -> Iterator[Recipient]:
    """The unique, subscribed, unsuppressed recipients of the segments, streamed in batches.

    A person in several requested segments gets the first one requested.
    """
    chosen = _chosen(segments, settings)
    case, params = _segment_case(chosen)
    declared = tuple(load_file(settings).fields)
    sql = (
        f"SELECT id, email, name, locale, formality, seg, attributes FROM ("
        f" SELECT s.id, s.email, s.name, s.locale, s.formality, {case} AS seg, s.attributes"
        f" FROM subscribers s"
        f" WHERE s.id > ? AND s.consent = 'subscribed'"
        f" AND NOT EXISTS (SELECT 1 FROM suppressions x WHERE x.email_hash = s.email_hash)"
        f" ORDER BY s.id) WHERE seg IS NOT NULL LIMIT {BATCH_SIZE}"
    )
    last_id = 0
    while True:
        rows = conn.execute(sql, (*params, last_id)).fetchall()
        for row in rows:
            segment = chosen[row[5]]
            yield Recipient(
                subscriber_id=row[0],
                email=row[1],
                name=row[2],
                locale=effective_locale(row[3], settings),
                formality=segment.formality or row[4] or DEFAULT_FORMALITY,
                view=segment.view,
                segment=segment.name,
                fields=_declared_fields(row[6], declared),
            )
        if len(rows) < BATCH_SIZE:
            return
        last_id = rows[-1][0]


def _declared_fields(attributes: str | None, declared: tuple[str, ...]) -> dict[str, object]:
    """The declared attribute fields of one subscriber's attributes JSON."""
    if not declared or not attributes or attributes == "{}":
        return {}
    values = json.loads(attributes)
    return {name: values[name] for name in declared if name in values}


def plan_counts(conn: sqlite3.Connection, segments: list[str], settings: "Settings") -> PlanCounts:
    """Recipients per (segment, locale) and members left out by consent state or suppression."""
    chosen = _chosen(segments, settings)
    case, params = _segment_case(chosen)
    rows = conn.execute(
        f"SELECT seg, locale, consent, suppressed, count(*) FROM ("
        f" SELECT {case} AS seg, s.locale, s.consent,"
        f" EXISTS (SELECT 1 FROM suppressions x WHERE x.email_hash = s.email_hash) AS suppressed"
        f" FROM subscribers s) WHERE seg IS NOT NULL GROUP BY 1, 2, 3, 4",
        params,
    ).fetchall()
    recipients: Counter[tuple[str, str]] = Counter()
    left_out: Counter[str] = Counter()
    for seg, locale, consent, suppressed, count in rows:
        if consent != "subscribed":
            left_out[consent] += count
        elif suppressed:
            left_out["suppressed"] += count
        else:
            recipients[(chosen[seg].name, effective_locale(locale, settings))] += count
    return PlanCounts(dict(sorted(recipients.items())), dict(sorted(left_out.items())))


# ---------------------------------------------------------------- imports


def import_csv(conn: sqlite3.Connection, path: Path, list_name: str, settings: "Settings", *,
               dry_run: bool = False, unconfirmed: bool = False) -> "ImportSummary":
    """Import one CSV file into a list (see postbode.importer)."""
    # importer builds on this module (email_hash, log_event, now), so it is imported here
    from postbode.importer import import_file

    return import_file(conn, path, list_name, settings, dry_run=dry_run, unconfirmed=unconfirmed)


def import_samples_if_empty(conn: sqlite3.Connection, settings: "Settings") -> list["ImportSummary"]:
    """Import each list's sample file (segments.yaml `lists:`) when the database has no subscribers."""
    if conn.execute("SELECT 1 FROM subscribers LIMIT 1").fetchone():
        return []
    summaries = []
    for name, spec in load_lists(settings).items():
        if spec.file is not None:
            summaries.append(import_csv(conn, spec.file, name, settings))
    return summaries


# ---------------------------------------------------------------- listing and export


def iter_subscribers(conn: sqlite3.Connection) -> Iterator[sqlite3.Row]:
    """Every subscriber with their lists, any consent state, streamed in batches."""
    last_id = 0
    while True:
        rows = conn.execute(
            "SELECT s.*, (SELECT group_concat(list, ';') FROM (SELECT m.list FROM memberships m"
            " WHERE m.subscriber_id = s.id ORDER BY m.list)) AS lists FROM subscribers s WHERE s.id > ? ORDER BY s.id LIMIT ?",
            (last_id, BATCH_SIZE),
        ).fetchall()
        yield from rows
        if len(rows) < BATCH_SIZE:
            return
        last_id = rows[-1]["id"]


def count_by_consent(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT consent, count(*) FROM subscribers GROUP BY consent ORDER BY consent")
    return {consent: count for consent, count in rows}


def export(conn: sqlite3.Connection, path: Path, settings: "Settings", segments: list[str] | None = None) -> int:
    """Write subscribers (or a send's recipients) to a UTF-8 CSV, atomically; return the row count."""
    if segments:
        header = ["email", "name", "locale", "formality", "segment", "view"]
        rows = ([r.email, r.name or "", r.locale, r.formality, r.segment, r.view or ""]
                for r in resolve(conn, segments, settings))
        return write_csv(path, header, rows, what="the export", create_folder=True)
    fields = list(load_file(settings).fields)
    header = ["email", "name", "locale", "formality", "consent", "lists", "tags", *fields]
    return write_csv(path, header, (_export_row(row, fields) for row in iter_subscribers(conn)),
                     what="the export", create_folder=True)


def _export_row(row: sqlite3.Row, fields: list[str]) -> list[object]:
    attributes = json.loads(row["attributes"])
    return [row["email"], row["name"] or "", row["locale"] or "", row["formality"] or "",
            row["consent"], row["lists"] or "", ";".join(json.loads(row["tags"])),
            *(attributes.get(f, "") for f in fields)]
