"""What a transfer stopped mid-push did, read back from the ledger: the run's outcomes file.

When ``recon run`` is stopped (SIGTERM, Ctrl-C) during the transfer step, the
step's kernel is shut down before the notebook can save ``transfer_outcomes.csv``.
Every write was recorded in the ledger before and after its call, so the
outcome of each invoice the plan made eligible is known from there: created,
failed, unknown (in flight when the run stopped: the next run asks Xero before
sending it again) or not sent, read as a push that stops reads them
(``recovery.as_recorded``). This module writes those outcomes in the step's
place, so the report of an interrupted run lists what was sent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from recon.cells import csv_safe
from recon.ledger import Ledger
from recon.outcomes import TransferOutcome
from recon.transfer.plan import PLAN_RECORD
from recon.transfer.recovery import as_recorded
from recon.transfer.result import NOT_SENT, OUTCOME_COLUMNS, TRANSFER_OUTCOMES
from recon.values import records

__all__ = ["outcomes_after_interrupt"]

ELIGIBLE_FILE = "transfer_plan_eligible.csv"


def outcomes_after_interrupt(folder: str | Path, why: str) -> Path | None:
    """Write ``transfer_outcomes.csv`` in ``folder`` from the ledger, for a transfer step that was
    stopped (``why``, e.g. "interrupted (SIGTERM)") before it saved its own; returns its path.

    None when there is nothing to settle: the step saved its outcomes, or it did not get as far
    as a plan that records where its ledger is.
    """
    out = Path(folder)
    if (out / TRANSFER_OUTCOMES).exists():
        return None
    record_file, eligible_file = out / PLAN_RECORD, out / ELIGIBLE_FILE
    if not record_file.exists() or not eligible_file.exists():
        return None
    record = json.loads(record_file.read_text("utf-8"))
    ledger_path, tenant = record.get("ledger_path"), str(record.get("tenant_id") or "")
    if not ledger_path or not tenant or not record.get("push"):
        return None
    eligible = pd.read_csv(eligible_file, dtype=str, keep_default_na=False)
    with Ledger(ledger_path) as ledger:
        rows = as_recorded(
            ledger,
            tenant,
            records(eligible),
            f"{NOT_SENT}the run was {why}",
            sending=TransferOutcome.UNKNOWN,
        )
    path = out / TRANSFER_OUTCOMES
    csv_safe(pd.DataFrame(rows, columns=OUTCOME_COLUMNS)).to_csv(path, index=False)
    return path
