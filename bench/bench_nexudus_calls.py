"""Nexudus calls per 1,000 invoices: a transfer (its mapping check and plan) and a status sync.

Nexudus allows 120 calls and 60 writes a minute, 5,000 calls an hour (nexudus.md §5), so
its calls, not Xero's, can set the pace of a run. A fresh sandbox scaled to ``--invoices``
(Hive Shoreditch gets most of them; the Xero limits lifted, the Nexudus "minute" shrunk so
calls are counted, not waited for) is run through:

1. the mapping check and the transfer plan (reads: invoices, lines, accounts, tax rates,
   coworkers), then the push with the write-back off (the default) and, on a second
   sandbox, on (a whole-record PUT per invoice: read, write, read back), paced under Nexudus'
   limits and held to the push's write-back budget (``WRITE_BACK_BUDGET`` Nexudus calls; the
   next push writes back the rest);
2. a baseline status sync, then the demo accountant pays 2% of the invoices in Xero; the
   incremental status sync and the marking paid of those invoices in Nexudus.

It prints the Nexudus calls of each phase, per 1,000 invoices in scope (or per invoice
marked paid), and the minutes Nexudus' limits make them last.

Run: ``.venv/bin/python bench/bench_nexudus_calls.py [--invoices 3000]``
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from pathlib import Path

from recon.demo import act_as_accountant
from recon.ledger import Ledger
from recon.mapping import check_location
from recon.params import load_params
from recon.sandbox import NO_LATENCY, NexudusLimits, RateLimits, start
from recon.session import Connection, connect, register_sandbox
from recon.status import apply_paid, sync_status
from recon.transfer import plan_transfer, push, write_back_calls
from recon.transfer.plan import WRITE_BACK_BUDGET

ROOT = Path(__file__).resolve().parent.parent
LIFTED = RateLimits(
    per_minute=1_000_000, app_per_minute=1_000_000, per_day=1_000_000, concurrent=1_000
)
# Nexudus' real limits, with a "minute" of 10 ms: counted, not waited for.
FAST_NEXUDUS = NexudusLimits(minute_seconds=0.01)
CALLS_PER_MINUTE, WRITES_PER_MINUTE = 120, 60


def _calls(conn: Connection, since: int) -> int:
    return conn.nexudus.calls - since


def _minutes(calls: int, writes: int = 0) -> float:
    """How long Nexudus' per-minute limits make these calls last, at best."""
    return max(calls / CALLS_PER_MINUTE, writes / WRITES_PER_MINUTE)


def run(invoices: int, write_back: bool) -> dict[str, int]:
    state = Path(tempfile.mkdtemp(prefix="recon-bench-nexudus-"))
    # Nexudus' calls are counted: Xero answers at once (its real answer times are the default).
    box = start(
        state / "sandbox",
        invoices=invoices,
        limits=LIFTED,
        nexudus_limits=FAST_NEXUDUS,
        xero_latency=NO_LATENCY,
    )
    register_sandbox(box)
    params = load_params(ROOT / "params" / "demo.yaml").with_overrides(
        sandbox_dir=str(box.state_dir),
        location="Hive Shoreditch",
        output_dir=str(state / "out"),
        write_back_system_id=write_back,
    )
    out: dict[str, int] = {}
    try:
        with connect(params) as conn, Ledger(state / "ledger.sqlite") as ledger:
            mark = conn.nexudus.calls
            mapping = check_location(conn)
            out["in_scope"] = len(mapping.invoices)
            out["mapping"] = _calls(conn, mark)
            mark = conn.nexudus.calls
            plan = plan_transfer(conn, mapping, ledger=ledger)
            out["plan"] = _calls(conn, mark)
            mark = conn.nexudus.calls
            result = push(conn, plan, ledger)
            out["created"] = result.counts().get("created", 0)
            out["push"] = _calls(conn, mark)
            out["planned_write_back"] = write_back_calls(plan.eligible, plan.options.write_back)
            if write_back:
                out["written_back"] = int(result.context.get("written_back", 0))
                out["write_back_left"] = int(result.context.get("write_back_left", 0))
                mark = conn.nexudus.calls
                push(conn, plan, ledger)  # the next push: sends nothing, writes back the rest
                out["second_push"] = _calls(conn, mark)
                return out
            baseline = sync_status(conn, ledger, full=True)
            out["baseline_sync"] = baseline.calls["nexudus"]
            apply_paid(conn, ledger, baseline)
            changed = max(3, round(out["created"] * 0.02))
            act_as_accountant(conn, fully=changed - 2, partly=1, void=1, edit=0, seed=11)
            diff = sync_status(conn, ledger)
            out["sync"] = diff.calls["nexudus"]
            out["changed"] = changed
            mark = conn.nexudus.calls
            applied = apply_paid(conn, ledger, diff)
            out["marked_paid"] = int((applied["outcome"] == "applied").sum())
            out["apply"] = _calls(conn, mark)
    finally:
        box.stop()
        shutil.rmtree(state, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument(
        "--invoices", type=int, default=3000, help="Nexudus invoices, all locations"
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    off = run(args.invoices, write_back=False)
    on = run(args.invoices, write_back=True)
    per_k = 1000 / off["in_scope"]
    reads = off["mapping"] + off["plan"]
    print(
        f"Nexudus calls, Hive Shoreditch: {off['in_scope']:,} invoices in scope, "
        f"{off['created']:,} transferred ({time.perf_counter() - t0:.0f} s)"
    )
    print(
        f"  mapping check reads            {off['mapping']:5d}  = {off['mapping'] * per_k:6.1f} "
        "per 1,000 invoices"
    )
    print(
        f"  transfer plan reads            {off['plan']:5d}  = {off['plan'] * per_k:6.1f} per 1,000"
    )
    print(
        f"  push, write-back off (default) {off['push']:5d}  = {off['push'] * per_k:6.1f} per 1,000"
    )
    each = on["push"] / max(1, on["written_back"])
    wait = _minutes(on["push"], on["written_back"])
    print(
        f"  push, write-back on            {on['push']:5d}  = {each:.1f} an invoice (read, "
        f"whole-record PUT, read back) for {on['written_back']:,} of {on['created']:,}: the "
        f"budget of {WRITE_BACK_BUDGET:,} Nexudus calls (plan estimate for all: "
        f"{on['planned_write_back']:,}); at least {wait:.1f} min under Nexudus' limits"
    )
    print(
        f"  next push, write-back on       {on['second_push']:5d}  writes back the "
        f"{on['write_back_left']:,} left (off: {off['planned_write_back']} planned)"
    )
    print(
        f"  transfer total (default)       {reads + off['push']:5d}  = "
        f"{(reads + off['push']) * per_k:6.1f} per 1,000 "
        f"(at least {_minutes(reads + off['push']):.1f} min)"
    )
    print(f"  status sync, baseline (full)   {off['baseline_sync']:5d}")
    print(
        f"  status sync, {off['changed']} changed in Xero   {off['sync']:5d}  "
        f"(incremental: Nexudus invoices updated since the last sync)"
    )
    per_paid = off["apply"] / max(1, off["marked_paid"])
    print(
        f"  mark paid, {off['marked_paid']} invoices           {off['apply']:5d}  = "
        f"{per_paid:.1f} an invoice (read, ledger entry, read, whole-record PUT of PaidOn, read "
        f"back); {math.ceil(off['marked_paid'] * 2 / WRITES_PER_MINUTE)} min of Nexudus' write "
        "limit at least"
    )


if __name__ == "__main__":
    main()
