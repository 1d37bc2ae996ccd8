"""The rows of an import file: each record checked and turned into what the merge writes.

Headers are matched in Dutch and English; Mailchimp's and listmonk's exports are
recognised by their header rows. Every problem is kept with its line: an invalid
address, a name with control characters or longer than 200 characters (the row
is skipped), an unknown language, status or number (reported, the value left out).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain, islice
from operator import itemgetter
from pathlib import Path
from typing import Iterator

from postbode.audience.addresses import normalise
from postbode.audience.cells import NumberStyle, clean_tags, detect_style, language, read_number
from postbode.audience.segments import FieldType, column_key, convert_value
from postbode.audience.statuses import FileStatus, known_words, status_of, stored_time, technical_columns
from postbode.errors import AudienceError, Problem

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
    "status": ("status", "consent", "toestemming", "abonnementsstatus", "subscriptionstatus"),
    "attributes": ("attributes", "attributen"),
}
FORMAL = {"u", "formeel", "formal", "geachte", "dhr", "dhr.", "mevr", "mevr.", "de heer", "mevrouw", "sie", "vous"}
INFORMAL = {"je", "jij", "informeel", "informal", "beste", "hoi", "hallo", "du", "tu"}
# Columns of postbode's own export that the database, not a file, decides.
IGNORED = ("lists",)
# Longest name kept: longer is not a name (and would not fit a mail header line).
MAX_NAME = 200
# Longest other value kept (a field, a tag list): longer is reported and left out.
MAX_VALUE = 1000
# Any control character (C0, DEL, C1): CR/LF/NUL would break headers, ESC the terminal.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Problems kept with their line for the summary; past that they are only counted.
MAX_KEPT = 1000
# Records read before the first is used, to decide the number notation.
NUMBER_SAMPLE = 1000


@dataclass(slots=True)
class Row:
    """One valid record of the file."""

    email: str
    key: str
    line: int
    status: FileStatus
    at: str | None = None            # when the status was set, as the file says
    name: str | None = None
    formality: str | None = None
    locale: str | None = None
    attributes: dict[str, object] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)


@dataclass
class Layout:
    """What the header row says: the column of each role, the source system and its status."""

    columns: dict[str, int]
    kind: str = ""
    status: FileStatus | None = None
    time_column: int | None = None


def _attribute_name(header: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", header.strip().lower()).strip("_") or "column"


def map_headers(headers: list[str], field_columns: dict[str, str] | None = None,
                skip: set[str] | frozenset[str] = frozenset()) -> dict[str, int]:
    """Column index per known role (email, name, …) and `attr:<name>` for every other column.

    `field_columns` maps extra header aliases to attribute fields (segments.yaml `fields:`);
    `skip` holds the header keys of a source system's technical columns, which are not kept.
    """
    lookup = {alias: role for role, aliases in ALIASES.items() for alias in aliases}
    lookup.update({alias: f"attr:{name}" for alias, name in (field_columns or {}).items()})
    mapping: dict[str, int] = {}
    for index, header in enumerate(headers):
        key = column_key(header)
        role = lookup.get(key)
        if role is None:
            if not header.strip() or key in IGNORED or key in skip:
                continue
            role = f"attr:{_attribute_name(header)}"
        mapping.setdefault(role, index)
    return mapping


class RowReader:
    """Turns CSV records into rows, collecting invalid lines and warnings in the summary."""

    def __init__(self, path: Path, layout: Layout, fields: dict[str, FieldType], summary):
        self.path = str(path)
        self.layout = layout
        self.columns = layout.columns
        self.fields = fields
        self.summary = summary
        self.attrs = [role for role in layout.columns if role.startswith("attr:")]
        self.style: NumberStyle | None = None
        # Every used cell of a record in one C call: the roles, and their columns.
        self.roles = list(layout.columns)
        indices = list(layout.columns.values())
        self.width = max(indices) + 1
        self.pick = (lambda values: (values[indices[0]],)) if len(indices) == 1 else itemgetter(*indices)

    def cells(self, values: list[str], multiline: bool) -> dict[str, str]:
        """The record's cells by role, stripped (and with Windows line ends made plain)."""
        if len(values) < self.width:
            values = values + [""] * (self.width - len(values))
        picked = [v.strip() for v in self.pick(values)]
        if multiline:
            picked = [v.replace("\r\n", "\n") for v in picked]
        return dict(zip(self.roles, picked))

    def numbers_from(self, records: Iterator[tuple[int, list[str]]], source_locale: str
                     ) -> Iterator[tuple[int, list[str]]]:
        """The records, after deciding the notation of number columns from the first ones."""
        numeric = [self.columns[role] for role in self.attrs if self.fields.get(role[5:]) == "number"]
        if not numeric:
            return records
        head = list(islice(records, NUMBER_SAMPLE))
        values = (r[i] for _, r in head for i in numeric if i < len(r))
        self.style = detect_style(values, source_locale)
        self.summary.number_style = self.style.label()
        return chain(head, records)

    def warn(self, line: int, column: str, message: str) -> None:
        if len(self.summary.warnings) < MAX_KEPT:
            self.summary.warnings.append(Problem(self.path, line, None, column, message))
        else:  # a huge broken file must not fill the memory with its problems
            self.summary.warnings_more += 1

    def skip(self, line: int, column: str, message: str) -> None:
        if len(self.summary.invalid) < MAX_KEPT:
            self.summary.invalid.append(Problem(self.path, line, None, column, f"{message}; line skipped"))
        else:
            self.summary.invalid_more += 1

    def row(self, line: int, values: list[str]) -> Row | None:
        """The row of one record, or None (blank, or invalid and recorded as such)."""
        joined = "".join(values)
        if not joined.strip():
            return None  # blank lines and Excel's trailing ;;; rows
        self.summary.rows += 1
        cells = self.cells(values, "\r" in joined)
        raw = cells.get("email", "")
        if not raw:
            self.skip(line, "email", "no email address")
            return None
        try:
            email, key = normalise(raw)
        except AudienceError as err:
            self.skip(line, "email", str(err))
            return None
        status = self.status(line, cells)
        name = self.name(line, cells)
        if status is None or name is False:
            return None
        row = Row(email=email, key=key, line=line, status=status, name=name or None)
        if self.layout.time_column is not None and self.layout.time_column < len(values):
            row.at = stored_time(values[self.layout.time_column])
        self.fill(row, cells)
        return row

    def status(self, line: int, cells: dict[str, str]) -> FileStatus | None:
        """The row's status: its status column, else what the file is (a Mailchimp export), else subscribed."""
        word = cells.get("status")
        if not word:
            return self.layout.status or FileStatus.SUBSCRIBED
        status = status_of(word)
        if status is None:
            self.skip(line, "status", f"unknown status {word!r} (known: {known_words()}); "
                      "nobody is subscribed on a status postbode cannot read")
        return status

    def name(self, line: int, cells: dict[str, str]) -> str | bool:
        """The name (joined from first name, infix, last name if there is no name column); False if refused."""
        name = cells.get("name")
        if not name:
            parts = (cells.get(r) for r in ("first_name", "infix", "last_name"))
            name = " ".join(p for p in parts if p)
        if CONTROL.search(name):
            shown = CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), name)
            self.skip(line, "name", f"{shown!r} contains control characters (line breaks, NUL, escape "
                      "codes); remove them in the file")
            return False
        if len(name) > MAX_NAME:
            self.skip(line, "name", f"the name is {len(name)} characters long, more than {MAX_NAME}; "
                      "shorten it in the file")
            return False
        return name

    def fill(self, row: Row, cells: dict[str, str]) -> None:
        if locale := cells.get("locale"):
            self.locale(row, locale)
        if formality := cells.get("formality", "").lower().rstrip(":"):
            row.formality = ("formal" if formality in FORMAL else "informal" if formality in INFORMAL else None)
            if row.formality is None:
                self.warn(row.line, "formality", f"{formality!r} is neither formal (u) nor informal (je); left empty")
        if tags := cells.get("tags"):
            row.tags = clean_tags(tags) if len(tags) <= MAX_VALUE else set()
            if len(tags) > MAX_VALUE:
                self.warn(row.line, "tags", f"{len(tags)} characters, more than {MAX_VALUE}; left out")
        for role in self.attrs:
            if value := cells[role]:
                if len(value) > MAX_VALUE:
                    self.warn(row.line, role[5:], f"{len(value)} characters, more than {MAX_VALUE}; left out")
                    continue
                self.attribute(row, role[5:], value)
        if attributes := cells.get("attributes"):
            self.json_attributes(row, attributes)

    def locale(self, row: Row, value: str) -> None:
        row.locale = language(value)
        if row.locale is None:
            self.summary.unknown_locales += 1
            self.warn(row.line, "locale", f"unknown language {value!r} (a code such as nl or nl-BE, "
                      "or a name such as Nederlands or Dutch); the default locale is used")

    def attribute(self, row: Row, name: str, value: object) -> None:
        kind = self.fields.get(name, "text")
        if kind == "text" and isinstance(value, str):  # most columns: kept as written
            row.attributes[name] = value
            return
        if kind == "number" and isinstance(value, str):
            converted = self.number(row.line, name, value)
            if converted is not None:
                row.attributes[name] = converted
            return
        converted = convert_value(kind, value)
        if converted is None:
            self.warn(row.line, name, f"{value!r} is not a {kind}; left out")
        else:
            row.attributes[name] = converted

    def number(self, line: int, name: str, value: str) -> int | float | None:
        number = read_number(value, self.style.locale if self.style else "en")
        if isinstance(number, str):
            self.warn(line, name, f"{number}; left out")
            return None
        return int(number) if number == number.to_integral_value() else float(number)

    def json_attributes(self, row: Row, text: str) -> None:
        """listmonk's `attributes` column: a JSON object whose `lang` is the locale, the rest fields."""
        try:
            data = json.loads(text, parse_float=Decimal)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self.warn(row.line, "attributes", "not a JSON object; left out")
            return
        for key, value in data.items():
            if key in ("lang", "language", "locale", "taal") and isinstance(value, str):
                self.locale(row, value)
            elif isinstance(value, Decimal):
                row.attributes[_attribute_name(key)] = int(value) if value == value.to_integral_value() \
                    else float(value)
            else:
                self.attribute(row, _attribute_name(key), value)


def layout_of(headers: list[str], field_columns: dict[str, str]) -> Layout:
    """The columns of a file from its header row, knowing Mailchimp's and listmonk's exports."""
    from postbode.audience.statuses import file_kind

    keys = {column_key(h) for h in headers}
    kind, status, time_key = file_kind(keys)
    columns = map_headers(headers, field_columns, technical_columns(kind))
    time_column = next((i for i, h in enumerate(headers) if column_key(h) == time_key), None)
    return Layout(columns, kind, status, time_column)
