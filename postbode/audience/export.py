"""Listing and export: every subscriber (any consent state), or a send's recipients, as CSV."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from pathlib import Path

from sqlalchemy import Connection, RowMapping, select

from postbode.audience.resolve import BATCH_SIZE, resolve
from postbode.audience.segments import load_file
from postbode.files import write_csv
from postbode.store.schema import memberships, subscribers

if TYPE_CHECKING:
    from postbode.config import Settings


def iter_subscribers(conn: Connection) -> Iterator[RowMapping]:
    """Every subscriber with their lists (`lists`: names joined by ;), any consent state, in id order."""
    last_id = 0
    while True:
        rows = conn.execute(select(subscribers).where(subscribers.c.id > last_id)
                            .order_by(subscribers.c.id).limit(BATCH_SIZE)).mappings().all()
        if not rows:
            return
        names = _lists_of(conn, [r["id"] for r in rows])
        for row in rows:
            yield {**row, "lists": ";".join(names.get(row["id"], ())) or None}
        if len(rows) < BATCH_SIZE:
            return
        last_id = rows[-1]["id"]


def _lists_of(conn: Connection, ids: list[int]) -> dict[int, list[str]]:
    query = (select(memberships.c.subscriber_id, memberships.c.list)
             .where(memberships.c.subscriber_id.in_(ids)).order_by(memberships.c.list))
    found: dict[int, list[str]] = {}
    for subscriber_id, name in conn.execute(query):
        found.setdefault(subscriber_id, []).append(name)
    return found


def export(conn: Connection, path: Path, settings: "Settings", segments: list[str] | None = None) -> int:
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


def _export_row(row: RowMapping, fields: list[str]) -> list[object]:
    attributes = row["attributes"] or {}
    return [row["email"], row["name"] or "", row["locale"] or "", row["formality"] or "",
            row["consent"], row["lists"] or "", ";".join(row["tags"] or ()),
            *(attributes.get(f, "") for f in fields)]
