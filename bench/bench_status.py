"""Status sync of 10,000 transferred invoices with 2% changed since the last sync: calls and time.

Sets up a sandbox scaled to ~10,000 Shoreditch invoices, transfers them (not
timed), takes a baseline sync, has the demo accountant pay 2% in Xero, then
times the incremental sync and prints the API calls it made (Xero and Nexudus)
and what a per-invoice approach would have cost. Run:

    .venv/bin/python bench/bench_status.py
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

from recon.demo import act_as_accountant
from recon.ledger import Ledger
from recon.params import load_params
from recon.sandbox import RateLimits, start
from recon.session import connect, register_sandbox
from recon.status import apply_paid, sync_status
from recon.transfer import plan_transfer, push

ROOT = Path(__file__).resolve().parent.parent
INVOICES = 12_150  # the generator gives Shoreditch ~82.5%: about 10,000


def main() -> None:
    state = Path(tempfile.mkdtemp(prefix="recon-bench-status-"))
    t0 = time.perf_counter()
    # Setup runs with the limits lifted; the sync is what is measured (its calls, not its pacing).
    box = start(
        state / "sandbox",
        invoices=INVOICES,
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
        t1 = time.perf_counter()
        diff = sync_status(conn, ledger)
        seconds = time.perf_counter() - t1
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
        f"Nexudus calls, {seconds:.2f} s"
    )
    print(f"differences found:             {diff.counts()}")
    print(f"marked paid in Nexudus:        {int((applied['outcome'] == 'applied').sum())}")
    print(
        f"one GET per invoice would be:  {transferred:,} Xero calls; IDs in chunks of 50: "
        f"{math.ceil(transferred / 50)}"
    )
    print(f"calls ratio (per-invoice / recon): {transferred / max(1, diff.calls['xero']):,.0f}x")


if __name__ == "__main__":
    main()
