"""Nexudus' request limits: pacing under them, and reading a throttled answer's wait.

Nexudus throttles with **409 Conflict** and ``Retry-After`` (kept for legacy
reasons), and a 2026 client met a 429 whose body says "Wait N seconds"
(nexudus.md §5). The documented limits are per client: writes (POST, PUT,
DELETE) 60 a minute; every call at most one per 100 ms, 120 a minute and 5,000
an hour (the daily limits are far above what one run makes).
``NexudusPacer`` keeps recon under them before a call is sent, so a throttled
answer is the exception, not the pace; ``throttle_wait`` reads how long to wait
when one comes anyway (``Retry-After`` first, then the body's wait).

Floor 1: imports nothing of recon.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["THROTTLE_STATUSES", "NexudusLimits", "NexudusPacer", "throttle_wait"]

# 409 is Nexudus' documented throttle answer; 429 was met in 2026 (nexudus.md §5, §13).
THROTTLE_STATUSES = frozenset({409, 429})
_WAIT_IN_BODY = re.compile(r"wait\s+(\d+(?:\.\d+)?)\s*second", re.IGNORECASE)


@dataclass(frozen=True)
class NexudusLimits:
    """The limits recon paces to (nexudus.md §5, "Current limits").

    ``minute_seconds`` is how long a "minute" lasts: 60 against the real
    service; the embedded sandbox can shrink it so tests need not wait a minute.
    The 100 ms spacing shrinks with it.
    """

    calls_per_minute: int = 120
    calls_per_hour: int = 5000
    writes_per_minute: int = 60
    min_interval_seconds: float = 0.1
    minute_seconds: float = 60.0

    @property
    def spacing(self) -> float:
        """Seconds between two calls (the 1-per-100-ms rule, scaled with the minute)."""
        return self.min_interval_seconds * self.minute_seconds / 60.0


@dataclass
class NexudusPacer:
    """Waits before a call until it fits every limit, then books its slot.

    A slot is booked before the call is sent and moved to the moment the answer
    comes (``after_call``): Nexudus counts a call when it arrives, which is no later
    than that, so recon's window is never shorter than Nexudus'.
    """

    limits: NexudusLimits = field(default_factory=NexudusLimits)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    waited: float = 0.0
    _hour: deque[float] = field(default_factory=deque, repr=False)  # the last hour's calls
    _calls: deque[float] = field(default_factory=deque, repr=False)  # the last minute's calls
    _writes: deque[float] = field(default_factory=deque, repr=False)  # the last minute's writes
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def before_call(self, is_write: bool) -> float:
        """Block until one more call (a write if ``is_write``) fits the limits, then book it.

        Returns the booking, for ``after_call``.
        """
        with self._lock:
            while True:
                wait = self._wait_needed(is_write)
                if wait <= 0:
                    break
                self.waited += wait
                self.sleep(wait)
            now = self.clock()
            self._hour.append(now)
            self._calls.append(now)
            if is_write:
                self._writes.append(now)
            return now

    def after_call(self, booking: float) -> None:
        """The answer came: the call counts from now, the latest moment Nexudus can have
        counted it, so a window never closes on our side before it does on Nexudus'."""
        with self._lock:
            now = self.clock()
            for window in (self._hour, self._calls, self._writes):
                for i in range(len(window) - 1, -1, -1):  # the booking is near the end
                    stamp = window[i]
                    if stamp == booking:
                        window[i] = now
                        break

    def hold_off(self, seconds: float) -> None:
        """Nexudus said to wait: no call of this client goes out before ``seconds`` from now."""
        with self._lock:
            # A marker call booked in the future: the spacing rule holds every call back to it.
            self._calls.append(self.clock() + max(0.0, seconds) - self.limits.spacing)

    def _wait_needed(self, is_write: bool) -> float:
        now = self.clock()
        minute = self.limits.minute_seconds
        for window, length in (
            (self._hour, 60 * minute),
            (self._calls, minute),
            (self._writes, minute),
        ):
            while window and window[0] <= now - length:
                window.popleft()
        waits = [0.0]
        if self._calls:
            waits.append(max(self._calls) + self.limits.spacing - now)
        if len(self._hour) >= self.limits.calls_per_hour:
            waits.append(self._hour[0] + 60 * minute - now)
        if len(self._calls) >= self.limits.calls_per_minute:
            waits.append(self._calls[0] + minute - now)
        if is_write and len(self._writes) >= self.limits.writes_per_minute:
            waits.append(self._writes[0] + minute - now)
        return max(waits)


def throttle_wait(retry_after: str | None, body: str) -> float | None:
    """Seconds a throttled answer asks for: ``Retry-After``, else "Wait N seconds" in the body.

    None when neither says (the caller backs off). nexudus.md §5, §13: "handle
    both, Retry-After first, then 'Wait N seconds', then backoff".
    """
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
    found = _WAIT_IN_BODY.search(body or "")
    return float(found.group(1)) if found else None
