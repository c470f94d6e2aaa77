"""Status sync (Nexudus' "second transfer"): what changed in Xero, as a diff; paid ones marked paid
in Nexudus.

Floor 2. ``sync_status(conn, ledger)`` refreshes the ledger's copy of Xero's
state with as few calls as the API allows (``If-Modified-Since`` from the
stored watermark, pages of 1,000, summary objects) and returns a ``StatusDiff``:
one row per transferred invoice whose two sides differ, with a ``difference``
from ``Difference`` and the proposed action. ``apply_paid(conn, ledger, diff)``
marks in Nexudus exactly the invoices fully paid in Xero (with Xero's payment
date), recording intent and outcome in the ledger so a repeat changes nothing.
Every other difference is reported, never changed automatically.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd

from recon.clients.xero import parse_xero_date
from recon.errors import ApiRejected, ClientError
from recon.ledger import Ledger
from recon.outcomes import PaymentOutcome, TransferOutcome
from recon.session import Connection
from recon.values import decimal_sum, records

__all__ = ["Difference", "StatusDiff", "apply_paid", "sync_status"]


class Difference(StrEnum):
    """Every kind of difference the status sync reports."""

    PAID_IN_XERO = "paid in Xero, unpaid in Nexudus"
    PART_PAID_IN_XERO = "part-paid in Xero"
    VOIDED_IN_XERO = "voided or deleted in Xero, live in Nexudus"
    PAID_IN_NEXUDUS = "paid in Nexudus, still owing in Xero"
    TOTAL_CHANGED = "total changed in Xero after transfer"
    MISSING_FROM_XERO = "in the ledger but missing from Xero"
    UNKNOWN_TO_LEDGER = "in Xero (created by recon) but unknown to the ledger"
    AWAITING_APPROVAL = "draft or awaiting approval in Xero"

    @property
    def action(self) -> str:
        """What to do about this difference, in a sentence."""
        return ACTIONS[self]


ACTIONS = {
    Difference.PAID_IN_XERO: (
        "Mark paid in Nexudus with Xero's payment date (recon does this on apply)."
    ),
    Difference.PART_PAID_IN_XERO: (
        "Record the part payment in Nexudus by hand; recon marks only fully paid invoices."
    ),
    Difference.VOIDED_IN_XERO: (
        "Void the invoice or issue a credit note in Nexudus, or reinstate it in Xero."
    ),
    Difference.PAID_IN_NEXUDUS: "Record the payment in Xero (it was taken in Nexudus).",
    Difference.TOTAL_CHANGED: (
        "Someone edited the invoice in Xero: align Nexudus or undo the edit in Xero."
    ),
    Difference.MISSING_FROM_XERO: (
        "Find out what happened to it in Xero; the ledger still holds its Xero id."
    ),
    Difference.UNKNOWN_TO_LEDGER: (
        "Run the transfer again: its recovery step adopts the invoice into the ledger."
    ),
    Difference.AWAITING_APPROVAL: "Approve it in Xero; it cannot be paid until it is AUTHORISED.",
}
DIFF_COLUMNS = [
    "difference",
    "invoice_number",
    "nexudus_invoice_id",
    "xero_id",
    "currency",
    "xero_status",
    "xero_total",
    "xero_amount_paid",
    "xero_amount_due",
    "xero_paid_on",
    "nexudus_total",
    "nexudus_paid",
    "nexudus_paid_amount",
    "transferred_total",
    "action",
]
# The watermark is the newest UpdatedDateUTC seen, sent with milliseconds; Xero returns what changed
# after it. Nexudus stamps to the second and its from_ filter is inclusive, so its last second is
# read again (harmless).
WATERMARK_OVERLAP = timedelta(0)


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
        """Write the differences as ``status_differences.csv`` in ``folder``; returns its path."""
        path = Path(folder) / "status_differences.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.differences.to_csv(path, index=False)
        return path

    def __str__(self) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in self.counts().items()) or "no differences"
        return f"Status sync: {counts} ({self.calls.get('xero', 0)} Xero calls)"

    def __repr__(self) -> str:
        return f"<StatusDiff {len(self.differences)} differences>"

    def _repr_html_(self) -> str:
        from recon.display import status_diff_html

        return status_diff_html(self)


def _state_row(inv: dict[str, Any], *, kind: str, created_by_recon: bool) -> dict[str, Any]:
    paid_on = parse_xero_date(inv.get("FullyPaidOnDate"))
    updated = parse_xero_date(inv.get("UpdatedDateUTC"))
    id_key, number_key = (
        ("CreditNoteID", "CreditNoteNumber")
        if kind == "credit_note"
        else ("InvoiceID", "InvoiceNumber")
    )
    return {
        "xero_id": inv[id_key],
        "number": inv.get(number_key),
        "kind": kind,
        "status": inv.get("Status"),
        "total": _dec(inv.get("Total")),
        "amount_due": _dec(inv.get("AmountDue")),
        "amount_paid": _dec(inv.get("AmountPaid")),
        "amount_credited": _dec(inv.get("AmountCredited")),
        "fully_paid_on": paid_on.date().isoformat() if paid_on else None,
        "updated_utc": updated.isoformat() if updated else None,
        "created_by_recon": created_by_recon,
    }


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def refresh_xero_state(conn: Connection, ledger: Ledger, *, full: bool = False) -> dict[str, Any]:
    """Bring the ledger's copy of Xero up to date; returns what it read.

    Incremental (a watermark exists): invoices changed since it, and of those the
    ones this app created: typically two calls. Full (first run, or ``full``):
    every invoice and every one this app created, 1,000 a page.
    """
    tenant = str(conn.xero.tenant_id)
    mark = None if full else ledger.watermark(tenant, "xero_invoices")
    since = mark - WATERMARK_OVERLAP if mark else None
    changed = list(conn.xero.iter_invoices(modified_since=since, summary_only=True))
    mine = {
        inv["InvoiceID"]
        for inv in conn.xero.iter_invoices(
            modified_since=since, summary_only=True, created_by_my_app=True
        )
    }
    ledger.update_xero_state(
        tenant,
        [_state_row(i, kind="invoice", created_by_recon=i["InvoiceID"] in mine) for i in changed],
        complete=since is None,
    )
    stamps = [parse_xero_date(i.get("UpdatedDateUTC")) for i in changed]
    newest = max((s for s in stamps if s is not None), default=None)
    if newest is not None and (mark is None or newest > mark):
        ledger.set_watermark(tenant, "xero_invoices", newest)
    return {"full": since is None, "changed": len(changed), "watermark": newest or mark}


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
    nexudus = _nexudus_state(conn, ledger, tenant, transfers, full=full)
    frame = transfers[
        ["nexudus_invoice_id", "invoice_number", "xero_id", "currency", "xero_total"]
    ].rename(columns={"xero_total": "transferred_total"})
    frame = frame.merge(
        state[
            ["xero_id", "status", "total", "amount_due", "amount_paid", "fully_paid_on", "kind"]
        ].rename(
            columns={
                "status": "xero_status",
                "total": "xero_total",
                "amount_due": "xero_amount_due",
                "amount_paid": "xero_amount_paid",
                "fully_paid_on": "xero_paid_on",
            }
        ),
        on="xero_id",
        how="left",
        indicator=True,
    )
    # Only this location's invoices: another location may book into the same organisation.
    frame = frame.merge(nexudus, on="nexudus_invoice_id", how="inner")
    differences = _differences(frame, state, transfers, full=read["full"])
    unpaid = frame[frame["xero_status"] == "AUTHORISED"]
    unpaid = pd.DataFrame(
        {
            "invoice_number": unpaid["invoice_number"],
            "currency": unpaid["currency"],
            "amount_due": unpaid["xero_amount_due"],
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
        "full": read["full"],
    }
    return StatusDiff(
        differences, unpaid.reset_index(drop=True), calls, time.monotonic() - started, context
    )


def _nexudus_state(
    conn: Connection, ledger: Ledger, tenant: str, transfers: pd.DataFrame, *, full: bool
) -> pd.DataFrame:
    """Nexudus' side of every transferred invoice: the ledger's copy, refreshed with what changed
    since last time."""
    columns = [
        "nexudus_invoice_id",
        "nexudus_total",
        "nexudus_paid",
        "nexudus_paid_amount",
        "nexudus_void",
        "nexudus_due_date",
    ]
    if transfers.empty:
        return pd.DataFrame(columns=columns)
    business_id = int(conn.business["Id"])
    # One watermark per location: locations that share an organisation are read separately.
    kind = f"nexudus_invoices:{business_id}"
    mark = None if full else ledger.watermark(tenant, kind)
    since = mark - WATERMARK_OVERLAP if mark else None
    changed = conn.nexudus.fetch_invoices(business_id=business_id, updated_since=since)
    if len(changed):
        ledger.update_nexudus_state(tenant, changed)
        newest = pd.to_datetime(changed["UpdatedOn"], utc=True).max()
        if not pd.isna(newest):
            ledger.set_watermark(tenant, kind, newest.to_pydatetime())
    state = ledger.nexudus_state(tenant)
    state = state[
        state["nexudus_invoice_id"].isin(set(transfers["nexudus_invoice_id"]))
        & (state["business_id"] == business_id)
    ]
    return pd.DataFrame(
        {
            "nexudus_invoice_id": state["nexudus_invoice_id"],
            "nexudus_total": state["total"],
            "nexudus_paid": state["paid"].astype(bool),
            "nexudus_paid_amount": state["paid_amount"],
            "nexudus_void": state["void"].astype(bool),
            "nexudus_due_date": state["due_date"],
        }
    )


def _differences(
    frame: pd.DataFrame, state: pd.DataFrame, transfers: pd.DataFrame, *, full: bool
) -> pd.DataFrame:
    found = frame["_merge"] == "both"
    status = frame["xero_status"].fillna("")
    paid = frame["xero_amount_paid"].map(lambda v: v or Decimal("0"))
    due = frame["xero_amount_due"].map(lambda v: v or Decimal("0"))
    n_paid = frame["nexudus_paid"].fillna(False).astype(bool)
    n_paid_amount = frame["nexudus_paid_amount"].map(lambda v: v or Decimal("0"))
    n_void = frame["nexudus_void"].fillna(False).astype(bool)
    masks = {
        Difference.PAID_IN_XERO: found & (status == "PAID") & ~n_paid & ~n_void,
        Difference.PART_PAID_IN_XERO: found
        & (status == "AUTHORISED")
        & (paid > 0)
        & (due > 0)
        & (n_paid_amount < paid),
        Difference.VOIDED_IN_XERO: found & status.isin(["VOIDED", "DELETED"]) & ~n_void,
        Difference.PAID_IN_NEXUDUS: found & (status == "AUTHORISED") & (due > 0) & n_paid,
        Difference.TOTAL_CHANGED: found
        & frame["transferred_total"].notna()
        & frame["xero_total"].notna()
        & (frame["transferred_total"] != frame["xero_total"])
        & ~status.isin(["VOIDED", "DELETED"]),
        Difference.AWAITING_APPROVAL: found & status.isin(["DRAFT", "SUBMITTED"]),
    }
    if full:
        # Only a full read can tell that something the ledger knows is gone from Xero.
        masks[Difference.MISSING_FROM_XERO] = ~found
    parts = [
        frame[mask].assign(difference=kind.value, action=kind.action)
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
                    "difference": Difference.UNKNOWN_TO_LEDGER.value,
                    "action": Difference.UNKNOWN_TO_LEDGER.action,
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


# ---- apply: mark paid in Nexudus -----------------------------------------------------------------
APPLY_COLUMNS = ["invoice_number", "nexudus_invoice_id", "outcome", "amount", "paid_on", "message"]


def apply_paid(
    conn: Connection,
    ledger: Ledger,
    diff: StatusDiff,
    *,
    progress: Callable[[int, int], object] | None = None,
) -> pd.DataFrame:
    """Mark paid in Nexudus every invoice fully paid in Xero; idempotent through the ledger.

    Each payment is an intent in the ledger before the call and an outcome after.
    An intent left by a crash is settled by reading the Nexudus invoice: if it is
    already paid the payment is recorded as applied, never sent twice.
    """
    tenant = str(conn.xero.tenant_id)
    done = ledger.payments(tenant)
    applied = set(done[done["state"] == PaymentOutcome.APPLIED]["nexudus_invoice_id"].astype(int))
    rows = []
    todo = diff.paid_in_xero
    for i, rec in enumerate(records(todo)):
        invoice_id = int(rec["nexudus_invoice_id"])
        if invoice_id in applied:
            rows.append(
                [
                    rec["invoice_number"],
                    invoice_id,
                    PaymentOutcome.SKIPPED,
                    None,
                    rec["xero_paid_on"],
                    "already applied (ledger)",
                ]
            )
            continue
        rows.append(_apply_one(conn, ledger, tenant, rec))
        if progress:
            progress(i + 1, len(todo))
    return pd.DataFrame(rows, columns=APPLY_COLUMNS)


def _sent_by_recon(ledger: Ledger, tenant: str, invoice_id: int) -> bool:
    """Whether recon sent a payment for this invoice whose outcome it never heard."""
    rows = ledger.payments(tenant)
    mine = rows[rows["nexudus_invoice_id"].astype(int) == invoice_id]
    return bool((mine["state"] == "sending").any())


def _apply_one(conn: Connection, ledger: Ledger, tenant: str, rec: dict[str, Any]) -> list[Any]:
    invoice_id = int(rec["nexudus_invoice_id"])
    try:
        current = conn.nexudus.get_invoice(invoice_id)
    except ClientError as exc:
        return [
            rec["invoice_number"],
            invoice_id,
            PaymentOutcome.FAILED,
            None,
            rec["xero_paid_on"],
            str(exc),
        ]
    if current.get("Paid"):
        paid_on, note = current.get("PaidOn"), "already paid in Nexudus"
        if _sent_by_recon(ledger, tenant, invoice_id) and rec["xero_paid_on"]:
            # recon's own payment, whose answer was lost: it still needs PaidOn moved from the
            # moment of the call to Xero's payment date (nexudus.md §8).
            day = date.fromisoformat(str(rec["xero_paid_on"])[:10])
            try:
                conn.nexudus.update_invoice(invoice_id, base=current, PaidOn=day)
            except ClientError as exc:
                note = f"paid by recon's earlier run; PaidOn not moved to {day}: {exc}"
            else:
                paid_on = day.isoformat()
                note = (
                    "paid by recon's earlier run (its answer was lost); PaidOn set to Xero's date"
                )
        ledger.record_payment(
            tenant,
            invoice_id,
            rec["invoice_number"],
            PaymentOutcome.APPLIED,
            paid_on=str(paid_on),
            xero_invoice_id=rec["xero_id"],
            messages=[note],
        )
        return [
            rec["invoice_number"],
            invoice_id,
            PaymentOutcome.ALREADY_PAID,
            None,
            paid_on,
            note,
        ]
    amount = Decimal(str(current["TotalAmount"])) - Decimal(str(current.get("PaidAmount") or 0))
    paid_on = rec["xero_paid_on"] or datetime.now(tz=UTC).date().isoformat()
    ledger.record_payment(
        tenant,
        invoice_id,
        rec["invoice_number"],
        "sending",
        amount=amount,
        paid_on=paid_on,
        xero_invoice_id=rec["xero_id"],
    )
    try:
        recorded = conn.nexudus.record_payment(
            invoice_id,
            amount,
            date.fromisoformat(str(paid_on)[:10]),
            f"Paid in Xero ({rec['invoice_number']})",
            code="XERO",
            invoice=current,
        )
    except ApiRejected as exc:
        ledger.record_payment(
            tenant,
            invoice_id,
            rec["invoice_number"],
            PaymentOutcome.FAILED,
            messages=exc.messages or [str(exc)],
        )
        return [
            rec["invoice_number"],
            invoice_id,
            PaymentOutcome.FAILED,
            amount,
            paid_on,
            "; ".join(exc.messages) or str(exc),
        ]
    except ClientError as exc:
        # Unknown whether Nexudus saved it: the 'sending' intent is settled on the next apply by
        # reading the invoice.
        return [
            rec["invoice_number"],
            invoice_id,
            PaymentOutcome.UNKNOWN,
            amount,
            paid_on,
            str(exc),
        ]
    note = recorded.problem or ""
    ledger.record_payment(
        tenant,
        invoice_id,
        rec["invoice_number"],
        PaymentOutcome.APPLIED,
        amount=amount,
        paid_on=paid_on,
        xero_invoice_id=rec["xero_id"],
        messages=[note] if note else None,
    )
    ledger.event(
        "nexudus",
        "mark paid",
        PaymentOutcome.APPLIED,
        tenant_id=tenant,
        subject=rec["invoice_number"],
        detail=f"{amount}" + (f"; {note}" if note else ""),
    )
    return [rec["invoice_number"], invoice_id, PaymentOutcome.APPLIED, amount, paid_on, note]
