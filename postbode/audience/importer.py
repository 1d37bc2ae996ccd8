"""CSV import: the files fundraisers have (CRM, Excel, Mailchimp and listmonk exports) into one list.

Reading is forgiving (encoding per line and delimiter detected, Dutch and
English headers, the number notation of the file); writing is strict about
consent: an address that unsubscribed, bounced, complained or was forgotten is
never subscribed again by an import, rows whose status says so become
suppressions, and an unconfirmed address is only confirmed by
`consent_confirmed`. The file is streamed and written in chunks of about a
thousand rows, each its own short transaction, so an import never holds the
write lock long enough to keep an unsubscribe waiting; duplicates are merged
across chunks through a temporary table of the addresses this import wrote.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from sqlalchemy import Connection, select

from postbode.audience.addresses import domains_checked_once
from postbode.audience.csvsource import Encoding, Records, open_lines, sniff_delimiter
from postbode.audience.importmerge import Merge
from postbode.audience.importrows import Row, RowReader, layout_of, map_headers  # noqa: F401
from postbode.audience.model import Consent
from postbode.audience.segments import SegmentsFile, load_file, load_lists
from postbode.errors import AudienceError, InputError, Problem
from postbode.store import atomic
from postbode.store.schema import subscribers

if TYPE_CHECKING:
    from postbode.config import Settings

# Rows written per transaction: small enough that the write lock is held for a fraction
# of a second, large enough that the round trips do not dominate.
CHUNK = 1000


class CsvError(InputError, AudienceError):
    """A CSV file cannot be imported as a whole."""


@dataclass
class ImportSummary:
    """What an import did (or, with dry_run, would do)."""

    file: Path
    list_name: str
    encoding: str = ""
    delimiter: str = ""
    source_system: str = ""               # "Mailchimp (unsubscribed)", "listmonk" or ""
    number_style: str = ""                # the notation number columns were read in
    rows: int = 0
    new: int = 0
    existing: int = 0
    added_to_list: int = 0
    duplicates: int = 0
    suppressed: int = 0                   # already suppressed in the database: left so
    newly_suppressed: Counter = field(default_factory=Counter)  # by the file's status
    unconfirmed_kept: int = 0             # known and unconfirmed, left unconfirmed
    confirmed: int = 0                    # unconfirmed and confirmed by consent_confirmed
    consent_confirmed: str | None = None
    invalid: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    merged: list[Problem] = field(default_factory=list)  # which row's values a duplicate kept
    unknown_locales: int = 0
    cp1252_lines: list[int] = field(default_factory=list)
    dry_run: bool = False
    invalid_more: int = 0                 # invalid lines past the first MAX_KEPT, only counted
    warnings_more: int = 0

    @property
    def invalid_count(self) -> int:
        return len(self.invalid) + self.invalid_more

    @property
    def warning_count(self) -> int:
        return len(self.warnings) + self.warnings_more


def read_rows(path: Path, declared: SegmentsFile, summary: ImportSummary,
              source_locale: str = "nl") -> Iterator[Row]:
    """The valid rows of the file, streamed; CsvError at once if the file cannot be used."""
    encoding = Encoding()
    lines = open_lines(path, encoding)
    try:
        first = next(lines, "")
    except OSError as err:
        raise AudienceError(f"{path}: cannot read the file ({err.strerror}); check the path") from None
    if not first.strip():
        lines.close()
        raise CsvError(Problem(str(path), 1, None, "", "the file is empty; export it with a header row "
                               "that has an e-mail column"))
    summary.delimiter = sniff_delimiter(first)
    records = iter(Records(chain([first], lines), summary.delimiter))
    _, headers = next(records)
    layout = layout_of(headers, declared.columns)
    if "email" not in layout.columns:
        lines.close()
        found = ", ".join(repr(h) for h in headers) or "none"
        raise CsvError(Problem(str(path), 1, None, "", f"no email column (found: {found}); name the column "
                               "e-mail, email or e-mailadres. Nothing was imported."))
    summary.source_system = layout.kind
    reader = RowReader(path, layout, declared.fields, summary)
    return _valid_rows(path, reader.numbers_from(records, source_locale), reader, encoding, lines)


def _valid_rows(path: Path, records: Iterator[tuple[int, list[str]]], reader: RowReader,
                encoding: Encoding, lines: Iterator[str]) -> Iterator[Row]:
    import csv

    try:
        for line, values in records:
            if (row := reader.row(line, values)) is not None:
                yield row
    except csv.Error as err:
        raise CsvError(Problem(str(path), None, None, "", f"not readable as CSV: {err}")) from None
    finally:
        lines.close()  # type: ignore[attr-defined]
        _report_encoding(path, encoding, reader.summary)


def _report_encoding(path: Path, encoding: Encoding, summary: ImportSummary) -> None:
    """The encoding for the summary; in a mixed file, each line read as Windows-1252."""
    summary.encoding = encoding.name
    if not (encoding.mixed or (encoding.bom and encoding.cp1252_lines)):
        return
    summary.cp1252_lines = encoding.cp1252_numbers
    for number in encoding.cp1252_numbers:
        summary.warnings.append(Problem(str(path), number, None, "encoding", (
            "not valid UTF-8 like the rest of the file; read as Windows-1252 — check the accents "
            "on this line, or save the whole file as UTF-8")))
    if encoding.cp1252_lines > len(encoding.cp1252_numbers):
        summary.warnings.append(Problem(str(path), None, None, "encoding", (
            f"… and {encoding.cp1252_lines - len(encoding.cp1252_numbers)} more lines read as Windows-1252")))


def _chunks(rows: Iterator[Row]) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_csv(conn: Connection, path: Path, list_name: str, settings: "Settings", *,
               dry_run: bool = False, unconfirmed: bool = False,
               consent_confirmed: str | None = None) -> ImportSummary:
    """Import a CSV file into a list, chunk by chunk; a dry run writes nothing (one rolled-back transaction).

    `consent_confirmed` names where the consent of these people was confirmed (a paper
    form, a double opt-in elsewhere): only then does an unconfirmed address become subscribed.
    """
    path = Path(path)
    declared = load_file(settings)
    if list_name not in declared.lists:
        raise AudienceError(
            f"unknown list {list_name!r}; {settings.segments_file} declares "
            f"{', '.join(declared.lists) or 'no lists'}; add it under lists: first")
    if unconfirmed and consent_confirmed:
        raise AudienceError("--unconfirmed and --consent-confirmed contradict each other; give one")
    if consent_confirmed is not None and not consent_confirmed.strip():
        raise AudienceError("--consent-confirmed needs the source of the consent, e.g. "
                            "\"paper forms, gala 2018\"")
    summary = ImportSummary(file=path, list_name=list_name, dry_run=dry_run,
                            consent_confirmed=consent_confirmed)
    merge = Merge(conn, summary, f"import {_display(path, settings)}",
                  Consent.UNCONFIRMED if unconfirmed else Consent.SUBSCRIBED, consent_confirmed)
    with domains_checked_once(), merge.seen_table():
        rows = read_rows(path, declared, summary, settings.source_locale)
        if dry_run:
            _dry_run(conn, merge, rows)
        else:
            for chunk in _chunks(rows):
                with atomic(conn):
                    merge.chunk(chunk)
            with atomic(conn):
                merge.finish()
    return summary


class _DryRun(Exception):
    """Raised at the end of a dry run's transaction, so nothing it wrote stays."""


def _dry_run(conn: Connection, merge: Merge, rows: Iterator[Row]) -> None:
    try:
        with atomic(conn):
            for chunk in _chunks(rows):
                merge.chunk(chunk)
            merge.finish()
            raise _DryRun
    except _DryRun:
        pass


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
