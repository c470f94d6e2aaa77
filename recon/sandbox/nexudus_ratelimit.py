"""Nexudus' request limits, as ``shared/reference/nexudus.md`` §5 records them.

Per client: POST/PUT/DELETE at most 60 a minute and 5,000 a day; every call at
most 1 per 100 ms, 120 a minute, 5,000 an hour and 200,000 a day (§5 "Current
limits"). A call over a limit is refused and NOT processed (§5 "For recon": "a
throttled request was not processed"), and is not counted, so a retry after the
wait succeeds. ``NexudusApp`` answers the refusal: 409 with ``Retry-After`` and
an empty body (§5 "Throttled answer"), or, with ``status=429``, 429 with the
body text ``Wait N seconds`` (§5 "Also seen").

``minute_seconds`` scales every window at once (the hour is 60 "minutes", the
day 1,440, the 100 ms spacing 1/600 of a "minute"), so tests run a Nexudus
minute in a second as they do Xero's; windows read the sandbox clock.
``enabled=False`` turns the limits off.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, replace

from recon.sandbox.clock import Clock

__all__ = ["NexudusLimiter", "NexudusLimits"]

# §5 "Current limits" (NXR api-limitations, newer table). The only place these numbers live.
# ASSUMPTION (§5 names methods only): POST /api/token counts as a write too.
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})
WRITES_PER_MINUTE = 60
WRITES_PER_DAY = 5000
CALLS_PER_MINUTE = 120
CALLS_PER_HOUR = 5000
CALLS_PER_DAY = 200_000
MIN_SPACING_SECONDS = 0.1  # "every call 1 per 100 ms"
# §5 "Throttled answer": 409, kept by Nexudus "for legacy reasons"; 429 is the "Also seen" variant.
THROTTLE_STATUS = 409
MINUTE_SECONDS = 60.0


@dataclass(frozen=True)
class NexudusLimits:
    """The limits one sandbox enforces; the defaults are the real ones (§5)."""

    enabled: bool = True
    writes_per_minute: int = WRITES_PER_MINUTE
    writes_per_day: int = WRITES_PER_DAY
    calls_per_minute: int = CALLS_PER_MINUTE
    calls_per_hour: int = CALLS_PER_HOUR
    calls_per_day: int = CALLS_PER_DAY
    # The spacing every call must keep, in seconds of a real (60-second) minute; scaled below.
    min_spacing_seconds: float = MIN_SPACING_SECONDS
    # Length of a "minute" in real seconds: 60 for the real service, 1 in tests.
    minute_seconds: float = MINUTE_SECONDS
    # 409 (documented) or 429 (the "Wait N seconds" answer a 2026 client met), §5.
    status: int = THROTTLE_STATUS

    def with_(self, **changes: object) -> NexudusLimits:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def spacing(self) -> float:
        """The minimum gap between two calls of one client, in real seconds."""
        return self.min_spacing_seconds * self.minute_seconds / MINUTE_SECONDS


class NexudusLimiter:
    """Counts calls per client on the sandbox clock and decides whether one may go ahead."""

    def __init__(self, clock: Clock, limits: NexudusLimits | None = None) -> None:
        self.clock = clock
        self.limits = limits or NexudusLimits()
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = defaultdict(deque)  # last day of calls
        self._writes: dict[str, deque[float]] = defaultdict(deque)  # last day of writes

    def reset(self) -> None:
        """Forget every counted call: every limit starts afresh."""
        with self._lock:
            self._calls.clear()
            self._writes.clear()

    def admit(self, client: str, method: str) -> int:
        """Count one call and return 0, or refuse it and return the whole seconds to wait (>= 1)."""
        lim = self.limits
        if not lim.enabled:
            return 0
        minute = lim.minute_seconds
        hour, day = 60 * minute, 1440 * minute
        is_write = method.upper() in WRITE_METHODS
        with self._lock:
            now = self.clock.monotonic()
            calls, writes = self._calls[client], self._writes[client]
            for q in (calls, writes):
                while q and q[0] <= now - day:
                    q.popleft()
            waits = [
                _wait(calls, now, minute, lim.calls_per_minute),
                _wait(calls, now, hour, lim.calls_per_hour),
                _wait(calls, now, day, lim.calls_per_day),
            ]
            if is_write:
                waits += [
                    _wait(writes, now, minute, lim.writes_per_minute),
                    _wait(writes, now, day, lim.writes_per_day),
                ]
            if calls and now - calls[-1] < lim.spacing:
                waits.append(calls[-1] + lim.spacing - now)
            wait = max(waits)
            if wait > 0:
                # Retry-After is whole seconds (§5): round up, never 0. ASSUMPTION: also with a
                # scaled minute (a test may wait longer than its "minute" asks).
                return max(1, math.ceil(wait))
            calls.append(now)
            if is_write:
                writes.append(now)
            return 0


def _wait(q: deque[float], now: float, window: float, limit: int) -> float:
    """Seconds until one more call fits ``limit`` per ``window`` (0: now); ``q`` oldest first."""
    if limit <= 0:
        return window
    if len(q) < limit:
        return 0.0
    # After the limit-th newest call leaves the window, only limit - 1 remain in it.
    return max(0.0, q[-limit] + window - now)
