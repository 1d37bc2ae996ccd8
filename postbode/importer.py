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
import json
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from postbode.audience import email_hash, log_event, normalise, now
from postbode.errors import AudienceError, InputError, Problem
from postbode.segments import FieldType, SegmentsFile, column_key, convert_value, load_file, parse_locale

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


@dataclass
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

_TEMP = (
    "CREATE TEMP TABLE IF NOT EXISTS import_rows ("
    " email TEXT NOT NULL, email_key TEXT PRIMARY KEY, email_hash TEXT NOT NULL,"
    " name TEXT, formality TEXT, locale TEXT, attributes TEXT NOT NULL, tags TEXT NOT NULL,"
    " status TEXT)"
)
_STAGE = (
    "INSERT INTO import_rows(email, email_key, email_hash, name, formality, locale, attributes, tags)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(email_key) DO UPDATE SET"
    " name = coalesce(excluded.name, name), formality = coalesce(excluded.formality, formality),"
    " locale = coalesce(excluded.locale, locale), attributes = json_patch(attributes, excluded.attributes),"
    " tags = (SELECT json_group_array(value) FROM"
    "  (SELECT value FROM json_each(import_rows.tags) UNION SELECT value FROM json_each(excluded.tags)))"
)
_MARK_SUPPRESSED = (
    "UPDATE import_rows SET status = 'suppressed' WHERE"
    " EXISTS (SELECT 1 FROM main.suppressions x WHERE x.email_hash = import_rows.email_hash)"
    " OR EXISTS (SELECT 1 FROM main.subscribers s WHERE s.email_key = import_rows.email_key"
    "  AND s.consent IN ('unsubscribed', 'bounced', 'complained'))"
)
_MARK_EXISTING = (
    "UPDATE import_rows SET status = 'existing' WHERE status IS NULL"
    " AND EXISTS (SELECT 1 FROM main.subscribers s WHERE s.email_key = import_rows.email_key)"
)
_LOG_CONFIRMED = (
    "INSERT INTO main.audience_events(at, kind, email_hash, source, detail)"
    " SELECT :now, 'subscribed', i.email_hash, :source, '{}' FROM import_rows i"
    " JOIN main.subscribers s ON s.email_key = i.email_key"
    " WHERE i.status = 'existing' AND s.consent = 'unconfirmed' AND :consent = 'subscribed'"
)
_UPDATE_EXISTING = (
    "UPDATE main.subscribers AS s SET"
    " name = coalesce(i.name, s.name),"
    " formality = coalesce(i.formality, s.formality),"
    " locale = coalesce(i.locale, s.locale),"
    " attributes = json_patch(s.attributes, i.attributes),"
    " tags = (SELECT json_group_array(value) FROM"
    "  (SELECT value FROM json_each(s.tags) UNION SELECT value FROM json_each(i.tags))),"
    " consent = CASE WHEN s.consent = 'unconfirmed' THEN :consent ELSE s.consent END,"
    " consent_at = CASE WHEN s.consent = 'unconfirmed' AND :consent = 'subscribed' THEN :now ELSE s.consent_at END,"
    " consent_source = CASE WHEN s.consent = 'unconfirmed' AND :consent = 'subscribed'"
    "  THEN :source ELSE s.consent_source END"
    " FROM import_rows i WHERE i.status = 'existing' AND s.email_key = i.email_key"
)
_INSERT_NEW = (
    "INSERT INTO main.subscribers(email, email_key, email_hash, name, formality, locale, attributes, tags,"
    " source, created, consent, consent_at, consent_source)"
    " SELECT email, email_key, email_hash, name, formality, locale, attributes, tags,"
    " :source, :now, :consent, :now, :source FROM import_rows WHERE status = 'new' ORDER BY rowid"
)
_ADD_TO_LIST = (
    "INSERT OR IGNORE INTO main.memberships(subscriber_id, list, added, source)"
    " SELECT s.id, :list, :now, :source FROM import_rows i"
    " JOIN main.subscribers s ON s.email_key = i.email_key WHERE i.status IN ('new', 'existing')"
)
_LOG_NEW = (
    "INSERT INTO main.audience_events(at, kind, email_hash, source, detail)"
    " SELECT :now, :consent, email_hash, :source, '{}' FROM import_rows WHERE status = 'new'"
)


def _stage(conn: sqlite3.Connection, rows: Iterator[_Row], summary: ImportSummary) -> None:
    """Stream the file's rows into a temporary table (no lock on the database yet).

    A later line for the same address fills in and adds to the earlier one, never blanks it out.
    """
    conn.execute(_TEMP)
    conn.execute("DELETE FROM import_rows")
    staged = 0

    def values() -> Iterator[tuple[object, ...]]:
        nonlocal staged
        for r in rows:
            staged += 1
            yield (r.email, r.key, email_hash(r.key), r.name, r.formality, r.locale,
                   json.dumps(r.attributes, ensure_ascii=False), json.dumps(sorted(r.tags), ensure_ascii=False))

    conn.executemany(_STAGE, values())
    unique = conn.execute("SELECT count(*) FROM import_rows").fetchone()[0]
    summary.duplicates = staged - unique


def _merge(conn: sqlite3.Connection, summary: ImportSummary, source: str, consent: str) -> None:
    """Merge the staged rows into the database; runs inside the import's transaction."""
    params = {"source": source, "now": now(), "consent": consent, "list": summary.list_name}
    conn.execute("INSERT OR IGNORE INTO lists(name, created) VALUES (?, ?)", (summary.list_name, params["now"]))
    conn.execute(_MARK_SUPPRESSED)
    conn.execute(_MARK_EXISTING)
    conn.execute("UPDATE import_rows SET status = 'new' WHERE status IS NULL")
    counts = dict(conn.execute("SELECT status, count(*) FROM import_rows GROUP BY status").fetchall())
    summary.new, summary.existing = counts.get("new", 0), counts.get("existing", 0)
    summary.suppressed = counts.get("suppressed", 0)
    conn.execute(_LOG_CONFIRMED, params)
    conn.execute(_UPDATE_EXISTING, params)
    conn.execute(_INSERT_NEW, params)
    summary.added_to_list = conn.execute(_ADD_TO_LIST, params).rowcount
    conn.execute(_LOG_NEW, params)
    log_event(conn, "import", None, source, list=summary.list_name, new=summary.new,
              existing=summary.existing, suppressed=summary.suppressed, invalid=len(summary.invalid))


def import_file(conn: sqlite3.Connection, path: Path, list_name: str, settings: "Settings", *,
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
    rows = read_rows(path, declared, summary)
    source = f"import {_display(path, settings)}"
    _stage(conn, rows, summary)
    conn.execute("BEGIN IMMEDIATE")
    try:
        _merge(conn, summary, source, "unconfirmed" if unconfirmed else "subscribed")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("ROLLBACK" if dry_run else "COMMIT")
    conn.execute("DELETE FROM import_rows")
    return summary


def _display(path: Path, settings: "Settings") -> str:
    """The file as recorded as consent source: relative to the project when inside it."""
    try:
        return str(path.resolve().relative_to(settings.root))
    except ValueError:
        return str(path)
