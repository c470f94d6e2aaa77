"""Xero's rate limits, as the real API applies them (shared/reference/xero-api.md §9).

Per tenant: 5 calls in progress, 60 per rolling minute, 5,000 per day; per app:
10,000 per minute across tenants. Every answer carries ``X-DayLimit-Remaining``,
``X-MinLimit-Remaining`` and ``X-AppMinLimit-Remaining``; a breach is a 429 with
``Retry-After`` (whole seconds) and ``X-Rate-Limit-Problem``
(``minute``/``day`` observed; ``concurrent``/``appminute`` UNVERIFIED).

The window lengths are settable so tests and benchmarks can run a "minute" in
a second; they read the sandbox clock. The day window is rolling
(UNVERIFIED: the reference notes it may be a fixed per-tenant window).
A refused (429) call is not counted, as a retry after ``Retry-After`` must succeed.
A sixth call while five are in progress is refused with ``X-Rate-Limit-Problem:
concurrent`` and ``Retry-After: 1`` (§8: the value and the wait are UNVERIFIED; the
name follows Xero's documented "concurrent limit", and a call in progress usually
ends within a second).

``Latency`` models how long Xero takes to answer, so a client's pacing is measured against the
sandbox and not against how fast the sandbox is: ``XERO_LATENCY`` (the real service's, as far as
it is known) unless told otherwise. Tests and the demo turn it off explicitly. Where the choice is
made, first to last: ``RECON_SANDBOX_XERO_LATENCY`` when set and not empty (the operator's
override), then the latency the sandbox was started with, then ``DEFAULT_LATENCY``
(``latency_from_env``).
"""

from __future__ import annotations

import math
import os
import threading
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, replace

from recon.sandbox.clock import Clock


@dataclass(frozen=True)
class RateLimits:
    """The limits one sandbox enforces (the real ones by default) and its window lengths in real
    seconds."""

    concurrent: int = 5
    per_minute: int = 60
    per_day: int = 5000
    app_per_minute: int = 10_000
    minute_seconds: float = 60.0
    day_seconds: float = 86_400.0

    def with_(self, **changes: float) -> RateLimits:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Latency:
    """How long the sandbox takes to answer an accounting call it admitted: ``per_call`` seconds,
    plus ``per_element`` seconds for each element of a write's body. The call is in progress
    (counts against the concurrent limit) for that long, or for as long as the work takes if that
    is longer."""

    per_call: float = 0.0
    per_element: float = 0.0

    def seconds(self, elements: int) -> float:
        """The answer time of a call carrying ``elements`` elements (0 for a read)."""
        return max(0.0, self.per_call + self.per_element * elements)

    def scaled(self, factor: float) -> Latency:
        """The same model on a clock ``factor`` times as fast (e.g. a 6-second "minute": 0.1)."""
        return Latency(self.per_call * factor, self.per_element * factor)


NO_LATENCY = Latency()
# ASSUMPTION (xero-api.md is silent on answer times; §9 gives only the limits): about 0.3 s for any
# call and 20 ms more per element written, so a read answers in ~0.3 s and a PUT of 50 invoices in
# ~1.3 s, in the range integrators report for api.xero.com (0.5-1.5 s for a batch of 50).
XERO_LATENCY = Latency(per_call=0.3, per_element=0.02)
# ASSUMPTION (xero-api.md §9 is silent on answer times): the sandbox answers as slowly as the real
# Xero unless told otherwise (issue 17), so that a client paced against it (5 calls in progress, 60
# a minute) meets the same answer times it will meet at api.xero.com. The tests and the demo say
# "off" themselves (tests/conftest.py, params/demo.yaml).
DEFAULT_LATENCY = XERO_LATENCY
# The operator's override, which wins over the latency a sandbox is started with: unset or ""
# -> that latency (DEFAULT_LATENCY if none); "off" (or "0", "none") -> none; "xero" ->
# XERO_LATENCY; "<per_call>,<per_element>" in seconds.
LATENCY_ENV = "RECON_SANDBOX_XERO_LATENCY"


def parse_latency(text: str) -> Latency:
    """The latency ``text`` names: ``off`` (or ``0``, ``none``), ``xero``, or
    ``<per_call>,<per_element>`` seconds; ValueError when it names none."""
    value = text.strip().lower()
    if value in ("0", "off", "none"):
        return NO_LATENCY
    if value == "xero":
        return XERO_LATENCY
    per_call, _, per_element = value.partition(",")
    try:
        seconds = (float(per_call), float(per_element or 0))
    except ValueError:
        seconds = (math.nan, math.nan)
    if not all(math.isfinite(s) and s >= 0 for s in seconds):
        raise ValueError(f"{text!r}: use 'off', 'xero' or '<per_call>,<per_element>' seconds")
    return Latency(*seconds)


def latency_from_env(
    environ: Mapping[str, str] | None = None, *, default: Latency = DEFAULT_LATENCY
) -> Latency:
    """The latency ``RECON_SANDBOX_XERO_LATENCY`` asks for, or ``default`` when it is unset or
    empty (see ``LATENCY_ENV``); ValueError naming the variable when it is malformed."""
    value = (os.environ if environ is None else environ).get(LATENCY_ENV, "").strip()
    if not value:
        return default
    try:
        return parse_latency(value)
    except ValueError as exc:
        raise ValueError(f"{LATENCY_ENV}={exc}") from None


@dataclass(frozen=True)
class Admission:
    """The outcome of asking to make one call."""

    allowed: bool
    headers: dict[str, str]
    retry_after: int = 0
    problem: str = ""


class RateLimiter:
    """Counts calls per tenant and per app and decides whether one may go ahead."""

    def __init__(self, clock: Clock, limits: RateLimits | None = None) -> None:
        self.clock = clock
        self.limits = limits or RateLimits()
        self._lock = threading.Lock()
        self._minute: dict[str, deque[float]] = defaultdict(deque)
        self._day: dict[str, deque[float]] = defaultdict(deque)
        self._app: dict[str, deque[float]] = defaultdict(deque)
        self._in_flight: dict[str, int] = defaultdict(int)

    def reset(self) -> None:
        """Forget every counted call and every call in progress: every limit starts afresh."""
        with self._lock:
            self._minute.clear()
            self._day.clear()
            self._app.clear()
            self._in_flight.clear()

    @staticmethod
    def _trim(q: deque[float], now: float, window: float) -> None:
        while q and q[0] <= now - window:
            q.popleft()

    def _remaining(self, tenant: str, app: str) -> dict[str, str]:
        lim = self.limits
        return {
            "X-DayLimit-Remaining": str(max(0, lim.per_day - len(self._day[tenant]))),
            "X-MinLimit-Remaining": str(max(0, lim.per_minute - len(self._minute[tenant]))),
            "X-AppMinLimit-Remaining": str(max(0, lim.app_per_minute - len(self._app[app]))),
        }

    def _wait(self, q: deque[float], now: float, window: float) -> int:
        return max(1, math.ceil(q[0] + window - now)) if q else 1

    def admit(self, tenant: str, app: str) -> Admission:
        """Count one call, or refuse it with the limit that was hit."""
        lim = self.limits
        with self._lock:
            now = self.clock.monotonic()
            minute, day, app_q = self._minute[tenant], self._day[tenant], self._app[app]
            self._trim(minute, now, lim.minute_seconds)
            self._trim(day, now, lim.day_seconds)
            self._trim(app_q, now, lim.minute_seconds)
            problem, retry = "", 0
            if len(day) >= lim.per_day:
                problem, retry = "day", self._wait(day, now, lim.day_seconds)
            elif len(app_q) >= lim.app_per_minute:
                problem, retry = "appminute", self._wait(app_q, now, lim.minute_seconds)
            elif len(minute) >= lim.per_minute:
                problem, retry = "minute", self._wait(minute, now, lim.minute_seconds)
            elif self._in_flight[tenant] >= lim.concurrent:
                problem, retry = "concurrent", 1
            if problem:
                return Admission(False, self._remaining(tenant, app), retry, problem)
            minute.append(now)
            day.append(now)
            app_q.append(now)
            self._in_flight[tenant] += 1
            return Admission(True, self._remaining(tenant, app))

    def release(self, tenant: str) -> None:
        """The admitted call has finished (ends its 'in progress' slot)."""
        with self._lock:
            self._in_flight[tenant] = max(0, self._in_flight[tenant] - 1)

    def headers(self, tenant: str, app: str) -> dict[str, str]:
        """The ``X-*Limit-Remaining`` headers of a tenant and app as they stand now."""
        with self._lock:
            return self._remaining(tenant, app)
