"""What Xero holds of a push's invoices: the look-up by number, the check that each was booked
as planned, and the recovery of the intents a crash or a stop left open.

Every invoice Xero answers as created is checked against the plan: its SubTotal,
TotalTax, Total and CurrencyCode must be the plan's ``xero_subtotal``,
``xero_tax``, ``xero_total`` and ``currency`` (the books may have changed since
the preview, e.g. a tax rate). One that differs is ``failed``, with both figures
and its Xero id in the ledger, so it is never sent twice and a person checks it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pandas as pd

from recon.errors import ClientError
from recon.ledger import Ledger
from recon.money import D
from recon.outcomes import TransferOutcome
from recon.session import Connection
from recon.transfer.result import NOT_SENT, UNSENT, invoice_id_of, outcome_row
from recon.values import is_missing, records

__all__ = [
    "BOOKED_DIFFERENTLY_FIX",
    "BOOKED_DIFFERENTLY_MEANING",
    "CHECKED_FIGURES",
    "as_recorded",
    "booked_differences",
    "booked_differently",
    "lookup",
    "recover",
    "recover_after_stop",
]


def recover(conn: Connection, ledger: Ledger) -> pd.DataFrame:
    """Resolve intents a crash left behind: found in Xero -> created (failed, with its Xero id, if
    its total is not Nexudus'); not found -> ``UNSENT``, resent as the same attempt."""
    tenant = str(conn.xero.tenant_id)
    pending = ledger.unfinished(tenant)
    if pending.empty:
        return pd.DataFrame(columns=["invoice_number", "resolution", "xero_id"])
    found = lookup(conn, list(pending["invoice_number"]))
    rows = []
    for rec in records(pending):
        hit = found.get(rec["invoice_number"])
        # An eligible invoice's planned total is Nexudus' own (the plan holds back any other).
        differences = (
            booked_differences({**rec, "xero_total": rec["nexudus_total"]}, hit["booked"])
            if hit is not None
            else []
        )
        if hit is not None and differences:
            ledger.record_outcome(
                tenant,
                rec["nexudus_invoice_id"],
                TransferOutcome.FAILED,
                xero_id=hit["id"],
                xero_total=hit["total"],
                messages=[
                    *differences,
                    "found in Xero after an interrupted run, not as planned: a person must "
                    "check it there and void or correct it",
                ],
                expected="sending",
            )
            rows.append(
                {
                    "invoice_number": rec["invoice_number"],
                    "resolution": "found in Xero, booked differently",
                    "xero_id": hit["id"],
                }
            )
        elif hit is not None:
            ledger.record_outcome(
                tenant,
                rec["nexudus_invoice_id"],
                TransferOutcome.CREATED,
                xero_id=hit["id"],
                xero_total=hit["total"],
                messages=["recovered: found in Xero after an interrupted run"],
                expected="sending",
            )
            rows.append(
                {
                    "invoice_number": rec["invoice_number"],
                    "resolution": "found in Xero",
                    "xero_id": hit["id"],
                }
            )
        else:
            # Xero never answered it: the resend is the same attempt, under the same key.
            ledger.record_outcome(
                tenant,
                rec["nexudus_invoice_id"],
                UNSENT,
                messages=["interrupted before Xero saved it; resent as the same attempt"],
                expected="sending",
            )
            rows.append(
                {
                    "invoice_number": rec["invoice_number"],
                    "resolution": "not in Xero: will be sent",
                    "xero_id": None,
                }
            )
        ledger.event(
            "xero",
            "recover",
            rows[-1]["resolution"],
            tenant_id=tenant,
            subject=rec["invoice_number"],
        )
    return pd.DataFrame(rows)


def lookup(conn: Connection, numbers: list[str]) -> dict[str, dict[str, Any]]:
    """Invoice and credit-note numbers -> their Xero id, total, contact and the record itself
    (``booked``: what ``booked_differences`` reads), in batches.

    By number, not by the plan's paged read of dates (``lookups.fetch_numbered_documents``):
    these are a batch or a crash's open intents, a call per URL's worth of numbers, and an
    exact read of them is never dearer than a page. Sales documents only (ACCREC,
    ACCRECCREDIT): a supplier's bill may carry the same number.
    """
    out: dict[str, dict[str, Any]] = {}
    for inv in conn.xero.iter_invoices(
        invoice_numbers=numbers, where='Type=="ACCREC"', summary_only=True
    ):
        if inv.get("Status") not in ("DELETED",):
            out[str(inv["InvoiceNumber"])] = {
                "id": inv["InvoiceID"],
                "total": _xero_amount(inv.get("Total")),
                "contact": (inv.get("Contact") or {}).get("ContactID"),
                "booked": inv,
            }
    missing = [n for n in numbers if n not in out]
    if missing and hasattr(conn.xero, "iter_credit_notes"):
        for note in conn.xero.iter_credit_notes(numbers=missing):
            if note.get("Status") not in ("DELETED",) and note.get("Type", "ACCRECCREDIT") == (
                "ACCRECCREDIT"
            ):
                out[str(note["CreditNoteNumber"])] = {
                    "id": note["CreditNoteID"],
                    "total": _xero_amount(note.get("Total")),
                    "contact": (note.get("Contact") or {}).get("ContactID"),
                    "booked": note,
                }
    return out


def _xero_amount(value: Any) -> Decimal | None:
    """An amount in Xero's answer as Decimal; None when missing or not a finite number."""
    try:
        amount = D(value if value is not None else 0)
    except (ArithmeticError, TypeError, ValueError):
        return None
    return amount if amount.is_finite() else None


# ---- booked as planned? ------------------------------------------------------------------------
# (plan column, Xero field, the word in messages)
CHECKED_FIGURES = (
    ("xero_subtotal", "SubTotal", "subtotal"),
    ("xero_tax", "TotalTax", "tax"),
    ("xero_total", "Total", "total"),
)
BOOKED_DIFFERENTLY_MEANING = (
    "Xero saved it, but not with the figures recon planned: the books changed between the "
    "preview and the push (a tax rate, an account, the currency), so Xero computed other totals."
)
BOOKED_DIFFERENTLY_FIX = (
    "A person must check the invoice in Xero (its id is in the ledger and here) and void or "
    "correct it there; recon will not send it again while Xero holds it."
)


def _planned(row: dict[str, Any], column: str, credit: bool) -> Decimal | None:
    value = row.get(column)
    if value is None or is_missing(value):
        return None
    amount = D(value)
    # Nexudus keeps a credit note's amounts negative; Xero's credit notes are positive.
    return abs(amount) if credit else amount


def booked_differences(row: dict[str, Any], booked: dict[str, Any]) -> list[str]:
    """How what Xero booked (``SubTotal``, ``TotalTax``, ``Total``, ``CurrencyCode``) differs
    from the plan's row (``xero_subtotal``, ``xero_tax``, ``xero_total``, ``currency``; a
    figure the plan or Xero's answer lacks is not compared); ``[]`` when it was booked as
    planned."""
    credit = row.get("kind") == "credit_note"
    figures = []
    differs = False
    for column, field_name, word in CHECKED_FIGURES:
        planned = _planned(row, column, credit)
        value = booked.get(field_name)
        xero = None if value is None or is_missing(value) else _xero_amount(value)
        figures.append((word, xero, planned))
        if planned is not None and xero is not None and xero != planned:
            differs = True
    messages = []
    if differs:
        xero_total, planned_total = figures[2][1], figures[2][2]
        detail = "; ".join(
            f"{word} {xero} booked, {planned if planned is not None else 'not planned'} planned"
            for word, xero, planned in figures[:2]
        )
        messages.append(f"Xero booked total {xero_total}, recon planned {planned_total} ({detail})")
    currency = booked.get("CurrencyCode")
    if currency and not is_missing(row.get("currency")) and str(currency) != str(row["currency"]):
        messages.append(f"Xero booked it in {currency}, recon planned {row['currency']}")
    return messages


def booked_differently(
    row: dict[str, Any], xero_id: str, booked: dict[str, Any], differences: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An invoice Xero holds with other figures than planned: its failed outcome row and its
    ledger outcome (state failed, with the Xero id so it is never created twice)."""
    total = booked.get("Total")
    xero_total = None if total is None or is_missing(total) else D(total)
    messages = [
        *differences,
        f"The invoice is in Xero (id {xero_id}) but not as planned: a person must check it there "
        "and void or correct it; recon will not send it again",
    ]
    shown = outcome_row(
        row, TransferOutcome.FAILED, xero_id=xero_id, xero_total=xero_total, messages=messages
    ) | {"meaning": BOOKED_DIFFERENTLY_MEANING, "fix": BOOKED_DIFFERENTLY_FIX}
    recorded = {
        "nexudus_invoice_id": row["nexudus_invoice_id"],
        "state": TransferOutcome.FAILED,
        "xero_id": xero_id,
        "xero_total": xero_total,
        "messages": messages,
    }
    return shown, recorded


def recover_after_stop(conn: Connection, ledger: Ledger, tenant: str) -> None:
    """After a stop, settle what Xero holds of the unanswered batches, if Xero can be asked."""
    try:
        recover(conn, ledger)
    except ClientError as lookup_exc:
        # Xero cannot be asked either (same cause): the intents stay open and the next run
        # resolves them before it sends anything.
        ledger.event(
            "xero", "recover", "deferred to the next run", tenant_id=tenant, detail=str(lookup_exc)
        )


def as_recorded(
    ledger: Ledger,
    tenant: str,
    rows: list[dict[str, Any]],
    reason: str,
    sending: TransferOutcome = TransferOutcome.SKIPPED,
) -> list[dict[str, Any]]:
    """The outcome of each row as the ledger now records it, for rows a stopped run was sending:
    created (found by the recovery), failed, or not sent (``reason``); an intent still open is
    ``sending`` (skipped when Xero refused the call, unknown when recon cannot tell)."""
    if not rows:
        return []
    known = {int(rec["nexudus_invoice_id"]): rec for rec in records(ledger.transfers(tenant))}
    out = []
    for r in rows:
        rec = known.get(invoice_id_of(r) or 0)
        state = None if rec is None else str(rec["state"])
        if rec is not None and state == TransferOutcome.CREATED:
            out.append(
                outcome_row(
                    r, TransferOutcome.CREATED, xero_id=rec["xero_id"], xero_total=rec["xero_total"]
                )
            )
        elif rec is not None and state == TransferOutcome.FAILED and rec["xero_id"]:
            out.append(
                outcome_row(
                    r,
                    TransferOutcome.FAILED,
                    xero_id=rec["xero_id"],
                    xero_total=rec["xero_total"],
                    messages=list(json.loads(rec["messages"] or "[]")),
                )
            )
        elif state == "sending" and sending is TransferOutcome.UNKNOWN:
            message = (
                f"unknown: {reason.removeprefix(NOT_SENT)}; the next run checks Xero before "
                "sending it again"
            )
            out.append(outcome_row(r, TransferOutcome.UNKNOWN, messages=[message]))
        else:
            out.append(outcome_row(r, TransferOutcome.SKIPPED, messages=[reason]))
    return out
