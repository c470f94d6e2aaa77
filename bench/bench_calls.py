"""Xero calls per 1,000 invoices a transfer costs, with all-new contacts and with every contact
already in Xero; the plan's number lookups against the number-batch reads they replace.

The call budget (issue 8) is counted in Xero calls per organisation per day
(5,000): this prints what a transfer spends, so a month-end run can be sized.

Two fresh sandboxes scaled to ``--invoices`` Nexudus invoices (Hive Shoreditch
gets most of them), limits lifted (calls are counted here, not paced):

1. **new contacts**: ``plan_transfer`` then ``push`` for Hive Shoreditch, as a
   first run on an empty organisation does: every customer becomes a contact.
2. **known contacts**: every contact the plan needs is created in Xero first
   (``XeroClient.create_contacts``, keyed on the same ContactNumber, not
   counted), then the same plan and push are counted: a month after the first.

3. **re-run**: a third sandbox is planned and half of it pushed; then the plan
   is made again, as a second run the same day does: its number lookup asks
   Xero only for what changed since the first (If-Modified-Since, the first
   read kept beside the ledger), and of that only the first page when Xero's
   count of the changes shows the rest is what the push created and recorded.

For each it prints the Xero accounting calls (token calls are not limited per
organisation and are left out) by phase, reads and writes, per endpoint and
per 1,000 invoices created; the writes the batch size forces (invoices and
credit notes in batches of 50, contacts in batches of 50: what
``recon.transfer.calls_needed``, the budget check, estimates); and how many
invoices a day's 5,000 calls carry. The plan's lookups (GET Invoices and GET
CreditNotes of ``plan_transfer``: number clashes and the already-in-Xero check)
are set against the peer measured in the same run on the same numbers: the
number-batch reads recon made before (``InvoiceNumbers`` lists as long as a URL
holds, credit notes 50 numbers a ``where``). Nexudus write-back calls are
counted apart (Nexudus' budget, not Xero's): 0 with the write-back off, the
default; what it would cost on (``write_back_calls``, 3 an invoice, paced
under Nexudus' 120 calls a minute) is printed beside. Takes about two minutes.

Run: ``.venv/bin/python bench/bench_calls.py [--invoices 3000]``
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from bench_transfer import (
    CallLog,
    split,
)  # the sibling bench's httpx call log (run from the repository root)

from recon.clients.xero import BATCH_SIZE
from recon.ledger import Ledger
from recon.params import load_params
from recon.sandbox import NO_LATENCY, RateLimits, start
from recon.session import connect, register_sandbox
from recon.transfer import (
    BUDGET_RESERVE,
    TransferPlan,
    calls_needed,
    plan_transfer,
    push,
    write_back_calls,
)
from recon.transfer.lookups import fetch_numbered_documents

ROOT = Path(__file__).resolve().parent.parent
PER_DAY = 5_000  # Xero: calls per organisation per day
NEXUDUS_PER_MINUTE = 120  # Nexudus: calls per minute (nexudus.md §5)
LOOKUP_ENDPOINTS = ("Invoices", "CreditNotes")
# Recorded on this machine before the paged lookup (same bench, 3,000 Nexudus invoices): the plan
# looked 2,287 numbers up with 21 GET Invoices + 1 GET CreditNotes (26 plan reads in all).
BEFORE = "before the paged lookup (recorded): 22 lookup reads for 2,287 invoices = 9.6 per 1,000"
LIFTED = RateLimits(
    per_minute=1_000_000, app_per_minute=1_000_000, per_day=1_000_000, concurrent=1_000
)


@dataclass
class Measured:
    label: str
    created: int
    kinds: dict[str, int]
    new_contacts: int
    forced: int  # writes the batch size forces: what the budget check estimates
    plan: list  # Xero calls of plan_transfer
    push: list  # Xero calls of push
    nexudus_write_back: int
    seconds: float
    looked_up: int  # invoices whose numbers the plan looked up in Xero
    peer: list  # Xero calls of the number-batch lookup of the same numbers
    write_back_if_on: int  # Nexudus calls the write-back would cost if it were on

    @property
    def lookups(self) -> list:
        return [c for c in self.plan if c.method == "GET" and c.endpoint in LOOKUP_ENDPOINTS]

    @property
    def calls(self) -> list:
        return self.plan + self.push

    def per_k(self, n: int) -> float:
        return n * 1000 / self.created if self.created else float("nan")


def pre_create_contacts(conn, plan: TransferPlan) -> int:
    """Every contact the plan would create, created now the way the transfer does (same
    ContactNumber)."""
    todo = plan.new_contacts
    for start_at in range(0, len(todo), BATCH_SIZE):
        chunk = todo.iloc[start_at : start_at + BATCH_SIZE]
        conn.xero.create_contacts(
            [
                {
                    "Name": r.name,
                    "ContactNumber": r.contact_number,
                    **({"EmailAddress": r.email} if r.email else {}),
                }
                for r in chunk.itertuples()
            ]
        )
    return len(todo)


def planned_numbers(plan: TransferPlan) -> pd.DataFrame:
    """The eligible invoices as ``fetch_numbered_documents`` takes them (its PLANNED_COLUMNS)."""
    eligible = plan.eligible
    return pd.DataFrame(
        {
            "invoice_number": eligible["invoice_number"].astype("string"),
            "kind": eligible["kind"],
            "contact_number": eligible["contact_number"],
            "contact_name": eligible["contact_name"],
            "xero_contact_id": eligible["xero_contact_id"],
            "total": eligible["nexudus_total"],
            "currency": eligible["currency"],
        }
    )


def measure(label: str, invoices: int, contacts_first: bool, rerun: bool = False) -> Measured:
    """One fresh sandbox: the counted plan, the peer lookup of its numbers, then the push (for a
    ``rerun``, a first plan and a push of half of it come before, uncounted, and the counted plan
    is not pushed)."""
    state = Path(tempfile.mkdtemp(prefix="recon-bench-calls-"))
    t0 = time.perf_counter()
    # Calls are counted, not paced: Xero answers at once (the real answer times are the default).
    box = start(state / "sandbox", invoices=invoices, limits=LIFTED, xero_latency=NO_LATENCY)
    register_sandbox(box)
    params = load_params(ROOT / "params" / "demo.yaml").with_overrides(
        sandbox_dir=str(box.state_dir), location="Hive Shoreditch", output_dir=str(state / "out")
    )
    try:
        with connect(params) as conn, Ledger(state / "ledger.sqlite") as ledger:
            if contacts_first:
                pre_create_contacts(conn, plan_transfer(conn, ledger=ledger))
            if rerun:
                first = plan_transfer(conn, ledger=ledger)
                numbers = list(first.eligible["invoice_number"])
                push(conn, first.only(numbers[: len(numbers) // 2]), ledger)
            log = CallLog(conn.xero.config.api_url)
            conn.xero._http.event_hooks = {
                "request": [log.on_request],
                "response": [log.on_response],
            }
            plan_started = time.monotonic()
            plan = plan_transfer(conn, ledger=ledger)
            peer_started = time.monotonic()
            fetch_numbered_documents(conn.xero, planned_numbers(plan))  # by number batches
            push_started = time.monotonic()
            nexudus_before = conn.nexudus.calls
            result = push(conn, plan, ledger) if not rerun else None
            push_ended = time.monotonic()
            write_back = conn.nexudus.calls - nexudus_before
    finally:
        box.stop()
        shutil.rmtree(state, ignore_errors=True)
    kinds = {str(k): int(v) for k, v in plan.eligible["kind"].value_counts().items()}
    return Measured(
        label,
        result.counts().get("created", 0) if result is not None else 0,
        kinds,
        len(plan.new_contacts),
        calls_needed(plan.eligible, plan.new_contacts),
        log.between(plan_started, peer_started),
        log.between(push_started, push_ended),
        write_back,
        time.perf_counter() - t0,
        len(plan.eligible),
        log.between(peer_started, push_started),
        write_back_calls(plan.eligible),
    )


def report_lookups(m: Measured) -> None:
    """The plan's number lookups against the number batches, per 1,000 invoices looked up."""
    per_k = 1000 / m.looked_up if m.looked_up else float("nan")
    ratio = len(m.peer) / len(m.lookups) if m.lookups else float("nan")
    print(
        f"  plan lookups: {len(m.lookups)} reads for {m.looked_up:,} invoices = "
        f"{len(m.lookups) * per_k:.1f} per 1,000 ({split(m.lookups)}); number batches on the "
        f"same numbers: {len(m.peer)} = {len(m.peer) * per_k:.1f} per 1,000 ({ratio:.1f}x more)"
    )


def by_endpoint(calls: list) -> str:
    counts = Counter(f"{c.method} {c.endpoint}" for c in calls)
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def report(m: Measured) -> None:
    if not m.created:  # the re-run: its plan only
        print(f"{m.label}: {m.looked_up:,} invoices planned ({m.seconds:.1f} s)")
        print(f"  plan  {split(m.plan)}")
        report_lookups(m)
        return
    writes = [c for c in m.calls if c.is_write]
    reads = [c for c in m.calls if not c.is_write]
    contact_writes = sum(c.endpoint == "Contacts" for c in writes)
    print(
        f"{m.label}: {m.created:,} invoices created "
        f"({', '.join(f'{v:,} {k}' for k, v in sorted(m.kinds.items()))}), {m.new_contacts:,} new "
        f"contacts ({m.seconds:.1f} s)"
    )
    print(f"  plan  {split(m.plan)}")
    print(f"  push  {split(m.push)}")
    report_lookups(m)
    print(
        f"  Xero calls {len(m.calls):,}: {m.per_k(len(m.calls)):.1f} per 1,000 invoices "
        f"= {m.per_k(len(reads)):.1f} reads + {m.per_k(len(writes)):.1f} writes "
        f"(of which contacts {m.per_k(contact_writes):.1f})"
    )
    print(
        f"  writes the batch size forces: {m.forced} = ceil per kind {m.kinds} / {BATCH_SIZE} + "
        f"ceil({m.new_contacts} contacts / {BATCH_SIZE}) = {m.per_k(m.forced):.1f} per 1,000; the "
        f"push made {len(writes)}"
    )
    per_invoice = len(m.calls) / m.created if m.created else float("nan")
    print(
        f"  at this mix a day's {PER_DAY:,} calls per organisation carry about "
        f"{PER_DAY / per_invoice:,.0f} invoices (reads included)"
    )
    print(
        f"  Nexudus write-back (off, the default): {m.nexudus_write_back:,} calls; on it would be "
        f"{m.write_back_if_on:,} (not Xero's budget; at least "
        f"{m.write_back_if_on / NEXUDUS_PER_MINUTE:.0f} min under Nexudus' limits)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        # The docstring's first sentence, wrapped over two lines there.
        description=" ".join(__doc__.split("\n\n")[0].split())
    )
    parser.add_argument(
        "--invoices",
        type=int,
        default=3000,
        help="Nexudus invoices in each sandbox (all locations)",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    fresh = measure("new contacts   ", args.invoices, contacts_first=False)
    known = measure("known contacts ", args.invoices, contacts_first=True)
    again = measure("re-run         ", args.invoices, contacts_first=False, rerun=True)
    print(
        f"Xero calls of a transfer, Hive Shoreditch, sandbox of {args.invoices:,} Nexudus "
        f"invoices; batch size {BATCH_SIZE}"
    )
    print()
    report(fresh)
    print()
    report(known)
    print()
    report(again)
    print()
    print("per 1,000 invoices           all calls   reads   writes   forced writes")
    for m in (fresh, known):
        reads = sum(not c.is_write for c in m.calls)
        writes = len(m.calls) - reads
        print(
            f"  {m.label}        {m.per_k(len(m.calls)):9.1f} {m.per_k(reads):7.1f} "
            f"{m.per_k(writes):8.1f} {m.per_k(m.forced):15.1f}"
        )
    plan_reads = max(len(m.plan) for m in (fresh, known))
    push_reads = max(sum(not c.is_write for c in m.push) for m in (fresh, known))
    print(
        "budget check: the push sizes itself on forced writes against X-DayLimit-Remaining, which "
        f"already counts the plan's {plan_reads} reads; it keeps {BUDGET_RESERVE} calls back for "
        f"reads after it (this push read {push_reads} "
        f"times{'; more than the reserve' if push_reads > BUDGET_RESERVE else ''})"
    )
    print()
    print("plan lookups per 1,000 invoices   paged   number batches (the peer)   target")
    for m in (fresh, known, again):
        per_k = 1000 / m.looked_up if m.looked_up else float("nan")
        print(
            f"  {m.label}                {len(m.lookups) * per_k:5.1f}   "
            f"{len(m.peer) * per_k:14.1f}              <= 2"
        )
    print(f"  {BEFORE}")
    print(
        "Nexudus write-back calls: "
        + ", ".join(f"{m.label.strip()} {m.nexudus_write_back}" for m in (fresh, known))
        + " (off by default)"
    )
    print(f"bench wall time {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
