"""A subscriber's own settings and lists, as the preferences page reads and changes them."""
from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select, update

from postbode.audience.addresses import address_key, email_hash, now
from postbode.audience.consent import find_subscriber, log_event
from postbode.audience.model import Consent, Formality, Subscriber
from postbode.store import atomic, insert_ignore
from postbode.store.schema import lists as lists_table
from postbode.store.schema import memberships, subscribers


def get_subscriber(conn: Connection, email: str) -> Subscriber | None:
    """The subscriber with this address and their lists, or None."""
    row = find_subscriber(conn, email)
    if row is None:
        return None
    query = (select(memberships.c.list).where(memberships.c.subscriber_id == row["id"])
             .order_by(memberships.c.list))
    names = tuple(conn.execute(query).scalars())
    return Subscriber(id=row["id"], email=row["email"], name=row["name"], locale=row["locale"],
                      formality=row["formality"], consent=Consent(row["consent"]), lists=names)


def list_names(conn: Connection) -> list[str]:
    """Every list a subscriber can be on."""
    return list(conn.execute(select(lists_table.c.name).order_by(lists_table.c.name)).scalars())


def update_preferences(conn: Connection, email: str, *, locale: str | None = None,
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
                conn.execute(update(subscribers).where(subscribers.c.id == subscriber.id)
                             .values({column: value}))
                log_event(conn, f"{column}_changed", hash_, source, old=old, new=value)
                changed.append(column)
        if lists is not None and set(lists) != set(subscriber.lists):
            _set_lists(conn, subscriber, set(lists), source)
            log_event(conn, "lists_changed", hash_, source, old=list(subscriber.lists), new=sorted(lists))
            changed.append("lists")
    return changed


def _set_lists(conn: Connection, subscriber: Subscriber, wanted: set[str], source: str) -> None:
    gone = set(subscriber.lists) - wanted
    if gone:
        conn.execute(delete(memberships).where(memberships.c.subscriber_id == subscriber.id,
                                               memberships.c.list.in_(sorted(gone))))
    added = sorted(wanted - set(subscriber.lists))
    for name in added:  # a self-service list nobody was imported into yet
        conn.execute(insert_ignore(conn, lists_table).values(name=name, created=now()))
    if added:
        conn.execute(insert(memberships), [
            {"subscriber_id": subscriber.id, "list": name, "added": now(), "source": source}
            for name in added])
