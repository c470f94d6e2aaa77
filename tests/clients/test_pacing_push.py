"""A push whose Xero answers are slow sends batches concurrently, within Xero's limits, over real
HTTP against the sandbox.

shared/reference/xero-api.md §9: "concurrent per tenant | 5 calls in progress", "per tenant per
minute | 60", "breach | HTTP 429 + X-Rate-Limit-Problem + Retry-After (s)". The sandbox's "minute"
is one second here and its answers take 0.2 s + 4 ms per element, so one batch at a time could
not keep up with the limit; no test asserts on elapsed time.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from recon.ledger import Ledger
from recon.sandbox.xero_ratelimit import Latency
from recon.session import Connection
from recon.transfer import plan_transfer, push


class Refusals:
    """Wraps the sandbox limiter's ``admit`` and counts what it refused, by problem."""

    def __init__(self, admit: Callable[..., Any]) -> None:
        self._admit = admit
        self._lock = threading.Lock()
        self.refused: Counter[str] = Counter()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        admission = self._admit(*args, **kwargs)
        if not admission.allowed:
            with self._lock:
                self.refused[admission.problem] += 1
        return admission


def test_a_push_with_slow_answers_overlaps_batches_within_the_limits_and_books_each_invoice_once(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    box = conn.sandbox
    assert box is not None
    refusals = Refusals(box.xero.limiter.admit)
    box.xero.limiter.admit = refusals  # type: ignore[method-assign]
    with Ledger(conn.ledger_path) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        assert (plan.eligible["kind"] == "invoice").sum() > 150, "several batches to overlap"
        box.xero.latency = Latency(per_call=0.2, per_element=0.004)
        progress: list[tuple[int, int]] = []
        result = push(conn, plan, ledger, progress=lambda d, t: progress.append((d, t)))
        box.xero.latency = Latency()
        tenant = plan.tenant_id
        assert set(result.outcomes["outcome"]) == {"created"}
        sent_order = [
            *plan.eligible[plan.eligible["kind"] == "invoice"]["nexudus_invoice_id"],
            *plan.eligible[plan.eligible["kind"] == "credit_note"]["nexudus_invoice_id"],
        ]
        assert list(result.outcomes["nexudus_invoice_id"]) == sent_order, (
            "outcomes come back in the order the batches were made, as one at a time"
        )
        assert ledger.unfinished(tenant).empty
        assert ledger.transferred_ids(tenant) == set(plan.eligible["nexudus_invoice_id"])
    pacer = conn.xero.pacer
    assert 2 <= pacer.most_in_flight[str(conn.xero.tenant_id)] <= 5, "overlapped, at most 5"
    assert refusals.refused == Counter(), "no 429: not for the minute, not for concurrency"
    assert progress[-1][0] == progress[-1][1] == len(plan.eligible)
    numbers = Counter(
        str(i["InvoiceNumber"])
        for i in conn.xero.iter_invoices(created_by_my_app=True)
        if i["Status"] != "DELETED"
    )
    numbers.update(str(n["CreditNoteNumber"]) for n in conn.xero.iter_credit_notes())
    assert set(numbers) == set(plan.eligible["invoice_number"].astype(str))
    assert max(numbers.values()) == 1
