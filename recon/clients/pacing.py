"""Stay under Xero's per-minute and concurrent-call limits before the server says 429.

Xero counts calls per organisation in a rolling minute and allows 5 in progress at
once (shared/reference/xero-api.md §9: "concurrent per tenant | 5 calls in
progress", "per tenant per minute | 60"). The pacer is shared by every thread of a
client and works per key (organisation):

- ``reserve`` takes a slot before a call is sent: it waits while the minute's
  window is full (answered calls of the last minute plus calls in flight), while
  ``max_in_flight`` calls are in progress, while a ``Retry-After`` holds the key,
  or while the server's ``X-MinLimit-Remaining`` says nothing is left (other
  processes may share the budget);
- ``release`` gives the slot back on the answer (or on a call that got none) and
  stamps the call with the answer's time: the server counted it on arrival, which
  is never later, so a call leaves recon's window no sooner than the server's.

It also measures how long answers take (``answer_seconds``) so a caller can tell
how many calls in flight keep up with the limit (``useful_in_flight``); the latest
``X-DayLimit-Remaining`` is kept for call budgets.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Sleep a little past the window's edge: the server's clock and ours are not one.
EDGE_SECONDS = 0.05
# xero-api.md §9: 5 calls in progress per tenant.
MAX_IN_FLIGHT = 5
# A Retry-After longer than this (Xero's day limit, hours away) holds no one: the calls fail fast.
MAX_HOLD_SECONDS = 120.0
# Weight of the newest answer time in the running mean ``answer_seconds``.
ANSWER_WEIGHT = 0.3


@dataclass
class Remaining:
    """What the server last said is left of one key's quotas; None when not known."""

    minute: int | None = None
    day: int | None = None
    app_minute: int | None = None


@dataclass(frozen=True)
class Slot:
    """One reserved call: its key, when it was sent and its place in the key's send order."""

    key: str
    sent_at: float
    seq: int


class MinutePacer:
    """Keep each key's (organisation's) calls under a per-minute limit and a limit of calls in
    flight, and the quotas the server reports as left. Thread-safe."""

    def __init__(
        self,
        per_minute: int = 60,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.per_minute = per_minute
        self.window_seconds = window_seconds
        self.clock = clock
        self.sleep = sleep
        self.max_in_flight = max_in_flight
        self.remaining: dict[str, Remaining] = defaultdict(Remaining)
        self.waited_seconds = 0.0
        self.answer_seconds: dict[str, float] = {}
        self.most_in_flight: dict[str, int] = defaultdict(int)
        self._answered: dict[str, deque[float]] = defaultdict(deque)
        self._in_flight: dict[str, int] = defaultdict(int)
        self._hold_until: dict[str, float] = defaultdict(float)
        self._seq: dict[str, itertools.count[int]] = defaultdict(itertools.count)
        self._last_seq: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._released = threading.Condition(self._lock)

    # ---- what a caller asks ------------------------------------------------------------------
    def in_flight(self, key: str) -> int:
        """Calls of ``key`` sent and not yet answered."""
        with self._lock:
            return self._in_flight[key]

    def useful_in_flight(self, key: str) -> int:
        """How many calls in flight keep ``key`` at its limit: one while an answer takes less than
        the minute's share of a call (window / limit), more as answers slow down, at most
        ``max_in_flight``. Calls beyond the limit only wait in the pacer."""
        with self._lock:
            answer = self.answer_seconds.get(key)
        share = self.window_seconds / max(1, self.per_minute)
        if answer is None or answer <= share:
            return 1
        # Twice the bare need: recon's own work between a call's answer and the next send counts
        # too, and a spare call in flight only waits in the pacer.
        return max(1, min(self.max_in_flight, math.ceil(2 * answer / share)))

    # ---- reserve and release -----------------------------------------------------------------
    def reserve(self, key: str) -> Slot:
        """Wait until one more call of ``key`` fits the minute, the calls in flight and any
        ``Retry-After``; then take its slot. Give it back with ``release``."""
        with self._released:
            while True:
                now = self.clock()
                wait = self._wait(key, now)
                if wait == 0.0:
                    break
                if wait is None:
                    self._released.wait()  # an answer frees a slot (release notifies)
                    continue
                self.waited_seconds += wait
                self._released.release()
                try:
                    self.sleep(wait)
                finally:
                    self._released.acquire()
            self._in_flight[key] += 1
            self.most_in_flight[key] = max(self.most_in_flight[key], self._in_flight[key])
            rem = self.remaining[key]
            if rem.minute is not None:
                rem.minute -= 1
            seq = next(self._seq[key])
            self._last_seq[key] = seq
            return Slot(key, now, seq)

    def release(self, slot: Slot, headers: Mapping[str, str] | None = None) -> None:
        """The call of ``slot`` is over (answered with ``headers``, or not answered at all): stamp
        it in the window, read the quota headers and any ``Retry-After``, free its slot."""
        with self._released:
            now = self.clock()
            key = slot.key
            self._in_flight[key] = max(0, self._in_flight[key] - 1)
            self._answered[key].append(now)
            took = max(0.0, now - slot.sent_at)
            before = self.answer_seconds.get(key)
            self.answer_seconds[key] = (
                took if before is None else before + ANSWER_WEIGHT * (took - before)
            )
            if headers is not None:
                self._read_headers(slot, headers, now)
            self._released.notify_all()

    # ---- inside the lock -----------------------------------------------------------------------
    def _wait(self, key: str, now: float) -> float | None:
        """0.0: a call may go now; seconds to sleep first; None: wait for an answer."""
        held = self._hold_until[key] - now
        if held > 0:
            return held
        if self._in_flight[key] >= self.max_in_flight:
            return None
        answered = self._answered[key]
        while answered and answered[0] <= now - self.window_seconds:
            answered.popleft()
        oldest_leaves = answered[0] + self.window_seconds - now + EDGE_SECONDS if answered else None
        if len(answered) + self._in_flight[key] >= self.per_minute:
            return oldest_leaves  # None: the whole minute is in flight; its answers come first
        rem = self.remaining[key]
        if rem.minute is not None and rem.minute <= 0:
            # The server says nothing is left (another process shares the budget): its count has
            # moved on once recon's oldest call has left the window, or after a whole window.
            rem.minute = None
            return max(EDGE_SECONDS, oldest_leaves or self.window_seconds)
        return 0.0

    def _read_headers(self, slot: Slot, headers: Mapping[str, str], now: float) -> None:
        rem = self.remaining[slot.key]
        for attr, header in (
            ("minute", "X-MinLimit-Remaining"),
            ("day", "X-DayLimit-Remaining"),
            ("app_minute", "X-AppMinLimit-Remaining"),
        ):
            value = _integer(headers.get(header))
            if value is not None:
                setattr(rem, attr, value)
        if rem.minute is not None:
            # Calls sent after this one may not have reached the server when it counted.
            rem.minute -= self._last_seq[slot.key] - slot.seq
        retry_after = _seconds(headers.get("Retry-After"))
        if retry_after is not None and retry_after <= MAX_HOLD_SECONDS:
            # Retry-After says when the server has room again: every thread of the key waits that
            # long, and the server's "0 left" adds no wait on top.
            self._hold_until[slot.key] = max(self._hold_until[slot.key], now + retry_after)
            rem.minute = None


def _integer(value: str | None) -> int | None:
    if value is None or not value.strip().lstrip("-").isdigit():
        return None
    return int(value)


def _seconds(value: str | None) -> float | None:
    """Retry-After in delta-seconds (an HTTP date is read by RetryPolicy; here it is ignored)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
