"""Personal fields: `{field}` in newsletter text, filled per recipient with their own value.

A writer types `{total_given}` or `{voornaam|lezer}` (with a fallback for readers
without that value). The names allowed are the reader's name parts and the
attribute `fields:` of segments.yaml. Render turns each placeholder into a
marker (`markers.field(n)`) and keeps the table of placeholders; message fills
the markers per recipient with the value formatted for the variant's locale
(Babel: money, numbers, dates), HTML-escaped like every marker value. Nothing is
re-rendered per recipient.
"""
from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

from babel import Locale, dates, numbers

from postbode import markers
from postbode.errors import ContentError, Problem
from postbode.audience.segments import load_file

if TYPE_CHECKING:
    from postbode.audience import Recipient
    from postbode.config import Settings
    from postbode.content import Newsletter

PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)(?:\|([^{}\n]*))?\}")
# Text fields written in Markdown: their markers are escaped so Markdown leaves the underscores.
MARKDOWN_FIELD = re.compile(r"^(intro|sign_off|acknowledgement\.text|sections\.[^.]+\.body)$")
# Fields that are one line of a header, not part of the body: no per-recipient value there.
HEADER_FIELDS = ("subject",)
# The reader's name, by its English and Dutch names (the importer joins first and last name).
NAME_FIELDS = {"first_name": "first_name", "voornaam": "first_name", "last_name": "last_name",
               "achternaam": "last_name", "name": "name", "naam": "name"}


@dataclass(frozen=True)
class Placeholder:
    """One `{field}` or `{field|fallback}` as written in the text."""

    field: str
    fallback: str | None = None


@dataclass(frozen=True)
class FieldSpec:
    """How one personal field is read and shown: text, date, number, money or a name part."""

    name: str
    kind: str
    currency: str | None = None


def placeholders(text: str) -> list[tuple[Placeholder, int]]:
    """Every placeholder of a text with its offset."""
    return [(Placeholder(m.group(1), m.group(2)), m.start()) for m in PLACEHOLDER.finditer(text)]


def available(settings: "Settings") -> dict[str, FieldSpec]:
    """The personal fields a newsletter may use: name parts and segments.yaml's `fields:`."""
    path = Path(settings.segments_file)
    names = {n: FieldSpec(n, part) for n, part in NAME_FIELDS.items()}
    if not path.is_file():
        return names
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _DECLARED:
        file = load_file(settings)
        _DECLARED[key] = {name: FieldSpec(name, "money" if name in file.currencies else kind,
                                          file.currencies.get(name))
                          for name, kind in file.fields.items()}
    return {**names, **_DECLARED[key]}


# segments.yaml's fields by (path, modification time): read once per change of the file
_DECLARED: dict[tuple[str, int], dict[str, FieldSpec]] = {}


def check(newsletter: "Newsletter", settings: "Settings") -> None:
    """Refuse unknown personal fields and fields in the subject, each with its file:line."""
    known = available(settings)
    problems = []
    for path, text in newsletter.text_fields():
        if newsletter.is_literal(path):
            continue
        for placeholder, offset in placeholders(text):
            message = _problem(placeholder, path, known)
            if message:
                line = newsletter.text_lines.get(path) or newsletter.field_lines.get(path)
                line = line + text[:offset].count("\n") if line else None
                problems.append(Problem(str(newsletter.source_path), line, None,
                                        newsletter.error_path(path), message))
    if problems:
        raise ContentError(problems, summary=f"{newsletter.source_path}: {len(problems)} personal "
                                             "field problem(s) — nothing was written")


def _problem(placeholder: Placeholder, path: str, known: Mapping[str, FieldSpec]) -> str | None:
    name = placeholder.field
    if path in HEADER_FIELDS:
        return (f"{{{name}}}: personal fields cannot go in the subject (it is one line for every "
                "reader); use it in the intro or a section")
    if name in known:
        return None
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f"did you mean {{{close[0]}}}? " if close else ""
    return (f"unknown personal field {{{name}}} — {hint}known: {', '.join(sorted(known))} "
            "(declare others under fields: in segments.yaml)")


def used(newsletter: "Newsletter") -> list[str]:
    """The personal fields a newsletter uses, in order of first use."""
    names = [p.field for path, text in newsletter.text_fields() if not newsletter.is_literal(path)
             for p, _ in placeholders(text)]
    return list(dict.fromkeys(names))


def mark(newsletter: "Newsletter") -> tuple["Newsletter", tuple[Placeholder, ...]]:
    """The newsletter with each placeholder replaced by its marker, and the marker table."""
    table: dict[Placeholder, int] = {}
    texts = {}
    for path, text in newsletter.text_fields():
        if newsletter.is_literal(path) or not PLACEHOLDER.search(text):
            continue
        escape = bool(MARKDOWN_FIELD.match(path))
        texts[path] = PLACEHOLDER.sub(lambda m: _marker(table, Placeholder(m.group(1), m.group(2)),
                                                        escape), text)
    return (newsletter.with_texts(texts) if texts else newsletter), tuple(table)


def _marker(table: dict[Placeholder, int], placeholder: Placeholder, escape: bool) -> str:
    marker = markers.field(table.setdefault(placeholder, len(table)))
    return marker.replace("_", "\\_") if escape else marker


def value(placeholder: Placeholder, spec: FieldSpec | None, recipient: "Recipient", locale: str) -> str:
    """The recipient's value for a placeholder, formatted for the locale; else its fallback."""
    raw = _raw(spec, recipient) if spec is not None else None
    shown = _format(spec, raw, locale) if raw not in (None, "") else None
    return shown if shown else (placeholder.fallback or "")


def _raw(spec: FieldSpec, recipient: "Recipient") -> object:
    if spec.kind in ("first_name", "last_name", "name"):
        words = (recipient.name or "").split()
        parts = {"first_name": words[:1], "last_name": words[1:], "name": words}[spec.kind]
        return " ".join(parts)
    return recipient.fields.get(spec.name)


def _format(spec: FieldSpec, raw: object, locale: str) -> str | None:
    """Babel's formatting of a value for the locale; None when the value is not of the field's kind."""
    where = _locale(locale)
    try:
        if spec.kind == "money":
            return numbers.format_currency(Decimal(str(raw)), spec.currency, locale=where)
        if spec.kind == "number":
            return numbers.format_decimal(Decimal(str(raw)), locale=where)
        if spec.kind == "date":
            return dates.format_date(dt.date.fromisoformat(str(raw)), "long", locale=where)
    except (InvalidOperation, ValueError):
        return None
    return str(raw)


@lru_cache(maxsize=64)
def _locale(locale: str) -> Locale:
    return Locale.parse(locale)


def fallback_counts(newsletter: "Newsletter", recipients: Iterable["Recipient"],
                    settings: "Settings") -> dict[str, int]:
    """Per personal field the newsletter uses: how many recipients have no value (get the fallback)."""
    names = used(newsletter)
    if not names:
        return {}
    specs = available(settings)
    counts = dict.fromkeys(names, 0)
    for recipient in recipients:
        for name in names:
            spec = specs.get(name)
            if spec is None or _raw(spec, recipient) in (None, ""):
                counts[name] += 1
    return counts
