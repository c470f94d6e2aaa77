"""Mark paid in Nexudus the invoices fully paid in Xero: the one write the status sync makes in
Nexudus, gated and idempotent through the ledger.

Floor 3: the ledger, the connection's Nexudus client and the diff's rows (a ``StatusDiff``,
read only through its ``paid_in_xero``). ``apply_paid`` marks exactly the invoices fully paid
in Xero with money (never one settled by credit, ``is_credit_settled``), recording intent and
outcome in the ledger, so a repeat changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from recon.errors import ApiRejected, AuthError, ClientError, NotFound, RateLimited, StepError
from recon.ledger import Ledger
from recon.money import D
from recon.outcomes import PaymentOutcome
from recon.progress import progress as progress_bar
from recon.session import Connection
from recon.values import records

if TYPE_CHECKING:
    from recon.status_diff import StatusDiff

__all__ = ["APPLY_COLUMNS", "apply_paid", "is_credit_settled"]

ZERO = Decimal("0")


def _or_zero(values: pd.Series) -> pd.Series:
    """Money with blanks as zero (Decimal cells kept)."""
    return values.astype(object).fillna(cast(Any, ZERO))


def is_credit_settled(frame: pd.DataFrame) -> pd.Series:
    """Which Xero invoices are settled by credit, not money: AmountCredited covers the total, or
    PAID with AmountPaid 0 and AmountCredited above 0."""
    credited = frame["xero_amount_credited"].pipe(_or_zero)
    paid = frame["xero_amount_paid"].pipe(_or_zero)
    total = frame["xero_total"].pipe(_or_zero)
    status = frame["xero_status"].fillna("")
    return (credited > 0) & ((credited >= total) | ((status == "PAID") & (paid == 0)))


APPLY_COLUMNS = ["invoice_number", "nexudus_invoice_id", "outcome", "amount", "paid_on", "message"]


def apply_paid(
    conn: Connection,
    ledger: Ledger,
    diff: StatusDiff,
    *,
    progress: Callable[[int, int], object] | None = None,
    lock_wait: float | None = None,
) -> pd.DataFrame:
    """Mark paid in Nexudus every invoice fully paid in Xero; idempotent through the ledger.
    Never raises for a call that fails: every invoice ends with an outcome.

    An invoice settled by credit in Xero (``is_credit_settled``) is refused: it is
    never marked paid with a payment that did not happen.

    Each payment is an intent in the ledger before the call and an outcome after, each
    a compare-and-set on the payment's state, so a payment is recorded once and never
    ``failed`` when Nexudus took it. An intent left by a crash or a lost answer is settled
    by reading the Nexudus invoice (nexudus.md §8): paid -> applied, never sent twice;
    unpaid -> sent again. Intents of invoices no longer in the diff are settled too.

    One apply (or push) at a time per ledger file and organisation (``Ledger.writer``):
    an apply that finds another one writing waits up to ``lock_wait`` seconds (default
    ``WRITER_WAIT_SECONDS``), then reports every invoice ``failed`` with who holds it.
    """
    tenant = str(conn.xero.tenant_id)
    todo = diff.paid_in_xero
    try:
        with ledger.writer(tenant, f"mark paid in Nexudus for {conn.location}", wait=lock_wait):
            return _apply_held(conn, ledger, tenant, todo, progress)
    except StepError as busy:
        message = f"not done: {busy}"
        rows = [
            [
                rec["invoice_number"],
                int(rec["nexudus_invoice_id"]),
                PaymentOutcome.FAILED,
                None,
                rec["xero_paid_on"],
                message,
            ]
            for rec in records(todo)
        ]
        return pd.DataFrame(rows, columns=APPLY_COLUMNS)


def _apply_held(
    conn: Connection,
    ledger: Ledger,
    tenant: str,
    todo: pd.DataFrame,
    progress: Callable[[int, int], object] | None,
) -> pd.DataFrame:
    """``apply_paid`` under the writer lock: the ledger is read here, after any other run."""
    wanted = {int(i) for i in todo["nexudus_invoice_id"]}
    rows = _settle_lost_payments(conn, ledger, tenant, exclude=wanted)
    done = ledger.payments(tenant)
    applied = set(done[done["state"] == PaymentOutcome.APPLIED]["nexudus_invoice_id"].astype(int))
    credited = _credit_settled(ledger, tenant, todo)
    stop: str | None = None
    rows_todo = records(todo)
    marking = progress_bar(
        rows_todo, total=len(rows_todo), desc="Mark paid in Nexudus", unit="invoice"
    )
    for i, rec in enumerate(marking):
        invoice_id = int(rec["nexudus_invoice_id"])
        if credited.get(str(rec["xero_id"]), False):
            rows.append(
                _row(
                    rec,
                    PaymentOutcome.SKIPPED,
                    "refused: settled by a credit note in Xero, not by a payment; raise the "
                    "credit note in Nexudus instead",
                )
            )
            continue
        if invoice_id in applied:
            rows.append(_row(rec, PaymentOutcome.SKIPPED, "already applied (ledger)"))
            continue
        if stop:
            rows.append(_row(rec, PaymentOutcome.FAILED, stop))
            continue
        try:
            rows.append(_apply_one(conn, ledger, tenant, rec))
        except (AuthError, RateLimited) as exc:
            # Nexudus will not take more now (sign-in refused, limit spent): say so for the rest.
            stop = f"not sent: {exc}; the next apply marks it"
            rows.append(_row(rec, PaymentOutcome.FAILED, stop))
        if progress:
            progress(i + 1, len(todo))
    return pd.DataFrame(rows, columns=APPLY_COLUMNS)


def _row(rec: dict[str, Any], outcome: PaymentOutcome, message: str) -> list[Any]:
    """An applied-table row with no amount: the invoice, the outcome and why."""
    return [
        rec["invoice_number"],
        int(rec["nexudus_invoice_id"]),
        outcome,
        None,
        rec["xero_paid_on"],
        message,
    ]


def _settle_lost_payments(
    conn: Connection, ledger: Ledger, tenant: str, *, exclude: set[int]
) -> list[list[Any]]:
    """Settle the ``sending`` payment intents of invoices not in this apply (their answer was lost
    and the invoice has left the diff since) by reading each invoice (nexudus.md §8 "Confirm by
    re-reading the invoice"): paid -> applied, unpaid -> failed (not kept), gone -> failed. An
    invoice Nexudus cannot read now stays ``sending`` for the next apply. Returns their rows."""
    payments = ledger.payments(tenant)
    open_rows = payments[
        (payments["state"] == "sending") & ~payments["nexudus_invoice_id"].astype(int).isin(exclude)
    ]
    rows: list[list[Any]] = []
    for pay in records(open_rows):
        invoice_id = int(pay["nexudus_invoice_id"])
        rec = {
            "invoice_number": pay["invoice_number"],
            "nexudus_invoice_id": invoice_id,
            "xero_id": pay["xero_invoice_id"],
            "xero_paid_on": pay["paid_on"],
        }
        try:
            current = conn.nexudus.get_invoice(invoice_id)
        except NotFound:
            message = (
                "the payment's answer was lost and the invoice is gone from Nexudus (deleted): "
                "nothing to mark"
            )
            ledger.record_payment(
                tenant,
                invoice_id,
                str(pay["invoice_number"]),
                PaymentOutcome.FAILED,
                messages=[message],
                expected="sending",
            )
            rows.append(_row(rec, PaymentOutcome.FAILED, message))
            continue
        except ClientError as exc:
            message = (
                f"unknown: its payment's answer was lost and Nexudus cannot be read now: {exc}"
            )
            rows.append(_row(rec, PaymentOutcome.UNKNOWN, message))
            continue
        if current.get("Paid"):
            rows.append(_settle_paid(conn, ledger, tenant, rec, current))
        else:
            message = (
                "not kept by Nexudus: the payment's answer was lost and the invoice is still "
                "unpaid; it is no longer paid in Xero, so it is not sent again"
            )
            ledger.record_payment(
                tenant,
                invoice_id,
                str(pay["invoice_number"]),
                PaymentOutcome.FAILED,
                messages=[message],
                expected="sending",
            )
            rows.append(_row(rec, PaymentOutcome.FAILED, message))
    return rows


def _credit_settled(ledger: Ledger, tenant: str, todo: pd.DataFrame) -> dict[str, bool]:
    """Xero id -> whether the invoice is settled by credit, by the diff's row or by the ledger's
    latest copy of Xero (which a later sync may have refreshed)."""
    latest = ledger.xero_state(tenant).rename(
        columns={
            "status": "xero_status",
            "total": "xero_total",
            "amount_paid": "xero_amount_paid",
            "amount_credited": "xero_amount_credited",
        }
    )
    latest = latest[latest["xero_id"].isin(set(todo["xero_id"]))]
    settled = set(todo[is_credit_settled(todo)]["xero_id"]) | set(
        latest[is_credit_settled(latest)]["xero_id"]
    )
    return {str(x): x in settled for x in todo["xero_id"]}


def _sent_by_recon(ledger: Ledger, tenant: str, invoice_id: int) -> bool:
    """Whether recon sent a payment for this invoice whose outcome it never heard."""
    return ledger.payment_state(tenant, invoice_id) == "sending"


def _settle_paid(
    conn: Connection, ledger: Ledger, tenant: str, rec: dict[str, Any], current: dict[str, Any]
) -> list[Any]:
    """An invoice Nexudus shows paid: recorded applied (compare-and-set from recon's own lost
    intent, else as found); recon's own payment gets PaidOn moved to Xero's date (§8)."""
    invoice_id = int(rec["nexudus_invoice_id"])
    paid_on, note = current.get("PaidOn"), "already paid in Nexudus"
    mine = _sent_by_recon(ledger, tenant, invoice_id)
    if mine and rec["xero_paid_on"]:
        # recon's own payment, whose answer was lost: it still needs PaidOn moved from the
        # moment of the call to Xero's payment date (nexudus.md §8).
        day = date.fromisoformat(str(rec["xero_paid_on"])[:10])
        try:
            conn.nexudus.update_invoice(invoice_id, base=current, PaidOn=day)
        except ClientError as exc:
            note = f"paid by recon's earlier run; PaidOn not moved to {day}: {exc}"
        else:
            paid_on = day.isoformat()
            note = "paid by recon's earlier run (its answer was lost); PaidOn set to Xero's date"
    state = ledger.payment_state(tenant, invoice_id)
    if state != PaymentOutcome.APPLIED:
        # Compare-and-set from the state read: a run that recorded it meanwhile keeps its record.
        ledger.record_payment(
            tenant,
            invoice_id,
            str(rec["invoice_number"]),
            PaymentOutcome.APPLIED,
            paid_on=str(paid_on),
            xero_invoice_id=rec["xero_id"],
            messages=[note],
            expected=state,
        )
    return [rec["invoice_number"], invoice_id, PaymentOutcome.ALREADY_PAID, None, paid_on, note]


def _apply_one(conn: Connection, ledger: Ledger, tenant: str, rec: dict[str, Any]) -> list[Any]:
    """Mark one invoice paid: read it, claim the payment in the ledger, send it, record it.
    Raises ``AuthError``/``RateLimited`` only before anything was sent for it."""
    invoice_id = int(rec["nexudus_invoice_id"])
    try:
        current = conn.nexudus.get_invoice(invoice_id)
    except (AuthError, RateLimited):
        raise
    except ClientError as exc:
        return _row(rec, PaymentOutcome.FAILED, str(exc))
    if current.get("Paid"):
        return _settle_paid(conn, ledger, tenant, rec, current)
    if _sent_by_recon(ledger, tenant, invoice_id):
        # recon's earlier payment whose answer was lost did not stay: the invoice is unpaid.
        ledger.record_payment(
            tenant,
            invoice_id,
            str(rec["invoice_number"]),
            PaymentOutcome.FAILED,
            messages=[
                "not kept by Nexudus (its answer was lost; the invoice is unpaid): sent again"
            ],
            expected="sending",
        )
    try:
        amount = D(current["TotalAmount"]) - D(current.get("PaidAmount") or 0)
    except (KeyError, ValueError) as exc:
        return _row(
            rec,
            PaymentOutcome.FAILED,
            f"Nexudus shows no usable TotalAmount/PaidAmount for the invoice ({exc}): not marked",
        )
    if not amount.is_finite() or amount <= 0:
        return _row(
            rec,
            PaymentOutcome.FAILED,
            f"Nexudus shows {amount} due on the invoice (TotalAmount "
            f"{current.get('TotalAmount')!r}, PaidAmount {current.get('PaidAmount')!r}): not "
            "marked; check it in Nexudus",
        )
    paid_on = rec["xero_paid_on"] or datetime.now(tz=UTC).date().isoformat()
    if not ledger.claim_payment(
        tenant,
        invoice_id,
        str(rec["invoice_number"]),
        amount=amount,
        paid_on=str(paid_on),
        xero_invoice_id=rec["xero_id"],
    ):
        # Another run is sending it or has applied it: never a second payment.
        state = ledger.payment_state(tenant, invoice_id)
        return _row(
            rec,
            PaymentOutcome.SKIPPED if state == PaymentOutcome.APPLIED else PaymentOutcome.UNKNOWN,
            f"not sent: the ledger shows this payment {state} by another run",
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
        return _refused(conn, ledger, tenant, rec, amount, str(paid_on), exc)
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
        str(rec["invoice_number"]),
        PaymentOutcome.APPLIED,
        amount=amount,
        paid_on=str(paid_on),
        xero_invoice_id=rec["xero_id"],
        messages=[note] if note else None,
        expected="sending",
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


def _refused(
    conn: Connection,
    ledger: Ledger,
    tenant: str,
    rec: dict[str, Any],
    amount: Decimal,
    paid_on: str,
    exc: ApiRejected,
) -> list[Any]:
    """Nexudus refused the payment. If the invoice is paid after all (someone else paid it
    meanwhile), that is recorded, never a failure; else the payment failed, with Nexudus' words."""
    invoice_id = int(rec["nexudus_invoice_id"])
    try:
        current = conn.nexudus.get_invoice(invoice_id)
    except ClientError:
        current = {}
    if current.get("Paid"):
        note = "already paid in Nexudus (paid meanwhile; this run's payment was refused)"
        ledger.record_payment(
            tenant,
            invoice_id,
            str(rec["invoice_number"]),
            PaymentOutcome.APPLIED,
            paid_on=str(current.get("PaidOn")),
            xero_invoice_id=rec["xero_id"],
            messages=[note],
            expected="sending",
        )
        return [
            rec["invoice_number"],
            invoice_id,
            PaymentOutcome.ALREADY_PAID,
            None,
            current.get("PaidOn"),
            note,
        ]
    ledger.record_payment(
        tenant,
        invoice_id,
        str(rec["invoice_number"]),
        PaymentOutcome.FAILED,
        messages=exc.messages or [str(exc)],
        expected="sending",
    )
    return [
        rec["invoice_number"],
        invoice_id,
        PaymentOutcome.FAILED,
        amount,
        paid_on,
        "; ".join(exc.messages) or str(exc),
    ]
