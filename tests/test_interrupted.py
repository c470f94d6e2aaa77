"""A scheduler stops ``recon run`` in the middle of a push: the report still lists what was sent.

Issue 15 ("SIGTERM/SIGINT finish the write in flight, record it, write the report of what was
done"): the transfer step's kernel is shut down before its notebook saves
``transfer_outcomes.csv``, so ``recon run`` reads each planned invoice's outcome back from the
ledger (recon.transfer.interrupted). Real ``recon run`` subprocess, real HTTP to the sandbox,
whose Xero answers slowly (``RECON_SANDBOX_XERO_LATENCY``) so that the signal lands mid-push.
"""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import ROOT

from recon import cli
from recon.outcomes import TransferOutcome

DEMO = ROOT / "params" / "demo.yaml"


def _recon() -> list[str]:
    script = Path(sys.executable).parent / "recon"
    return [str(script)] if script.exists() else [sys.executable, "-m", "recon.cli"]


def _created_in_ledger(state: Path) -> set[str]:
    """The invoice numbers the ledger records as created in Xero (empty before it exists)."""
    found: set[str] = set()
    for path in state.glob("**/ledger.sqlite"):
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
                rows = db.execute("SELECT invoice_number FROM transfers WHERE state='created'")
                found |= {str(r[0]) for r in rows}
        except sqlite3.OperationalError:
            continue  # not created yet, or its tables not yet made
    return found


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_a_sigterm_mid_push_leaves_a_report_listing_what_was_sent(tmp_path: Path) -> None:
    state, out = tmp_path / "state", tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XERO_", "NEXUDUS_", "RECON_"))}
    env |= {
        "RECON_SANDBOX_DIR": str(state / "sandbox"),
        "RECON_CONFIG_DIR": str(state / "config"),
        # about 1.3 s a batch of 50 invoices: a push of the demo's ~300 takes several seconds
        "RECON_SANDBOX_XERO_LATENCY": "0.3,0.02",
    }
    proc = subprocess.Popen(
        [*_recon(), "run", str(DEMO), "--out", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not _created_in_ledger(state):  # the first batch is booked: the push is under way
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the push never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()

    assert proc.returncode == cli.EXIT_INTERRUPTED == 130, stderr
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    assert (run_dir / "audit.xlsx").exists() and (run_dir / "manifest.json").exists()
    outcomes = _rows(run_dir / "transfer_outcomes.csv")
    eligible = _rows(run_dir / "transfer_plan_eligible.csv")
    assert [r["invoice_number"] for r in outcomes] == [r["invoice_number"] for r in eligible]
    created = {r["invoice_number"] for r in outcomes if r["outcome"] == TransferOutcome.CREATED}
    # What the report says was sent is exactly what the ledger (written before and after every
    # call) records as booked in Xero; and the signal came before the push was done.
    assert created and created == _created_in_ledger(state)
    assert all(r["xero_id"] for r in outcomes if r["outcome"] == TransferOutcome.CREATED)
    rest = [r for r in outcomes if r["outcome"] != TransferOutcome.CREATED]
    assert rest, "the push was stopped before every invoice was sent"
    assert {r["outcome"] for r in rest} <= {TransferOutcome.SKIPPED, TransferOutcome.UNKNOWN}
    assert all("the run was interrupted (SIGTERM)" in r["messages"] for r in rest)
    assert "read back from the ledger" in stdout + stderr
    assert stdout.strip().splitlines()[-1].endswith("interrupted → exit 130")
