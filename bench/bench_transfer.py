"""How close does a push come to Xero's rate-limit ceiling, and how many calls does a transfer cost?

Starts a fresh sandbox scaled to ``--invoices`` Nexudus invoices (Hive
Shoreditch gets most of them) with Xero's real per-organisation limit (60
calls a minute) but a short "minute" of ``--minute-seconds``, then runs
``plan_transfer`` and ``push`` as a scheduled run does (one after the other,
no pause; ``--pause`` waits a minute first, as a person reviewing the preview
would) and prints:

- invoices created; Xero calls per phase, reads and writes, per endpoint, and
  per 1,000 invoices; the minimum the batch size forces;
- the push's Xero rate in calls and invoices per sandbox-minute against the
  ceiling (60 calls x 50 invoices = 3,000 invoices a minute);
- what bounds it: the rate limit (the pacer waits) or the time each call takes
  (one batch at a time cannot go faster than one call per call-duration);
- 429s seen by the client (an httpx response hook on its connection) and
  refusals counted inside the sandbox's limiter, and the most calls the
  sandbox admitted in any one window (must be at most 60).

The sandbox answers as slowly as Xero (``--latency xero``: 0.3 s a call + 20 ms
an element, scaled with the minute), so the bench measures pacing, not the
sandbox. Issue 17's target: a 5,000-invoice transfer at >= 95 % of 60 calls a
minute with no 429, using up to 5 calls in flight: ``--invoices 5000
--minute-seconds 60`` (about three minutes); ``--max-in-flight 1`` sends one
batch at a time, as recon did before.

Also printed: the sustained rate (the mean count of calls the sandbox admitted
in the minute before each call, from the push's second minute on: what a
full minute allows is 60), the most calls in progress at once (sandbox side)
and the concurrent-limit refusals.

Run: ``.venv/bin/python bench/bench_transfer.py [--invoices 5000] [--minute-seconds 60]
[--latency xero|off|<per_call>,<per_element>] [--max-in-flight 5] [--pause]``
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from statistics import mean
from typing import Any

import httpx

from recon.clients.xero import BATCH_SIZE
from recon.ledger import Ledger
from recon.params import load_params
from recon.sandbox import RateLimits, parse_latency, start
from recon.session import connect, register_sandbox
from recon.transfer import plan_transfer, push

ROOT = Path(__file__).resolve().parent.parent
PER_MINUTE = 60  # Xero: calls per organisation per minute


@dataclass
class Call:
    started: float
    ended: float
    method: str
    endpoint: str
    status: int

    @property
    def is_write(self) -> bool:
        return self.method not in ("GET", "HEAD")


@dataclass
class CallLog:
    """Every Xero accounting call the client made (token calls are not paced or limited per
    organisation)."""

    api_url: str
    calls: list[Call] = field(default_factory=list)
    _started: dict[int, float] = field(default_factory=dict)

    def on_request(self, request: httpx.Request) -> None:
        self._started[id(request)] = time.monotonic()

    def on_response(self, response: httpx.Response) -> None:
        url = str(response.request.url)
        if not url.startswith(self.api_url):
            return
        endpoint = url[len(self.api_url) :].split("?")[0].strip("/").split("/")[0]
        self.calls.append(
            Call(
                self._started.pop(id(response.request), time.monotonic()),
                time.monotonic(),
                response.request.method,
                endpoint,
                response.status_code,
            )
        )

    def between(self, start: float, end: float) -> list[Call]:
        return [c for c in self.calls if start <= c.started < end]


class AdmissionCounter:
    """Wraps the sandbox limiter's ``admit``: admitted call times and refusals by problem, server
    side."""

    def __init__(self, admit: Callable[..., Any], release: Callable[[str], None]) -> None:
        self._admit = admit
        self._release = release
        self._lock = threading.Lock()
        self.admitted: list[float] = []
        self.refused: Counter[str] = Counter()
        self.in_progress = 0
        self.most_in_progress = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        admission = self._admit(*args, **kwargs)
        with self._lock:
            if admission.allowed:
                self.admitted.append(time.monotonic())
                self.in_progress += 1
                self.most_in_progress = max(self.most_in_progress, self.in_progress)
            else:
                self.refused[admission.problem] += 1
        return admission

    def release(self, tenant: str) -> None:
        """The sandbox's end of a call in progress."""
        with self._lock:
            self.in_progress -= 1
        self._release(tenant)

    def sustained_per_window(self, start: float, end: float, seconds: float) -> float | None:
        """The mean count of calls admitted in the window before each call admitted between
        ``start + seconds`` and ``end`` (None when the span is under one window)."""
        times = sorted(t for t in self.admitted if start <= t <= end)
        counts = [
            i - bisect_left(times, t - seconds + 1e-9) + 1
            for i, t in enumerate(times)
            if t >= start + seconds
        ]
        return mean(counts) if counts else None

    def busiest_window(self, seconds: float) -> int:
        """The most calls admitted in any window of ``seconds`` (what the limit caps)."""
        times = sorted(self.admitted)
        return max(
            (i - bisect_left(times, t - seconds + 1e-9) + 1 for i, t in enumerate(times)), default=0
        )


def perfect_pacer_seconds(
    history: list[Call], calls: list[Call], sleeps: list[tuple[float, float]], minute: float
) -> float:
    """How long ``calls`` would have taken with a pacer that never waits a moment longer than the
    limit needs.

    Each call keeps its measured duration and the client's own work before it
    (its gap minus any pacer wait in that gap); it starts as soon as that work
    is done and the call 60 places earlier (``history`` included) is a minute old.
    """
    starts = [c.started for c in history]
    end = calls[0].started
    for i, call in enumerate(calls):
        if i:
            gap = call.started - calls[i - 1].ended
            waited = sum(s for at, s in sleeps if calls[i - 1].ended <= at < call.started)
            end += max(0.0, gap - waited)
        begin = max(end, starts[-PER_MINUTE] + minute) if len(starts) >= PER_MINUTE else end
        starts.append(begin)
        end = begin + (call.ended - call.started)
    return end - calls[0].started


def split(calls: list[Call]) -> str:
    """'117 (53 reads, 64 writes: GET Invoices 49 x 40 ms, ...)': count and mean duration per
    endpoint."""
    reads = sum(not c.is_write for c in calls)
    by_endpoint: dict[str, list[float]] = {}
    for c in calls:
        by_endpoint.setdefault(f"{c.method} {c.endpoint}", []).append(c.ended - c.started)
    detail = ", ".join(
        f"{k} {len(v)} x {mean(v) * 1000:.0f} ms" for k, v in sorted(by_endpoint.items())
    )
    return f"{len(calls)} ({reads} reads, {len(calls) - reads} writes: {detail})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--invoices", type=int, default=3000, help="Nexudus invoices in the sandbox (all locations)"
    )
    parser.add_argument(
        "--minute-seconds",
        type=float,
        default=60.0,
        help="how long the sandbox's rate-limit minute lasts",
    )
    parser.add_argument(
        "--pause", action="store_true", help="wait one sandbox-minute between plan and push"
    )
    parser.add_argument(
        "--latency",
        default="xero",
        help="the sandbox's answer time: xero (0.3 s + 20 ms an element, the default), off, or "
        "a,b seconds (scaled by minute-seconds / 60)",
    )
    parser.add_argument(
        "--max-in-flight", type=int, default=5, help="calls the client keeps in flight at most"
    )
    args = parser.parse_args(argv)
    minute = args.minute_seconds
    latency = parse_latency(args.latency).scaled(minute / 60)

    t0 = time.perf_counter()
    state = Path(tempfile.mkdtemp(prefix="recon-bench-transfer-"))
    box = start(
        state / "sandbox",
        invoices=args.invoices,
        limits=RateLimits(per_minute=PER_MINUTE, minute_seconds=minute),
    )
    register_sandbox(box)
    admissions = AdmissionCounter(box.xero.limiter.admit, box.xero.limiter.release)
    box.xero.limiter.admit = admissions  # type: ignore[method-assign]
    box.xero.limiter.release = admissions.release  # type: ignore[method-assign]
    box.xero.latency = latency  # --latency decides, whatever RECON_SANDBOX_XERO_LATENCY says
    params = load_params(ROOT / "params" / "demo.yaml").with_overrides(
        sandbox_dir=str(box.state_dir), location="Hive Shoreditch", output_dir=str(state / "out")
    )
    log: CallLog
    with connect(params) as conn, Ledger(state / "ledger.sqlite") as ledger:
        log = CallLog(conn.xero.config.api_url)
        conn.xero._http.event_hooks = {"request": [log.on_request], "response": [log.on_response]}
        pacer_sleeps: list[
            tuple[float, float]
        ] = []  # (when, seconds) of each wait the client's pacer made
        real_sleep = conn.xero.pacer.sleep

        def recorded_sleep(seconds: float) -> None:
            pacer_sleeps.append((time.monotonic(), seconds))
            real_sleep(seconds)

        conn.xero.pacer.sleep = recorded_sleep
        conn.xero.pacer.max_in_flight = args.max_in_flight
        setup = time.perf_counter() - t0

        plan_started = time.monotonic()
        plan = plan_transfer(conn, ledger=ledger)
        plan_ended = time.monotonic()
        if args.pause:
            time.sleep(minute)
        batches: list[float] = []
        nexudus_before = conn.nexudus.calls
        waited_before = conn.xero.pacer.waited_seconds
        push_started = time.monotonic()
        result = push(
            conn, plan, ledger, progress=lambda done, total: batches.append(time.monotonic())
        )
        push_ended = time.monotonic()
        waited = conn.xero.pacer.waited_seconds - waited_before
        write_back_calls = conn.nexudus.calls - nexudus_before
    box.stop()
    shutil.rmtree(state, ignore_errors=True)

    created = result.counts().get("created", 0)
    kinds = plan.eligible["kind"].value_counts().to_dict()
    contacts = len(plan.new_contacts)
    plan_calls = log.between(plan_started, plan_ended)
    push_calls = log.between(push_started, push_ended)
    all_calls = plan_calls + push_calls
    forced = sum(math.ceil(n / BATCH_SIZE) for n in kinds.values()) + math.ceil(
        contacts / BATCH_SIZE
    )
    client_429 = sum(c.status == 429 for c in log.calls)

    # The push's Xero part: first call to the answer of the last invoice batch (the write-back to
    # Nexudus follows).
    xero_end = batches[-1] if batches else push_ended
    xero_push = [c for c in push_calls if c.started < xero_end]
    elapsed = (xero_end - xero_push[0].started) if xero_push else 0.0
    sandbox_minutes = elapsed / minute if elapsed else float("nan")
    calls_per_minute = len(xero_push) / sandbox_minutes
    invoices_per_minute = created / sandbox_minutes
    ceiling = PER_MINUTE * BATCH_SIZE
    call_seconds = mean(c.ended - c.started for c in xero_push)
    gaps = [b.started - a.ended for a, b in pairwise(xero_push)]
    gap_seconds = mean(gaps) if gaps else 0.0
    latency_bound = minute / (call_seconds + max(0.0, gap_seconds - waited / max(1, len(gaps))))
    ideal = perfect_pacer_seconds(plan_calls, xero_push, pacer_sleeps, minute) if xero_push else 0.0

    print(
        f"sandbox: {args.invoices:,} Nexudus invoices, limit {PER_MINUTE} calls per "
        f"{minute:g}-second 'minute' (set-up {setup:.1f} s, not "
        f"timed){'; paused one minute before the push' if args.pause else ''}"
    )
    print(
        f"plan:    {len(plan.eligible):,} eligible "
        f"({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))}), {len(plan.excluded):,} "
        f"excluded, {contacts:,} new contacts; {plan_ended - plan_started:.1f} s"
    )
    print(
        f"push:    {created:,} invoices created {result.counts()}; "
        f"{push_ended - push_started:.1f} s (Xero part {elapsed:.1f} s, then "
        f"{write_back_calls:,} Nexudus write-back calls "
        f"{push_ended - xero_end:.1f} s)"
    )
    print()
    print(f"Xero calls, plan: {split(plan_calls)}")
    print(f"Xero calls, push: {split(push_calls)}")
    per_k = 1000 / created if created else float("nan")
    reads = sum(not c.is_write for c in all_calls)
    print(
        f"Xero calls, total {len(all_calls)} = {len(all_calls) * per_k:.1f} per 1,000 invoices "
        f"created ({reads * per_k:.1f} reads + {(len(all_calls) - reads) * per_k:.1f} writes)"
    )
    print(
        f"minimum the batch size forces: {forced} writes (ceil per kind of {kinds} / {BATCH_SIZE} "
        f"+ ceil({contacts} contacts / {BATCH_SIZE})); the push made "
        f"{sum(c.is_write for c in push_calls)}"
    )
    print()
    print(
        f"push rate: {calls_per_minute:.1f} Xero calls per sandbox-minute (limit {PER_MINUTE}) = "
        f"{invoices_per_minute:,.0f} invoices per sandbox-minute; ceiling {ceiling:,} "
        f"({invoices_per_minute / ceiling:.1%} of it)"
    )
    print(
        f"  each call took {call_seconds * 1000:.0f} ms on average, {gap_seconds * 1000:.0f} ms "
        f"between calls (pacer waits included: {waited:.2f} s in all); one batch at a time allows "
        f"at most {latency_bound:.1f} calls per sandbox-minute"
    )
    bound = (
        "the rate limit (the pacer waited)"
        if latency_bound > PER_MINUTE or admissions.most_in_progress > 1
        else "call duration (one batch at a time)"
    )
    print(f"  bound by: {bound}")
    invoice_share = sum(c.endpoint in ("Invoices", "CreditNotes") for c in xero_push) / max(
        1, len(xero_push)
    )
    print(
        f"  even at {PER_MINUTE} calls a minute, {1 - invoice_share:.0%} of the push's calls "
        f"create contacts: at most {ceiling * invoice_share:,.0f} invoices per sandbox-minute "
        f"({invoice_share:.0%} of the ceiling)"
    )
    print(
        f"  a one-call-at-a-time pacer that never waits longer than needed, same calls and "
        f"durations: {ideal:.2f} s "
        f"vs {elapsed:.2f} s measured (pacer efficiency {ideal / elapsed:.1%})"
    )
    if len(xero_push) < 3 * PER_MINUTE and latency_bound > PER_MINUTE:
        print(
            f"  note: {len(xero_push)} calls is under three windows, so a window's burst weighs in "
            "the rate"
        )
    refused = sum(admissions.refused.values())
    print(
        f"429s: {client_429} seen by the client; sandbox refused {refused} "
        f"{dict(admissions.refused) or ''}; busiest {minute:g}-s window admitted "
        f"{admissions.busiest_window(minute)} calls (limit {PER_MINUTE})"
    )
    share = invoices_per_minute / ceiling
    misses = [
        why
        for miss, why in (
            (
                latency_bound < PER_MINUTE and admissions.most_in_progress <= 1,
                "calls take longer than a minute's share each and go one at a time",
            ),
            (invoice_share < 0.95, "contact PUTs take part of the budget"),
            (ideal / elapsed < 0.95, "the pacer waits longer than the limit needs"),
        )
        if miss
    ]
    print(
        (
            f"invoice ceiling (>= 95% of {ceiling:,} invoices per sandbox-minute, no 429): "
            f"{share:.1%}, "
            f"{client_429 + refused} 429s -> "
            f"{'met' if share >= 0.95 and not client_429 + refused else 'missed'}"
        )
        + (f" ({'; '.join(misses)})" if misses and share < 0.95 else "")
    )
    sustained = admissions.sustained_per_window(push_started, xero_end, minute)
    whole = len(xero_push) / sandbox_minutes
    refused_now = sum(admissions.refused.values())
    print()
    print(
        f"pacing (issue 17): sandbox answers in {latency.per_call:.3g} s + "
        f"{latency.per_element * 1000:.3g} ms an element; client at most {args.max_in_flight} in "
        "flight"
    )
    if sustained is None:
        print(f"  sustained: n/a (the push's Xero part lasted under one {minute:g}-s window)")
    else:
        print(
            f"  sustained: {sustained:.1f} calls per minute (mean of the trailing window from the "
            f"push's second minute on) = {sustained / PER_MINUTE:.1%} of {PER_MINUTE}"
        )
    print(
        f"  whole push: {len(xero_push)} calls in {elapsed:.1f} s = {whole:.1f} per minute "
        f"(the first minute's burst included)"
    )
    print(
        f"  429s: {client_429 + refused_now} ({dict(admissions.refused) or 'none'}); most calls in "
        f"progress at once: {admissions.most_in_progress} (client pacer: "
        f"{max(conn.xero.pacer.most_in_flight.values(), default=0)}, limit 5)"
    )
    met = sustained is not None and sustained >= 0.95 * PER_MINUTE and not client_429 + refused_now
    print(
        f"  target (sustained >= 95% of {PER_MINUTE}/min, 0 x 429, <= 5 in progress): "
        f"{'met' if met and admissions.most_in_progress <= 5 else 'missed'}"
    )
    print(f"bench wall time {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
