"""The status diff: which difference each transferred invoice shows between Xero and Nexudus, and
the ``StatusDiff`` result that holds them.

Floor 3: pandas and numpy on frames the sync assembled (``recon.status``); it reads no API
and no ledger. Every test is a vectorised comparison of whole-number amounts (``SCALE``
units, int64), so a million invoices cost no Python per invoice; the money shown in a
difference row is the ledger's own ``Decimal``, taken for the rows that differ only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from recon.cells import csv_safe
from recon.ledger.schema import KEPT_MONEY
from recon.values import decimal_sum

__all__ = [
    "ACTIONS",
    "DIFF_COLUMNS",
    "MONEY_COLUMNS",
    "RECON_ACTS",
    "SCALE",
    "XERO_GONE",
    "XERO_LIVE",
    "Actor",
    "Difference",
    "StatusDiff",
    "find_differences",
    "or_zero",
    "to_scaled",
    "with_scaled",
]

ZERO = Decimal("0")
# Amounts are compared as whole ten-thousandths of the currency unit: exact for every amount
# either side stores (Xero's totals have 2 places, its unit amounts up to 4), and an int64
# holds up to 922 billion of a currency unit that way.
SCALE = 10_000
XERO_LIVE = ("AUTHORISED", "DRAFT", "SUBMITTED", "PAID")
XERO_GONE = ("VOIDED", "DELETED")
# The money the diff compares, each as the ledger holds it (Decimal, blank when unknown): the
# money the ledger keeps of each invoice a sync listed.
MONEY_COLUMNS = KEPT_MONEY
# Shown with blanks as zero in a difference row.
ZEROED_COLUMNS = (
    "xero_amount_paid",
    "xero_amount_due",
    "xero_amount_credited",
    "nexudus_paid_amount",
    "nexudus_credited",
)

Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]


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


# What Xero shows unpaid at the sync (invoice, currency, amount due, due date): the ageing.
UNPAID_FILE = "status_unpaid.csv"


@dataclass(frozen=True)
class StatusDiff:
    """The differences, the ageing of what is still owed, and what the sync cost."""

    differences: pd.DataFrame
    unpaid: pd.DataFrame
    calls: dict[str, int]
    seconds: float
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def paid_in_xero(self) -> pd.DataFrame:
        """The differences that are paid in Xero and unpaid in Nexudus."""
        return self.differences[self.differences["difference"] == Difference.PAID_IN_XERO.value]

    def of(self, *kinds: Difference) -> pd.DataFrame:
        """The differences of the given kinds."""
        return self.differences[self.differences["difference"].isin([k.value for k in kinds])]

    def counts(self) -> dict[str, int]:
        """How many differences of each kind, the most frequent first."""
        return {str(k): int(v) for k, v in self.differences["difference"].value_counts().items()}

    def ageing(self, today: date | None = None) -> pd.DataFrame:
        """What Xero still shows owing, by days past due, per currency."""
        today = today or datetime.now(tz=UTC).date()
        if self.unpaid.empty:
            return pd.DataFrame(columns=["currency", "bucket", "invoices", "amount_due"])
        days = (
            pd.Timestamp(today, tz="UTC") - pd.to_datetime(self.unpaid["due_date"], utc=True)
        ).dt.days
        buckets = pd.cut(
            days,
            bins=[-10_000, 0, 30, 60, 90, 10_000],
            labels=["not yet due", "1-30", "31-60", "61-90", "over 90"],
        )
        frame = self.unpaid.assign(bucket=buckets)
        grouped = frame.groupby(["currency", "bucket"], observed=True)
        return pd.DataFrame(
            {
                "invoices": grouped.size(),
                "amount_due": grouped["amount_due"].agg(decimal_sum),
            }
        ).reset_index()

    def save(self, folder: str | Path) -> Path:
        """Write the differences as ``status_differences.csv`` in ``folder``, and what Xero shows
        unpaid as ``status_unpaid.csv`` (the report's ageing); returns the differences' path."""
        path = Path(folder) / "status_differences.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        csv_safe(self.differences).to_csv(path, index=False)
        csv_safe(self.unpaid).to_csv(path.with_name(UNPAID_FILE), index=False)
        return path

    def __str__(self) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in self.counts().items()) or "no differences"
        return (
            f"Status sync: {counts} ({self.calls.get('xero', 0)} Xero calls, "
            f"{self.calls.get('nexudus', 0)} Nexudus calls)"
        )

    def __repr__(self) -> str:
        return f"<StatusDiff {len(self.differences)} differences>"

    def _repr_html_(self) -> str:
        from recon.display import status_diff_html

        return status_diff_html(self)


def or_zero(values: pd.Series) -> pd.Series:
    """Money with blanks as zero (Decimal cells kept)."""
    return values.astype(object).fillna(cast(Any, ZERO))


def to_scaled(values: pd.Series) -> tuple[Ints, Flags]:
    """Decimal amounts as whole ``SCALE`` units (int64, blanks 0) and which were present.

    Raises ``ValueError`` for an amount with more decimal places than ``SCALE`` keeps,
    which no comparison could then treat exactly.
    """
    cells = values.to_numpy(dtype=object)
    present = ~pd.isna(cells)
    scaled = np.zeros(len(cells), dtype=np.int64)
    kept = cells[present]
    if len(kept):
        units = [Decimal(v).scaleb(4) for v in kept]  # SCALE = 10**4
        whole = [int(u) for u in units]
        if any(u != w for u, w in zip(units, whole, strict=True)):
            raise ValueError(f"an amount has more than 4 decimal places in {values.name!r}")
        scaled[present] = whole
    return scaled, present


def with_scaled(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``<money>_scaled`` (int64) and ``<money>_known`` (bool) beside each of
    ``MONEY_COLUMNS``: what ``find_differences`` compares. A ledger that keeps whole units
    can supply these columns itself, and then no Decimal is read per invoice."""
    extra: dict[str, Any] = {}
    for column in MONEY_COLUMNS:
        scaled, known = to_scaled(frame[column])
        extra[f"{column}_scaled"] = scaled
        extra[f"{column}_known"] = known
    return frame.assign(**extra)


@dataclass(frozen=True)
class _Sides:
    """Both sides' figures of every invoice as arrays: whole units, flags and statuses."""

    frame: pd.DataFrame

    def money(self, column: str) -> Ints:
        return cast(Ints, self.frame[f"{column}_scaled"].to_numpy(dtype=np.int64))

    def known(self, column: str) -> Flags:
        return cast(Flags, self.frame[f"{column}_known"].to_numpy(dtype=bool))

    def flag(self, column: str) -> Flags:
        return cast(Flags, self.frame[column].to_numpy(dtype=bool))


def _masks(frame: pd.DataFrame, *, full: bool) -> dict[Difference, Flags]:
    """Which invoices show each kind of difference (one boolean array per kind)."""
    sides = _Sides(frame)
    found = (frame["_merge"] == "both").to_numpy()
    status = frame["xero_status"].fillna("").to_numpy(dtype=object)
    x_live = found & np.isin(status, XERO_LIVE)
    x_gone = found & np.isin(status, XERO_GONE)
    authorised, x_paid_status = status == "AUTHORISED", status == "PAID"
    paid, due = sides.money("xero_amount_paid"), sides.money("xero_amount_due")
    x_credited = sides.money("xero_amount_credited")
    n_paid, n_void = sides.flag("nexudus_paid"), sides.flag("nexudus_void")
    n_deleted = sides.flag("nexudus_deleted")
    n_paid_amount, n_credited = sides.money("nexudus_paid_amount"), sides.money("nexudus_credited")
    n_total = sides.money("nexudus_total")
    n_live = ~n_void & ~n_deleted
    x_money = (paid > 0) | (x_credited > 0)
    to_allocate = n_credited - x_credited
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
        & (to_allocate > 0)
        & (to_allocate <= due)
        & (n_paid_amount + n_credited <= n_total),
        Difference.PAID_TWICE: x_live
        & ~n_deleted
        & (
            (n_paid_amount > n_total)
            | (n_paid & x_paid_status & (x_credited == 0) & (n_paid_amount != paid))
            | ((n_paid_amount > 0) & (n_credited > 0) & (n_paid_amount + n_credited > n_total))
            | ((to_allocate > 0) & (x_paid_status | (to_allocate > due)))
        ),
        Difference.TOTAL_CHANGED: found
        & sides.known("transferred_total")
        & sides.known("xero_total")
        & (sides.money("transferred_total") != sides.money("xero_total"))
        & ~x_gone,
        Difference.TOTAL_CHANGED_IN_NEXUDUS: n_live
        & sides.known("nexudus_total_at_transfer")
        & sides.known("nexudus_total")
        & (sides.money("nexudus_total_at_transfer") != n_total),
        Difference.AWAITING_APPROVAL: found & np.isin(status, ("DRAFT", "SUBMITTED")),
    }
    if full:
        # Only a full read can tell that something the ledger knows is gone from Xero.
        masks[Difference.MISSING_FROM_XERO] = ~found
    return masks


def _figures(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows that differ with both sides' money (blanks as zero), Nexudus' due amount and its
    status in words, in Decimal as the ledger holds them."""
    rows = rows.assign(**{c: or_zero(rows[c]) for c in ZEROED_COLUMNS})
    total = or_zero(rows["nexudus_total"])
    paid, credited = rows["nexudus_paid_amount"], rows["nexudus_credited"]
    void, deleted = rows["nexudus_void"].astype(bool), rows["nexudus_deleted"].astype(bool)
    due = total - paid - credited
    # As Nexudus' own DueAmount: never below zero, nothing due on a void or deleted invoice.
    rows["nexudus_due"] = due.where((due > 0) & ~void & ~deleted, ZERO)
    rows["nexudus_status"] = np.select(
        [
            deleted,
            void,
            (paid > 0) & (credited > 0),
            (credited > 0) & (credited >= total),
            rows["nexudus_paid"].astype(bool),
            paid > 0,
            credited > 0,
        ],
        ["deleted", "void", "paid and credited", "credited", "paid", "part-paid", "part-credited"],
        "unpaid",
    )
    return rows


def _unknown_to_ledger(state: pd.DataFrame, transfers: pd.DataFrame) -> pd.DataFrame:
    """Invoices recon created in Xero (and not deleted there) that no transfer row names."""
    mine = state[
        (state["created_by_recon"] == 1)
        & (state["kind"] == "invoice")
        & (state["status"] != "DELETED")
    ]
    unknown = mine[~mine["xero_id"].isin(transfers["xero_id"].dropna())]
    kind = Difference.UNKNOWN_TO_LEDGER
    return pd.DataFrame(
        {
            "invoice_number": unknown["number"],
            "xero_id": unknown["xero_id"],
            "xero_status": unknown["status"],
            "xero_total": unknown["total"],
            "xero_amount_paid": unknown["amount_paid"],
            "xero_amount_due": unknown["amount_due"],
            "xero_amount_credited": unknown["amount_credited"],
            "difference": kind.value,
            "action": kind.action,
            "actor": kind.actor.value,
        }
    )


def find_differences(
    frame: pd.DataFrame, state: pd.DataFrame, transfers: pd.DataFrame, *, full: bool
) -> pd.DataFrame:
    """One row per difference (``DIFF_COLUMNS``), ordered by kind then invoice number.

    ``frame``: each transferred invoice of the location with the ledger's copy of
    both sides (``_merge`` tells whether Xero's copy was found), with the whole-unit
    columns of ``with_scaled`` (added here when missing). ``state``: the ledger's copy
    of Xero, for invoices recon created that no transfer names; ``full``: Xero was
    read whole, so an invoice missing from it is reported.
    """
    if f"{MONEY_COLUMNS[0]}_scaled" not in frame.columns:
        frame = with_scaled(frame)
    masks = {kind: mask for kind, mask in _masks(frame, full=full).items() if mask.any()}
    parts: list[pd.DataFrame] = []
    if masks:
        differing = np.flatnonzero(np.logical_or.reduce(list(masks.values())))
        rows = _figures(frame.iloc[differing])
        for kind, mask in masks.items():
            parts.append(
                rows[mask[differing]].assign(
                    difference=kind.value, action=kind.action, actor=kind.actor.value
                )
            )
    unknown = _unknown_to_ledger(state, transfers)
    if len(unknown):
        parts.append(unknown)
    if not parts:
        return pd.DataFrame(columns=DIFF_COLUMNS)
    out = pd.concat(parts, ignore_index=True).reindex(columns=DIFF_COLUMNS)
    order = {d.value: i for i, d in enumerate(Difference)}
    return out.sort_values(
        ["difference", "invoice_number"],
        key=lambda s: s.map(order) if s.name == "difference" else s,
    ).reset_index(drop=True)
