"""Campaign stage: send a newsletter to segments exactly once, through a transport and the journal.

`run()` is the whole algorithm, in phases:

1. load and validate the newsletter; find the campaign to resume or start one,
   snapshotting the audience into the journal (no mail leaves yet);
2. render and inline every variant the recipients need, collecting every error;
3. send: worker threads claim batches from the journal, build each message
   (substitution only), send the batch, record the outcomes.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import random
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from postbode import audience, build, db, i18n, journal, message, tokens
from postbode.audience import Recipient
from postbode.config import Settings
from postbode.content import Newsletter, load_newsletter
from postbode.errors import CampaignError, CampaignInterrupted, CampaignPaused, PostbodeError
from postbode.extract import entries
from postbode.transports import SendResult, Transport, describe, open_transport, parse_url

Key = tuple[str, str | None]  # (locale, view): one variant of a newsletter


@dataclass(frozen=True)
class Policy:
    """How fast and how patiently a campaign sends."""

    concurrency: int = 2            # parallel transport instances (connections)
    rate: float = 0                 # messages per second over all connections; 0 = unlimited
    hourly_quota: int = 0           # mails per rolling hour over all campaigns; 0 = none
    daily_quota: int = 0
    backoff_base: float = 2.0       # seconds before the first retry, doubled each attempt
    backoff_cap: float = 900.0
    max_attempts: int = 8           # then the row is recorded as rejected
    pause_after: int = 20           # consecutive transient failures before pausing
    max_wait: float = 300.0         # longest wait for a due retry within one run

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> "Policy":
        base = cls(concurrency=max(1, settings.concurrency), rate=settings.rate,
                   hourly_quota=settings.hourly_quota, daily_quota=settings.daily_quota)
        return base.__class__(**{**base.__dict__,
                                 **{k: v for k, v in overrides.items() if v is not None}})


@dataclass
class PlanLine:
    segment: str
    locale: str
    recipients: int
    chain: tuple[str, ...] = ()     # catalog languages tried for this locale, in order
    untranslated: int = 0           # newsletter texts its first catalog lacks (missing or fuzzy)


@dataclass
class Plan:
    """What `send` would do, shown before anything is sent."""

    newsletter_id: str
    newsletter_path: Path
    segments: tuple[str, ...]
    transport: str                   # secrets masked
    campaign_id: str                 # the campaign that would run (resumed or new)
    lines: list[PlanLine] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)
    resume: journal.Tally | None = None  # set when an existing campaign would be resumed
    finished: bool = False
    development_key: bool = False
    texts: int = 0                   # translatable texts of the newsletter

    @property
    def total(self) -> int:
        return sum(line.recipients for line in self.lines)


@dataclass
class Outcome:
    """What a run did: counts per locale from the journal, and what was found on the way."""

    campaign_id: str
    by_locale: dict[str | None, journal.Tally] = field(default_factory=dict)
    recovered_unknown: int = 0
    requeued_unknown: int = 0
    built: int = 0                   # messages built in a dry run or a test send
    bytes: int = 0
    test_results: list[tuple[str, Key, SendResult]] = field(default_factory=list)

    @property
    def totals(self) -> journal.Tally:
        return self.by_locale.get(None, journal.Tally())


# ---------------------------------------------------------------- entry points

def plan(settings: Settings, newsletter_path: Path, segments: Sequence[str], *,
         transport: str | None = None, new_campaign: bool = False) -> Plan:
    """Recipients per segment × locale, who is left out, and which campaign would run."""
    newsletter = _load(newsletter_path)
    url = transport or settings.transport
    parse_url(url)
    _, development = signing_settings(settings, url)
    conn = db.connect(settings.database)
    try:
        counts = audience.plan_counts(conn, list(segments), settings)
        existing = journal.latest_campaign(conn, newsletter.id, segments)
        result = Plan(newsletter.id, Path(newsletter_path), tuple(sorted(set(segments))),
                      describe(url), journal.base_id(newsletter.id, segments),
                      left_out=dict(counts.left_out), development_key=development)
        result.texts = _text_count(newsletter)
        result.lines = _plan_lines(newsletter, counts.recipients, settings)
        if existing and not new_campaign:
            _refuse_if_changed(existing, content_parts(settings, newsletter_path, newsletter.id))
            result.campaign_id = existing.id
            if existing.status != "snapshot":
                result.resume = journal.tally(conn, existing.id)
                result.finished = existing.status == "finished"
        elif existing:
            result.campaign_id = f"{existing.base_id}--{existing.sequence + 1}"
        return result
    finally:
        conn.close()


def _plan_lines(newsletter: Newsletter, recipients: Mapping[tuple[str, str], int],
                settings: Settings) -> list[PlanLine]:
    """One line per (segment, locale); each language's catalog is read once, not once per segment."""
    untranslated: dict[str, int] = {}
    lines = []
    for (segment, locale), n in recipients.items():
        chain = _chain(locale, settings)
        if chain[0] not in untranslated:
            untranslated[chain[0]] = _untranslated(newsletter, chain[0], settings)
        lines.append(PlanLine(segment, locale, n, chain, untranslated[chain[0]]))
    return lines


def run(settings: Settings, newsletter_path: Path, segments: Sequence[str], *,
        transport: str | None = None, policy: Policy | None = None,
        resend_unknown: bool = False, new_campaign: bool = False,
        progress: Callable[[int, int], None] | None = None,
        stop: threading.Event | None = None) -> Outcome:
    """Send the newsletter to the segments, resuming the campaign if one was begun.

    `progress(done, total)` is called as rows are settled. Raises CampaignPaused
    (retries exhausted, a quota reached) or CampaignInterrupted (Ctrl-C) with a
    message that says how to resume: run the same command again.
    """
    policy = policy or Policy.from_settings(settings)
    url = transport or settings.transport
    settings, _ = signing_settings(settings, url)
    newsletter = _load(newsletter_path)
    parts = content_parts(settings, newsletter_path, newsletter.id)
    conn = db.connect(settings.database)
    try:
        with _campaign_lock(settings, journal.base_id(newsletter.id, segments)):
            campaign, fresh = _open_campaign(conn, settings, newsletter.id, segments, parts,
                                             url, new_campaign)
            outcome = Outcome(campaign.id)
            try:
                variants = prepare_variants(settings, newsletter_path,
                                            journal.variants(conn, campaign.id))
            except PostbodeError:
                if fresh:
                    journal.discard(conn, campaign.id)
                raise
            outcome.recovered_unknown = journal.recover(conn, campaign.id)
            if resend_unknown:
                outcome.requeued_unknown = journal.requeue_unknown(conn, campaign.id)
            if journal.open_count(conn, campaign.id):
                journal.set_status(conn, campaign.id, "sending")
                sender = _Sender(settings, campaign, url, variants, policy, progress,
                                 stop or threading.Event())
                with _interrupts(sender.stop):
                    sender.run(conn)
            if not journal.open_count(conn, campaign.id):
                journal.set_status(conn, campaign.id, "finished")
            outcome.by_locale = journal.tally_by_locale(conn, campaign.id)
            return outcome
    finally:
        conn.close()


def dry_run(settings: Settings, newsletter_path: Path, segments: Sequence[str], *,
            transport: str | None = None) -> Outcome:
    """Build every message of the campaign (full bytes) and send none; the journal is not touched."""
    url = transport or settings.transport
    settings, _ = signing_settings(settings, url)
    newsletter = _load(newsletter_path)
    conn = db.connect(settings.database)
    try:
        existing = journal.latest_campaign(conn, newsletter.id, segments)
        campaign_id = existing.id if existing else journal.base_id(newsletter.id, segments)
        keys = _audience_keys(conn, settings, segments)
        variants = prepare_variants(settings, newsletter_path, keys)
        outcome = Outcome(campaign_id)
        for recipient in audience.resolve(conn, list(segments), settings):
            mail = message.build(variants[_key(recipient)], recipient, campaign_id, settings)
            outcome.built += 1
            outcome.bytes += len(mail.as_bytes())
        return outcome
    finally:
        conn.close()


def send_test(settings: Settings, newsletter_path: Path, segments: Sequence[str],
              addresses: Sequence[str], *, transport: str | None = None) -> Outcome:
    """One mail of each variant the segments need to each address, marked [TEST], not journaled."""
    url = transport or settings.transport
    settings, _ = signing_settings(settings, url)
    newsletter = _load(newsletter_path)
    conn = db.connect(settings.database)
    try:
        keys = _audience_keys(conn, settings, segments)
    finally:
        conn.close()
    variants = prepare_variants(settings, newsletter_path, keys)
    campaign_id = "test-" + journal.base_id(newsletter.id, segments)
    outcome = Outcome(campaign_id)
    messages, labels = [], []
    for address in addresses:
        for key in keys:
            recipient = Recipient(0, address, None, key[0], "formal", key[1], "test")
            messages.append(message.build(variants[key], recipient,
                                          f"{campaign_id}-{key[0]}-{key[1]}", settings, test=True))
            labels.append((address, key))
    t = open_transport(url, settings, campaign=campaign_id)
    with t:
        results = []
        for start in range(0, len(messages), t.max_batch):
            results += t.send_batch(messages[start:start + t.max_batch])
    outcome.built = len(messages)
    outcome.test_results = [(a, k, r) for (a, k), r in zip(labels, results)]
    return outcome


# ---------------------------------------------------------------- phase 1: the campaign

def _load(newsletter_path: Path) -> Newsletter:
    return load_newsletter(Path(newsletter_path))


def signing_settings(settings: Settings, url: str) -> tuple[Settings, bool]:
    """Settings with a signing key: the outbox may use the labelled development key, others not."""
    if parse_url(url).scheme == "outbox":
        return tokens.with_development_key(settings)
    tokens.key_for(settings)  # raises ConfigError saying how to set POSTBODE_SECRET_KEY
    return settings, False


def content_parts(settings: Settings, newsletter_path: Path, newsletter_id: str) -> dict[str, str]:
    """A hash per file that changes what recipients get: the newsletter, templates, catalogs."""
    files = [Path(newsletter_path).resolve()]
    if settings.templates_dir.is_dir():
        files += sorted(p for p in settings.templates_dir.rglob("*") if p.is_file())
    if settings.locales_dir.is_dir():
        for domain in ("messages", newsletter_id):
            files += sorted(settings.locales_dir.glob(f"*/LC_MESSAGES/{domain}.po"))
    parts = {}
    for path in files:
        try:
            name = str(path.relative_to(settings.root))
        except ValueError:
            name = str(path)
        parts[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return parts


def _refuse_if_changed(campaign: journal.Campaign, parts: Mapping[str, str]) -> None:
    if journal.content_hash(parts) == campaign.content_hash:
        return
    changed = journal.changed_parts(campaign.content_parts, parts)
    shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
    if campaign.status == "finished":
        raise CampaignError(
            f"campaign {campaign.id} was sent with another version of this newsletter "
            f"(changed since: {shown}). To send the new version to everyone in the segments "
            "again, add --new-campaign."
        )
    raise CampaignError(
        f"campaign {campaign.id} began with another version of this newsletter "
        f"(changed since: {shown}). Resuming would send two versions to one list. "
        "Undo the change to finish the campaign as it began, or add --new-campaign "
        "to start a new campaign that sends the new version to everyone in the segments."
    )


def _open_campaign(conn, settings: Settings, newsletter_id: str, segments: Sequence[str],
                   parts: Mapping[str, str], url: str,
                   new_campaign: bool) -> tuple[journal.Campaign, bool]:
    """The campaign to send: the latest one resumed, or a new one with its audience snapshot."""
    existing = journal.latest_campaign(conn, newsletter_id, segments)
    if existing and not new_campaign:
        _refuse_if_changed(existing, parts)
        if existing.status != "snapshot":
            return existing, False
        campaign, fresh = existing, True
    else:
        campaign, fresh = journal.create_campaign(conn, newsletter_id, segments, parts,
                                                  describe(url)), True
    reader = db.connect(settings.database, migrate=False)
    try:
        journal.snapshot(conn, campaign.id, audience.resolve(reader, list(segments), settings))
    finally:
        reader.close()
    return campaign, fresh


@contextmanager
def _campaign_lock(settings: Settings, base: str) -> Iterator[None]:
    """One process at a time per campaign (the lock goes when the process does, even killed)."""
    path = Path(f"{settings.database}.{base}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CampaignError(
                f"campaign {base} is being sent by another postbode process right now; "
                "wait for it to finish (or stop it with Ctrl-C) before running this again"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ---------------------------------------------------------------- phase 2: variants

def _key(recipient: Recipient) -> Key:
    return (recipient.locale, recipient.view)


def _sort_key(key: Key) -> tuple[str, str]:
    return (key[0], key[1] or "")


def _chain(locale: str, settings: Settings) -> tuple[str, ...]:
    return tuple(i18n.locale_chain(locale, settings))


def _untranslated(newsletter: Newsletter, language: str, settings: Settings) -> int:
    """How many of the newsletter's texts fall back from this language's catalog."""
    if language == settings.source_locale:
        return 0
    report = i18n.completeness(newsletter, language, settings)
    return len(report.missing) + len(report.fuzzy)


def _text_count(newsletter: Newsletter) -> int:
    return len(entries(newsletter))


def _audience_keys(conn, settings: Settings, segments: Sequence[str]) -> list[Key]:
    """Every (locale, view) among the segments' recipients (one streamed pass)."""
    keys = {_key(r) for r in audience.resolve(conn, list(segments), settings)}
    return sorted(keys, key=_sort_key)


def prepare_variants(settings: Settings, newsletter_path: Path,
                     keys: Sequence[Key]) -> dict[Key, message.PreparedVariant]:
    """Render, inline and prepare every (locale, view) needed; all errors come out together."""
    if not keys:
        return {}
    locales = sorted({k[0] for k in keys})
    views = sorted({k[1] for k in keys}, key=lambda v: v or "")
    result = build.build_variants(Path(newsletter_path), locales, views, settings)
    prepared = build.prepare_all(result, settings)
    missing = [k for k in keys if k not in prepared]
    if missing:
        raise CampaignError(f"no rendered variant for {missing}; this is a bug in postbode")
    return prepared


# ---------------------------------------------------------------- phase 3: sending

class TokenBucket:
    """Spreads sends evenly at `rate` per second over all threads (0 = unlimited)."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self.clock = clock
        self.tokens = self.capacity
        self.stamp = clock()
        self.lock = threading.Lock()

    def batch_size(self, most: int) -> int:
        """How many messages one batch may hold: never more than a full bucket."""
        return most if self.rate <= 0 else max(1, min(most, int(self.capacity)))

    def acquire(self, n: int, stop: threading.Event) -> None:
        """Take n tokens, waiting (interruptibly) for any shortfall."""
        if self.rate <= 0:
            return
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            self.tokens -= n
            shortfall = -self.tokens
        if shortfall > 0:
            stop.wait(shortfall / self.rate)

    def refund(self, n: int) -> None:
        """Give back tokens taken for messages that were not there to send."""
        if self.rate > 0 and n > 0:
            with self.lock:
                self.tokens = min(self.capacity, self.tokens + n)


def backoff(attempts: int, retry_after: float | None, policy: Policy) -> float:
    """Seconds to wait before the next attempt: exponential with jitter, at least Retry-After."""
    delay = min(policy.backoff_cap, policy.backoff_base * 2 ** max(0, attempts - 1))
    delay *= random.uniform(0.5, 1.0)
    return max(delay, retry_after or 0.0)


class _Sender:
    """N worker threads, each with its own connection to the journal and its own transport."""

    def __init__(self, settings: Settings, campaign: journal.Campaign, url: str,
                 variants: Mapping[Key, message.PreparedVariant], policy: Policy,
                 progress: Callable[[int, int], None] | None, stop: threading.Event):
        self.settings, self.campaign, self.url = settings, campaign, url
        self.variants, self.policy, self.progress = variants, policy, progress
        self.stop = stop
        self.bucket = TokenBucket(policy.rate)
        self.lock = threading.Lock()
        self.claim_lock = threading.Lock()
        self.in_flight = 0
        self.failures = 0            # consecutive batches with only transient failures
        self.pause_reason: str | None = None
        self.error: BaseException | None = None
        self.done = 0
        self.total = campaign.total

    def run(self, conn) -> None:
        t = journal.tally(conn, self.campaign.id)
        self.total = t.total         # the campaign object may predate its snapshot
        self.done = t.total - t["pending"] - t["retry"]
        self._report(0)
        threads = [threading.Thread(target=self._worker, name=f"send-{i}", daemon=True)
                   for i in range(max(1, self.policy.concurrency))]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)  # short joins keep the main thread responsive to Ctrl-C
        self._raise_if_stopped(conn)

    def _raise_if_stopped(self, conn) -> None:
        if self.error is not None:
            raise self.error
        left = journal.open_count(conn, self.campaign.id)
        if self.pause_reason:
            journal.set_status(conn, self.campaign.id, "paused")
            raise CampaignPaused(f"campaign {self.campaign.id} paused: {self.pause_reason}; "
                                 f"{left} recipients still to send. To resume, run the same "
                                 "command again.")
        if self.stop.is_set() and left:
            journal.set_status(conn, self.campaign.id, "paused")
            raise CampaignInterrupted(
                f"campaign {self.campaign.id} stopped: the mails in flight were finished and "
                f"recorded, {left} recipients still to send. To resume, run the same command again."
            )

    def _pause(self, reason: str) -> None:
        with self.lock:
            self.pause_reason = self.pause_reason or reason
        self.stop.set()

    def _report(self, n: int) -> None:
        with self.lock:
            self.done += n
            done = self.done
        if self.progress:
            self.progress(done, self.total)

    def _worker(self) -> None:
        conn = db.connect(self.settings.database, migrate=False)
        transport: Transport | None = None
        unsettled: list[journal.Outcome] = []   # outcomes not yet committed
        try:
            # inside the try: a missing key is the campaign's error, not a silently dead thread
            transport = open_transport(self.url, self.settings, campaign=self.campaign.id)
            transport.open()
            while not self.stop.is_set():
                if not self._step(conn, transport, unsettled):
                    break
        except BaseException as err:  # noqa: BLE001 — handed to the main thread
            with self.lock:
                self.error = self.error or err
            self.stop.set()
        finally:
            try:
                self._settle(conn, unsettled)
            finally:
                if transport is not None:
                    transport.close()
                conn.close()

    def _settle(self, conn, unsettled: list[journal.Outcome]) -> None:
        """Commit outcomes not yet recorded (when a worker ends)."""
        if unsettled:
            journal.record(conn, unsettled)
            with self.lock:
                self.in_flight -= len(unsettled)
            unsettled.clear()

    def _step(self, conn, transport: Transport, unsettled: list[journal.Outcome]) -> bool:
        """Claim, build, send one batch; False when there is nothing left to do.

        The outcomes of a batch are committed in the same transaction as the next
        claim, which still comes before the next network call: one commit per batch.
        """
        # Tokens are taken before the claim, so no claimed row waits for the rate.
        want = self.bucket.batch_size(transport.max_batch)
        self.bucket.acquire(want, self.stop)
        if self.stop.is_set():
            return False
        built: dict[int, message.OutgoingMessage] = {}
        failed: dict[int, str] = {}      # row → why it is not sent
        batch = self._claim(conn, want, built, failed, unsettled)
        self.bucket.refund(want - len(batch or ()))
        if batch is None:
            return False
        if not batch:
            return self._wait_for_retries(conn)
        unsettled.extend(self._send(conn, transport, batch, built, failed))
        self._report(sum(o.state != "retry" for o in unsettled))
        return True

    def _claim(self, conn, want: int, built: dict, failed: dict,
               unsettled: list[journal.Outcome]) -> list[journal.Entry] | None:
        """Record the last batch's outcomes and claim the next batch, in one transaction
        (None when a quota is used up). The quota check and the claim happen under one
        lock so parallel workers cannot overshoot a quota together."""
        def stamp(entry: journal.Entry) -> str | None:
            if audience.recipient_is_suppressed(conn, entry.recipient):
                failed[entry.row_id] = "not sent: unsubscribed, bounced or complained since " \
                                       "the campaign began"
                return None
            variant = self.variants.get(_key(entry.recipient))
            try:
                if variant is None:
                    raise CampaignError(f"no variant for locale {entry.recipient.locale} and "
                                        f"view {entry.recipient.view}")
                mail = message.build(variant, entry.recipient, self.campaign.id, self.settings)
            except PostbodeError as err:
                failed[entry.row_id] = f"not built: {err}"
                return None
            built[entry.row_id] = mail
            return mail.message_id

        with self.claim_lock:
            limit = self._quota_limit(conn, want)
            if limit <= 0:
                return None
            batch = journal.claim(conn, self.campaign.id, limit, stamp=stamp, settle=unsettled)
            with self.lock:
                self.in_flight += len(batch) - len(unsettled)
            unsettled.clear()
        return batch

    def _send(self, conn, transport: Transport, batch: list[journal.Entry], built: dict,
              failed: dict) -> list[journal.Outcome]:
        outcomes = [journal.Outcome(e.row_id, "rejected", None, failed[e.row_id])
                    for e in batch if e.row_id in failed]
        entries = [e for e in batch if e.row_id in built]
        messages = [built[e.row_id] for e in entries]
        try:
            results = transport.send_batch(messages) if messages else []
        except BaseException as err:
            # The batch may have partly left: never resend it silently.
            journal.record(conn, outcomes + [
                journal.Outcome(e.row_id, "unknown", None, f"sending failed: {err}")
                for e in entries])
            with self.lock:
                self.in_flight -= len(batch)
            raise
        retry_at = self._retry_at(entries, results)
        outcomes += [self._outcome(e, r, retry_at) for e, r in zip(entries, results)]
        self._suppress_hard_bounces(conn, entries, results)
        self._count_failures(results)
        return outcomes

    def _retry_at(self, entries: Sequence[journal.Entry], results: Sequence[SendResult]) -> float:
        """One retry time for the whole batch, so its rows come due (and are claimed) together."""
        waits = [backoff(e.attempts, r.retry_after, self.policy)
                 for e, r in zip(entries, results) if str(r.status) == "retry"]
        return time.time() + (max(waits) if waits else 0.0)

    def _outcome(self, entry: journal.Entry, result: SendResult,
                 retry_at: float) -> journal.Outcome:
        status = str(result.status)
        text = result.text or None
        next_at = None
        if status == "retry":
            if entry.attempts >= self.policy.max_attempts:
                status = "rejected"
                text = f"gave up after {entry.attempts} attempts; last answer: {result.text}"
            else:
                next_at = retry_at
        return journal.Outcome(entry.row_id, status, result.code, text, result.provider_id,
                               next_at, result.message_id)

    def _suppress_hard_bounces(self, conn, entries, results) -> None:
        for entry, result in zip(entries, results):
            if result.hard_bounce:
                audience.suppress(conn, entry.recipient.email, "bounced",
                                  f"campaign {self.campaign.id}: {result.code} {result.text}")

    def _count_failures(self, results: Sequence[SendResult]) -> None:
        statuses = {str(r.status) for r in results}
        with self.lock:
            if "sent" in statuses:
                self.failures = 0
            elif statuses == {"retry"}:
                self.failures += 1
            failures = self.failures
        if failures >= self.policy.pause_after:
            last = results[-1]
            self._pause(f"{failures} sends in a row failed for now "
                        f"(last answer: {last.code} {last.text})")

    def _wait_for_retries(self, conn) -> bool:
        """Nothing due now: wait for the next retry if it is soon, else pause or finish."""
        next_at = journal.next_retry_at(conn, self.campaign.id)
        if next_at is None:
            with self.lock:
                busy = self.in_flight > 0  # another worker's batch may still come back as retry
            if busy:
                self.stop.wait(0.05)
                return True
            return False
        wait = next_at - time.time()
        if wait > self.policy.max_wait:
            when = datetime.fromtimestamp(next_at).strftime("%Y-%m-%d %H:%M")
            self._pause(f"the next retry is not due before {when}")
            return False
        self.stop.wait(min(max(wait, 0.01), 0.5))
        return True

    def _quota_limit(self, conn, want: int) -> int:
        """How many rows the next batch may claim under the hourly and daily quotas."""
        limit = want
        now = time.time()
        for quota, window, name in ((self.policy.hourly_quota, 3600, "hourly"),
                                    (self.policy.daily_quota, 86400, "daily")):
            if quota <= 0:
                continue
            with self.lock:
                in_flight = self.in_flight
            left = quota - journal.sent_since(conn, now - window) - in_flight
            if left <= 0:
                self._pause(f"the {name} quota of {quota} mails is used up; "
                            f"wait until it frees up")
                return 0
            limit = min(limit, left)
        return limit


@contextmanager
def _interrupts(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C stops claiming; sends in flight finish and are recorded. A second Ctrl-C aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
