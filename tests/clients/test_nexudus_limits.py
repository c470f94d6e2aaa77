"""NexudusPacer and throttle_wait on a fake clock, checked against nexudus.md §5.

§5 "Current limits": "POST/PUT/DELETE 60/min and 5000/day; every call 1 per 100 ms,
120/min, 5000/hour"; "Throttled answer": "409 ... `Retry-After` in seconds"; "Also
seen": "429 with the wait in the body text ("Wait N seconds")"; §13 "handle both,
Retry-After first, then "Wait N seconds", then backoff".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from recon.clients.nexudus_limits import (
    THROTTLE_STATUSES,
    NexudusLimits,
    NexudusPacer,
    throttle_wait,
)


@dataclass
class FakeTime:
    """A clock that moves only when slept on."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def pacer(**limits: Any) -> tuple[NexudusPacer, FakeTime]:
    fake = FakeTime()
    return NexudusPacer(NexudusLimits(**limits), clock=fake.clock, sleep=fake.sleep), fake


def call(p: NexudusPacer, is_write: bool = False) -> None:
    p.after_call(p.before_call(is_write))


def test_the_default_limits_are_the_documented_ones() -> None:
    """§5 "Current limits" (the daily ones are far above one run)."""
    limits = NexudusLimits()
    assert (limits.calls_per_minute, limits.writes_per_minute, limits.calls_per_hour) == (
        120,
        60,
        5000,
    )
    assert limits.min_interval_seconds == 0.1 and limits.minute_seconds == 60.0
    assert limits.spacing == pytest.approx(0.1)
    assert set(THROTTLE_STATUSES) == {409, 429}


def test_a_shorter_minute_shrinks_the_100_ms_spacing_with_it() -> None:
    assert NexudusLimits(minute_seconds=0.6).spacing == pytest.approx(0.001)


def test_calls_are_spaced_100_ms_apart() -> None:
    """§5: "every call 1 per 100 ms"."""
    p, fake = pacer()
    call(p)
    call(p)
    call(p)
    assert fake.slept == [pytest.approx(0.1), pytest.approx(0.1)]


def test_the_121st_call_of_a_minute_waits_for_the_first_to_leave_the_window() -> None:
    """§5: "120/min"."""
    p, fake = pacer(min_interval_seconds=0.0)
    for _ in range(120):
        call(p)
    assert fake.slept == []
    call(p)
    assert sum(fake.slept) == pytest.approx(60.0)
    assert p.waited == pytest.approx(60.0)


def test_the_61st_write_of_a_minute_waits_while_a_read_does_not() -> None:
    """§5: "POST/PUT/DELETE 60/min"."""
    p, fake = pacer(min_interval_seconds=0.0)
    for _ in range(60):
        call(p, is_write=True)
    call(p)  # a read still fits the 120 calls
    assert fake.slept == []
    call(p, is_write=True)
    assert sum(fake.slept) == pytest.approx(60.0)


def test_the_hour_limit_holds_a_call_back_an_hour() -> None:
    """§5: "5000/hour" (three here, for a short test)."""
    p, fake = pacer(min_interval_seconds=0.0, calls_per_hour=3)
    for _ in range(3):
        call(p)
    call(p)
    assert sum(fake.slept) == pytest.approx(3600.0)


def test_a_call_counts_from_when_its_answer_came() -> None:
    """Nexudus counts a call when it arrives, no later than the answer: the window is
    never shorter on recon's side."""
    p, fake = pacer(min_interval_seconds=0.0, calls_per_minute=1)
    booking = p.before_call(False)
    fake.now += 5.0  # a slow answer
    p.after_call(booking)
    call(p)
    assert sum(fake.slept) == pytest.approx(60.0)
    assert fake.now == pytest.approx(1065.0)


def test_hold_off_keeps_the_next_call_back_for_the_wait_nexudus_asked() -> None:
    """§5 "Throttled answer": "`Retry-After` in seconds"."""
    p, fake = pacer()
    p.hold_off(2.0)
    call(p)
    assert sum(fake.slept) == pytest.approx(2.0)
    call(p)  # then the usual spacing
    assert fake.slept[-1] == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("retry_after", "body", "wait"),
    [
        ("3", "", 3.0),
        ("1.5", "Wait 9 seconds", 1.5),
        (None, "Wait 5 seconds", 5.0),
        ("", "Please wait 7 seconds before trying again.", 7.0),
        ("soon", "Wait 4 seconds", 4.0),
        ("-2", "", 0.0),
        (None, "", None),
        (None, "You must wait before accessing this url again.", None),
    ],
)
def test_throttle_wait_reads_retry_after_first_then_wait_n_seconds(
    retry_after: str | None, body: str, wait: float | None
) -> None:
    """§13: "Retry-After first, then "Wait N seconds", then backoff" (None: back off)."""
    assert throttle_wait(retry_after, body) == wait
