"""CSV import: the files fundraisers have (CRM and Excel exports) into one list, in one transaction.

Reading is forgiving (encoding and delimiter detected, Dutch and English
headers); writing is strict: the whole file goes in, or nothing does. Consent
already in the database wins over the file: an address that unsubscribed,
bounced, complained or was forgotten is never subscribed again by an import.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from sqlalchemy import Connection, Row, insert, select, update

from postbode.audience.addresses import domains_checked_once, email_hash, normalise, now
from postbode.audience.consent import log_event
from postbode.audience.model import WITHDRAWN, Consent
from postbode.audience.segments import (FieldType, SegmentsFile, column_key, convert_value, load_file,
                                        load_lists, parse_locale)
from postbode.errors import AudienceError, InputError, Problem
from postbode.store import atomic, insert_ignore
from postbode.store.schema import audience_events, lists, memberships, subscribers, suppressions

if TYPE_CHECKING:
    from postbode.config import Settings

# Column headers as fundraisers write them, compared after lower-casing and
# dropping spaces, dashes, dots and underscores.
ALIASES = {
    "email": ("email", "emailadres", "emailaddress", "mail", "mailadres"),
    "name": ("naam", "name", "volledigenaam", "fullname", "contactpersoon", "contact"),
    "first_name": ("voornaam", "firstname", "givenname", "roepnaam"),
    "infix": ("tussenvoegsel", "tussenvoegsels", "infix"),
    "last_name": ("achternaam", "lastname", "surname", "familyname", "familienaam"),
    "locale": ("taal", "language", "locale", "lang", "voorkeurstaal"),
    "formality": ("aanhef", "formality", "salutation", "aanspreekvorm"),
    "tags": ("tags", "labels", "label", "tag"),
}
FORMAL = {"u", "formeel", "formal", "geachte", "dhr", "dhr.", "mevr", "mevr.", "de heer", "mevrouw", "sie", "vous"}
INFORMAL = {"je", "jij", "informeel", "informal", "beste", "hoi", "hallo", "du", "tu"}
# Columns of postbode's own export that the database, not a file, decides.
IGNORED = ("consent", "lists")
DELIMITERS = (";", ",", "\t")
TAG_SPLIT = re.compile(r"[,;|]")


class CsvError(InputError, AudienceError):
    """A CSV file cannot be imported as a whole."""


@dataclass
class ImportSummary:
    """What an import did (or, with dry_run, would do)."""

    file: Path
    list_name: str
    encoding: str = ""
    delimiter: str = ""
    rows: int = 0
    new: int = 0
    existing: int = 0
    added_to_list: int = 0
    duplicates: int = 0
    suppressed: int = 0
    invalid: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    unknown_locales: int = 0
    dry_run: bool = False


@dataclass(slots=True)
class _Row:
    """One valid line of the file."""

    email: str
    key: str
    line: int
    name: str | None = None
    formality: str | None = None
    locale: str | None = None
    attributes: dict[str, object] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)


# ---------------------------------------------------------------- reading


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding name): UTF-8 with or without BOM, UTF-16 with BOM, else Windows-1252."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace"), "UTF-8 (BOM)"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "UTF-16"
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:  # the five bytes cp1252 leaves undefined
        return data.decode("latin-1"), "Latin-1"


def sniff_delimiter(text: str) -> str:
    """The delimiter the header line uses most, outside quotes (a single column: comma)."""
    header, in_quotes = [], False
    for ch in text:
        if ch == '"':
            in_quotes = not in_quotes
        elif ch in "\r\n" and not in_quotes:
            break
        elif not in_quotes:
            header.append(ch)
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _attribute_name(header: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", header.strip().lower()).strip("_") or "column"


def map_headers(headers: list[str], field_columns: dict[str, str] | None = None) -> dict[str, int]:
    """Column index per known role (email, name, …) and `attr:<name>` for every other column.

    `field_columns` maps extra header aliases to attribute fields (segments.yaml `fields:`).
    """
    lookup = {alias: role for role, aliases in ALIASES.items() for alias in aliases}
    lookup.update({alias: f"attr:{name}" for alias, name in (field_columns or {}).items()})
    mapping: dict[str, int] = {}
    for index, header in enumerate(headers):
        role = lookup.get(column_key(header))
        if role is None:
            if not header.strip() or column_key(header) in IGNORED:
                continue
            role = f"attr:{_attribute_name(header)}"
        mapping.setdefault(role, index)
    return mapping


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of every CSV record; quoted fields may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    for fields in reader:
        yield start, fields
        start = reader.line_num + 1


class _RowReader:
    """Turns CSV records into rows, collecting invalid lines and warnings."""

    def __init__(self, path: Path, columns: dict[str, int], fields: dict[str, FieldType],
                 headers: list[str], summary: ImportSummary):
        self.path = path
        self.columns = columns
        self.fields = fields
        self.headers = headers
        self.summary = summary

    def cell(self, values: list[str], role: str) -> str:
        index = self.columns.get(role)
        if index is None or index >= len(values):
            return ""
        value = values[index].strip()
        return value.replace("\r\n", "\n") if "\r" in value else value

    def warn(self, line: int, column: str, message: str) -> None:
        self.summary.warnings.append(Problem(str(self.path), line, None, column, message))

    def row(self, line: int, values: list[str]) -> _Row | None:
        """The row of one record, or None (blank, or invalid and recorded as such)."""
        if not any(v.strip() for v in values):
            return None  # blank lines and Excel's trailing ;;; rows
        self.summary.rows += 1
        raw = self.cell(values, "email")
        if not raw:
            self.summary.invalid.append(Problem(str(self.path), line, None, "email", "no email address; line skipped"))
            return None
        try:
            email, key = normalise(raw)
        except AudienceError as err:
            self.summary.invalid.append(Problem(str(self.path), line, None, "email", f"{err}; line skipped"))
            return None
        row = _Row(email=email, key=key, line=line)
        self.fill(row, values)
        return row

    def fill(self, row: _Row, values: list[str]) -> None:
        name = self.cell(values, "name")
        if not name:
            parts = (self.cell(values, r) for r in ("first_name", "infix", "last_name"))
            name = " ".join(p for p in parts if p)
        row.name = name or None
        locale = self.cell(values, "locale")
        if locale:
            row.locale = parse_locale(locale)
            if row.locale is None:
                self.summary.unknown_locales += 1
                self.warn(row.line, "locale", f"unknown locale {locale!r}; the default locale is used")
        formality = self.cell(values, "formality").lower().rstrip(":")
        if formality:
            row.formality = ("formal" if formality in FORMAL else "informal" if formality in INFORMAL else None)
            if row.formality is None:
                self.warn(row.line, "formality", f"{formality!r} is neither formal (u) nor informal (je); left empty")
        tags = self.cell(values, "tags")
        row.tags = {t.strip().lower() for t in TAG_SPLIT.split(tags) if t.strip()}
        for role in self.columns:
            if role.startswith("attr:") and (value := self.cell(values, role)):
                self.attribute(row, role[5:], value)

    def attribute(self, row: _Row, name: str, value: str) -> None:
        kind = self.fields.get(name, "text")
        converted = convert_value(kind, value)
        if converted is None:
            self.warn(row.line, name, f"{value!r} is not a {kind}; left out")
        else:
            row.attributes[name] = converted


def read_rows(path: Path, declared: SegmentsFile, summary: ImportSummary) -> Iterator[_Row]:
    """The valid rows of the file, streamed; CsvError at once if the file cannot be used."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise AudienceError(f"{path}: cannot read the file ({err.strerror}); check the path") from None
    text, summary.encoding = decode(data)
    del data
    if not text.strip():
        raise CsvError(Problem(str(path), 1, None, "", "the file is empty; export it with a header row "
                               "that has an e-mail column"))
    summary.delimiter = sniff_delimiter(text)
    records = _records(text, summary.delimiter)
    _, headers = next(records)
    columns = map_headers(headers, declared.columns)
    if "email" not in columns:
        found = ", ".join(repr(h) for h in headers) or "none"
        raise CsvError(Problem(str(path), 1, None, "", f"no email column (found: {found}); name the column "
                               "e-mail, email or e-mailadres. Nothing was imported."))
    return _valid_rows(path, records, _RowReader(path, columns, declared.fields, headers, summary))


def _valid_rows(path: Path, records: Iterator[tuple[int, list[str]]], reader: _RowReader) -> Iterator[_Row]:
    try:
        for line, values in records:
            if (row := reader.row(line, values)) is not None:
                yield row
    except csv.Error as err:
        raise CsvError(Problem(str(path), None, None, "", f"not readable as CSV: {err}")) from None


# ---------------------------------------------------------------- writing

# Addresses looked up (and written) per round trip while merging.
CHUNK = 500


class _DryRun(Exception):
    """Raised at the end of a dry run's transaction, so nothing it wrote stays."""


def _stage(rows: Iterator[_Row], summary: ImportSummary) -> dict[str, _Row]:
    """The file's rows by address, in file order; a later line for the same address fills
    in and adds to the earlier one, never blanks it out."""
    staged: dict[str, _Row] = {}
    seen = 0
    for row in rows:
        seen += 1
        first = staged.setdefault(row.key, row)
        if first is not row:
            _fill_in(first, row)
    summary.duplicates = seen - len(staged)
    return staged


def _fill_in(first: _Row, later: _Row) -> None:
    first.name = later.name or first.name
    first.formality = later.formality or first.formality
    first.locale = later.locale or first.locale
    first.attributes.update(later.attributes)
    first.tags |= later.tags


@dataclass
class _Merge:
    """One import's merge into the database, chunk by chunk, inside its transaction."""

    conn: Connection
    summary: ImportSummary
    source: str
    consent: Consent
    at: str = field(default_factory=now)

    def run(self, staged: dict[str, _Row]) -> None:
        self.conn.execute(insert_ignore(self.conn, lists).values(name=self.summary.list_name,
                                                                 created=self.at))
        rows = list(staged.values())
        for i in range(0, len(rows), CHUNK):
            self.chunk(rows[i:i + CHUNK])
        log_event(self.conn, "import", None, self.source, list=self.summary.list_name,
                  new=self.summary.new, existing=self.summary.existing,
                  suppressed=self.summary.suppressed, invalid=len(self.summary.invalid))

    def chunk(self, rows: list[_Row]) -> None:
        keys = [r.key for r in rows]
        known = {r.email_key: r for r in self.conn.execute(
            select(subscribers).where(subscribers.c.email_key.in_(keys)))}
        hashes = {r.key: email_hash(r.key) for r in rows}
        blocked = set(self.conn.execute(select(suppressions.c.email_hash)
                                        .where(suppressions.c.email_hash.in_(hashes.values()))).scalars())
        fresh, existing = [], []
        for row in rows:
            old = known.get(row.key)
            if hashes[row.key] in blocked or (old is not None and old.consent in WITHDRAWN):
                self.summary.suppressed += 1
            elif old is None:
                fresh.append(row)
            else:
                existing.append((row, old))
        self.update(existing, hashes)
        self.insert(fresh, hashes)
        self.add_to_list([r.key for r in fresh] + [r.key for r, _ in existing])

    def update(self, pairs: list[tuple[_Row, Row]], hashes: dict[str, str]) -> None:
        self.summary.existing += len(pairs)
        confirmed = [r for r, old in pairs
                     if old.consent == Consent.UNCONFIRMED and self.consent == Consent.SUBSCRIBED]
        self.events(Consent.SUBSCRIBED, [hashes[r.key] for r in confirmed])
        for row, old in pairs:
            values = {"name": row.name or old.name, "formality": row.formality or old.formality,
                      "locale": row.locale or old.locale,
                      "attributes": {**(old.attributes or {}), **row.attributes},
                      "tags": sorted(set(old.tags or ()) | row.tags)}
            if old.consent == Consent.UNCONFIRMED:
                values["consent"] = str(self.consent)
                if self.consent == Consent.SUBSCRIBED:
                    values.update(consent_at=self.at, consent_source=self.source)
            self.conn.execute(update(subscribers).where(subscribers.c.id == old.id).values(values))

    def insert(self, rows: list[_Row], hashes: dict[str, str]) -> None:
        self.summary.new += len(rows)
        if not rows:
            return
        self.conn.execute(insert(subscribers), [
            {"email": r.email, "email_key": r.key, "email_hash": hashes[r.key], "name": r.name,
             "formality": r.formality, "locale": r.locale, "attributes": r.attributes,
             "tags": sorted(r.tags), "source": self.source, "created": self.at,
             "consent": str(self.consent), "consent_at": self.at, "consent_source": self.source}
            for r in rows])
        self.events(self.consent, [hashes[r.key] for r in rows])

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

    def events(self, kind: str, hashes: list[str]) -> None:
        if hashes:
            self.conn.execute(insert(audience_events), [
                {"at": self.at, "kind": str(kind), "email_hash": h, "source": self.source, "detail": {}}
                for h in hashes])


def import_csv(conn: Connection, path: Path, list_name: str, settings: "Settings", *,
               dry_run: bool = False, unconfirmed: bool = False) -> ImportSummary:
    """Import a CSV file into a list: all of it in one transaction, or (dry run) nothing at all."""
    path = Path(path)
    declared = load_file(settings)
    if list_name not in declared.lists:
        raise AudienceError(
            f"unknown list {list_name!r}; {settings.segments_file} declares "
            f"{', '.join(declared.lists) or 'no lists'}; add it under lists: first"
        )
    summary = ImportSummary(file=path, list_name=list_name, dry_run=dry_run)
    with domains_checked_once():
        staged = _stage(read_rows(path, declared, summary), summary)
    merge = _Merge(conn, summary, f"import {_display(path, settings)}",
                   Consent.UNCONFIRMED if unconfirmed else Consent.SUBSCRIBED)
    try:
        with atomic(conn):
            merge.run(staged)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return summary


import_file = import_csv


def import_samples_if_empty(conn: Connection, settings: "Settings") -> list[ImportSummary]:
    """Import each list's sample file (segments.yaml `lists:`) when the database has no subscribers."""
    if conn.execute(select(subscribers.c.id).limit(1)).first():
        return []
    return [import_csv(conn, spec.file, name, settings)
            for name, spec in load_lists(settings).items() if spec.file is not None]


def _display(path: Path, settings: "Settings") -> str:
    """The file as recorded as consent source: relative to the project when inside it."""
    try:
        return str(path.resolve().relative_to(settings.root))
    except ValueError:
        return str(path)
