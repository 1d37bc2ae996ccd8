"""The Gate every worker reserves from: rate, quotas, runs of failures, stop and pause."""
from __future__ import annotations

import threading

from postbode.campaign import pacing
from postbode.campaign.pacing import Gate, Policy, TokenBucket, backoff
from postbode.transports import SendResult, Status


def results(*statuses: Status) -> list[SendResult]:
    return [SendResult(f"<{i}@example.org>", s, 451 if s == Status.RETRY else 250, "answer")
            for i, s in enumerate(statuses)]


class Sent:
    """What the journal would say: mails sent since a time (one fixed count here)."""

    def __init__(self) -> None:
        self.count = 0
        self.asked: list[float] = []

    def __call__(self, since: float) -> int:
        self.asked.append(since)
        return self.count


def test_token_bucket_asks_to_wait_for_the_shortfall():
    waits: list[float] = []

    class Recorder(threading.Event):
        def wait(self, timeout=None):
            waits.append(timeout)
            return False

    bucket = TokenBucket(rate=10, burst=10)
    stop = Recorder()
    bucket.acquire(10, stop)
    assert waits == []
    bucket.acquire(5, stop)
    assert waits and 0.4 < waits[0] <= 0.5


def test_backoff_grows_with_jitter_and_honours_retry_after():
    policy = Policy(backoff_base=1, backoff_cap=100)
    assert 0.5 <= backoff(1, None, policy) <= 1
    assert 4 <= backoff(4, None, policy) <= 8
    assert backoff(20, None, policy) <= 100
    assert backoff(1, 30, policy) == 30


def test_without_limits_a_slot_is_the_whole_batch_and_no_count_is_asked():
    gate, sent = Gate(Policy()), Sent()
    with gate.reserve(500, sent) as slot:
        assert slot and slot.size == 500
        slot.use(500)
    assert sent.asked == [] and gate.in_flight == 500 and gate.busy


def test_a_quota_counts_sent_mails_and_rows_in_flight_then_pauses():
    gate, sent = Gate(Policy(hourly_quota=25), now=lambda: 10_000.0), Sent()
    with gate.reserve(10, sent) as slot:
        assert slot.size == 10
        slot.use(10)
    with gate.reserve(100, sent) as slot:
        assert slot.size == 15          # 25 - 0 sent - 10 in flight
        slot.use(15)
    assert sent.asked == [10_000.0 - 3600]      # read once, then cached
    # the first batch is recorded as sent with the next claim: in flight → sent
    sent.count = 10
    with gate.reserve(100, sent) as slot:
        assert not slot and slot.size == 0
        slot.use(0, settled=10)
    assert gate.in_flight == 15 and gate.stopped
    assert gate.pause_reason == ("the hourly quota of 25 mails is used up; "
                                 "wait until it frees up")


def test_a_cached_count_adds_every_settled_row_and_is_read_again_when_stale():
    clock = [10_000.0]
    gate, sent = Gate(Policy(hourly_quota=30), now=lambda: clock[0]), Sent()
    with gate.reserve(10, sent) as slot:
        slot.use(10)
    gate.settled(10)                     # recorded outside a claim (3 sent, 7 rejected)
    sent.count = 3
    with gate.reserve(100, sent) as slot:
        assert slot.size == 20           # cached: 0 read + 10 settled, none in flight
        slot.use(20)
    assert len(sent.asked) == 1
    clock[0] += 60                       # older than max_age: the journal is read again
    with gate.reserve(100, sent) as slot:
        assert slot.size == 7            # 30 - 3 sent - 20 in flight
    assert len(sent.asked) == 2


def test_a_cached_count_that_leaves_no_room_is_read_again_before_pausing():
    gate, sent = Gate(Policy(hourly_quota=10), now=lambda: 10_000.0), Sent()
    with gate.reserve(10, sent) as slot:
        slot.use(10)
    gate.settled(10)                     # the cached count now says 10: the quota looks full
    with gate.reserve(10, sent) as slot:
        assert slot.size == 10           # the journal, read again, says none was sent
    assert not gate.stopped and len(sent.asked) == 2


def test_the_daily_quota_holds_when_the_hourly_one_still_has_room():
    gate, sent = Gate(Policy(hourly_quota=1000, daily_quota=15)), Sent()
    sent.count = 12
    with gate.reserve(100, sent) as slot:
        assert slot.size == 3


def test_a_claim_that_finds_fewer_rows_gives_its_rate_tokens_back():
    gate = Gate(Policy(rate=10))
    with gate.reserve(500, Sent()) as slot:
        assert slot.size == 10          # never more than a full bucket
        slot.use(4)
    assert 5.9 <= gate.bucket.tokens <= 6.1


def test_a_stopped_gate_gives_an_empty_slot():
    gate = Gate(Policy())
    gate.stop.set()
    with gate.reserve(100, Sent()) as slot:
        assert not slot


def test_a_run_of_transient_failures_pauses_and_one_sent_mail_resets_it():
    gate = Gate(Policy(pause_after=3))
    gate.observe(results(Status.RETRY))
    gate.observe(results(Status.RETRY, Status.RETRY))
    gate.observe(results(Status.RETRY, Status.SENT))   # a mail left: the run starts again
    assert gate.failures == 0 and not gate.stopped
    gate.observe(results(Status.REJECTED))              # a refusal is no transient failure
    for _ in range(3):
        gate.observe(results(Status.RETRY))
    assert gate.stopped
    assert gate.pause_reason == "3 sends in a row failed for now (last answer: 451 answer)"


def test_only_the_first_pause_reason_and_the_first_error_are_kept():
    gate = Gate(Policy())
    gate.pause("first")
    gate.pause("second")
    first, second = RuntimeError("one"), RuntimeError("two")
    gate.fail(first)
    gate.fail(second)
    assert gate.pause_reason == "first" and gate.error is first


def test_a_retry_further_off_than_a_run_waits_pauses():
    gate = Gate(Policy(max_wait=300), now=lambda: 1_000.0)
    assert gate.pause_until(1_200.0) is False and not gate.stopped
    assert gate.pause_until(1_400.0) is True
    assert gate.stopped and gate.pause_reason.startswith("the next retry is not due before ")


def test_parallel_reservations_never_overshoot_a_quota():
    gate, sent = Gate(Policy(hourly_quota=100)), Sent()
    granted: list[int] = []

    def worker() -> None:
        while True:
            with gate.reserve(7, sent) as slot:
                if not slot:
                    return
                slot.use(slot.size)
                granted.append(slot.size)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sum(granted) == 100 and gate.in_flight == 100


def test_policy_from_settings_takes_the_overrides_that_are_given(send_settings):
    policy = Policy.from_settings(send_settings.with_overrides(rate=5), max_attempts=3,
                                  pause_after=None)
    assert policy.rate == 5 and policy.max_attempts == 3
    assert policy.pause_after == Policy().pause_after
    assert pacing.Policy is Policy
