"""Stay under a per-minute call limit before the server says 429.

Xero counts calls per organisation in a rolling minute and says what is left
in ``X-MinLimit-Remaining`` (shared/reference/xero-api.md §9). The pacer keeps
the times of this process's own calls per organisation and waits for the
oldest to leave the window when the limit is reached, or when the server
reports nothing left (other processes may share the budget). The latest
``X-DayLimit-Remaining`` is kept for call budgets.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Sleep a little past the window's edge: the server's clock and ours are not one.
EDGE_SECONDS = 0.05


@dataclass
class Remaining:
    """What the server last said is left of one key's quotas; None when not known."""

    minute: int | None = None
    day: int | None = None
    app_minute: int | None = None


class MinutePacer:
    """Keep each key's (organisation's) calls under a per-minute limit, and the quotas the server
    reports as left."""

    def __init__(
        self,
        per_minute: int = 60,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_minute = per_minute
        self.window_seconds = window_seconds
        self.clock = clock
        self.sleep = sleep
        self.remaining: dict[str, Remaining] = defaultdict(Remaining)
        self.waited_seconds = 0.0
        self._calls: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _trim(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - self.window_seconds:
            q.popleft()

    def before_call(self, key: str) -> None:
        """Wait, if needed, until one more call fits in the minute; then count it."""
        while True:
            with self._lock:
                now = self.clock()
                q = self._calls[key]
                self._trim(q, now)
                server_says_none = self.remaining[key].minute == 0
                if len(q) < self.per_minute and not server_says_none:
                    q.append(now)
                    return
                wait = (q[0] + self.window_seconds - now) if q else self.window_seconds
                wait = max(0.0, wait) + EDGE_SECONDS
                # The server's count will have moved on once we have waited.
                self.remaining[key].minute = None
            self.waited_seconds += wait
            self.sleep(wait)

    def after_call(self, key: str, headers: Mapping[str, str]) -> None:
        """Read the quota headers of an answer."""
        rem = self.remaining[key]
        for attr, header in (
            ("minute", "X-MinLimit-Remaining"),
            ("day", "X-DayLimit-Remaining"),
            ("app_minute", "X-AppMinLimit-Remaining"),
        ):
            value = headers.get(header)
            if value is not None and value.strip().lstrip("-").isdigit():
                setattr(rem, attr, int(value))
