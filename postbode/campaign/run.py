"""The campaign's entry points: plan, run, dry_run and send_test, over one shared session."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from typing import Callable, Sequence

from postbode import audience, journal, message, store
from postbode.audience import Recipient
from postbode.build import VariantKey
from postbode.campaign import guard
from postbode.campaign.fingerprint import Fingerprint, fingerprint, refuse_if_changed
from postbode.campaign.pacing import Gate, Policy
from postbode.campaign.planning import Plan, leave_out, make_plan
from postbode.campaign.sender import Job, Progress, send_all
from postbode.campaign.session import Session, open_session
from postbode.campaign.states import CampaignState
from postbode.campaign.variants import (Prepared, audience_keys, chosen_keys, prepare_variants,
                                       variant_key)
from postbode.config import Settings
from postbode.errors import CampaignError, PostbodeError
from postbode.store.schema import subscribers
from postbode.transports import SendResult, describe, open_transport


@dataclass
class SendSummary:
    """What a run did: counts per locale from the journal, and what was found on the way."""

    campaign_id: str
    by_locale: dict[str | None, journal.Tally] = field(default_factory=dict)
    recovered_unknown: int = 0       # rows an earlier run left claimed: now unknown
    requeued_unknown: int = 0        # unknown rows put back to send (--resend-unknown)

    @property
    def totals(self) -> journal.Tally:
        return self.by_locale.get(None, journal.Tally())


@dataclass
class DryRunSummary:
    """Every message of a campaign built and measured, none sent."""

    campaign_id: str
    built: int = 0
    bytes: int = 0


@dataclass
class TestSendSummary:
    """The [TEST] mails sent: one per variant and address, with the transport's answer."""

    campaign_id: str
    results: list[tuple[str, VariantKey, SendResult]] = field(default_factory=list)

    @property
    def built(self) -> int:
        return len(self.results)


def plan(settings: Settings, newsletter_path: Path, segments: Sequence[str], *,
         transport: str | None = None, new_campaign: bool = False, again: bool = False) -> Plan:
    """Recipients per segment × locale, who is left out, and which campaign would run.

    Whoever already has this newsletter (any campaign of it) is left out and counted,
    unless `again`.
    """
    with open_session(settings, newsletter_path, segments, transport) as session:
        return make_plan(session, new_campaign, again)


def run(settings: Settings, newsletter_path: Path, segments: Sequence[str], *,
        transport: str | None = None, policy: Policy | None = None,
        resend_unknown: bool = False, new_campaign: bool = False, again: bool = False,
        progress: Callable[[int, int], None] | None = None,
        stop: threading.Event | None = None) -> SendSummary:
    """Send the newsletter to the segments, resuming the campaign if one was begun.

    A new campaign leaves out whoever already has this newsletter, unless `again`.
    `progress(done, total)` is called as rows are settled. Raises CampaignPaused
    (retries exhausted, a quota reached) or CampaignInterrupted (Ctrl-C, SIGTERM) with a
    message that says how to resume: run the same command again.
    """
    policy = policy or Policy.from_settings(settings)
    with open_session(settings, newsletter_path, segments, transport) as session, \
            guard.campaign_lock(session.settings, session.base_id) as lock:
        if not lock.alone:
            refuse_while_prepared(session)
        campaign, fresh = open_or_snapshot(session, new_campaign, again)
        variants = prepare_or_discard(session, campaign, fresh)
        # with other senders at work, rows still claimed are theirs, in flight
        summary = recover(session, campaign, resend_unknown) if lock.alone \
            else SendSummary(campaign.id)
        lock.share()
        send(session, campaign, variants, policy, progress, stop or threading.Event(),
             lock.key if lock.conn is not None else None)
        return report(session, summary)


def dry_run(settings: Settings, newsletter_path: Path, segments: Sequence[str], *,
            transport: str | None = None, again: bool = False) -> DryRunSummary:
    """Build every message of the campaign (full bytes) and send none; the journal is not touched.

    Like a send, it leaves out whoever already has this newsletter, unless `again`.
    """
    with open_session(settings, newsletter_path, segments, transport) as session:
        existing = session.latest()
        summary = DryRunSummary(existing.id if existing else session.base_id)
        variants = _prepare(session, audience_keys(session.conn, session.settings, segments))
        rule = None if again else leave_out(session, existing.id if existing else None)
        for recipient in audience.resolve(session.conn, list(segments), session.settings,
                                          leave_out=rule):
            mail = message.build(variants[variant_key(recipient)], recipient,
                                 summary.campaign_id, session.settings)
            summary.built += 1
            summary.bytes += len(mail.as_bytes())
        return summary


def send_test(settings: Settings, newsletter_path: Path, segments: Sequence[str],
              addresses: Sequence[str], *, transport: str | None = None,
              locales: Sequence[str] = ()) -> TestSendSummary:
    """One mail of each variant the segments need (or of the chosen locales) to each address,
    marked [TEST], not journaled."""
    with open_session(settings, newsletter_path, segments, transport) as session:
        keys = chosen_keys(audience_keys(session.conn, session.settings, segments), locales,
                           segments)
        variants = _prepare(session, keys)
        summary = TestSendSummary("test-" + session.base_id)
        labels = [(address, key) for address in addresses for key in keys]
        messages = [_test_message(session, summary.campaign_id, variants, address, key)
                    for address, key in labels]
        with open_transport(session.url, session.settings, campaign=summary.campaign_id) as t:
            results: list[SendResult] = []
            for start in range(0, len(messages), t.max_batch):
                results += t.send_batch(messages[start:start + t.max_batch])
        summary.results = [(a, k, r) for (a, k), r in zip(labels, results)]
        return summary


# ---------------------------------------------------------------- the phases of `run`

def open_or_snapshot(session: Session, new_campaign: bool,
                     again: bool = False) -> tuple[journal.Campaign, bool]:
    """The campaign to send: the latest one resumed, or a new one with its audience snapshot.

    `fresh` is True when the campaign has sent nothing yet (it may then be discarded).
    """
    now = fingerprint(session.settings, session.newsletter_path, session.newsletter.id)
    existing = session.latest()
    if existing and not new_campaign:
        refuse_if_changed(existing, now)
        if existing.status != CampaignState.SNAPSHOT:
            return existing, False
        campaign = existing
    else:
        campaign = _create(session, now)
    _snapshot(session, campaign, again)
    return campaign, True


def _create(session: Session, now: Fingerprint) -> journal.Campaign:
    return journal.create_campaign(session.conn, session.newsletter.id, session.segments,
                                   now.files, session.shown)


def _snapshot(session: Session, campaign: journal.Campaign, again: bool) -> None:
    """One pending row per recipient, read on a second connection while the first writes.

    Whoever already has the newsletter is left out by the query itself (one anti-join on
    the journal's address index), and counted in the same read snapshot; snapshots of one
    newsletter take turns, so two sends to overlapping segments cannot both reach a person.
    """
    with guard.newsletter_lock(session.settings, session.newsletter.id):
        reader = store.connect(session.settings, migrate=False)
        try:
            with store.read_snapshot(reader):
                counted = _holders(session, reader, campaign, again)
                recipients = audience.resolve(reader, list(session.segments), session.settings,
                                              leave_out=None if again else
                                              leave_out(session, campaign.id))
                journal.snapshot(session.conn, campaign.id, recipients,
                                 already={} if again else counted,
                                 again=sum(counted.values()) if again else 0)
        finally:
            reader.close()


def _holders(session: Session, reader: store.Connection, campaign: journal.Campaign,
             again: bool) -> dict[str, int]:
    """Who in the segments already received this newsletter, by campaign (queued ones too)."""
    mark = journal.holder(session.newsletter.id, session.base_id, campaign.id,
                          subscribers.c.email_hash)
    counts = audience.plan_counts(reader, list(session.segments), session.settings, mark=mark,
                                  leave_out_marked=not again)
    found: dict[str, int] = {}
    for key, n in counts.marked.items():
        campaign_id = key.partition(":")[2]
        found[campaign_id] = found.get(campaign_id, 0) + n
    return found


def refuse_while_prepared(session: Session) -> None:
    """Another sender is writing this campaign's snapshot: joining now would start it over."""
    latest = session.latest()
    if latest is not None and latest.status == CampaignState.SNAPSHOT:
        raise CampaignError(f"campaign {latest.id} is being prepared by another sender; "
                            "run this again once it is sending")


def prepare_or_discard(session: Session, campaign: journal.Campaign, fresh: bool) -> Prepared:
    """Every variant the snapshot needs, or no campaign at all if one cannot be built."""
    try:
        return _prepare(session, journal.variants(session.conn, campaign.id))
    except PostbodeError:
        if fresh:
            journal.discard(session.conn, campaign.id)
        raise


def recover(session: Session, campaign: journal.Campaign, resend_unknown: bool) -> SendSummary:
    """Rows an earlier run left claimed become unknown; with --resend-unknown, pending again."""
    summary = SendSummary(campaign.id)
    summary.recovered_unknown = journal.recover(session.conn, campaign.id)
    if resend_unknown:
        summary.requeued_unknown = journal.requeue_unknown(session.conn, campaign.id)
    return summary


def send(session: Session, campaign: journal.Campaign, variants: Prepared, policy: Policy,
         progress: Callable[[int, int], None] | None, stop: threading.Event,
         lock_key: int | None = None) -> None:
    """Send every open row (pending or due for a retry), then mark the campaign finished."""
    conn = session.conn
    if journal.open_count(conn, campaign.id):
        gate = Gate(policy, stop)
        job = Job(session.settings, campaign.id, variants, policy, gate, Progress(progress), lock_key)
        attempt = journal.begin_send(conn, campaign.id, transport_label(session.url))
        try:
            with guard.interrupts(stop):
                send_all(conn, job, session.url)
        finally:
            journal.end_send(conn, attempt)
    if not journal.open_count(conn, campaign.id):
        journal.set_status(conn, campaign.id, CampaignState.FINISHED)


def report(session: Session, summary: SendSummary) -> SendSummary:
    """The summary with the journal's counts per locale."""
    summary.by_locale = journal.tally_by_locale(session.conn, summary.campaign_id)
    return summary


# ---------------------------------------------------------------- shared steps

def transport_label(url: str) -> str:
    """scheme://host[:port][/path] of a transport URL: no user, password, key or options."""
    parts = urlsplit(describe(url))
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _prepare(session: Session, keys: Sequence[VariantKey]) -> Prepared:
    return prepare_variants(session.settings, session.newsletter_path, keys)


def _test_message(session: Session, campaign_id: str, variants: Prepared, address: str,
                  key: VariantKey) -> message.OutgoingMessage:
    """A [TEST] mail of one variant to one address."""
    recipient = Recipient(0, address, None, key[0], "formal", key[1], "test")
    return message.build(variants[key], recipient, f"{campaign_id}-{key[0]}-{key[1]}",
                         session.settings, test=True)

