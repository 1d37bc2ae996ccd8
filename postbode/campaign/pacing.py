"""How fast and how far a send may go: rate, quotas and runs of failures, behind one Gate.

Every worker asks the Gate before it claims (`reserve`) and tells it what came
back (`observe`). The Gate is the only shared mutable state of a send; the
journal is the only shared record. A quota counts mails the journal holds as
sent plus rows claimed and not yet recorded ("in flight"), so parallel workers
never overshoot it together.
"""
from __future__ import annotations

import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Callable, Iterator, Sequence

from postbode.campaign.states import RowState
from postbode.config import Settings
from postbode.transports import SendResult

CountSent = Callable[[float], int]   # mails sent by any campaign since a time (journal.sent_since)


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
        """The policy of postbode.toml, with the overrides that are not None."""
        base = cls(concurrency=max(1, settings.concurrency), rate=settings.rate,
                   hourly_quota=settings.hourly_quota, daily_quota=settings.daily_quota)
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


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


@dataclass(frozen=True)
class Quota:
    """At most `limit` mails in a rolling window of `seconds`."""

    name: str
    limit: int
    seconds: float


class SentCount:
    """A quota's count of sent mails as last read, plus every row settled since (cached).

    Rows settled since the read are counted as if all were sent, so the cached figure
    is never below the truth: the Gate reads the journal again when it is older than
    `max_age` or would make it pause, and otherwise asks no query per claim.
    """

    max_age = 2.0

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock                 # the Gate's: settling adds to `settled` under it
        self.read_at: float | None = None
        self.sent = 0
        self.settled = 0

    def value(self, count_sent: CountSent, since: float, now: float, *, fresh: bool = False) -> int:
        stale = self.read_at is None or not 0 <= now - self.read_at <= self.max_age
        if fresh or stale:
            with self.lock:
                before = self.settled
            sent = count_sent(since)     # holds every row settled before this read, maybe more
            with self.lock:
                self.sent, self.settled, self.read_at = sent, self.settled - before, now
        with self.lock:
            return self.sent + self.settled


class Slot:
    """What one reservation allows: claim at most `size` rows, then say how many were claimed."""

    def __init__(self, gate: "Gate", size: int):
        self.gate, self.size, self.used = gate, size, 0

    def __bool__(self) -> bool:
        return self.size > 0

    def use(self, claimed: int, settled: int = 0) -> None:
        """`claimed` rows are now in flight; `settled` earlier ones were recorded with the claim."""
        self.used = claimed
        self.gate._move_in_flight(claimed - settled, settled=settled)


class Gate:
    """The one object workers reserve from: rate, quotas, the failure run, stop and pause."""

    def __init__(self, policy: Policy, stop: threading.Event | None = None, *,
                 now: Callable[[], float] = time.time):
        self.policy = policy
        self.stop = stop if stop is not None else threading.Event()
        self.bucket = TokenBucket(policy.rate)
        self.quotas = [q for q in (Quota("hourly", policy.hourly_quota, 3600),
                                   Quota("daily", policy.daily_quota, 86400)) if q.limit > 0]
        self.now = now
        self.in_flight = 0          # rows claimed whose outcome is not yet committed
        self.failures = 0           # consecutive batches with only transient failures
        self.pause_reason: str | None = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()        # guards the counters above
        self._claiming = threading.Lock()    # one claim at a time: quotas hold across workers
        self.counts = {quota.name: SentCount(self._lock) for quota in self.quotas}

    # ------------------------------------------------------------ asking

    @contextmanager
    def reserve(self, most: int, count_sent: CountSent) -> Iterator[Slot]:
        """A Slot for the next claim (empty when stopped or a quota is used up).

        Rate tokens are taken before the claim, so no claimed row waits for the rate;
        the claim itself runs inside the block, one worker at a time.
        """
        want = self.bucket.batch_size(most)
        self.bucket.acquire(want, self.stop)
        slot = Slot(self, 0)
        try:
            with self._claiming:
                if not self.stopped:
                    slot = Slot(self, self._allowance(want, count_sent))
                yield slot
        finally:
            self.bucket.refund(want - slot.used)

    def _allowance(self, want: int, count_sent: CountSent) -> int:
        """How many rows may be claimed now under every quota; 0 pauses the send."""
        now = self.now()
        for quota in self.quotas:
            left = self._left(quota, count_sent, now)
            if left <= 0:
                self.pause(f"the {quota.name} quota of {quota.limit} mails is used up; "
                           "wait until it frees up")
                return 0
            want = min(want, left)
        return want

    def _left(self, quota: Quota, count_sent: CountSent, now: float) -> int:
        """Room left in a quota; a cached count that says none is read again first."""
        count = self.counts[quota.name]
        left = quota.limit - count.value(count_sent, now - quota.seconds, now) - self.in_flight
        if left <= 0:
            left = quota.limit - count.value(count_sent, now - quota.seconds, now, fresh=True) \
                - self.in_flight
        return left

    def _move_in_flight(self, delta: int, settled: int = 0) -> None:
        with self._lock:
            self.in_flight += delta
            for count in self.counts.values():
                count.settled += settled

    def settled(self, n: int) -> None:
        """`n` outcomes were committed outside a claim."""
        self._move_in_flight(-n, settled=n)

    @property
    def busy(self) -> bool:
        """Some worker has rows in flight (they may still come back as retries)."""
        with self._lock:
            return self.in_flight > 0

    # ------------------------------------------------------------ telling

    def observe(self, results: Sequence[SendResult]) -> None:
        """Count runs of batches that only failed for now; a long run pauses the send."""
        statuses = {str(r.status) for r in results}
        with self._lock:
            if RowState.SENT in statuses:
                self.failures = 0
            elif statuses == {RowState.RETRY}:
                self.failures += 1
            failures = self.failures
        if failures >= self.policy.pause_after:
            last = results[-1]
            self.pause(f"{failures} sends in a row failed for now "
                       f"(last answer: {last.code} {last.text})")

    def pause_until(self, due: float) -> bool:
        """Pause when the next retry is further off than a run waits; True when paused."""
        if due - self.now() <= self.policy.max_wait:
            return False
        when = datetime.fromtimestamp(due).strftime("%Y-%m-%d %H:%M")
        self.pause(f"the next retry is not due before {when}")
        return True

    def pause(self, reason: str) -> None:
        """Stop every worker cleanly; the first reason is the one reported."""
        with self._lock:
            self.pause_reason = self.pause_reason or reason
        self.stop.set()

    def fail(self, error: BaseException) -> None:
        """A worker died: stop every worker; the first error is the one reported."""
        with self._lock:
            self.error = self.error or error
        self.stop.set()

    @property
    def failed(self) -> bool:
        """A worker died: the others send nothing more."""
        return self.error is not None

    @property
    def stopped(self) -> bool:
        return self.stop.is_set()

    def wait(self, seconds: float) -> None:
        """Sleep, waking early when the send is stopped."""
        self.stop.wait(seconds)
