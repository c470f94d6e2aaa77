"""Void and credit in Xero what Nexudus voided, deleted or credited after transfer.

Floor 5: acts on a status diff (``recon.status``, floor 4) with the transfer's
allocation writer (``recon.transfer.allocate``, floor 4); imports those, the
ledger, the session and the leaves, and nothing above.

``proposed_xero_changes(diff, allocations)`` previews, writing nothing: one row
per invoice the diff says Xero should change, with its change ("void", "delete
draft", "allocate credit") and amount; given the allocation plan, a credit row
shows what the plan would allocate (part or full), or why nothing.

``apply_xero_changes(conn, ledger, diff, confirm=True)`` writes. A void is
``POST /Invoices/{id}`` with Status VOIDED (DELETED for a draft), an intent in the
ledger's events before the call and an outcome after. A credit is
``plan_allocations`` then ``allocate`` (the ledger's ``allocations`` table, its
Idempotency-Keys and recovery), kept to the invoices the diff names, each
outcome mapped back to one row per invoice (a ``XeroChangeOutcome``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

import numpy as np
import pandas as pd

from recon.errors import ApiRejected, ClientError, StepError
from recon.ledger import Ledger
from recon.outcomes import AllocationOutcome, XeroChangeOutcome
from recon.progress import Counter
from recon.session import Connection
from recon.status import (
    CREDIT_NOTE_FOUND,
    XERO_GONE,
    Difference,
    StatusDiff,
    xero_state_rows,
)
from recon.transfer.allocate import (
    ALLOCATED,
    TRANSFERRED_STATES,
    AllocationPlan,
    AllocationResult,
    allocate,
    plan_allocations,
)
from recon.values import decimal_sum, is_missing, records

__all__ = [
    "PROPOSAL_COLUMNS",
    "XERO_CHANGE_COLUMNS",
    "XeroChangeOutcome",
    "apply_xero_changes",
    "proposed_xero_changes",
]

VOID_ACTION = "void invoice"
VOID, DELETE_DRAFT, ALLOCATE_CREDIT = "void", "delete draft", "allocate credit"
PROPOSAL_COLUMNS = [
    "invoice_number",
    "nexudus_invoice_id",
    "xero_id",
    "difference",
    "change",
    "currency",
    "amount",
    "note",
    "xero_status",
    "xero_amount_paid",
    "xero_amount_credited",
]
XERO_CHANGE_COLUMNS = [
    "invoice_number",
    "nexudus_invoice_id",
    "xero_id",
    "difference",
    "change",
    "currency",
    "amount",
    "outcome",
    "message",
]
# The differences whose Xero side recon can change once confirmed.
XERO_CHANGE_KINDS = (
    Difference.VOIDED_IN_NEXUDUS,
    Difference.DELETED_IN_NEXUDUS,
    Difference.CREDIT_NOTE_IN_NEXUDUS,
)
NOT_IN_XERO_YET = "is not in Xero yet: run the transfer, then apply again"
# What one credit note's allocation outcome means for the invoice it credits. Xero's refusal and
# the plan's reason are both a "no" a person acts on; a stopped run leaves the rest for the next.
FROM_ALLOCATION = {
    AllocationOutcome.ALLOCATED: XeroChangeOutcome.ALLOCATED,
    AllocationOutcome.NOT_ALLOCATED: XeroChangeOutcome.REFUSED,
    AllocationOutcome.FAILED: XeroChangeOutcome.REFUSED,
    AllocationOutcome.SKIPPED: XeroChangeOutcome.WAITING,
    AllocationOutcome.UNKNOWN: XeroChangeOutcome.UNKNOWN,
    AllocationOutcome.REFUSED: XeroChangeOutcome.FAILED,
}
# An invoice credited by several credit notes shows the outcome that most needs a look.
WORST_FIRST = (
    XeroChangeOutcome.UNKNOWN,
    XeroChangeOutcome.FAILED,
    XeroChangeOutcome.REFUSED,
    XeroChangeOutcome.WAITING,
    XeroChangeOutcome.ALLOCATED,
    XeroChangeOutcome.ALREADY_DONE,
)


# ---- the preview ---------------------------------------------------------------------------------
def proposed_xero_changes(
    diff: StatusDiff, allocations: AllocationPlan | None = None
) -> pd.DataFrame:
    """What ``apply_xero_changes`` would write (``PROPOSAL_COLUMNS``): one row per invoice, its
    change ("void", "delete draft", "allocate credit") and amount. Writes nothing, reads nothing.

    Without ``allocations`` a credit row's amount is the credit Nexudus gives that Xero lacks;
    with it (``plan_allocations``), what the plan would allocate to the invoice, part or full,
    and in ``note`` the part left as credit, or why nothing would be allocated.
    """
    rows = diff.of(*XERO_CHANGE_KINDS)
    is_credit = rows["difference"] == Difference.CREDIT_NOTE_IN_NEXUDUS.value
    is_draft = rows["xero_status"].isin(["DRAFT", "SUBMITTED"])
    change = np.select([is_credit, is_draft], [ALLOCATE_CREDIT, DELETE_DRAFT], VOID)
    amount = (rows["nexudus_credited"] - rows["xero_amount_credited"]).where(
        is_credit, rows["xero_total"]
    )
    frame = pd.DataFrame(
        {
            "invoice_number": rows["invoice_number"],
            "nexudus_invoice_id": rows["nexudus_invoice_id"],
            "xero_id": rows["xero_id"],
            "difference": rows["difference"],
            "change": change,
            "currency": rows["currency"],
            "amount": amount.astype(object),
            "note": "",
            "xero_status": rows["xero_status"],
            "xero_amount_paid": rows["xero_amount_paid"],
            "xero_amount_credited": rows["xero_amount_credited"],
        },
        columns=PROPOSAL_COLUMNS,
    ).reset_index(drop=True)
    if allocations is not None:
        for i in frame.index[frame["change"] == ALLOCATE_CREDIT]:
            planned = _to_invoice(allocations.rows, str(frame.at[i, "xero_id"]))
            amount_planned, note = _planned(planned)
            frame.at[i, "amount"], frame.at[i, "note"] = cast(Any, amount_planned), note
    return frame


def _to_invoice(plan_rows: pd.DataFrame, xero_id: str) -> pd.DataFrame:
    """The plan's rows whose original is the Xero invoice ``xero_id``."""
    originals = plan_rows["original_id"].fillna("").astype(str).str.lower()
    return plan_rows[originals == xero_id.lower()]


def _planned(planned: pd.DataFrame) -> tuple[Decimal | None, str]:
    """What a plan would allocate to one invoice, and a note: the part left, or why none."""
    proposals = planned[planned["amount"].notna()]
    if len(proposals):
        notes = [
            f"credit note {r['credit_note_number']}: {r['reason'] or 'in full'}"
            for r in records(proposals)
        ]
        return decimal_sum(proposals["amount"]), "; ".join(notes)
    if len(planned):
        notes = [f"credit note {r['credit_note_number']}: {r['reason']}" for r in records(planned)]
        return None, "; ".join(notes)
    return None, (
        "nothing to allocate now: the credit note is not in Xero yet (run the transfer, then "
        "apply again) or its credit is used"
    )


# ---- the writes ----------------------------------------------------------------------------------
def apply_xero_changes(
    conn: Connection,
    ledger: Ledger,
    diff: StatusDiff,
    *,
    confirm: bool,
    progress: Callable[[int, int], object] | None = None,
) -> pd.DataFrame:
    """Void in Xero the invoices voided or deleted in Nexudus, and allocate to an invoice the
    credit notes Nexudus raised against it; only with ``confirm=True``.

    A void is refused when Xero holds a payment or credit on the invoice (Xero would
    refuse it too). Credits go through the transfer's allocation writer: the
    allocation plan's proposals for these invoices are allocated, and a credit note
    not transferred yet waits for the transfer step. Returns one row per invoice
    (``XERO_CHANGE_COLUMNS``) with its ``XeroChangeOutcome`` and message. Without
    ``progress``, a progress bar shows where someone watches (``recon.progress``).
    """
    if progress is None and confirm:
        with Counter("changes in Xero", unit="invoice") as bar:
            return apply_xero_changes(conn, ledger, diff, confirm=True, progress=bar)
    if not confirm:
        raise StepError(
            "Nothing written to Xero: look at proposed_xero_changes(diff), then call "
            "apply_xero_changes(..., confirm=True) (in a notebook, press the button)."
        )
    tenant = str(conn.xero.tenant_id)
    todo = proposed_xero_changes(diff)
    is_credit = todo["change"] == ALLOCATE_CREDIT
    rows: list[list[Any]] = []

    def tick() -> None:
        if progress:
            progress(len(rows), len(todo))

    for rec in records(todo[~is_credit]):
        rows.append(_void_one(conn, ledger, tenant, rec))
        tick()
    if is_credit.any():
        for row in _credit(conn, ledger, tenant, todo[is_credit]):
            rows.append(row)
            tick()
    return pd.DataFrame(rows, columns=XERO_CHANGE_COLUMNS)


def _change_row(rec: dict[str, Any], outcome: XeroChangeOutcome, message: str) -> list[Any]:
    return [
        rec["invoice_number"],
        rec["nexudus_invoice_id"],
        rec["xero_id"],
        rec["difference"],
        rec["change"],
        rec["currency"],
        rec["amount"],
        outcome,
        message,
    ]


# ---- void ----------------------------------------------------------------------------------------
def _last_outcome(ledger: Ledger, tenant: str, action: str, subject: str) -> str | None:
    states = ledger.event_states(tenant, "xero", action)
    mine = states[states["subject"] == subject]
    return None if mine.empty else str(mine.iloc[-1]["outcome"])


def _void_one(conn: Connection, ledger: Ledger, tenant: str, rec: dict[str, Any]) -> list[Any]:
    xero_id = str(rec["xero_id"])
    target = "DELETED" if rec["change"] == DELETE_DRAFT else "VOIDED"
    last = _last_outcome(ledger, tenant, VOID_ACTION, xero_id)
    if last == XeroChangeOutcome.VOIDED:
        return _change_row(rec, XeroChangeOutcome.ALREADY_DONE, "already voided (ledger)")
    if rec["xero_amount_paid"] > 0 or rec["xero_amount_credited"] > 0:
        return _change_row(
            rec,
            XeroChangeOutcome.REFUSED,
            f"Xero holds {rec['xero_amount_paid']} paid and {rec['xero_amount_credited']} "
            "credited on it: remove or refund those in Xero first, then void it",
        )
    if last == "sending":
        # An earlier void's answer was lost: read before sending again.
        try:
            current = conn.xero.get_invoice(xero_id)
        except ClientError as exc:
            return _change_row(rec, XeroChangeOutcome.UNKNOWN, f"could not check Xero: {exc}")
        if current.get("Status") in XERO_GONE:
            _voided(ledger, tenant, rec, current)
            return _change_row(
                rec, XeroChangeOutcome.ALREADY_DONE, "voided by an earlier run (answer was lost)"
            )
    ledger.event(
        "xero",
        VOID_ACTION,
        "sending",
        tenant_id=tenant,
        subject=xero_id,
        detail={"invoice_number": rec["invoice_number"], "status": target},
    )
    try:
        answer = conn.xero.update_invoice(
            xero_id,
            {"InvoiceID": xero_id, "Status": target},
            idempotency_key=f"recon-void-{xero_id}",
        )
    except ApiRejected as exc:
        ledger.event(
            "xero",
            VOID_ACTION,
            XeroChangeOutcome.FAILED,
            tenant_id=tenant,
            subject=xero_id,
            detail=exc.messages or [str(exc)],
        )
        return _change_row(rec, XeroChangeOutcome.FAILED, "; ".join(exc.messages) or str(exc))
    except ClientError as exc:
        return _change_row(rec, XeroChangeOutcome.UNKNOWN, str(exc))
    _voided(ledger, tenant, rec, answer)
    return _change_row(rec, XeroChangeOutcome.VOIDED, f"{target} in Xero")


def _voided(ledger: Ledger, tenant: str, rec: dict[str, Any], invoice: dict[str, Any]) -> None:
    ledger.event(
        "xero",
        VOID_ACTION,
        XeroChangeOutcome.VOIDED,
        tenant_id=tenant,
        subject=str(rec["xero_id"]),
        detail={"invoice_number": rec["invoice_number"], "status": invoice.get("Status")},
    )
    if invoice.get("InvoiceID"):
        ledger.update_xero_state(tenant, xero_state_rows([invoice], kind="invoice"))


# ---- credit: the transfer's allocation writer ----------------------------------------------------
def _credit(
    conn: Connection, ledger: Ledger, tenant: str, credits: pd.DataFrame
) -> list[list[Any]]:
    """Allocate to each of these invoices the credit notes raised against it, through
    ``plan_allocations`` and ``allocate``; one row per invoice."""
    notes = _credit_notes_by_invoice(ledger, tenant)
    plan = plan_allocations(conn, ledger)
    owner = _owners(plan.rows, credits, notes)
    mine = plan.rows[owner.notna()].assign(owner=owner[owner.notna()])
    to_send = mine[mine["amount"].notna()].drop(columns="owner").reset_index(drop=True)
    result = (
        allocate(conn, dataclasses.replace(plan, rows=to_send), ledger) if len(to_send) else None
    )
    allocated = _allocated_pairs(ledger, tenant)
    return [
        _credit_row(
            rec,
            mine[mine["owner"] == str(rec["xero_id"]).lower()],
            result,
            notes.get(int(rec["nexudus_invoice_id"]), []),
            allocated,
        )
        for rec in records(credits)
    ]


def _credit_notes_by_invoice(ledger: Ledger, tenant: str) -> dict[int, list[dict[str, Any]]]:
    """Nexudus invoice id -> the live credit notes the status sync linked to it, each with its
    number and, once transferred, its Xero CreditNoteID (else None)."""
    links = ledger.event_states(tenant, "nexudus", CREDIT_NOTE_FOUND)
    transfers = ledger.transfers(tenant)
    sent = transfers[
        (transfers["kind"] == "credit_note")
        & transfers["state"].isin(TRANSFERRED_STATES)
        & transfers["xero_id"].notna()
    ]
    xero_ids = {
        int(k): str(v) for k, v in zip(sent["nexudus_invoice_id"], sent["xero_id"], strict=True)
    }
    state = ledger.nexudus_state(tenant)
    void = {int(i) for i in state[state["void"].fillna(0).astype(bool)]["nexudus_invoice_id"]}
    found: dict[int, list[dict[str, Any]]] = {}
    for link in records(links):
        detail = link["detail"] if isinstance(link["detail"], dict) else {}
        original, note_id = detail.get("original_id"), int(link["subject"])
        if original is None or is_missing(original) or note_id in void:
            continue
        found.setdefault(int(original), []).append(
            {"number": str(detail.get("credit_note_number")), "xero_id": xero_ids.get(note_id)}
        )
    return found


def _owners(
    plan_rows: pd.DataFrame, credits: pd.DataFrame, notes: dict[int, list[dict[str, Any]]]
) -> pd.Series:
    """For each plan row, the Xero id (lower case) of the credited invoice it belongs to, or NaN:
    by its original, else by the credit note the status sync linked to the invoice."""
    invoices = {str(x).lower() for x in credits["xero_id"]}
    by_note = {
        str(n["xero_id"]).lower(): str(rec["xero_id"]).lower()
        for rec in records(credits)
        for n in notes.get(int(rec["nexudus_invoice_id"]), [])
        if n["xero_id"]
    }
    originals = plan_rows["original_id"].fillna("").astype(str).str.lower()
    by_original = originals.where(originals.isin(invoices))
    linked = plan_rows["credit_note_id"].astype(str).str.lower().map(by_note)
    return by_original.fillna(linked)


def _allocated_pairs(ledger: Ledger, tenant: str) -> set[tuple[str, str]]:
    """(credit note id, invoice id), lower case, of every allocation the ledger records made."""
    history = ledger.allocations(tenant)
    made = history[history["state"] == ALLOCATED]
    return {
        (str(n).lower(), str(i).lower())
        for n, i in zip(made["credit_note_id"], made["invoice_id"], strict=True)
    }


def _credit_row(
    rec: dict[str, Any],
    planned: pd.DataFrame,
    result: AllocationResult | None,
    notes: list[dict[str, Any]],
    allocated: set[tuple[str, str]],
) -> list[Any]:
    """One invoice's row from its credit notes' plan rows and allocation outcomes."""
    sent = records(result.outcomes) if result is not None else []
    outcomes = {str(o["credit_note_id"]).lower(): o for o in sent}
    parts: list[tuple[XeroChangeOutcome, str]] = []
    amounts: list[Decimal] = []
    for row in records(planned):
        key, number = str(row["credit_note_id"]).lower(), row["credit_note_number"]
        done = outcomes.get(key)
        if is_missing(row["amount"]) or done is None:
            parts.append((XeroChangeOutcome.REFUSED, f"credit note {number}: {row['reason']}"))
            continue
        outcome = FROM_ALLOCATION[AllocationOutcome(str(done["outcome"]))]
        if outcome is XeroChangeOutcome.ALLOCATED:
            amounts.append(Decimal(done["amount"]))
            part = f" ({row['reason']})" if row["reason"] else ""
            parts.append((outcome, f"credit note {number} allocated{part}"))
        else:
            parts.append((outcome, f"credit note {number}: {done['messages']}"))
    covered = {str(r).lower() for r in planned["credit_note_id"]}
    invoice = str(rec["xero_id"]).lower()
    for note in notes:
        if note["xero_id"] is None:
            parts.append(
                (XeroChangeOutcome.WAITING, f"credit note {note['number']} {NOT_IN_XERO_YET}")
            )
        elif note["xero_id"].lower() not in covered:
            if (note["xero_id"].lower(), invoice) in allocated:
                parts.append(
                    (XeroChangeOutcome.ALREADY_DONE, f"credit note {note['number']} allocated")
                )
            else:
                parts.append(
                    (
                        XeroChangeOutcome.REFUSED,
                        f"credit note {note['number']} has no credit left in Xero (allocated "
                        "elsewhere or refunded there): look at it in Xero",
                    )
                )
    if not parts:
        parts.append((XeroChangeOutcome.WAITING, "no credit note to allocate"))
    shown = {o for o, _ in parts}
    outcome = next(o for o in WORST_FIRST if o in shown)
    row = {**rec, "amount": sum(amounts, Decimal("0")) if amounts else rec["amount"]}
    return _change_row(row, outcome, "; ".join(m for _, m in parts))
