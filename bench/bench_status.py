"""Issue 17, status targets: the status diff of a million invoices (CPU, memory), and the status
sync of 10,000 transferred invoices with 2% changed since the last sync (calls, CPU), each printed
beside its target.

Local: ``recon.status_diff.find_differences`` over ``--lines`` seeded invoices whose money is
already in whole units (``with_scaled``, not timed: what a ledger keeping whole units supplies),
CPU via ``time.process_time``, its own allocation peak via ``tracemalloc``; with ``--before``,
the frozen diff (``tests/reference_status_v1.py``) on the same rows for the ratio.
Target: mapping check (``bench_local.py``) + status diff <= 3 CPU-s; the diff's share is printed.

Sets up a sandbox scaled to ~10,000 Shoreditch invoices, transfers them (not
timed), takes a baseline sync, has the demo accountant pay 2% in Xero, then
times the incremental sync and prints the API calls it made (Xero and Nexudus)
and what a per-invoice approach would have cost. Run:

    .venv/bin/python bench/bench_status.py [--lines 1000000] [--invoices 12150] [--before]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from recon.demo import act_as_accountant
from recon.ledger import Ledger
from recon.params import load_params
from recon.sandbox import RateLimits, start
from recon.session import connect, register_sandbox
from recon.status import apply_paid, find_differences, sync_status
from recon.status_diff import with_scaled
from recon.transfer import plan_transfer, push

ROOT = Path(__file__).resolve().parent.parent
INVOICES = 12_150  # the generator gives Shoreditch ~82.5%: about 10,000
TARGET_LOCAL_CPU = 3.0  # mapping check + status diff of 1,000,000 lines
TARGET_XERO_CALLS = 3
CHANGED_SHARE = 0.02
NEXUDUS_PAGE = 1_000


def _money(cents: np.ndarray) -> list[Decimal]:
    return [Decimal(int(c)).scaleb(-2) for c in cents]


def diff_inputs(n: int, seed: int = 17) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """n transferred invoices as the sync joins them, ~2% of them differing, money prepared."""
    rng = np.random.default_rng(seed)
    total = rng.integers(1, 500_000, n)
    pick = rng.random(n)
    status = np.where(pick < 0.01, "PAID", "AUTHORISED")
    paid = np.where(pick < 0.01, total, 0)
    n_paid = (pick > 0.01) & (pick < 0.02)
    ids = np.char.add("x-", np.arange(n).astype(str)).astype(object)
    frame = pd.DataFrame(
        {
            "nexudus_invoice_id": np.arange(n, dtype=np.int64) + 1,
            "invoice_number": np.char.add("INV-", np.arange(n).astype(str)).astype(object),
            "xero_id": ids,
            "currency": "GBP",
            "transferred_total": _money(total),
            "nexudus_total_at_transfer": _money(total),
            "xero_status": status.astype(object),
            "xero_total": _money(total),
            "xero_amount_due": _money(total - paid),
            "xero_amount_paid": _money(paid),
            "xero_amount_credited": _money(np.zeros(n, np.int64)),
            "xero_paid_on": np.where(paid > 0, "2026-11-20", None),
            "kind": "invoice",
            "_merge": pd.Categorical(["both"] * n, categories=["left_only", "right_only", "both"]),
            "nexudus_total": _money(total),
            "nexudus_paid": n_paid,
            "nexudus_paid_amount": _money(np.where(n_paid, total, 0)),
            "nexudus_void": False,
            "nexudus_deleted": False,
            "nexudus_credited": _money(np.zeros(n, np.int64)),
            "nexudus_due_date": "2026-11-30",
        }
    )
    state = pd.DataFrame(
        {"xero_id": ids, "number": frame["invoice_number"], "kind": "invoice"}
    ).assign(status=status, created_by_recon=1, total=None, amount_due=None)
    state = state.assign(amount_paid=None, amount_credited=None)
    return with_scaled(frame), state, frame[["nexudus_invoice_id", "invoice_number", "xero_id"]]


def local(lines: int, before: bool) -> None:
    """The status diff of ``lines`` invoices: CPU seconds, allocation peak, ratio to target."""
    frame, state, transfers = diff_inputs(lines)
    t0 = time.process_time()
    out = find_differences(frame, state, transfers, full=True)
    cpu = time.process_time() - t0
    tracemalloc.start()
    find_differences(frame, state, transfers, full=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"status diff of {lines:,} invoices: {cpu:.2f} CPU-s, {peak / 2**20:,.0f} MB allocated")
    print(
        f"  differences: {len(out):,}; share of the {TARGET_LOCAL_CPU:.0f} CPU-s target: "
        f"{cpu / TARGET_LOCAL_CPU:.0%} (mapping check: bench_local.py)"
    )
    if before:
        sys.path.insert(0, str(ROOT / "tests"))
        import reference_status_v1 as reference

        plain = frame[[c for c in frame.columns if not c.endswith(("_scaled", "_known"))]]
        t0 = time.process_time()
        old = reference.differences(reference.with_figures(plain), state, transfers, full=True)
        old_cpu = time.process_time() - t0
        assert len(old) == len(out)
        print(
            f"  before (frozen diff): {old_cpu:.2f} CPU-s; {old_cpu / max(cpu, 1e-9):.1f}x faster"
        )


def sandbox_sync(invoices: int) -> None:
    state = Path(tempfile.mkdtemp(prefix="recon-bench-status-"))
    t0 = time.perf_counter()
    # Setup runs with the limits lifted; the sync is what is measured (its calls, not its pacing).
    box = start(
        state / "sandbox",
        invoices=invoices,
        limits=RateLimits(per_minute=1_000_000, app_per_minute=1_000_000, per_day=1_000_000),
    )
    register_sandbox(box)
    params = load_params(ROOT / "params" / "demo.yaml").with_overrides(
        sandbox_dir=str(box.state_dir)
    )
    with connect(params) as conn, Ledger(state / "ledger.sqlite") as ledger:
        result = push(conn, plan_transfer(conn, ledger=ledger), ledger)
        transferred = result.counts().get("created", 0)
        baseline = sync_status(conn, ledger)
        apply_paid(conn, ledger, baseline)
        setup = time.perf_counter() - t0
        changed = max(1, round(transferred * 0.02))
        actions = act_as_accountant(conn, fully=changed - 2, partly=1, void=1, edit=0, seed=11)
        t1, c1 = time.perf_counter(), time.process_time()
        diff = sync_status(conn, ledger)
        seconds, cpu = time.perf_counter() - t1, time.process_time() - c1
        applied = apply_paid(conn, ledger, diff)
    box.stop()
    print(f"transferred invoices:          {transferred:,} (setup {setup:.1f} s, not timed)")
    print(
        f"baseline full sync:            {baseline.calls['xero']} Xero calls, "
        f"{baseline.calls['nexudus']} Nexudus calls"
    )
    print(f"changed in Xero since then:    {len(actions)} ({len(actions) / transferred:.1%})")
    print(
        f"incremental sync:              {diff.calls['xero']} Xero calls, {diff.calls['nexudus']} "
        f"Nexudus calls, {seconds:.2f} s wall, {cpu:.2f} CPU-s (sandbox in-process)"
    )
    changed_now = len(actions)
    budget = changed_now + math.ceil(changed_now / NEXUDUS_PAGE)
    print(
        f"call budget:                   Xero {diff.calls['xero']} / {TARGET_XERO_CALLS} "
        f"({diff.calls['xero'] / TARGET_XERO_CALLS:.0%}); Nexudus {diff.calls['nexudus']} / "
        f"{budget} ({diff.calls['nexudus'] / budget:.0%})"
    )
    print(f"differences found:             {diff.counts()}")
    print(f"marked paid in Nexudus:        {int((applied['outcome'] == 'applied').sum())}")
    print(
        f"one GET per invoice would be:  {transferred:,} Xero calls; IDs in chunks of 50: "
        f"{math.ceil(transferred / 50)}"
    )
    print(f"calls ratio (per-invoice / recon): {transferred / max(1, diff.calls['xero']):,.0f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--invoices", type=int, default=INVOICES)
    parser.add_argument("--before", action="store_true", help="also time the frozen diff")
    parser.add_argument("--no-sandbox", action="store_true", help="only the local figure")
    args = parser.parse_args(argv)
    local(args.lines, args.before)
    if not args.no_sandbox:
        sandbox_sync(args.invoices)


if __name__ == "__main__":
    main()
