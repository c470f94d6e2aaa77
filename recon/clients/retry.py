"""When and how long to wait before calling again: one policy for both clients.

Retry only what is safe: reads always; writes only when they carry an
idempotency key (the server replays the first answer) or never reached the
server. Waits honour ``Retry-After``; otherwise capped exponential backoff with
jitter. ``sleep`` and ``jitter`` are attributes so tests can pin them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass
class RetryPolicy:
    """How many times to retry, and the longest single wait recon accepts."""

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    # A Retry-After longer than this (e.g. Xero's day limit, hours away) is not waited out.
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    jitter: Callable[[], float] = field(default=random.random, repr=False)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based), without a Retry-After."""
        delay = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return float(delay * (0.5 + 0.5 * self.jitter()))

    @staticmethod
    def retry_after(value: str | None) -> float | None:
        """Seconds from a Retry-After header (delta-seconds; an HTTP date is read too)."""
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                return None
