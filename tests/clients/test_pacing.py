"""MinutePacer on a fake clock, checked against shared/reference/xero-api.md §9 and §8.

§9: "concurrent per tenant | 5 calls in progress"; "per tenant per minute | 60"; "headers on
every response | X-DayLimit-Remaining, X-MinLimit-Remaining, X-AppMinLimit-Remaining"; "breach |
HTTP 429 + X-Rate-Limit-Problem + Retry-After (s)"; "The minute window is rolling 60 s".
The clock moves only when the pacer (or a test's stand-in for an answer) sleeps on it.
"""

from __future__ import annotations

import random
import threading
import time
from bisect import bisect_left
from dataclasses import dataclass, field

import pytest

from recon.clients.pacing import EDGE_SECONDS, MAX_IN_FLIGHT, MinutePacer, Slot

KEY = "tenant-1"


@dataclass
class FakeTime:
    """A clock that moves only when slept on; safe to share between threads."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clock(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.slept.append(seconds)
            self.now += seconds


def pacer(per_minute: int = 60, **kw: int) -> tuple[MinutePacer, FakeTime]:
    fake = FakeTime()
    return MinutePacer(per_minute, 60.0, clock=fake.clock, sleep=fake.sleep, **kw), fake


def test_the_default_limits_are_xeros_60_a_minute_and_5_in_progress() -> None:
    p = MinutePacer()
    assert (p.per_minute, p.window_seconds, p.max_in_flight) == (60, 60.0, 5)
    assert MAX_IN_FLIGHT == 5


def test_sixty_calls_go_at_once_and_the_sixty_first_waits_for_the_first_to_leave_the_minute() -> (
    None
):
    p, fake = pacer()
    for _ in range(60):
        p.release(p.reserve(KEY), {})
    assert fake.slept == []
    start = fake.now
    p.release(p.reserve(KEY), {})
    assert fake.slept == [pytest.approx(60.0 + EDGE_SECONDS)]
    assert fake.now - start >= 60.0


def test_a_call_counts_in_the_minute_from_its_answer_not_from_its_send() -> None:
    """The server counted it on arrival, between the two: the answer's time is the safe side."""
    p, fake = pacer()
    first = p.reserve(KEY)
    fake.sleep(10.0)  # the first answer takes ten seconds
    p.release(first, {})
    for _ in range(59):
        p.release(p.reserve(KEY), {})
    fake.slept.clear()
    p.reserve(KEY)
    # The first call leaves the window 60 s after its answer (t+10), not after its send (t+0).
    assert fake.slept == [pytest.approx(60.0 + EDGE_SECONDS)]


def test_calls_in_flight_fill_the_minute_too() -> None:
    p, _fake = pacer(per_minute=3, max_in_flight=5)
    slots = [p.reserve(KEY) for _ in range(3)]
    assert p.in_flight(KEY) == 3
    waiting = threading.Thread(target=lambda: p.release(p.reserve(KEY), {}))
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive(), "a fourth call waits while three are in flight in a 3-a-minute limit"
    for s in slots:
        p.release(s, {})
    waiting.join(5)
    assert not waiting.is_alive()


def test_a_sixth_call_waits_until_one_of_five_in_progress_is_answered() -> None:
    p, _fake = pacer()
    slots = [p.reserve(KEY) for _ in range(5)]
    sixth: list[Slot] = []
    waiting = threading.Thread(target=lambda: sixth.append(p.reserve(KEY)))
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive() and not sixth
    p.release(slots[0], {})
    waiting.join(5)
    assert sixth and p.in_flight(KEY) == 5
    assert p.most_in_flight[KEY] == 5


def test_retry_after_holds_every_caller_of_the_organisation() -> None:
    p, fake = pacer()
    p.release(p.reserve(KEY), {"Retry-After": "7", "X-MinLimit-Remaining": "0"})
    p.reserve(KEY)
    assert fake.slept == [pytest.approx(7.0)], "the hold, and no second wait for the '0 left'"
    p.reserve("another-tenant")
    assert len(fake.slept) == 1, "another organisation is not held"


def test_a_retry_after_of_hours_holds_no_one() -> None:
    """A day-limit 429 (§8: "day breach Retry-After: 66975") fails fast in the client instead."""
    p, fake = pacer()
    p.release(p.reserve(KEY), {"Retry-After": "66975"})
    p.reserve(KEY)
    assert fake.slept == []


def test_when_the_server_says_nothing_is_left_the_pacer_waits_for_its_oldest_call() -> None:
    """Another process shares the organisation's minute: X-MinLimit-Remaining reaches 0 first."""
    p, fake = pacer()
    p.release(p.reserve(KEY), {"X-MinLimit-Remaining": "1", "X-DayLimit-Remaining": "4321"})
    assert p.remaining[KEY].day == 4321
    p.release(p.reserve(KEY), {})  # the last one the server had room for
    fake.slept.clear()
    p.reserve(KEY)
    assert fake.slept == [pytest.approx(60.0 + EDGE_SECONDS)]


def test_the_server_count_is_lowered_by_calls_sent_after_the_answered_one() -> None:
    p, fake = pacer()
    first = p.reserve(KEY)
    later = [p.reserve(KEY) for _ in range(2)]  # sent before the first answer came
    p.release(first, {"X-MinLimit-Remaining": "2"})
    assert p.remaining[KEY].minute == 0, "the two later calls may not have been counted yet"
    for s in later:
        p.release(s, {})
    p.reserve(KEY)
    assert fake.slept, "no call goes while the server may have no room"


def test_useful_in_flight_grows_with_the_answer_time_up_to_five() -> None:
    p, _fake = pacer()
    assert p.useful_in_flight(KEY) == 1, "nothing measured yet"
    for answer_seconds, expected in ((0.3, 1), (2.0, 4), (30.0, 5)):
        q, f = pacer()
        for _ in range(3):
            s = q.reserve(KEY)
            f.sleep(answer_seconds)
            q.release(s, {})
        assert q.useful_in_flight(KEY) == expected, answer_seconds


def test_threads_sharing_a_pacer_never_exceed_the_minute_or_five_in_flight() -> None:
    """8 threads x 40 calls, answers of 0.5-3 s, on one fake clock: in every rolling minute at
    most 60 calls were sent, and never more than 5 were in flight."""
    p, fake = pacer()
    lock = threading.Lock()
    sent: list[float] = []
    in_flight = 0
    most = 0
    rng = random.Random(17)
    answers = [rng.uniform(0.5, 3.0) for _ in range(8 * 40)]

    def worker(index: int) -> None:
        nonlocal in_flight, most
        for n in range(40):
            slot = p.reserve(KEY)
            with lock:
                sent.append(slot.sent_at)
                in_flight += 1
                most = max(most, in_flight)
            fake.sleep(answers[index * 40 + n])
            time.sleep(0.002)  # stay in flight a moment of real time, so the threads overlap
            with lock:
                in_flight -= 1
            p.release(slot, {})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert len(sent) == 320
    times = sorted(sent)
    busiest = max(i - bisect_left(times, t - 60.0 + 1e-9) + 1 for i, t in enumerate(times))
    assert busiest <= 60
    assert most <= 5 and p.most_in_flight[KEY] <= 5
    assert p.most_in_flight[KEY] >= 2, "slow answers were overlapped"
