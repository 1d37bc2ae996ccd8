"""Bulk suppression from another system: a file of addresses that must never be mailed.

One address a line, or a CSV file with an e-mail column (any delimiter, Dutch or
English header). Every address goes on the suppression list with the reason
given; a known subscriber's consent becomes that reason. Written in chunks, each
its own short transaction; suppressing twice changes nothing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, insert, select, update

from postbode.audience.addresses import domains_checked_once, email_hash, normalise, now
from postbode.audience.csvsource import Encoding, Records, open_lines, sniff_delimiter
from postbode.audience.importrows import map_headers
from postbode.audience.model import WITHDRAWN, SuppressionReason
from postbode.errors import AudienceError, Problem
from postbode.store import atomic, insert_ignore
from postbode.store.schema import audience_events, subscribers, suppressions

CHUNK = 1000
BULK_REASONS = (SuppressionReason.UNSUBSCRIBED, SuppressionReason.BOUNCED, SuppressionReason.COMPLAINED)


@dataclass
class SuppressSummary:
    """What a bulk suppression did."""

    file: Path
    reason: str
    addresses: int = 0
    added: int = 0
    already: int = 0
    subscribers_changed: int = 0
    invalid: list[Problem] = field(default_factory=list)


def _addresses(path: Path) -> Iterator[tuple[int, str]]:
    """(line, address) of every address in the file: a CSV's e-mail column, or each line."""
    lines = open_lines(path, Encoding())
    first = next(lines, "")
    if "@" in first:  # no header: one address a line (the cell with an @ of a header-less CSV)
        for number, text in enumerate(chain([first], lines), 1):
            cells = [c.strip().strip('"') for c in re.split(r"[;,\t]", text)]
            if any(cells):
                yield number, next((c for c in cells if "@" in c), text.strip())
        return
    delimiter = sniff_delimiter(first)
    header = next(iter(Records(iter([first]), delimiter)), (1, []))[1]
    column = map_headers(header).get("email")
    if column is None:
        raise AudienceError(f"{path}:1: no email column and no address on the first line; give one "
                            "address a line, or a CSV file with an e-mail column")
    for line, values in Records(lines, delimiter):
        if column < len(values) and values[column].strip():
            yield line + 1, values[column].strip()


def suppress_file(conn: Connection, path: Path, reason: str, source: str) -> SuppressSummary:
    """Put every address in the file on the suppression list with `reason`."""
    if reason not in [str(r) for r in BULK_REASONS]:
        raise AudienceError(f"unknown reason {reason!r}; use one of {', '.join(BULK_REASONS)}")
    path = Path(path)
    if not path.is_file():
        raise AudienceError(f"{path}: no such file; check the path")
    summary = SuppressSummary(file=path, reason=reason)
    chunk: list[str] = []
    with domains_checked_once():
        for line, text in _addresses(path):
            summary.addresses += 1
            try:
                chunk.append(normalise(text)[1])
            except AudienceError as err:
                summary.invalid.append(Problem(str(path), line, None, "email", f"{err}; line skipped"))
            if len(chunk) >= CHUNK:
                _write(conn, chunk, reason, source, summary)
                chunk = []
    _write(conn, chunk, reason, source, summary)
    return summary


def _write(conn: Connection, keys: list[str], reason: str, source: str, summary: SuppressSummary) -> None:
    if not keys:
        return
    at = now()
    hashes = {email_hash(k): k for k in dict.fromkeys(keys)}
    with atomic(conn):
        known = set(conn.execute(select(suppressions.c.email_hash)
                                 .where(suppressions.c.email_hash.in_(list(hashes)))).scalars())
        added = [h for h in hashes if h not in known]
        summary.already += len(hashes) - len(added)
        summary.added += len(added)
        if added:
            conn.execute(insert_ignore(conn, suppressions), [
                {"email_hash": h, "reason": reason, "source": source, "created": at} for h in added])
            conn.execute(insert(audience_events), [
                {"at": at, "kind": reason, "email_hash": h, "source": source, "detail": {"bulk": True}}
                for h in added])
        if reason in WITHDRAWN:
            result = conn.execute(update(subscribers).where(
                subscribers.c.email_key.in_(list(hashes.values())),
                subscribers.c.consent.not_in([str(c) for c in WITHDRAWN]))
                .values(consent=reason, consent_at=at, consent_source=source))
            summary.subscribers_changed += result.rowcount

