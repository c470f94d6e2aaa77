"""What a push returns: one outcome row per invoice, the outcomes table and ``TransferResult``.

The push's modules (``push``, ``send``, ``recovery``) build their rows here; it imports none of
them. Everything here is also importable from ``recon.transfer.push``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from recon.cells import csv_safe
from recon.money import D
from recon.outcomes import TransferOutcome, Verdict, counts_text
from recon.troubleshooting import explain_all
from recon.values import is_missing, optional_int

__all__ = [
    "NOT_SENT",
    "OUTCOME_COLUMNS",
    "TRANSFER_OUTCOMES",
    "UNSENT",
    "TransferResult",
    "invoice_id_of",
    "outcome_row",
    "unfinished_outcomes",
]

# The ledger state of an invoice Xero never answered for and does not hold: the next send is the
# same attempt under the same key (a state of the ledger only; the outcomes table never shows it).
UNSENT = "unsent"
# How the messages of an invoice not sent because the run had to stop begin (outcome ``skipped``).
NOT_SENT = "not sent: "
# The step's outcomes file (one row per invoice the push was given).
TRANSFER_OUTCOMES = "transfer_outcomes.csv"

# ---- the outcomes table -----------------------------------------------------------------------
OUTCOME_COLUMNS = [
    "invoice_number",
    "nexudus_invoice_id",
    "kind",
    "outcome",
    "xero_id",
    "currency",
    "nexudus_total",
    "xero_total",
    "difference",
    "messages",
    "meaning",
    "fix",
]


@dataclass(frozen=True)
class TransferResult:
    """Per-invoice outcome of a push: created, adopted, failed or skipped, with Xero's words."""

    outcomes: pd.DataFrame
    calls: dict[str, int]
    seconds: float
    context: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """How many invoices ended with each outcome, the most frequent first."""
        return {str(k): int(v) for k, v in self.outcomes["outcome"].value_counts().items()}

    @property
    def failed(self) -> pd.DataFrame:
        """The rows whose outcome is ``failed``."""
        return self.outcomes[self.outcomes["outcome"] == TransferOutcome.FAILED]

    def save(self, folder: str | Path) -> Path:
        """Write the outcomes as ``transfer_outcomes.csv`` in ``folder`` (formula-looking text
        made inert); returns its path."""
        path = Path(folder) / TRANSFER_OUTCOMES
        path.parent.mkdir(parents=True, exist_ok=True)
        csv_safe(self.outcomes).to_csv(path, index=False)
        return path

    @property
    def unfinished(self) -> pd.DataFrame:
        """The rows a person or the next run must still see to: ``unfinished_outcomes``."""
        return unfinished_outcomes(self.outcomes)

    def __str__(self) -> str:
        counts = counts_text(TransferOutcome, self.counts())
        return (
            f"Transfer to {self.context.get('organisation', 'Xero')}: {counts or 'nothing to do'} "
            f"in {self.seconds:.1f} s"
        )

    def __repr__(self) -> str:
        return f"<TransferResult {self.counts()}>"

    def _repr_html_(self) -> str:
        from recon.display import transfer_result_html

        return transfer_result_html(self)


def unfinished_outcomes(outcomes: pd.DataFrame) -> pd.DataFrame:
    """The outcome rows that are not done: failed, refused or unknown, deferred to a later run,
    or skipped because the run had to stop (messages beginning ``NOT_SENT``). Works on a
    ``TransferResult.outcomes`` and on ``transfer_outcomes.csv`` read back as text."""
    if outcomes.empty:
        return outcomes

    def open_row(outcome: Any, messages: Any) -> bool:
        found = TransferOutcome.of(None if is_missing(outcome) else str(outcome))
        if found is None:
            return False
        if found.verdict in (Verdict.FAILURE, Verdict.WAITING):
            return True
        text = "" if is_missing(messages) else str(messages)
        return found is TransferOutcome.SKIPPED and text.startswith(NOT_SENT)

    mask = [open_row(o, m) for o, m in zip(outcomes["outcome"], outcomes["messages"], strict=True)]
    return outcomes[mask]


def outcome_row(
    row: pd.Series | dict[str, Any],
    outcome: TransferOutcome,
    *,
    xero_id: str | None = None,
    xero_total: Decimal | None = None,
    messages: list[str] | None = None,
) -> dict[str, Any]:
    """One row of the outcomes table: the invoice, what happened, Xero's words and their fix."""
    meaning, fix = explain_all(messages) if messages else ("", "")
    nexudus_total = row["nexudus_total"]
    difference = None
    if xero_total is not None:
        try:
            difference = abs(D(nexudus_total)) - D(xero_total)
        except (ArithmeticError, TypeError, ValueError):
            difference = None  # a figure that is no amount is reported as it is, not subtracted
    return {
        "invoice_number": row["invoice_number"],
        "nexudus_invoice_id": invoice_id_of(dict(row)),
        "kind": row.get("kind", "invoice"),
        "outcome": outcome,
        "xero_id": xero_id,
        "currency": row["currency"],
        "nexudus_total": nexudus_total,
        "xero_total": xero_total,
        "difference": difference,
        "messages": " | ".join(messages or []),
        "meaning": meaning,
        "fix": fix,
    }


def invoice_id_of(row: dict[str, Any] | Any) -> int | None:
    """A plan row's Nexudus invoice id (or a cell holding one), None if it has none."""
    value = row.get("nexudus_invoice_id") if isinstance(row, dict) else row
    try:
        return optional_int(value)
    except (TypeError, ValueError):
        return None
