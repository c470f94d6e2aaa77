"""Credit notes allocated to their original invoices in Xero: previewed, then written safely.

Floor 4, beside the transfer. A Nexudus credit note is a separate invoice with a
negative TotalAmount, ``CreditNote`` true and ``OriginalInvoiceGuid`` naming its
original's ``UniqueId`` (nexudus.md §7.1). The push sends it to Xero as an
ACCRECCREDIT credit note, which leaves the original due in full (and the
customer's balance overstated) until the credit is allocated to it.

``plan_allocations(conn, ledger)`` reads both sides (no writes) and returns an
``AllocationPlan``: for every credit note recon transferred that still has credit
in Xero, the allocation to its original (the smaller of the credit left and the
original's amount due; a part allocation says so), or why there is none.

``allocate(conn, plan, ledger)`` writes each allocation with
``PUT /CreditNotes/{id}/Allocations``: the ledger records the intent (with an
Idempotency-Key fixed before the first try) and the outcome after. A run that
finds intents without outcomes reads those credit notes' allocations in Xero
before sending anything, so nothing is allocated twice. One credit note's error
never stops the others; Xero's refusals are kept word for word.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from recon.cells import csv_safe
from recon.clients.xero import parse_xero_date
from recon.display import outcome_colours
from recon.errors import ApiRejected, AuthError, ClientError, NotFound, RateLimited
from recon.ledger import Ledger
from recon.money import CENT, ZERO, D
from recon.outcomes import AllocationOutcome, counts_text
from recon.session import Connection
from recon.values import decimal_sum, is_missing, records

__all__ = [
    "PLAN_COLUMNS",
    "RESULT_COLUMNS",
    "AllocationOutcome",
    "AllocationPlan",
    "AllocationResult",
    "allocate",
    "allocation_key",
    "plan_allocations",
    "recover_allocations",
]

# Ledger transfer states of a record that is in Xero (an adopted one is recorded as created).
TRANSFERRED_STATES = ("created", "adopted")
# Ledger allocation states (``Ledger.record_allocation_*``).
SENDING, ALLOCATED, FAILED = "sending", "allocated", "failed"

PLAN_COLUMNS = [
    "credit_note_number",
    "original_number",
    "currency",
    "credit",
    "original_due",
    "amount",
    "part",
    "reason",
    "credit_note_id",
    "original_id",
    "date",
    "allocated_before",
    "seen_before",
]
# What the notebook shows of a plan; the ids and bookkeeping columns stay in ``rows``.
SHOWN_PLAN_COLUMNS = PLAN_COLUMNS[:8]
RESULT_COLUMNS = [
    "credit_note_number",
    "original_number",
    "currency",
    "amount",
    "outcome",
    "messages",
    "credit_note_id",
    "original_id",
]
MONEY_COLUMNS = ["credit", "original_due", "amount"]


# How each outcome colours its row: by its verdict in recon.outcomes.TABLE.
OUTCOME_SEVERITY = outcome_colours(AllocationOutcome)


# ---- the plan (preview) --------------------------------------------------------------------
@dataclass(frozen=True)
class AllocationPlan:
    """What ``allocate`` would do. Nothing has been written when you hold one.

    ``rows`` (``PLAN_COLUMNS``): one per transferred credit note with credit left in Xero;
    ``amount`` is the allocation proposed, or None with the ``reason`` there is none.
    """

    rows: pd.DataFrame
    tenant_id: str = ""
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def proposed(self) -> pd.DataFrame:
        """The rows with an allocation to make."""
        return self.rows[self.rows["amount"].notna()]

    @property
    def not_allocated(self) -> pd.DataFrame:
        """The rows left as they are, each with its reason."""
        return self.rows[self.rows["amount"].isna()]

    def totals(self) -> pd.DataFrame:
        """Allocations and money per currency."""
        proposed = self.proposed
        if proposed.empty:
            return pd.DataFrame(columns=["currency", "allocations", "amount"])
        grouped = proposed.groupby("currency")
        return pd.DataFrame(
            {"allocations": grouped.size(), "amount": grouped["amount"].agg(decimal_sum)}
        ).reset_index()

    def describe(self) -> str:
        """'Allocate 2 credit notes (GBP 360.00); 1 not allocated'."""
        money = "; ".join(f"{r.currency} {r.amount:,.2f}" for r in self.totals().itertuples())
        text = f"Allocate {len(self.proposed)} credit notes" + (f" ({money})" if money else "")
        if len(self.not_allocated):
            text += f"; {len(self.not_allocated)} not allocated"
        return text

    def __repr__(self) -> str:
        return (
            f"<AllocationPlan {len(self.proposed)} to allocate, {len(self.not_allocated)} not "
            "allocated>"
        )

    def __str__(self) -> str:
        return f"{self.describe()} in {self.context.get('organisation', 'Xero')}"

    def _repr_html_(self) -> str:
        from recon.display import allocations_html

        shown = self.rows[SHOWN_PLAN_COLUMNS].assign(
            severity=self.rows["amount"].map(lambda a: "info" if is_missing(a) else "ok")
        )
        return allocations_html(str(self), shown, money=MONEY_COLUMNS)


def plan_allocations(conn: Connection, ledger: Ledger) -> AllocationPlan:
    """Work out which transferred credit notes to allocate to their originals, and how much.

    Reads the ledger, this location's Nexudus credit notes and their originals (one
    list call, then one per customer), and the Xero credit notes and originals in
    batches (never one call per credit note). No writes.
    """
    calls_before = conn.xero.calls
    tenant = str(conn.xero.tenant_id)
    context: dict[str, Any] = {
        "location": conn.location,
        "organisation": conn.organisation.get("Name"),
        "tenant_id": tenant,
        "fully_allocated": 0,
    }
    transfers = ledger.transfers(tenant)
    in_xero = transfers[transfers["state"].isin(TRANSFERRED_STATES) & transfers["xero_id"].notna()]
    ledger_notes = in_xero[in_xero["kind"] == "credit_note"]
    ledger_invoices = in_xero[in_xero["kind"] != "credit_note"].set_index("nexudus_invoice_id")
    if ledger_notes.empty:
        return _plan([], tenant, context, conn, calls_before)
    nexudus_notes = conn.nexudus.fetch_invoices(
        business_id=int(conn.business["Id"]), CreditNote=True
    ).set_index("Id")
    allocated = ledger.allocated_amounts(tenant)
    candidates = _open_credit_notes(ledger_notes, nexudus_notes, allocated, context)
    if not candidates:
        return _plan([], tenant, context, conn, calls_before)
    xero_notes = _xero_credit_notes(
        conn,
        [str(n["invoice_number"]) for n in candidates],
        {str(n["xero_id"]) for n in candidates},
    )
    rows: list[dict[str, Any]] = []
    wanted: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = []
    for note in candidates:
        xero_note = xero_notes.get(str(note["xero_id"]))
        nexudus_note = {
            str(k): v for k, v in nexudus_notes.loc[int(note["nexudus_invoice_id"])].items()
        }
        row = _row(note, xero_note)
        reason = _credit_note_reason(row, xero_note, nexudus_note)
        if reason is None:
            context["fully_allocated"] += 1  # allocated or refunded in full, in Xero
        elif reason:
            rows.append(row | {"reason": reason})
        elif xero_note is not None:
            wanted.append((row, xero_note, nexudus_note))
    rows.extend(_to_originals(conn, wanted, ledger_invoices, allocated))
    return _plan(rows, tenant, context, conn, calls_before)


def _open_credit_notes(
    ledger_notes: pd.DataFrame,
    nexudus_notes: pd.DataFrame,
    allocated: dict[str, Decimal],
    context: dict[str, Any],
) -> list[dict[str, Any]]:
    """The ledger's credit notes of this location that the ledger does not show used up."""
    candidates = []
    for note in records(ledger_notes):
        if int(note["nexudus_invoice_id"]) not in nexudus_notes.index:
            continue  # another location's credit note (an organisation shared by locations)
        total = note["xero_total"]
        if total is not None and allocated.get(str(note["xero_id"]), ZERO) >= total:
            context["fully_allocated"] += 1  # the ledger alone says so: Xero is not asked
            continue
        candidates.append(note)
    return candidates


def _credit_note_reason(
    row: dict[str, Any], xero_note: dict[str, Any] | None, nexudus_note: dict[str, Any]
) -> str | None:
    """Why this credit note cannot be allocated; "" if it can, None if it has no credit left."""
    status = str((xero_note or {}).get("Status", ""))
    if xero_note is None or status == "DELETED":
        return "credit note not in Xero (deleted there?)"
    if status in ("DRAFT", "SUBMITTED", "VOIDED"):
        return (
            f"credit note not authorised: it is {status} in Xero (approve it there, then plan "
            "again)"
        )
    if status == "PAID" or row["credit"] <= 0:
        return None
    if is_missing(nexudus_note.get("OriginalInvoiceGuid")):
        return "no original invoice: Nexudus gives no OriginalInvoiceGuid"
    return ""


def _to_originals(
    conn: Connection,
    wanted: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]],
    ledger_invoices: pd.DataFrame,
    allocated: dict[str, Decimal],
) -> list[dict[str, Any]]:
    """Each (plan row, Xero credit note, Nexudus credit note) with its original: the allocation,
    or why there is none. The originals are read from Xero in IDs= batches."""
    originals = _nexudus_originals(conn, [n for _, _, n in wanted])

    def xero_id_of(nexudus_note: dict[str, Any]) -> str | None:
        original = originals.get(str(nexudus_note["OriginalInvoiceGuid"]).lower())
        if original is None or int(original["Id"]) not in ledger_invoices.index:
            return None
        return str(ledger_invoices.at[int(original["Id"]), "xero_id"])

    ids = sorted({i for _, _, n in wanted if (i := xero_id_of(n)) is not None})
    xero_invoices = (
        {str(inv["InvoiceID"]): inv for inv in conn.xero.iter_invoices(ids=ids, summary_only=True)}
        if ids
        else {}
    )
    rows = []
    for row, xero_note, nexudus_note in wanted:
        guid = str(nexudus_note["OriginalInvoiceGuid"])
        original = originals.get(guid.lower())
        if original is None:
            rows.append(row | {"reason": f"original invoice {guid} not found in Nexudus"})
            continue
        number = str(original["InvoiceNumber"])
        xero_id = xero_id_of(nexudus_note)
        if xero_id is None:
            reason = (
                f"original not transferred: {number} is not in Xero through recon (transfer it "
                "first, or allocate by hand in Xero)"
            )
            rows.append(row | {"original_number": number, "reason": reason})
            continue
        rows.append(
            _proposal(
                row | {"original_number": number},
                xero_note,
                xero_invoices.get(xero_id),
                xero_id,
                allocated,
            )
        )
    return rows


def _plan(
    rows: list[dict[str, Any]],
    tenant: str,
    context: dict[str, Any],
    conn: Connection,
    calls_before: int,
) -> AllocationPlan:
    frame = pd.DataFrame(rows, columns=PLAN_COLUMNS)
    if len(frame):
        frame = frame.sort_values("credit_note_number", kind="stable").reset_index(drop=True)
    frame["part"] = frame["part"].astype(bool)
    return AllocationPlan(frame, tenant, {**context, "xero_calls": conn.xero.calls - calls_before})


def _row(note: dict[str, Any], xero_note: dict[str, Any] | None) -> dict[str, Any]:
    """A plan row for a credit note, before its original is known."""
    return {
        "credit_note_number": str(note["invoice_number"]),
        "original_number": None,
        "currency": (xero_note or {}).get("CurrencyCode") or note.get("currency"),
        "credit": D(xero_note.get("RemainingCredit")) if xero_note else None,
        "original_due": None,
        "amount": None,
        "part": False,
        "reason": "",
        "credit_note_id": str(note["xero_id"]),
        "original_id": None,
        "date": None,
        "allocated_before": ZERO,
        "seen_before": 0,
    }


def _proposal(
    row: dict[str, Any],
    note: dict[str, Any],
    invoice: dict[str, Any] | None,
    invoice_id: str,
    allocated: dict[str, Decimal],
) -> dict[str, Any]:
    """The allocation of ``note`` to its original ``invoice`` as Xero shows them, or why none."""
    number = row["original_number"]
    row = row | {"original_id": invoice_id}
    status = str((invoice or {}).get("Status", ""))
    if invoice is None or status == "DELETED":
        return row | {"reason": f"original not in Xero: {number} is missing there (deleted?)"}
    due = D(invoice.get("AmountDue"))
    row["original_due"] = due
    if status == "VOIDED":
        return row | {"reason": f"original voided in Xero: {number}"}
    if status == "PAID" or (status == "AUTHORISED" and due <= 0):
        return row | {"reason": f"original paid in Xero: nothing due on {number}"}
    if status != "AUTHORISED":
        return row | {
            "reason": f"original not authorised: {number} is {status} in Xero (approve it there)"
        }
    if invoice.get("CurrencyCode") != note.get("CurrencyCode"):
        return row | {
            "reason": f"currency differs: credit note {note.get('CurrencyCode')}, original "
            f"{invoice.get('CurrencyCode')}"
        }
    note_contact = (note.get("Contact") or {}).get("ContactID")
    invoice_contact = (invoice.get("Contact") or {}).get("ContactID")
    if note_contact and invoice_contact and note_contact != invoice_contact:
        return row | {
            "reason": "customer differs: the credit note and the original are on other Xero "
            "contacts"
        }
    credit = row["credit"]
    amount = min(credit, due).quantize(CENT)
    part = amount < credit
    reason = (
        f"part: {amount:,.2f} of {credit:,.2f}; {credit - amount:,.2f} stays as credit"
        if part
        else ""
    )
    dates = (parse_xero_date(note.get("Date")), parse_xero_date(invoice.get("Date")))
    # Never before either document (Xero's own screen proposes the later of the two); Xero
    # requires a date (spec Allocation: Date required).
    day = max((d.date() for d in dates if d is not None), default=date.today())
    return row | {
        "amount": amount,
        "part": part,
        "reason": reason,
        "date": day.isoformat(),
        "allocated_before": allocated.get(str(row["credit_note_id"]), ZERO),
        "seen_before": _equal_allocations(note, invoice_id, amount),
    }


def _xero_credit_notes(
    conn: Connection, numbers: list[str], ids: set[str]
) -> dict[str, dict[str, Any]]:
    """Credit notes by CreditNoteID, read by number 50 to a call (their Allocations included)."""
    return {
        str(n["CreditNoteID"]): n
        for n in conn.xero.iter_credit_notes(numbers=numbers)
        if str(n.get("CreditNoteID")) in ids
    }


def _nexudus_originals(
    conn: Connection, notes: Iterable[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The originals of these Nexudus credit notes by UniqueId (lower case).

    UniqueId is no documented list filter (nexudus.md §3), so each customer's invoices are read
    once (``CoworkerInvoice_Coworker``) and matched here.
    """
    guids = {str(n["OriginalInvoiceGuid"]).lower() for n in notes}
    coworkers = sorted({int(n["CoworkerId"]) for n in notes if not is_missing(n.get("CoworkerId"))})
    found: dict[str, dict[str, Any]] = {}
    for coworker in coworkers:
        for invoice in records(conn.nexudus.fetch_invoices(Coworker=coworker)):
            guid = str(invoice.get("UniqueId") or "").lower()
            if guid in guids:
                found[guid] = invoice
    return found


def _equal_allocations(note: dict[str, Any] | None, invoice_id: str, amount: Decimal) -> int:
    """How many of the credit note's allocations are to ``invoice_id`` for ``amount``."""
    count = 0
    for allocation in (note or {}).get("Allocations") or []:
        if allocation.get("IsDeleted"):
            continue
        target = str((allocation.get("Invoice") or {}).get("InvoiceID", "")).lower()
        if target == invoice_id.lower() and D(allocation.get("Amount")) == amount:
            count += 1
    return count


# ---- the writes ------------------------------------------------------------------------------
@dataclass(frozen=True)
class AllocationResult:
    """Per credit note: allocated, not allocated (and why), skipped, failed or unknown."""

    outcomes: pd.DataFrame
    calls: dict[str, int]
    seconds: float
    context: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """How many credit notes ended with each outcome, the most frequent first."""
        return {str(k): int(v) for k, v in self.outcomes["outcome"].value_counts().items()}

    @property
    def failed(self) -> pd.DataFrame:
        """The rows Xero refused or did not answer."""
        bad = (AllocationOutcome.FAILED, AllocationOutcome.UNKNOWN, AllocationOutcome.REFUSED)
        return self.outcomes[self.outcomes["outcome"].isin(bad)]

    def save(self, folder: str | Path) -> Path:
        """Write the outcomes as ``allocation_outcomes.csv`` in ``folder`` (text that looks like a
        formula made inert, ``recon.cells.csv_safe``); returns its path."""
        path = Path(folder) / "allocation_outcomes.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        csv_safe(self.outcomes).to_csv(path, index=False)
        return path

    def __str__(self) -> str:
        counts = counts_text(AllocationOutcome, self.counts()) or "nothing to do"
        return (
            f"Credit notes allocated in {self.context.get('organisation', 'Xero')}: {counts} in "
            f"{self.seconds:.1f} s"
        )

    def __repr__(self) -> str:
        return f"<AllocationResult {self.counts()}>"

    def _repr_html_(self) -> str:
        from recon.display import allocations_html

        shown = self.outcomes[RESULT_COLUMNS[:6]].assign(
            severity=self.outcomes["outcome"].map(OUTCOME_SEVERITY).fillna("blocks")
        )
        return allocations_html(
            f"{self} ({self.calls.get('xero', 0)} Xero calls)", shown, money=["amount"]
        )


def allocation_key(
    tenant_id: str, credit_note_id: str, invoice_id: str, amount: Decimal, attempt: int
) -> str:
    """The Idempotency-Key of one allocation attempt: the same attempt always gets the same key."""
    body = json.dumps(
        [tenant_id, credit_note_id.lower(), invoice_id.lower(), str(amount), attempt],
        separators=(",", ":"),
    )
    return "recon-alloc-" + hashlib.sha256(body.encode()).hexdigest()[:52]


def _outcome(
    row: dict[str, Any], outcome: AllocationOutcome, messages: list[str] | None = None
) -> dict[str, Any]:
    return {
        "credit_note_number": row["credit_note_number"],
        "original_number": row.get("original_number"),
        "currency": row.get("currency"),
        "amount": row.get("amount"),
        "outcome": outcome,
        "messages": " | ".join(m for m in messages or [] if m),
        "credit_note_id": row.get("credit_note_id"),
        "original_id": row.get("original_id"),
    }


def allocate(conn: Connection, plan: AllocationPlan, ledger: Ledger) -> AllocationResult:
    """Make the plan's allocations in Xero. Safe to repeat: nothing is ever allocated twice.

    Intents left open by an interrupted run are resolved first against the credit notes'
    allocations in Xero. An allocation the ledger shows made since the plan was made is
    skipped (plan again for what is left).
    """
    started = time.monotonic()
    calls_before = conn.xero.calls
    tenant = plan.tenant_id
    if str(conn.xero.tenant_id) != tenant:
        refusal = (
            f"refused: this plan is for Xero organisation {tenant} but the connection writes to "
            f"{conn.xero.tenant_id}; plan again through this location's connection"
        )
        ledger.event("xero", "allocate refused", "refused", tenant_id=str(conn.xero.tenant_id))
        frame = pd.DataFrame(
            [_outcome(r, AllocationOutcome.REFUSED, [refusal]) for r in records(plan.rows)],
            columns=RESULT_COLUMNS,
        )
        return AllocationResult(
            frame, {"xero": 0}, time.monotonic() - started, {**plan.context, "refused": refusal}
        )
    unresolved = recover_allocations(conn, ledger, tenant)
    allocated_now = ledger.allocated_amounts(tenant)
    history = ledger.allocations(tenant)
    attempts = Counter(zip(history["credit_note_id"], history["invoice_id"], strict=True))
    outcomes: list[dict[str, Any]] = []
    stop_reason: str | None = None
    for row in records(plan.rows):
        note_id = str(row["credit_note_id"])
        if is_missing(row["amount"]):
            outcomes.append(_outcome(row, AllocationOutcome.NOT_ALLOCATED, [str(row["reason"])]))
        elif stop_reason:
            outcomes.append(_outcome(row, AllocationOutcome.SKIPPED, [stop_reason]))
        elif note_id in unresolved:
            outcomes.append(
                _outcome(
                    row,
                    AllocationOutcome.UNKNOWN,
                    [
                        "not sent: an earlier allocation of this credit note has no outcome and "
                        "Xero could not be asked; the next run resolves it first"
                    ],
                )
            )
        elif allocated_now.get(note_id, ZERO) != D(row["allocated_before"]):
            outcomes.append(
                _outcome(
                    row,
                    AllocationOutcome.SKIPPED,
                    ["already allocated since this plan was made (ledger); plan again"],
                )
            )
        else:
            pair = (note_id, str(row["original_id"]))
            attempts[pair] += 1  # each attempt its own key: a refusal is never replayed
            try:
                outcome, messages = _send(conn, ledger, tenant, row, attempt=attempts[pair])
            except (AuthError, RateLimited) as exc:
                # The run cannot go on (sign-in gone, or the limit spent): say so for the rest.
                outcome, messages = AllocationOutcome.FAILED, [str(exc)]
                stop_reason = f"not sent: {exc}"
            outcomes.append(_outcome(row, outcome, messages))
    frame = pd.DataFrame(outcomes, columns=RESULT_COLUMNS)
    return AllocationResult(
        frame, {"xero": conn.xero.calls - calls_before}, time.monotonic() - started, plan.context
    )


def _send(
    conn: Connection, ledger: Ledger, tenant: str, row: dict[str, Any], *, attempt: int
) -> tuple[AllocationOutcome, list[str]]:
    """One allocation: intent, the call, the outcome. Returns the outcome and Xero's words."""
    note_id, invoice_id = str(row["credit_note_id"]), str(row["original_id"])
    amount = D(row["amount"])
    key = allocation_key(tenant, note_id, invoice_id, amount, attempt)
    ledger.record_allocation_intent(
        tenant,
        key,
        credit_note_id=note_id,
        invoice_id=invoice_id,
        amount=amount,
        attempt=attempt,
        seen_before=int(row["seen_before"]),
        credit_note_number=row["credit_note_number"],
        invoice_number=row["original_number"],
        currency=row["currency"],
    )
    subject = f"{row['credit_note_number']} -> {row['original_number']}"
    ledger.event(
        "xero", "allocate credit note", SENDING, tenant_id=tenant, subject=subject, detail=key
    )
    allocation: dict[str, Any] = {"Invoice": {"InvoiceID": invoice_id}, "Amount": amount}
    if row.get("date"):
        allocation["Date"] = row["date"]
    try:
        elements = conn.xero.allocate_credit_note(note_id, [allocation], idempotency_key=key)
    except (AuthError, RateLimited) as exc:
        # Refused before anything was done (sign-in gone, limit spent): recorded, then the run
        # stops.
        _finish(ledger, tenant, key, subject, FAILED, [str(exc)])
        raise
    except (ApiRejected, NotFound) as exc:
        messages = list(getattr(exc, "messages", None) or []) or [str(exc)]
        return _finish(ledger, tenant, key, subject, FAILED, messages)
    except ClientError as exc:
        # Unanswered: Xero may or may not have saved it. Ask before anything else.
        ledger.event("xero", "allocate credit note", "error", tenant_id=tenant, detail=str(exc))
        try:
            notes = _xero_credit_notes(conn, [str(row["credit_note_number"])], {note_id})
        except ClientError as lookup_exc:
            return AllocationOutcome.UNKNOWN, [
                f"unknown: Xero did not answer ({exc}) and could not be asked ({lookup_exc}); "
                "the next run resolves it before sending anything"
            ]
        if _equal_allocations(notes.get(note_id), invoice_id, amount) > int(row["seen_before"]):
            return _finish(
                ledger, tenant, key, subject, ALLOCATED, ["found in Xero after a lost answer"]
            )
        return _finish(ledger, tenant, key, subject, FAILED, [f"Xero did not save it: {exc}"])
    element = elements[0] if elements else {}
    messages = [str(m.get("Message", "")) for m in element.get("ValidationErrors") or []]
    if messages or element.get("StatusAttributeString") == "ERROR":
        return _finish(ledger, tenant, key, subject, FAILED, messages or ["Xero refused it"])
    return _finish(ledger, tenant, key, subject, ALLOCATED, [])


def _finish(
    ledger: Ledger, tenant: str, key: str, subject: str, state: str, messages: list[str]
) -> tuple[AllocationOutcome, list[str]]:
    ledger.record_allocation_outcome(tenant, key, state, messages=messages)
    ledger.event("xero", "allocate credit note", state, tenant_id=tenant, subject=subject)
    return AllocationOutcome(state), messages


def recover_allocations(conn: Connection, ledger: Ledger, tenant_id: str) -> set[str]:
    """Resolve allocation intents an interrupted run left: found among the credit note's
    allocations in Xero -> allocated; not found -> failed (a plan made now proposes it again).

    Returns the credit note ids whose intents stay open because Xero could not be asked.
    """
    pending = ledger.unfinished_allocations(tenant_id)
    if pending.empty:
        return set()
    ids = {str(i) for i in pending["credit_note_id"]}
    try:
        notes = _xero_credit_notes(conn, sorted(set(pending["credit_note_number"])), ids)
    except ClientError as exc:
        ledger.event(
            "xero",
            "recover allocations",
            "deferred to the next run",
            tenant_id=tenant_id,
            detail=str(exc),
        )
        return ids
    for intent in records(pending):
        note = notes.get(str(intent["credit_note_id"]))
        found = _equal_allocations(note, str(intent["invoice_id"]), intent["amount"])
        if found > int(intent["seen_before"]):
            state, message = ALLOCATED, "recovered: found in Xero after an interrupted run"
        else:
            state, message = FAILED, "interrupted before Xero saved it; not in Xero"
        ledger.record_allocation_outcome(
            tenant_id, str(intent["idempotency_key"]), state, messages=[message]
        )
        ledger.event(
            "xero",
            "recover allocation",
            state,
            tenant_id=tenant_id,
            subject=f"{intent['credit_note_number']} -> {intent['invoice_number']}",
        )
    return set()
