"""What the preferences page reads and changes about one subscriber (audience tables, events logged)."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from postbode import audience


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str | None
    locale: str | None
    formality: str | None
    status: str
    lists: tuple[str, ...]


def get_subscriber(conn: sqlite3.Connection, email: str) -> Subscriber | None:
    """The subscriber with this address (compared as audience compares), or None."""
    row = audience.find_subscriber(conn, email)
    if row is None:
        return None
    lists = tuple(r[0] for r in conn.execute(
        "SELECT list FROM memberships WHERE subscriber_id = ? ORDER BY list", (row["id"],)))
    return Subscriber(id=row["id"], email=row["email"], name=row["name"], locale=row["locale"],
                      formality=row["formality"], status=row["consent"], lists=lists)


def list_names(conn: sqlite3.Connection) -> list[str]:
    """Every list a subscriber can be on."""
    return [r[0] for r in conn.execute("SELECT name FROM lists ORDER BY name")]


def update_preferences(conn: sqlite3.Connection, email: str, *, locale: str | None = None,
                       formality: str | None = None, lists: list[str] | None = None,
                       source: str) -> list[str]:
    """Apply the changes that differ from what is stored; one event per changed field. Returns those fields."""
    subscriber = get_subscriber(conn, email)
    if subscriber is None:
        return []
    hash_ = audience.email_hash(audience.address_key(email))
    changed: list[str] = []
    with audience.atomic(conn):
        for column, value in (("locale", locale), ("formality", formality)):
            old = getattr(subscriber, column)
            if value is not None and value != old:
                conn.execute(f"UPDATE subscribers SET {column} = ? WHERE id = ?", (value, subscriber.id))
                audience.log_event(conn, f"{column}_changed", hash_, source, old=old, new=value)
                changed.append(column)
        if lists is not None and set(lists) != set(subscriber.lists):
            _set_lists(conn, subscriber, set(lists), source)
            audience.log_event(conn, "lists_changed", hash_, source,
                               old=list(subscriber.lists), new=sorted(lists))
            changed.append("lists")
    return changed


def _set_lists(conn: sqlite3.Connection, subscriber: Subscriber, wanted: set[str], source: str) -> None:
    for name in set(subscriber.lists) - wanted:
        conn.execute("DELETE FROM memberships WHERE subscriber_id = ? AND list = ?", (subscriber.id, name))
    for name in wanted - set(subscriber.lists):
        conn.execute("INSERT INTO memberships(subscriber_id, list, added, source) VALUES (?, ?, ?, ?)",
                     (subscriber.id, name, audience.now(), source))
