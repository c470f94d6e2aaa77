"""Status sync (Nexudus' "second transfer"), both ways: every transferred invoice's Xero and
Nexudus state compared, each difference with its action and who acts.

Floor 4, the front of the status step: ``sync_status(conn, ledger)`` refreshes the
ledger's copy of both sides with as few calls as the APIs allow
(``recon.status_refresh``) and returns a ``StatusDiff`` (``recon.status_diff``): one row
per difference of a transferred invoice, with a ``Difference``, its ``action``, its
``actor`` (``recon``: recon does it once confirmed; ``person``: a decision recon leaves to
people) and both sides' figures.

Writes are gated, never automatic: ``apply_paid`` (``recon.status_paid``) marks paid in
Nexudus exactly the invoices fully paid in Xero with money (never one settled by credit).
The changes a diff asks for in Xero (void, allocate a credit note) are
``recon.status_xero``'s, a floor above, since the allocation is the transfer's writer.
Every name the step offers is importable from here.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import pandas as pd

from recon.ledger import Ledger
from recon.outcomes import TransferOutcome
from recon.session import Connection
from recon.status_diff import (
    ACTIONS,
    DIFF_COLUMNS,
    RECON_ACTS,
    XERO_GONE,
    XERO_LIVE,
    Actor,
    Difference,
    StatusDiff,
    find_differences,
    or_zero,
)
from recon.status_paid import APPLY_COLUMNS, apply_paid, is_credit_settled
from recon.status_refresh import (
    CREDIT_NOTE_FOUND,
    DELETED_FOUND,
    WATERMARK_OVERLAP,
    ids_of,
    nexudus_side,
    refresh_nexudus_state,
    refresh_xero_state,
    xero_state_row,
)

__all__ = [
    "ACTIONS",
    "APPLY_COLUMNS",
    "CREDIT_NOTE_FOUND",
    "DELETED_FOUND",
    "DIFF_COLUMNS",
    "RECON_ACTS",
    "WATERMARK_OVERLAP",
    "XERO_GONE",
    "XERO_LIVE",
    "Actor",
    "Difference",
    "StatusDiff",
    "apply_paid",
    "find_differences",
    "is_credit_settled",
    "refresh_nexudus_state",
    "refresh_xero_state",
    "sync_status",
    "xero_state_row",
]


def sync_status(
    conn: Connection, ledger: Ledger, *, full: bool = False, today: date | None = None
) -> StatusDiff:
    """Compare every transferred invoice's Xero and Nexudus state; one row per difference."""
    started = time.monotonic()
    xero_calls, nexudus_calls = conn.xero.calls, conn.nexudus.calls
    tenant = str(conn.xero.tenant_id)
    read = refresh_xero_state(conn, ledger, full=full)
    transfers = ledger.transfers(tenant)
    transfers = transfers[
        (transfers["state"] == TransferOutcome.CREATED) & (transfers["kind"] == "invoice")
    ]
    state = ledger.xero_state(tenant)
    nexudus_read: dict[str, Any] = {}
    if len(transfers):
        nexudus_read = refresh_nexudus_state(
            conn, ledger, ids_of(transfers["nexudus_invoice_id"]), full=full
        )
    nexudus = nexudus_side(ledger, tenant, int(conn.business["Id"]), transfers)
    frame = transfers[
        [
            "nexudus_invoice_id",
            "invoice_number",
            "xero_id",
            "currency",
            "xero_total",
            "nexudus_total",
        ]
    ].rename(
        columns={"xero_total": "transferred_total", "nexudus_total": "nexudus_total_at_transfer"}
    )
    frame = frame.merge(
        state[
            [
                "xero_id",
                "status",
                "total",
                "amount_due",
                "amount_paid",
                "amount_credited",
                "fully_paid_on",
                "kind",
            ]
        ].rename(
            columns={
                "status": "xero_status",
                "total": "xero_total",
                "amount_due": "xero_amount_due",
                "amount_paid": "xero_amount_paid",
                "amount_credited": "xero_amount_credited",
                "fully_paid_on": "xero_paid_on",
            }
        ),
        on="xero_id",
        how="left",
        indicator=True,
    )
    # Only this location's invoices: another location may book into the same organisation.
    frame = frame.merge(nexudus, on="nexudus_invoice_id", how="inner")
    differences = find_differences(frame, state, transfers, full=read["full"])
    unpaid = frame[frame["xero_status"] == "AUTHORISED"]
    unpaid = pd.DataFrame(
        {
            "invoice_number": unpaid["invoice_number"],
            "currency": unpaid["currency"],
            "amount_due": or_zero(unpaid["xero_amount_due"]),
            "due_date": unpaid["nexudus_due_date"],
        }
    )
    calls = {"xero": conn.xero.calls - xero_calls, "nexudus": conn.nexudus.calls - nexudus_calls}
    context = {
        "location": conn.location,
        "organisation": conn.organisation.get("Name"),
        "tenant_id": tenant,
        "transferred": len(frame),
        "xero_changed": read["changed"],
        "nexudus_changed": nexudus_read.get("changed", 0),
        "nexudus_whole_read": nexudus_read.get("whole_read", False),
        "full": read["full"],
    }
    return StatusDiff(
        differences, unpaid.reset_index(drop=True), calls, time.monotonic() - started, context
    )
