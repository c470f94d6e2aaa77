"""FROZEN: the status diff as it was before issue 17 (recon/status.py, ``_with_figures`` and
``_differences``), kept unchanged as the reference ``tests/test_status_equivalence.py`` compares
the vectorised diff with, row for row. Do not edit: a change here hides a change in behaviour.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any, cast

import numpy as np
import pandas as pd

ZERO = Decimal("0")


class Actor(StrEnum):
    """Who acts on a difference."""

    RECON = "recon"  # recon writes it, after the same gate as a transfer (button or params flag)
    PERSON = "person"  # a person's decision: recon only reports it


class Difference(StrEnum):
    """Every kind of difference the status sync reports."""

    PAID_IN_XERO = "paid in Xero, unpaid in Nexudus"
    PART_PAID_IN_XERO = "part-paid in Xero"
    CREDITED_IN_XERO = "credited in Xero, not in Nexudus"
    VOIDED_IN_XERO = "voided or deleted in Xero, live in Nexudus"
    PAID_IN_NEXUDUS = "paid in Nexudus, still owing in Xero"
    PART_PAID_IN_NEXUDUS = "part-paid in Nexudus, less paid in Xero"
    VOIDED_IN_NEXUDUS = "voided in Nexudus, live in Xero"
    VOIDED_IN_NEXUDUS_WITH_MONEY = "voided in Nexudus, paid or credited in Xero"
    DELETED_IN_NEXUDUS = "deleted in Nexudus, live in Xero"
    CREDIT_NOTE_IN_NEXUDUS = "credit note raised in Nexudus, not allocated in Xero"
    PAID_TWICE = "paid twice, or paid on both sides with different amounts"
    TOTAL_CHANGED = "total changed in Xero after transfer"
    TOTAL_CHANGED_IN_NEXUDUS = "total changed in Nexudus after transfer"
    MISSING_FROM_XERO = "in the ledger but missing from Xero"
    UNKNOWN_TO_LEDGER = "in Xero (created by recon) but unknown to the ledger"
    AWAITING_APPROVAL = "draft or awaiting approval in Xero"

    @property
    def action(self) -> str:
        """What to do about this difference, in a sentence."""
        return ACTIONS[self]

    @property
    def actor(self) -> Actor:
        """Who acts: recon (once confirmed) or a person."""
        return Actor.RECON if self in RECON_ACTS else Actor.PERSON


ACTIONS = {
    Difference.PAID_IN_XERO: (
        "Mark paid in Nexudus with Xero's payment date (recon does this on apply)."
    ),
    Difference.PART_PAID_IN_XERO: (
        "Record the part payment in Nexudus by hand; recon marks only fully paid invoices."
    ),
    Difference.CREDITED_IN_XERO: (
        "Settled or reduced by a credit note in Xero: raise the matching credit note in Nexudus "
        "(cancel the invoice). recon never marks a credited invoice paid with a payment."
    ),
    Difference.VOIDED_IN_XERO: (
        "Void the invoice or issue a credit note in Nexudus, or reinstate it in Xero."
    ),
    Difference.PAID_IN_NEXUDUS: "Record the payment in Xero (it was taken in Nexudus).",
    Difference.PART_PAID_IN_NEXUDUS: (
        "Record in Xero the part payment Nexudus took (Nexudus shows more paid than Xero)."
    ),
    Difference.VOIDED_IN_NEXUDUS: (
        "Void in Xero (recon does this once confirmed: apply_xero_changes / the Void button)."
    ),
    Difference.VOIDED_IN_NEXUDUS_WITH_MONEY: (
        "Decide: Xero holds a payment or credit on it, so it cannot be voided there as it is. "
        "Refund or remove the payment in Xero and then void it, or reinstate it in Nexudus."
    ),
    Difference.DELETED_IN_NEXUDUS: (
        "Decide: billed in error (void it in Xero: recon offers it once confirmed, if Xero holds "
        "no payment) or deleted by mistake (raise it again in Nexudus)."
    ),
    Difference.CREDIT_NOTE_IN_NEXUDUS: (
        "Credit in Xero: transfer the Nexudus credit note (transfer step), then allocate it to "
        "this invoice (recon does this once confirmed: apply_xero_changes / the button)."
    ),
    Difference.PAID_TWICE: (
        "Decide: compare the payments and credits on both sides; refund, reverse or reallocate. "
        "recon changes nothing."
    ),
    Difference.TOTAL_CHANGED: (
        "Someone edited the invoice in Xero: align Nexudus or undo the edit in Xero."
    ),
    Difference.TOTAL_CHANGED_IN_NEXUDUS: (
        "Decide: the invoice was re-totalled in Nexudus after transfer. Credit or void it in Xero "
        "and transfer the new version, or undo the change in Nexudus."
    ),
    Difference.MISSING_FROM_XERO: (
        "Find out what happened to it in Xero; the ledger still holds its Xero id."
    ),
    Difference.UNKNOWN_TO_LEDGER: (
        "Run the transfer again: its recovery step adopts the invoice into the ledger."
    ),
    Difference.AWAITING_APPROVAL: "Approve it in Xero; it cannot be paid until it is AUTHORISED.",
}
# What recon itself writes, each behind its gate: mark paid (apply_paid), void and credit in Xero
# (apply_xero_changes), adopt into the ledger (the transfer's recovery step).
RECON_ACTS = frozenset(
    {
        Difference.PAID_IN_XERO,
        Difference.VOIDED_IN_NEXUDUS,
        Difference.CREDIT_NOTE_IN_NEXUDUS,
        Difference.UNKNOWN_TO_LEDGER,
    }
)


# Nexudus' figures beside Xero's: status, total, paid, credited, due.
DIFF_COLUMNS = [
    "difference",
    "actor",
    "invoice_number",
    "nexudus_invoice_id",
    "xero_id",
    "currency",
    "nexudus_status",
    "xero_status",
    "nexudus_total",
    "xero_total",
    "nexudus_paid_amount",
    "xero_amount_paid",
    "nexudus_credited",
    "xero_amount_credited",
    "nexudus_due",
    "xero_amount_due",
    "nexudus_paid",
    "xero_paid_on",
    "nexudus_total_at_transfer",
    "transferred_total",
    "action",
]
XERO_LIVE = ("AUTHORISED", "DRAFT", "SUBMITTED", "PAID")
XERO_GONE = ("VOIDED", "DELETED")


def _or_zero(values: pd.Series) -> pd.Series:
    """Money with blanks as zero (Decimal cells kept)."""
    return values.astype(object).fillna(cast(Any, ZERO))


def with_figures(frame: pd.DataFrame) -> pd.DataFrame:
    """Both sides' money with blanks as zero, Nexudus' due amount and status in words."""
    money = [
        "xero_amount_paid",
        "xero_amount_due",
        "xero_amount_credited",
        "nexudus_paid_amount",
        "nexudus_credited",
    ]
    frame = frame.assign(**{c: frame[c].pipe(_or_zero) for c in money})
    total = frame["nexudus_total"].pipe(_or_zero)
    due = total - frame["nexudus_paid_amount"] - frame["nexudus_credited"]
    # As Nexudus' own DueAmount: never below zero, nothing due on a void or deleted invoice.
    frame["nexudus_due"] = due.where(
        (due > 0) & ~frame["nexudus_void"] & ~frame["nexudus_deleted"], ZERO
    )
    frame["nexudus_status"] = np.select(
        [
            frame["nexudus_deleted"],
            frame["nexudus_void"],
            (frame["nexudus_paid_amount"] > 0) & (frame["nexudus_credited"] > 0),
            (frame["nexudus_credited"] > 0) & (frame["nexudus_credited"] >= total),
            frame["nexudus_paid"],
            frame["nexudus_paid_amount"] > 0,
            frame["nexudus_credited"] > 0,
        ],
        ["deleted", "void", "paid and credited", "credited", "paid", "part-paid", "part-credited"],
        "unpaid",
    )
    return frame


def differences(
    frame: pd.DataFrame, state: pd.DataFrame, transfers: pd.DataFrame, *, full: bool
) -> pd.DataFrame:
    found = frame["_merge"] == "both"
    status = frame["xero_status"].fillna("")
    x_live, x_gone = found & status.isin(XERO_LIVE), found & status.isin(XERO_GONE)
    authorised, x_paid_status = status == "AUTHORISED", status == "PAID"
    paid, due = frame["xero_amount_paid"], frame["xero_amount_due"]
    x_credited = frame["xero_amount_credited"]
    n_paid, n_void, n_deleted = (
        frame["nexudus_paid"],
        frame["nexudus_void"],
        frame["nexudus_deleted"],
    )
    n_paid_amount, n_credited = frame["nexudus_paid_amount"], frame["nexudus_credited"]
    n_total = frame["nexudus_total"].pipe(_or_zero)
    n_live = ~n_void & ~n_deleted
    x_money = (paid > 0) | (x_credited > 0)
    credit_to_allocate = n_credited - x_credited
    masks = {
        Difference.PAID_IN_XERO: found
        & x_paid_status
        & (paid > 0)
        & (x_credited == 0)
        & ~n_paid
        & n_live
        & (n_credited == 0),
        Difference.PART_PAID_IN_XERO: found
        & authorised
        & (paid > 0)
        & (due > 0)
        & (n_paid_amount < paid)
        & n_live,
        Difference.CREDITED_IN_XERO: x_live & (x_credited > n_credited) & n_live,
        Difference.VOIDED_IN_XERO: x_gone & n_live,
        Difference.PAID_IN_NEXUDUS: found
        & authorised
        & (due > 0)
        & n_paid
        & (n_paid_amount > 0)
        & (n_credited == 0)
        & n_live,
        Difference.PART_PAID_IN_NEXUDUS: found
        & authorised
        & ~n_paid
        & (n_paid_amount > 0)
        & (n_paid_amount > paid)
        & n_live,
        Difference.VOIDED_IN_NEXUDUS: x_live & n_void & ~n_deleted & ~x_money,
        Difference.VOIDED_IN_NEXUDUS_WITH_MONEY: x_live & n_void & ~n_deleted & x_money,
        Difference.DELETED_IN_NEXUDUS: x_live & n_deleted,
        Difference.CREDIT_NOTE_IN_NEXUDUS: found
        & authorised
        & n_live
        & (credit_to_allocate > 0)
        & (credit_to_allocate <= due)
        & (n_paid_amount + n_credited <= n_total),
        Difference.PAID_TWICE: x_live
        & ~n_deleted
        & (
            (n_paid_amount > n_total)
            | (n_paid & x_paid_status & (x_credited == 0) & (n_paid_amount != paid))
            | ((n_paid_amount > 0) & (n_credited > 0) & (n_paid_amount + n_credited > n_total))
            | ((credit_to_allocate > 0) & (x_paid_status | (credit_to_allocate > due)))
        ),
        Difference.TOTAL_CHANGED: found
        & frame["transferred_total"].notna()
        & frame["xero_total"].notna()
        & (frame["transferred_total"] != frame["xero_total"])
        & ~x_gone,
        Difference.TOTAL_CHANGED_IN_NEXUDUS: n_live
        & frame["nexudus_total_at_transfer"].notna()
        & frame["nexudus_total"].notna()
        & (frame["nexudus_total_at_transfer"] != frame["nexudus_total"]),
        Difference.AWAITING_APPROVAL: found & status.isin(["DRAFT", "SUBMITTED"]),
    }
    if full:
        # Only a full read can tell that something the ledger knows is gone from Xero.
        masks[Difference.MISSING_FROM_XERO] = ~found
    parts = [
        frame[mask].assign(difference=kind.value, action=kind.action, actor=kind.actor.value)
        for kind, mask in masks.items()
        if mask.any()
    ]
    known = set(transfers["xero_id"].dropna())
    unknown = state[
        (state["created_by_recon"] == 1)
        & ~state["xero_id"].isin(known)
        & (state["kind"] == "invoice")
        & (state["status"] != "DELETED")
    ]
    if len(unknown):
        parts.append(
            pd.DataFrame(
                {
                    "invoice_number": unknown["number"],
                    "xero_id": unknown["xero_id"],
                    "xero_status": unknown["status"],
                    "xero_total": unknown["total"],
                    "xero_amount_paid": unknown["amount_paid"],
                    "xero_amount_due": unknown["amount_due"],
                    "xero_amount_credited": unknown["amount_credited"],
                    "difference": Difference.UNKNOWN_TO_LEDGER.value,
                    "action": Difference.UNKNOWN_TO_LEDGER.action,
                    "actor": Difference.UNKNOWN_TO_LEDGER.actor.value,
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=DIFF_COLUMNS)
    out = pd.concat(parts, ignore_index=True).reindex(columns=DIFF_COLUMNS)
    order = {d.value: i for i, d in enumerate(Difference)}
    return out.sort_values(
        ["difference", "invoice_number"],
        key=lambda s: s.map(order) if s.name == "difference" else s,
    ).reset_index(drop=True)
