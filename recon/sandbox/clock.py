"""The sandbox's settable clock: real time plus an offset tests can move.

Token expiry, rate-limit windows and ``UpdatedDateUTC`` all read this clock,
so a test can jump 31 minutes ahead to expire a token, or a day ahead to reset
the daily limit, without sleeping.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class Clock:
    """Sandbox time: real time plus an offset that only moves forward."""

    def __init__(self, offset: float = 0.0) -> None:
        self._offset = offset
        self._lock = threading.Lock()

    def time(self) -> float:
        """Seconds since the epoch, sandbox time."""
        return time.time() + self._offset

    def monotonic(self) -> float:
        """Monotonic seconds, moved forward by the same offset."""
        return time.monotonic() + self._offset

    def now(self) -> datetime:
        """Sandbox time now, as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), tz=UTC)

    def advance(self, seconds: float) -> None:
        """Move sandbox time forward (never back: windows and expiries only grow)."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += seconds
