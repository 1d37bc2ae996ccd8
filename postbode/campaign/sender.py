"""Workers: one per connection, each sending the campaign batch after batch.

The order of commits that makes a send exactly-once, in `Worker.step`:

1. reserve — the Gate says how many rows this batch may hold (rate, quotas, pauses).
2. claim   — the batch's rows become `claimed`, each stamped with its mail's
             deterministic Message-ID, and that is COMMITTED before a byte of their
             mail leaves. The outcomes of the previous batch commit in the same
             transaction (one commit per batch).
3. build   — the messages are built from the claimed rows, outside any transaction,
             so no write lock is held while CPU work runs.
4. send    — one transport call for the batch.
5. classify and settle — each result becomes its row's outcome (sent, rejected,
             retry at a time, unknown), committed with the next claim or when the
             worker ends.

On one SMTP connection with PIPELINING (`looks_ahead`), step 2 also looks at the row
due next without claiming it (`journal.claim_ahead`), and step 4 opens that row's SMTP
transaction with this batch's data: its envelope only. Its content leaves in the next
step, after step 2 has claimed it and COMMITTED; a stop or another row first drops the
connection, and the server delivers nothing of it. So the bound below still holds.

A crash between 2 and 5 leaves rows `claimed`; the next run turns them into `unknown`
and does not send them again unless asked (--resend-unknown). A worker holds at most
one batch (one row a connection for SMTP), which bounds the unknown rows after a
crash by the connections. Rows whose mail never reached the transport (a stop or a local error
between 2 and 4) go back to `pending`. A transport that raises while sending leaves
its batch `unknown`: part of it may have left.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from postbode import audience, journal, message, store
from postbode.campaign import guard
from postbode.campaign.pacing import Gate, Policy, backoff
from postbode.campaign.states import CampaignState, RowState
from postbode.campaign.variants import Prepared, variant_key
from postbode.config import Settings
from postbode.errors import CampaignError, CampaignInterrupted, CampaignPaused, PostbodeError
from postbode.transports import SendResult, Status, Transport, open_transport

Built = list[tuple[journal.Entry, message.OutgoingMessage]]
SUPPRESSED = "not sent: unsubscribed, bounced or complained since the campaign began"
NO_RESULT = "the transport gave no result for this message; it may have left"
# While pending rows remain, a worker puts due retries first this often (seconds); in
# between, a claim is one statement that looks at pending rows only.
RETRIES_FIRST_EVERY = 1.0


class Progress:
    """Rows settled so far out of the campaign's total, reported as they change."""

    def __init__(self, report: Callable[[int, int], None] | None):
        self.report, self.done, self.total = report, 0, 0
        self._lock = threading.Lock()

    def start(self, tally: journal.Tally) -> None:
        self.total = tally.total
        self.add(tally.total - tally[RowState.PENDING] - tally[RowState.RETRY])

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            done = self.done
        if self.report:
            self.report(done, self.total)


@dataclass(frozen=True)
class Job:
    """What every worker of one send shares; only the Gate and the progress change."""

    settings: Settings
    campaign_id: str
    variants: Prepared
    policy: Policy
    gate: Gate
    progress: Progress
    lock_key: int | None = None      # PostgreSQL: the advisory lock every sender of it holds


# ---------------------------------------------------------------- results → outcomes

def classify(entry: journal.Entry, result: SendResult, *, max_attempts: int,
             retry_at: float) -> journal.Outcome:
    """The row's outcome for one send result; a retry after the last attempt is rejected."""
    state, text, next_at = RowState(str(result.status)), result.text or None, None
    if state == RowState.RETRY:
        if entry.attempts >= max_attempts:
            state = RowState.REJECTED
            text = f"gave up after {entry.attempts} attempts; last answer: {result.text}"
        else:
            next_at = retry_at
    return journal.Outcome(entry.row_id, state, result.code, text, result.provider_id,
                           next_at, result.message_id)


def retry_time(entries: Sequence[journal.Entry], results: Sequence[SendResult],
               policy: Policy, now: float) -> float:
    """One retry time for the whole batch, so its rows come due (and are claimed) together."""
    waits = [backoff(e.attempts, r.retry_after, policy)
             for e, r in zip(entries, results) if r.status == Status.RETRY]
    return now + (max(waits) if waits else 0.0)


def complete(built: Built, results: Sequence[SendResult]) -> list[SendResult]:
    """One result per message: a message the transport said nothing about is unknown."""
    missing = [SendResult(mail.message_id, Status.UNKNOWN, None, NO_RESULT)
               for _, mail in built[len(results):]]
    return list(results[:len(built)]) + missing


def refused(entry: journal.Entry, why: str) -> journal.Outcome:
    return journal.Outcome(entry.row_id, RowState.REJECTED, None, why)


# ---------------------------------------------------------------- one worker

class Worker:
    """One transport (a connection, or SMTP connections in step) and one journal connection."""

    def __init__(self, job: Job, transport: Transport):
        self.job, self.transport = job, transport
        self.conn: store.Connection | None = None  # opened in the worker's own thread
        self.unsettled: list[journal.Outcome] = []   # outcomes not yet committed
        self.retries_due_at = 0.0                      # monotonic time to put retries first
        self.ahead: journal.Entry | None = None        # the row due next, not claimed (claim_ahead)
        self.opened: message.OutgoingMessage | None = None  # its mail, if sent ahead of its claim

    def run(self) -> None:
        """Send until nothing is left or the Gate stops the send; a failure stops every worker."""
        try:
            self.conn = store.connect(self.job.settings, migrate=False)
            try:
                while self.step():
                    pass
            finally:
                self.record(self.unsettled)
        except BaseException as err:  # noqa: BLE001 — handed to the main thread by the Gate
            self.job.gate.fail(err)
        finally:
            self.transport.close()
            if self.conn is not None:
                self.conn.close()

    def step(self) -> bool:
        """One batch: reserve → claim → build → send → classify → settle. False when done."""
        batch = self.claim()
        if batch is None:
            return False
        if not batch:
            return self.wait_for_retries()
        try:
            built, rejected = self.build(batch)
        except BaseException:
            self.release([e.row_id for e in batch])  # a local error: nothing was attempted
            raise
        if self.job.gate.failed:                     # another worker failed meanwhile
            self.unsettled += rejected
            self.release([entry.row_id for entry, _ in built])
            return False
        results = self.send(built, rejected)
        self.settle(built, results, rejected)
        return True

    def claim(self) -> list[journal.Entry] | None:
        """Commit the last batch's outcomes and claim the next batch (None: stopped or paused)."""
        if self.job.lock_key is not None:   # other processes may send it too: share the rate
            self.job.gate.share_rate(lambda: guard.senders(self.conn, self.job.lock_key))
        with self.job.gate.reserve(self.transport.max_batch, self.count_sent) as slot:
            if not slot:
                return None
            if self.looks_ahead():
                batch, self.ahead = journal.claim_ahead(
                    self.conn, self.job.campaign_id, self.ahead, stamp=self.stamp,
                    settle=self.unsettled, retries_first=self.retries_first())
            else:
                self.ahead = None
                batch = journal.claim(self.conn, self.job.campaign_id, slot.size, stamp=self.stamp,
                                      settle=self.unsettled, retries_first=self.retries_first())
            slot.use(len(batch), settled=len(self.unsettled))
            self.unsettled = []
        return batch

    def looks_ahead(self) -> bool:
        """True when the next mail's transaction may open with this one's data (one
        round trip a mail on one SMTP connection with PIPELINING): only this worker sends
        the campaign and no rate makes a claimed row wait."""
        return (self.transport.opens_next and self.transport.max_batch == 1
                and self.job.lock_key is None and not self.job.policy.rate)

    def retries_first(self) -> bool:
        """True about once a second: due retries go before pending rows in this claim."""
        now = time.monotonic()
        if now < self.retries_due_at:
            return False
        self.retries_due_at = now + RETRIES_FIRST_EVERY
        return True

    def stamp(self, entry: journal.Entry) -> str | None:
        """The Message-ID the entry's mail will carry, computed without building the mail."""
        variant = self.job.variants.get(variant_key(entry.recipient))
        if variant is None:
            return None
        return message.make_message_id(self.job.campaign_id, entry.recipient.email,
                                       variant.domain)

    def count_sent(self, since: float) -> int:
        if self.conn.dialect.name == "postgresql":
            # other senders may share the quota: their rows in flight count too (ours are in_flight)
            return journal.sent_or_claimed_since(self.conn, since) - self.job.gate.in_flight
        return journal.sent_since(self.conn, since)

    def build(self, batch: list[journal.Entry]) -> tuple[Built, list[journal.Outcome]]:
        """The batch's messages, and the rows refused without sending (with the reason)."""
        built: Built = []
        rejected: list[journal.Outcome] = []
        for entry in batch:
            mail = SUPPRESSED if entry.suppressed else self.build_one(entry)
            if isinstance(mail, str):
                rejected.append(refused(entry, mail))
            else:
                built.append((entry, mail))
        return built, rejected

    def build_one(self, entry: journal.Entry) -> message.OutgoingMessage | str:
        """The entry's mail, or why it cannot be built."""
        opened, self.opened = self.opened, None
        if opened is not None and opened.message_id == entry.message_id:
            return opened               # built when its transaction was opened
        recipient = entry.recipient
        variant = self.job.variants.get(variant_key(recipient))
        if variant is None:
            return f"not built: no variant for locale {recipient.locale} and view {recipient.view}"
        try:
            return message.build(variant, recipient, self.job.campaign_id, self.job.settings)
        except PostbodeError as err:
            return f"not built: {err}"

    def following(self) -> message.OutgoingMessage | None:
        """The mail of the row due next, whose transaction opens with this batch's data.

        Nothing of it is delivered before its row is claimed: its content goes out only
        after the claim commits, and a connection dropped before that delivers nothing.
        """
        entry = self.ahead
        if entry is None or entry.suppressed:
            return None
        mail = self.build_one(entry)
        self.opened = mail if not isinstance(mail, str) else None
        return self.opened

    def send(self, built: Built, rejected: list[journal.Outcome]) -> list[SendResult]:
        """One transport call; if it raises, the batch is recorded unknown (part may have left)."""
        messages = [mail for _, mail in built]
        following = self.following() if messages and self.ahead is not None else None
        try:
            if not messages:
                return []
            if following is not None:
                return complete(built, self.transport.send_batch(messages, following=following))
            return complete(built, self.transport.send_batch(messages))
        except BaseException as err:
            self.record(rejected + [journal.Outcome(entry.row_id, RowState.UNKNOWN, None,
                                                    f"sending failed: {err}")
                                    for entry, _ in built])
            raise

    def settle(self, built: Built, results: list[SendResult],
               rejected: list[journal.Outcome]) -> None:
        """Classify each result; the outcomes commit with the next claim."""
        entries = [entry for entry, _ in built]
        retry_at = retry_time(entries, results, self.job.policy, time.time())
        outcomes = rejected + [classify(e, r, max_attempts=self.job.policy.max_attempts,
                                        retry_at=retry_at) for e, r in zip(entries, results)]
        self.suppress_hard_bounces(entries, results)
        self.job.gate.observe(results)
        self.unsettled += outcomes
        self.job.progress.add(sum(o.state != RowState.RETRY for o in outcomes))

    def suppress_hard_bounces(self, entries: Sequence[journal.Entry],
                              results: Sequence[SendResult]) -> None:
        for entry, result in zip(entries, results):
            if result.hard_bounce:
                audience.suppress(self.conn, entry.recipient.email, "bounced",
                                  f"campaign {self.job.campaign_id}: {result.code} {result.text}")

    def wait_for_retries(self) -> bool:
        """Nothing due now: wait for the next retry if it is soon; False when nothing is left."""
        gate = self.job.gate
        due = journal.next_retry_at(self.conn, self.job.campaign_id)
        if due is None:
            if not gate.busy:
                return False
            gate.wait(0.05)  # another worker's batch may still come back as retries
            return True
        if gate.pause_until(due):
            return False
        gate.wait(min(max(due - time.time(), 0.01), 0.5))
        return True

    def record(self, outcomes: list[journal.Outcome]) -> None:
        """Commit outcomes now (when the worker ends, or its transport failed)."""
        if outcomes:
            journal.record(self.conn, outcomes)
            self.job.gate.settled(len(outcomes))

    def release(self, row_ids: list[int]) -> None:
        """Claimed rows never handed to the transport go back to `pending`."""
        if row_ids:
            journal.release(self.conn, row_ids)
            self.job.gate.settled(len(row_ids))


# ---------------------------------------------------------------- all workers

def send_all(conn: store.Connection, job: Job, url: str) -> None:
    """Connect every worker's transport, then send until done; raise what stopped it early."""
    opened = connect(url, job.settings, job.campaign_id, job.policy.concurrency)
    transports = type(opened[0]).per_worker(opened)
    journal.set_status(conn, job.campaign_id, CampaignState.SENDING)
    job.progress.start(journal.tally(conn, job.campaign_id))
    threads = [threading.Thread(target=Worker(job, t).run, name=f"send-{i}", daemon=True)
               for i, t in enumerate(transports)]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)  # short joins keep the main thread responsive to Ctrl-C
    raise_if_stopped(conn, job)


def connect(url: str, settings: Settings, campaign_id: str, n: int) -> list[Transport]:
    """`n` connected transports before any row is claimed; none is left open on failure."""
    opened: list[Transport] = []
    try:
        for _ in range(max(1, n)):
            transport = open_transport(url, settings, campaign=campaign_id)
            opened.append(transport)
            transport.open()
    except BaseException:
        for transport in opened:
            transport.close()
        raise
    return opened


def raise_if_stopped(conn: store.Connection, job: Job) -> None:
    """After the workers: a failure, a pause or a stop with rows left raises; else nothing."""
    gate, cid = job.gate, job.campaign_id
    left = journal.open_count(conn, cid)
    if gate.error is None and not gate.pause_reason and not (gate.stopped and left):
        return
    journal.set_status(conn, cid, CampaignState.PAUSED)
    if isinstance(gate.error, PostbodeError):
        raise gate.error
    if gate.error is not None:
        raise failure(gate.error, cid, left) from gate.error
    if gate.pause_reason:
        raise CampaignPaused(f"campaign {cid} paused: {gate.pause_reason}; {left} recipients "
                             "still to send. To resume, run the same command again.")
    raise CampaignInterrupted(
        f"campaign {cid} stopped: the mails in flight were finished and recorded, {left} "
        "recipients still to send. To resume, run the same command again.")


def failure(error: BaseException, campaign_id: str, left: int) -> CampaignError:
    """What a worker that failed in an unforeseen way stops the send with."""
    return CampaignError(
        f"campaign {campaign_id} stopped: a connection failed ({type(error).__name__}: {error}); "
        f"the other mails in flight were recorded, {left} recipients still to send. Fix the "
        "cause, then run the same command again to resume (--debug shows where it failed).")
