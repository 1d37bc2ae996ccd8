"""One mail that came back, from the receiver or a mailbox: parse, match, decide, apply, once.

Entry point: `process_message(conn, settings, data, envelope_to=(), source=)`. A
bounce is matched to the journal row of the mail it is about through our VERP
address (signed, so it cannot be made up), else through the original mail's
Message-ID, else (DSNs only) through an address postbode sent to. Whatever cannot
be matched is recorded and left alone: it is never applied to anyone.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from email.message import Message
from enum import StrEnum
from typing import Iterable

from postbode import audience
from postbode.bounces import parse, policy, store, verp
from postbode.bounces.parse import Failure, Kind, Report
from postbode.bounces.policy import BounceClass
from postbode.bounces.store import BounceEvent, JournalRow
from postbode.config import Settings
from postbode.store import Connection

log = logging.getLogger(__name__)
MAX_DIAGNOSTIC = 500


class Outcome(StrEnum):
    APPLIED = "applied"          # a bounce or complaint put on its journal row
    IGNORED = "ignored"          # an auto-reply, a delay warning, a success report
    UNMATCHED = "unmatched"      # a bounce about no mail postbode can name
    NOT_BOUNCE = "not a bounce"  # an ordinary mail


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    kind: Kind
    message_key: str
    duplicate: bool = False      # read before: nothing was done this time
    actions: tuple[str, ...] = ()   # apply_event's answers, one per journal row

    @property
    def is_processed_bounce(self) -> bool:
        """A bounce or complaint that was applied (now or earlier): it may leave the INBOX."""
        return self.outcome is Outcome.APPLIED


def process_message(conn: Connection, settings: Settings, data: bytes | Message, *,
                    envelope_to: Iterable[str] = (), source: str = "receiver",
                    now: float | None = None) -> Result:
    """Read one mail and act on it once; a mail read before changes nothing."""
    report = parse.parse(data)
    now = time.time() if now is None else now
    with audience.atomic(conn):
        earlier = store.earlier_outcome(conn, report.message_key)
        if earlier is not None:
            return Result(Outcome(earlier), report.kind, report.message_key, duplicate=True)
        result = _act(conn, settings, report, tuple(envelope_to), now)
        store.remember(conn, report.message_key, now, source, report.kind, result.outcome)
    log.info("%s %s: %s %s", source, report.message_key[:60], report.kind, result.outcome)
    return result


def _act(conn: Connection, settings: Settings, report: Report,
         envelope_to: tuple[str, ...], now: float) -> Result:
    if report.kind is Kind.OTHER:
        return Result(Outcome.NOT_BOUNCE, report.kind, report.message_key)
    if report.kind is Kind.AUTO_REPLY:
        return Result(Outcome.IGNORED, report.kind, report.message_key)
    failures = [f for f in report.failures if f.action in ("failed", "complained")]
    if not failures:          # "delayed", "delivered", "relayed": nothing failed (yet)
        return Result(Outcome.IGNORED, report.kind, report.message_key)
    matches = _match(conn, settings, report, envelope_to, failures)
    if not matches:
        log.warning("%s: a %s about no mail postbode sent; left alone", report.message_key[:60],
                    report.kind)
        return Result(Outcome.UNMATCHED, report.kind, report.message_key)
    actions = tuple(_apply(conn, settings, report, row, failure, now) for row, failure in matches)
    return Result(Outcome.APPLIED, report.kind, report.message_key, actions=actions)


def _match(conn: Connection, settings: Settings, report: Report,
           envelope_to: tuple[str, ...], failures: list[Failure]) -> list[tuple[JournalRow, Failure]]:
    """(journal row, failure) pairs: by VERP, by the original Message-ID, else by address."""
    row = _row_by_verp(conn, settings, envelope_to + report.addresses)
    if row is None and report.original_message_id:
        row = store.row_by_message_id(conn, report.original_message_id)
    if row is not None:
        # one mail, one recipient: the failure about its address, else the first one
        same = [f for f in failures if f.recipient and f.recipient.lower() == row.email.lower()]
        return [(row, (same or failures)[0])]
    if report.kind is not Kind.DSN:
        return []
    pairs = []
    for failure in failures:
        found = store.row_by_address(conn, failure.recipient) if failure.recipient else None
        if found is not None:
            pairs.append((found, failure))
    return pairs


def _row_by_verp(conn: Connection, settings: Settings,
                 addresses: Iterable[str]) -> JournalRow | None:
    for address in addresses:
        opaque = verp.message_key(settings, address)
        if opaque:
            row = store.row_by_opaque(conn, opaque)
            if row is not None:
                return row
    return None


def _apply(conn: Connection, settings: Settings, report: Report, row: JournalRow,
           failure: Failure, now: float) -> str:
    """Record the event, decide by policy, and apply it to the address and the journal row."""
    from postbode.web.webhooks import Event, apply_event  # Flask loads only when needed

    klass = BounceClass.COMPLAINT if report.kind is Kind.COMPLAINT else \
        policy.classify(failure.status or "5.0.0")
    # journal rows hold normalised addresses: their key is the lower-cased form
    email_hash = audience.email_hash(row.email.strip().lower())
    soft = 0
    if klass is BounceClass.SOFT:
        soft = store.soft_count(conn, email_hash, policy.soft_window(settings, now)) + 1
    action = policy.action_for(klass, soft, settings)
    diagnostic = failure.diagnostic[:MAX_DIAGNOSTIC]
    store.add_event(conn, BounceEvent(now, report.message_key, row, email_hash, klass,
                                      failure.status, diagnostic, action))
    kind = _describe(klass, failure, soft, settings)
    event = Event(provider="bounces", event_id=f"{report.message_key}#{row.id}", email=row.email,
                  action=action, kind=kind, code=failure.smtp_code,
                  text=f"{kind}: {diagnostic}".strip(": "), message_id=row.message_id,
                  state="complained" if klass is BounceClass.COMPLAINT else "bounced",
                  status=failure.status or None, diagnostic=diagnostic or None)
    return apply_event(conn, event)


def _describe(klass: BounceClass, failure: Failure, soft: int, settings: Settings) -> str:
    if klass is BounceClass.COMPLAINT:
        return "complaint (abuse report)"
    if klass is BounceClass.SOFT:
        return (f"soft bounce {failure.status} ({soft} of {settings.bounce_soft_limit} in "
                f"{settings.bounce_soft_days} days)")
    return f"{klass} bounce {failure.status}" if klass is BounceClass.HARD else \
        f"blocked {failure.status}"
