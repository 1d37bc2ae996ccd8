"""People's own rights: everything held on one person (GDPR art. 15) and the proof of consent.

`person_data` is what "download my data" on the preferences page and
`subscribers show` give; `consent_proof` is what `subscribers consent` shows.
Erasure (art. 17) is `audience.forget`.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, func, select

from postbode.audience.addresses import address_key, email_hash
from postbode.store.schema import (audience_events, campaigns, consent_records, journal, memberships,
                                   signups, subscribers)

SUBSCRIBER_FIELDS = ("email", "name", "locale", "formality", "attributes", "tags", "source", "created",
                     "consent", "consent_at", "consent_source")


def _time(value: float | None) -> str | None:
    return datetime.fromtimestamp(value, timezone.utc).isoformat(timespec="seconds") if value else None


def person_data(conn: Connection, email: str) -> dict[str, Any] | None:
    """Every row held on this address, as plain JSON-ready data; None when nothing is held."""
    key = address_key(email)
    row = conn.execute(select(subscribers).where(subscribers.c.email_key == key)).mappings().first()
    mails = journal_rows(conn, key)
    events = _events(conn, email_hash(key))
    if row is None and not mails and not events:
        return None
    data: dict[str, Any] = {"subscriber": None, "lists": [], "consent": [], "signups": []}
    if row is not None:
        data["subscriber"] = {name: row[name] for name in SUBSCRIBER_FIELDS}
        data["lists"] = [dict(r) for r in conn.execute(
            select(memberships.c.list, memberships.c.added, memberships.c.source)
            .where(memberships.c.subscriber_id == row["id"]).order_by(memberships.c.list)).mappings()]
        data["consent"] = consent_proof(conn, email)
        data["signups"] = [{"at": _time(r["created_at"]), "lists": r["lists"], "source": r["source"],
                            "confirmed_at": _time(r["used_at"])}
                           for r in conn.execute(select(signups).where(
                               signups.c.subscriber_id == row["id"]).order_by(signups.c.id)).mappings()]
    data["events"] = events
    data["mails"] = mails
    return data


def consent_proof(conn: Connection, email: str) -> list[dict[str, Any]]:
    """Each recorded consent of this address: when, where, which text (and version), language."""
    query = (select(consent_records).join(subscribers, subscribers.c.id == consent_records.c.subscriber_id)
             .where(subscribers.c.email_key == address_key(email)).order_by(consent_records.c.at))
    return [{"at": _time(r["at"]), "source": r["source"], "lists": r["lists"],
             "consent_version": r["consent_version"], "consent_text": r["consent_text"],
             "locale": r["locale"], "ip_hash": r["ip_hash"]}
            for r in conn.execute(query).mappings()]


def journal_rows(conn: Connection, key: str) -> list[dict[str, Any]]:
    """Every mail sent (or meant) to this address: newsletter, campaign, time and state."""
    query = (select(journal, campaigns.c.newsletter_id, campaigns.c.kind)
             .join(campaigns, campaigns.c.id == journal.c.campaign_id)
             .where(func.lower(journal.c.email) == key).order_by(journal.c.id))
    return [{"newsletter": r["newsletter_id"], "kind": r["kind"], "campaign": r["campaign_id"],
             "state": r["state"], "locale": r["locale"], "segment": r["segment"],
             "created_at": _time(r["created_at"]), "sent_at": _time(r["sent_at"]),
             "message_id": r["message_id"]}
            for r in conn.execute(query).mappings()]


def _events(conn: Connection, hash_: str) -> list[dict[str, Any]]:
    query = (select(audience_events).where(audience_events.c.email_hash == hash_)
             .order_by(audience_events.c.id))
    return [{"at": r["at"], "kind": r["kind"], "source": r["source"], "detail": r["detail"]}
            for r in conn.execute(query).mappings()]
