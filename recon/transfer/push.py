"""The transfer's push: contacts, then invoices in keyed batches, every write in the ledger first.

Floor 2. ``push(conn, plan, ledger)`` writes: missing contacts first (keyed on
a stable ``ContactNumber``, never a name), then invoices in batches of 50 with
``summarizeErrors=false`` and an ``Idempotency-Key`` derived from the batch's
content. The ledger records the intent before each batch and the outcome
after; a run that finds intents without outcomes looks those invoice numbers
up in Xero before sending anything (``recover``). One invoice's error never
stops the batch or the run; a whole-batch failure is resolved like a crash. A
push larger than today's call budget sends the oldest invoices and defers the
rest; a plan offered through another location's connection is refused.

``push`` never raises for a failed call or a bad record: an invoice that cannot go as it is
(``unsendable``: no number, a shared number, a figure that is no amount) fails naming the Nexudus
invoice while the rest go on; a stop condition (sign-in refused, a rate limit outlasting the
retries), met by a batch or by the recovery, ends the push with every unsent invoice reported
``not sent: why`` and the ledger as Xero left it. One push at a time per ledger and organisation
(``Ledger.writer``), every ledger change a compare-and-set.

Every invoice Xero answers as created is checked against the plan: its SubTotal,
TotalTax, Total and CurrencyCode must be the plan's ``xero_subtotal``,
``xero_tax``, ``xero_total`` and ``currency`` (the books may have changed since
the preview, e.g. a tax rate). One that differs is ``failed``, with both figures
and its Xero id in the ledger, so it is never sent twice and a person checks it.

Keys and attempts (xero-api.md §7: Xero replays a key's first answer, errors
included, for about six minutes): an invoice's key is derived from its batch's
content and, from the second attempt on, the attempt numbers. A send Xero
answered with a refusal makes the next send a new attempt (a new key, so the
resend after a fix is not answered with the cached refusal); a send Xero never
answered (a crash, a timeout) is sent again as the same attempt, under the same
key, so Xero replays rather than duplicates.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from recon.cells import csv_safe
from recon.errors import AuthError, ClientError, RateLimited, ServiceUnavailable, StepError
from recon.ledger import Ledger
from recon.money import D
from recon.outcomes import TransferOutcome, Verdict, counts_text
from recon.progress import Counter
from recon.session import Connection
from recon.transfer.plan import (
    WRITE_BACK_BUDGET,
    WRITE_BACK_CALLS,
    TransferPlan,
    calls_needed,
    day_calls_left,
    fit_budget,
)
from recon.troubleshooting import explain_all
from recon.values import is_missing, optional_int, records

__all__ = [
    "BUDGET_RESERVE",
    "NOT_SENT",
    "UNSENT",
    "TransferResult",
    "batch_key",
    "booked_differences",
    "push",
    "recover",
    "unfinished_outcomes",
    "unsendable",
]

# The ledger state of an invoice Xero never answered for and does not hold: the next send is the
# same attempt under the same key (a state of the ledger only; the outcomes table never shows it).
UNSENT = "unsent"
# How the messages of an invoice not sent because the run had to stop begin (outcome ``skipped``).
NOT_SENT = "not sent: "
# The step's outcomes file (one row per invoice the push was given).
TRANSFER_OUTCOMES = "transfer_outcomes.csv"

# ---- the push ---------------------------------------------------------------------------------
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


def batch_key(
    tenant_id: str, payloads: list[dict[str, Any]], attempts: list[int] | None = None
) -> str:
    """An Idempotency-Key from the batch's content and its invoices' attempt numbers: the same
    attempt of the same batch always gets the same key, a later attempt another one.

    First attempts (``attempts`` None or all 1) get the key of the content alone.
    """
    parts: list[Any] = [tenant_id, payloads]
    if attempts is not None and any(a != 1 for a in attempts):
        parts.append({"attempts": list(attempts)})
    body = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return "recon-" + hashlib.sha256(body.encode()).hexdigest()[:58]


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
        "nexudus_invoice_id": _invoice_id(dict(row)),
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


def recover(conn: Connection, ledger: Ledger) -> pd.DataFrame:
    """Resolve intents a crash left behind: found in Xero -> created (failed, with its Xero id, if
    its total is not Nexudus'); not found -> ``UNSENT``, resent as the same attempt."""
    tenant = str(conn.xero.tenant_id)
    pending = ledger.unfinished(tenant)
    if pending.empty:
        return pd.DataFrame(columns=["invoice_number", "resolution", "xero_id"])
    found = _lookup(conn, list(pending["invoice_number"]))
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


def _lookup(conn: Connection, numbers: list[str]) -> dict[str, dict[str, Any]]:
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


def _booked_differently(
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


def _create_contacts(conn: Connection, plan: TransferPlan, ledger: Ledger) -> dict[str, str]:
    """Create the plan's new contacts (batches of 50); returns ContactNumber -> ContactID for all of
    them."""
    tenant = plan.tenant_id
    ids: dict[str, str] = {}
    todo = plan.new_contacts
    for start in range(0, len(todo), plan.options.batch_size):
        chunk = todo.iloc[start : start + plan.options.batch_size]
        payload = [
            {
                "Name": r["name"],
                "ContactNumber": r["contact_number"],
                **(
                    {"EmailAddress": r["email"]}
                    if isinstance(r["email"], str) and r["email"]
                    else {}
                ),
            }
            for r in records(chunk)
        ]
        for r in records(chunk):
            ledger.record_contact(
                tenant, r["coworker_id"], r["contact_number"], "sending", name=r["name"]
            )
        try:
            elements = conn.xero.create_contacts(
                payload, idempotency_key=batch_key(tenant, payload)
            )
        except (AuthError, RateLimited):
            raise  # the run cannot go on: the push reports every invoice not sent
        except ClientError as exc:
            ledger.event("xero", "create contacts", "error", tenant_id=tenant, detail=str(exc))
            elements = []
        for r, el in zip(
            records(chunk), elements if isinstance(elements, list) else [], strict=False
        ):
            if isinstance(el, dict) and el.get("ContactID") and not el.get("HasValidationErrors"):
                ids[r["contact_number"]] = el["ContactID"]
                ledger.record_contact(
                    tenant,
                    r["coworker_id"],
                    r["contact_number"],
                    "created",
                    xero_contact_id=el["ContactID"],
                )
        # Anything not confirmed (an error, a dropped answer) is looked up by its number.
        missing = [r["contact_number"] for r in records(chunk) if r["contact_number"] not in ids]
        if missing:
            try:
                for contact in conn.xero.iter_contacts(
                    where=" OR ".join(f'ContactNumber=="{n}"' for n in missing),
                    include_archived=True,
                ):
                    ids[str(contact["ContactNumber"])] = contact["ContactID"]
            except (AuthError, RateLimited):
                raise
            except ClientError as exc:
                # Their invoices fail (no contact); the next run looks the contacts up again.
                ledger.event("xero", "look up contacts", "error", tenant_id=tenant, detail=str(exc))
    return ids


# Calls kept back from a day's budget for the run's own reads (recovery look-ups, the status sync).
BUDGET_RESERVE = 10


def _wrong_place(conn: Connection, plan: TransferPlan, ledger: Ledger | None = None) -> str | None:
    """Why this plan must not be written through this connection, if it must not. Makes no call.

    Besides the plan's own organisation, location and tracking, the location's binding
    (``recon.bindings``) as ``ledger`` records it (default: the plan's ledger, else the
    connection's): a location bound to another organisation, or bound by no one, is refused
    here; a binding the params confirm is recorded before the first write.
    """
    location = plan.context.get("location")
    if str(conn.xero.tenant_id) != plan.tenant_id:
        return (
            f"refused: this plan is for Xero organisation {plan.tenant_id} but the connection "
            f"writes to {conn.xero.tenant_id}; invoices of {location} go only to their own "
            "organisation"
        )
    if location is not None and location != conn.location:
        return (
            f"refused: this plan holds invoices of {location} but the connection is for "
            f"{conn.location}; connect to that location and plan again"
        )
    mapped = conn.params.location_map(str(location)) if location else None
    if mapped is not None and plan.context.get("tracking") != getattr(conn, "tracking", None):
        return (
            f"refused: the plan's tracking {plan.context.get('tracking')} is not {location}'s "
            f"{getattr(conn, 'tracking', None)}"
        )
    # Imported here: this function is the only part of the push that settles bindings.
    from recon.transfer.plan import settle_binding

    book = (
        ledger
        if ledger is not None
        else Ledger(plan.context.get("ledger_path") or conn.ledger_path)
    )
    try:
        binding = settle_binding(conn, book, record=True)
    finally:
        if ledger is None:
            book.close()
    if not binding.is_confirmed:
        return f"refused before any call: {binding.reason}"
    planned = plan.context.get("binding")
    if isinstance(planned, dict) and not planned.get("confirmed", False):
        return (
            f"refused: this plan was made while {planned.get('message')}; plan again now that "
            "the binding is confirmed"
        )
    return None


def push(
    conn: Connection,
    plan: TransferPlan,
    ledger: Ledger,
    *,
    progress: Callable[[int, int], None] | None = None,
    after_batch: Callable[[int, list[dict[str, Any]]], None] | None = None,
    call_budget: int | None = None,
    lock_wait: float | None = None,
    write_back_budget: int | None = None,
) -> TransferResult:
    """Write the plan to Xero. Safe to repeat: nothing is ever created twice. Never raises for
    a call that fails or an invoice that cannot go: every eligible invoice ends with an outcome.

    ``call_budget``: Xero write calls this push may make (default: what the last
    answer's ``X-DayLimit-Remaining`` says, less a reserve). When the plan needs
    more, the oldest invoices that fit go now and the rest are reported
    ``deferred`` for the next run. ``progress(done, total)`` is called after each
    batch; ``after_batch`` is a test hook called after Xero answered and before
    the ledger records it (a crash there is what the ledger's intents exist for).

    One push at a time per ledger file and organisation (``Ledger.writer``): a push
    that finds another one writing waits up to ``lock_wait`` seconds (default
    ``WRITER_WAIT_SECONDS``), then reports every invoice ``deferred`` with who holds it.

    With the plan's ``options.write_back`` on (params ``write_back_system_id``; off by
    default), each new Xero id is then stored in its Nexudus invoice, paced under Nexudus'
    limits, ``WRITE_BACK_CALLS`` Nexudus calls an invoice, at most ``write_back_budget``
    Nexudus calls (default ``WRITE_BACK_BUDGET``): the next push writes back the rest. The
    result's ``calls`` count Xero's and Nexudus' calls apart.
    An invoice that cannot be sent as it is (no invoice number, a number another invoice
    of the plan or the ledger uses, a figure that is not an amount) is ``failed`` with
    the reason, naming the Nexudus invoice; the others go on.

    Without ``progress``, a progress bar shows where someone watches (``recon.progress``).
    """
    if progress is None:
        with Counter("to Xero", unit="invoice") as bar:
            return push(
                conn,
                plan,
                ledger,
                progress=bar,
                after_batch=after_batch,
                call_budget=call_budget,
                lock_wait=lock_wait,
                write_back_budget=write_back_budget,
            )
    started = time.monotonic()
    calls_before = conn.xero.calls
    nexudus_before = conn.nexudus.calls
    tenant = plan.tenant_id
    refusal = _wrong_place(conn, plan, ledger)
    if refusal:
        # Never written, never silently dropped: every invoice is reported refused and the ledger
        # says why.
        ledger.event(
            "xero",
            "push refused",
            TransferOutcome.REFUSED,
            tenant_id=str(conn.xero.tenant_id),
            detail=refusal,
        )
        frame = pd.DataFrame(
            [
                outcome_row(r, TransferOutcome.REFUSED, messages=[refusal])
                for r in records(plan.eligible)
            ],
            columns=OUTCOME_COLUMNS,
        )
        return TransferResult(
            frame,
            {"xero": 0, "nexudus": 0},
            time.monotonic() - started,
            {**plan.context, "refused": refusal},
        )
    outcomes: list[dict[str, Any]] = []
    figures: dict[str, Any] = {
        "write_calls_needed": 0,
        "call_budget": None,
        "deferred": 0,
        "write_back_calls_needed": plan.write_back_calls,
        "write_back_budget": WRITE_BACK_BUDGET if write_back_budget is None else write_back_budget,
    }
    purpose = f"push of {plan.context.get('location') or 'a location'} to Xero"
    try:
        with ledger.writer(tenant, purpose, wait=lock_wait):
            _push_held(conn, plan, ledger, outcomes, figures, progress, after_batch, call_budget)
    except StepError as busy:
        # Another run holds this ledger and organisation: nothing sent, everything for next time.
        reason = f"deferred: {busy}"
        ledger.event(
            "xero", "push waited", TransferOutcome.DEFERRED, tenant_id=tenant, detail=reason
        )
        outcomes.extend(
            outcome_row(r, TransferOutcome.DEFERRED, messages=[reason])
            for r in records(plan.eligible)
        )
    frame = pd.DataFrame(outcomes, columns=OUTCOME_COLUMNS)
    return TransferResult(
        frame,
        {"xero": conn.xero.calls - calls_before, "nexudus": conn.nexudus.calls - nexudus_before},
        time.monotonic() - started,
        {**plan.context, "eligible": len(plan.eligible), **figures},
    )


# What a push turns into outcomes when it meets it where it did not expect it (a malformed answer
# or record past the checks, a ledger that cannot be written): the rest of the invoices are
# reported not sent, and what the ledger holds stands. Anything else (an interrupt, a test's
# stand-in for the process dying) propagates: the ledger's intents are there for that.
UNEXPECTED_ERRORS: tuple[type[Exception], ...] = (
    ArithmeticError,
    AttributeError,
    LookupError,
    TypeError,
    ValueError,
    sqlite3.Error,
)


def _push_held(
    conn: Connection,
    plan: TransferPlan,
    ledger: Ledger,
    outcomes: list[dict[str, Any]],
    figures: dict[str, Any],
    progress: Callable[[int, int], None] | None,
    after_batch: Callable[[int, list[dict[str, Any]]], None] | None,
    call_budget: int | None,
) -> None:
    """The push under the writer lock: appends one outcome per eligible invoice to ``outcomes``
    (also when it has to stop early), the budget figures to ``figures``."""
    tenant = plan.tenant_id
    try:
        _push_steps(conn, plan, ledger, outcomes, figures, progress, after_batch, call_budget)
    except ClientError as exc:
        _close_open_rows(plan, ledger, outcomes, f"{NOT_SENT}{exc}")
    except UNEXPECTED_ERRORS as exc:  # a bug must not leave the rest without an outcome
        ledger.event(
            "xero", "push stopped", "error", tenant_id=tenant, detail=f"{type(exc).__name__}: {exc}"
        )
        _close_open_rows(
            plan,
            ledger,
            outcomes,
            f"{NOT_SENT}recon stopped on an unexpected error ({type(exc).__name__}: {exc}); what "
            "was sent is in the ledger and the next run goes on from there",
        )
    if plan.options.write_back:
        figures.update(_write_back(conn, ledger, tenant, int(figures["write_back_budget"])))


def _push_steps(
    conn: Connection,
    plan: TransferPlan,
    ledger: Ledger,
    outcomes: list[dict[str, Any]],
    figures: dict[str, Any],
    progress: Callable[[int, int], None] | None,
    after_batch: Callable[[int, list[dict[str, Any]]], None] | None,
    call_budget: int | None,
) -> None:
    tenant = plan.tenant_id
    problems = unsendable(plan, ledger)
    for index, message in problems.items():
        row = plan.eligible.loc[index]
        outcomes.append(outcome_row(row, TransferOutcome.FAILED, messages=[message]))
        ledger.event("xero", "push check", TransferOutcome.FAILED, tenant_id=tenant, detail=message)
    sound = plan.eligible.drop(index=list(problems))
    try:
        recover(conn, ledger)
    except ClientError as exc:
        # Xero cannot say what became of an earlier run's unanswered writes: send nothing now.
        ledger.event(
            "xero", "recover", "deferred to the next run", tenant_id=tenant, detail=str(exc)
        )
        pending = set(ledger.unfinished(tenant)["nexudus_invoice_id"].astype(int))
        for r in records(sound):
            if _invoice_id(r) in pending:
                message = (
                    f"unknown: an earlier run left it unanswered and Xero could not be asked now "
                    f"({exc}); the next run checks Xero before sending it"
                )
                outcomes.append(outcome_row(r, TransferOutcome.UNKNOWN, messages=[message]))
            else:
                message = (
                    f"{NOT_SENT}Xero could not be asked about an earlier run's unanswered "
                    f"invoices ({exc}), so nothing was sent"
                )
                outcomes.append(outcome_row(r, TransferOutcome.SKIPPED, messages=[message]))
        return
    done = ledger.transferred_ids(tenant)
    already = sound["nexudus_invoice_id"].map(_invoice_id).isin(done)
    todo = sound[~already]
    for row in records(sound[already]):
        outcomes.append(
            outcome_row(row, TransferOutcome.SKIPPED, messages=None)
            | {"messages": "already transferred (ledger)"}
        )
    plan = _narrowed(plan, todo)
    skipped = len(outcomes)
    left_today = day_calls_left(conn)
    budget = (
        call_budget
        if call_budget is not None
        else (None if left_today is None else max(0, left_today - BUDGET_RESERVE))
    )
    needed = calls_needed(todo, plan.new_contacts, plan.options.batch_size)
    figures.update(write_calls_needed=needed, call_budget=budget)
    if budget is not None and needed > budget:
        todo = todo.sort_values(["date", "invoice_number"], kind="stable")
        fits = fit_budget(todo, plan.new_contacts, budget, plan.options.batch_size)
        reason = (
            f"deferred: this push needs {needed} Xero calls and {budget} are left in today's "
            "budget; the oldest invoices went first and the next run sends these"
        )
        outcomes.extend(
            outcome_row(r, TransferOutcome.DEFERRED, messages=[reason])
            for r in records(todo.iloc[fits:])
        )
        figures["deferred"] = len(todo) - fits
        skipped = len(outcomes)
        todo = todo.iloc[:fits]
        plan = _narrowed(plan, todo)
        ledger.event(
            "xero",
            "call budget",
            TransferOutcome.DEFERRED,
            tenant_id=tenant,
            detail={"needed": needed, "budget": budget, "deferred": figures["deferred"]},
        )
    contact_ids = dict(zip(todo["contact_number"], todo["xero_contact_id"], strict=True))
    contact_ids = {k: v for k, v in contact_ids.items() if isinstance(v, str)}
    stop_reason: str | None = None
    try:
        contact_ids.update(_create_contacts(conn, plan, ledger))
    except (AuthError, RateLimited) as exc:
        stop_reason = f"{NOT_SENT}{exc}"
    rows = records(todo)
    size = plan.options.batch_size
    total = len(rows)
    # Batches go out while earlier ones await their answers, as many as keep Xero's minute full
    # (the pacer's ``useful_in_flight``, at most its concurrent limit); the ledger is written
    # here, in batch order, and only the HTTP calls run in the sender's threads.
    # ``after_batch`` (a test hook) runs between one batch's answer and the next batch's send.
    sent = _Sender(conn, one_at_a_time=after_batch is not None)
    in_flight: deque[_InFlight] = deque()
    stops: list[_RunStopped] = []

    def settle_oldest() -> None:
        nonlocal stop_reason
        outcomes.extend(
            _settle_in_flight(
                conn, plan, ledger, in_flight.popleft(), contact_ids, after_batch, stops
            )
        )
        if stops and not stop_reason:
            # The run cannot go on (sign-in gone, or today's limit spent): the batches already
            # sent are settled, then the recovery asks Xero about what stayed unanswered.
            while in_flight:
                outcomes.extend(
                    _settle_in_flight(
                        conn, plan, ledger, in_flight.popleft(), contact_ids, after_batch, stops
                    )
                )
            stop_reason = f"{NOT_SENT}{stops[0].cause}"
            _recover_after_stop(conn, ledger, tenant)
            for stop in stops:
                outcomes.extend(_as_recorded(ledger, tenant, stop.sent, stop_reason))
        if progress:
            progress(min(len(outcomes) - skipped, total), total)

    try:
        for kind in ("invoice", "credit_note"):
            batch_rows = [r for r in rows if r["kind"] == kind]
            for start in range(0, len(batch_rows), size):
                chunk = batch_rows[start : start + size]
                while in_flight and not stop_reason and len(in_flight) >= sent.useful_in_flight():
                    settle_oldest()
                if stop_reason:
                    outcomes.extend(
                        outcome_row(r, TransferOutcome.SKIPPED, messages=[stop_reason])
                        for r in chunk
                    )
                    continue
                ready: list[dict[str, Any]] = []
                no_contact: list[dict[str, Any]] = []
                for r in chunk:
                    (ready if r["contact_number"] in contact_ids else no_contact).append(r)
                failed = [
                    outcome_row(
                        r,
                        TransferOutcome.FAILED,
                        messages=["The Xero contact could not be created; see the contact's error"],
                    )
                    for r in no_contact
                ]
                if not ready:
                    outcomes.extend(failed)
                    continue
                settled, batch = _claim_batch(plan, ledger, kind, ready, contact_ids)
                if batch is None:
                    outcomes.extend(failed + settled)
                    if progress and not in_flight:
                        progress(min(len(outcomes) - skipped, total), total)
                    continue
                in_flight.append(_InFlight(failed + settled, batch, sent.send(batch)))
        while in_flight:
            settle_oldest()
    finally:
        # On the way out (also on a crash) the calls in flight finish; what they made stays in the
        # ledger's open intents for the next run's recovery.
        sent.close()


class _RunStopped(Exception):
    """A batch's send met a stop condition (sign-in refused, a rate limit outlasting the retries):
    the outcomes of the batch's rows already settled and the rows that were being sent."""

    def __init__(
        self, cause: ClientError, done: list[dict[str, Any]], sent: list[dict[str, Any]]
    ) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.done = done
        self.sent = sent


def _invoice_id(row: dict[str, Any] | Any) -> int | None:
    """A plan row's Nexudus invoice id (or a cell holding one), None if it has none."""
    value = row.get("nexudus_invoice_id") if isinstance(row, dict) else row
    try:
        return optional_int(value)
    except (TypeError, ValueError):
        return None


def _narrowed(plan: TransferPlan, rows: pd.DataFrame) -> TransferPlan:
    """The plan narrowed to these eligible rows (by Nexudus id: numbers may be blank or shared)."""
    ids = {i for i in rows["nexudus_invoice_id"].map(_invoice_id) if i is not None}
    return replace(
        plan,
        eligible=rows.reset_index(drop=True),
        payloads={k: v for k, v in plan.payloads.items() if k in ids},
        new_contacts=plan.new_contacts[
            plan.new_contacts["coworker_id"].isin(set(rows["coworker_id"]))
        ].reset_index(drop=True),
    )


# Xero's limit on an invoice or credit note number (InvoiceNumber, CreditNoteNumber).
MAX_NUMBER = 255
# Plan columns that must be an amount (blank allowed where Xero's figure is not predicted).
_AMOUNT_COLUMNS = (
    ("nexudus_total", "Nexudus total", False),
    ("xero_subtotal", "planned subtotal", True),
    ("xero_tax", "planned tax", True),
    ("xero_total", "planned total", True),
)
_LINE_AMOUNTS = ("Quantity", "UnitAmount", "DiscountAmount", "TaxAmount")


def _amount_problem(value: Any, blank_ok: bool) -> str | None:
    """Why ``value`` is not an amount, or None if it is one (or a blank allowed to be)."""
    if value is None or is_missing(value) or (isinstance(value, str) and not value.strip()):
        return None if blank_ok else "blank"
    try:
        amount = D(value)
    except (ValueError, TypeError, ArithmeticError):
        return f"{value!r}, not a number"
    if not amount.is_finite():
        return f"{value!r}, not a finite number"
    return None


def unsendable(plan: TransferPlan, ledger: Ledger) -> dict[Any, str]:
    """The plan's eligible rows that must not be sent as they are, by their index: the reason,
    naming the Nexudus invoice and the field. No calls.

    No invoice number, or one longer than Xero takes; a number another invoice of the plan,
    or one the ledger records for another Nexudus invoice, already uses; no Xero payload; a
    figure or a line amount that is not a finite number; no currency; no contact number.
    """
    eligible = plan.eligible
    numbers = ["" if is_missing(v) else str(v).strip() for v in eligible.get("invoice_number", [])]
    ids = [_invoice_id(v) for v in eligible.get("nexudus_invoice_id", [])]
    users: dict[str, list[int | None]] = {}
    for number, invoice_id in zip(numbers, ids, strict=True):
        if number:
            users.setdefault(number, []).append(invoice_id)
    known = ledger.transfers(plan.tenant_id)
    known = known[known["state"].isin(["created", "sending"])]
    recorded = {
        str(n).strip(): int(i)
        for n, i in zip(known["invoice_number"], known["nexudus_invoice_id"], strict=True)
    }
    problems: dict[Any, str] = {}
    for index, row, number, invoice_id in zip(
        eligible.index, records(eligible), numbers, ids, strict=True
    ):
        what = f"Nexudus invoice {invoice_id if invoice_id is not None else '(no id)'}"
        name = f"{what} ({number})" if number else what
        reason = None
        if invoice_id is None:
            reason = "the plan row has no Nexudus invoice id: plan the transfer again"
        elif not number:
            value = row.get("invoice_number")
            shown = "empty" if is_missing(value) else f"{value!r}"
            reason = (
                f"it has no invoice number (InvoiceNumber is {shown}): Xero files an invoice by "
                "its number and recon finds it there again by it, so it is not sent. Give it a "
                "number in Nexudus (or void it), then run the transfer again"
            )
        elif len(number) > MAX_NUMBER:
            reason = (
                f"its invoice number is {len(number)} characters long, over Xero's limit of "
                f"{MAX_NUMBER}: shorten it in Nexudus, then run the transfer again"
            )
        elif len(users[number]) > 1:
            others = ", ".join(str(i) for i in users[number] if i != invoice_id)
            reason = (
                f"its invoice number {number} is also that of Nexudus invoice {others} in this "
                "transfer: Xero keeps one invoice per number, so neither is sent. Renumber or "
                "void the wrong one in Nexudus, then run the transfer again"
            )
        elif recorded.get(number, invoice_id) != invoice_id:
            reason = (
                f"its invoice number {number} was already transferred for Nexudus invoice "
                f"{recorded[number]} (ledger): Xero keeps one invoice per number. Renumber it in "
                "Nexudus, then run the transfer again"
            )
        elif invoice_id not in plan.payloads:
            reason = "the plan holds no Xero invoice for it: plan the transfer again"
        else:
            reason = _figure_problem(row, plan.payloads[invoice_id])
        if reason:
            problems[index] = f"not sent: {name}: {reason}"
    return problems


def _figure_problem(row: dict[str, Any], payload: dict[str, Any]) -> str | None:
    """Why a plan row's figures or its payload's line amounts cannot go to Xero, if they cannot."""
    for column, label, blank_ok in _AMOUNT_COLUMNS:
        problem = _amount_problem(row.get(column), blank_ok)
        if problem:
            return (
                f"it has a {label} ({column}) of {problem}: fix the invoice's amounts in Nexudus, "
                "then plan the transfer again"
            )
    currency = row.get("currency")
    if is_missing(currency) or not str(currency).strip():
        return "it has no currency: set the invoice's currency in Nexudus, then plan again"
    if is_missing(row.get("contact_number")) or not str(row.get("contact_number")).strip():
        return "it has no Xero contact for its customer: plan the transfer again"
    lines = payload.get("LineItems")
    if not isinstance(lines, list) or not lines:
        return "it has no lines to send: check the invoice in Nexudus, then plan again"
    for position, line in enumerate(lines, start=1):
        for name in _LINE_AMOUNTS:
            problem = _amount_problem(line.get(name) if isinstance(line, dict) else None, True)
            if problem:
                return (
                    f"it has a {name} of {problem} on line {position}: fix the line in Nexudus, "
                    "then plan the transfer again"
                )
    return None


def _close_open_rows(
    plan: TransferPlan, ledger: Ledger, outcomes: list[dict[str, Any]], reason: str
) -> None:
    """Give every eligible row without an outcome one, from what the ledger holds for it: the
    run stopped before it was (known to be) settled."""
    given = {o["nexudus_invoice_id"] for o in outcomes}
    rest = [r for r in records(plan.eligible) if _invoice_id(r) not in given]
    usable = [r for r in rest if _invoice_id(r) is not None]
    try:
        outcomes.extend(
            _as_recorded(ledger, plan.tenant_id, usable, reason, TransferOutcome.UNKNOWN)
        )
    except sqlite3.Error:  # the ledger cannot be read either: what it holds stands for next time
        outcomes.extend(outcome_row(r, TransferOutcome.SKIPPED, messages=[reason]) for r in usable)
    outcomes.extend(
        outcome_row(r, TransferOutcome.FAILED, messages=[reason])
        for r in rest
        if _invoice_id(r) is None
    )


def _as_recorded(
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
        rec = known.get(_invoice_id(r) or 0)
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


@dataclass(frozen=True)
class _Batch:
    """A batch claimed in the ledger and ready to go: its kind, key, rows and Xero payloads."""

    kind: str
    key: str
    sendable: list[dict[str, Any]]
    payloads: list[dict[str, Any]]


@dataclass
class _InFlight:
    """A batch sent and not yet settled: the outcomes already known for its chunk, the batch, and
    Xero's answer to come."""

    settled: list[dict[str, Any]]
    batch: _Batch
    answer: Future[list[dict[str, Any]]]


class _Sender:
    """Sends claimed batches to Xero from worker threads, as many at once as the client's pacer
    allows in flight; ledger work stays with the caller."""

    def __init__(self, conn: Connection, *, one_at_a_time: bool = False) -> None:
        self._conn = conn
        self._pacer = None if one_at_a_time else getattr(conn.xero, "pacer", None)
        workers = int(getattr(self._pacer, "max_in_flight", 1) or 1)
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="xero-push")

    def useful_in_flight(self) -> int:
        """Batches worth having in flight now (1 while Xero answers quickly)."""
        useful = getattr(self._pacer, "useful_in_flight", None)
        return int(useful(str(self._conn.xero.tenant_id))) if useful else 1

    def send(self, batch: _Batch) -> Future[list[dict[str, Any]]]:
        """Start the batch's call; its future holds Xero's elements or the call's error."""
        return self._pool.submit(_post_batch, self._conn, batch)

    def close(self) -> None:
        """Wait for the calls in flight to end."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _post_batch(conn: Connection, batch: _Batch) -> list[dict[str, Any]]:
    """The batch's one Xero call (run in a sender thread: no ledger work here)."""
    if batch.kind == "credit_note":
        return conn.xero.create_credit_notes(batch.payloads, idempotency_key=batch.key)
    return conn.xero.create_invoices(batch.payloads, idempotency_key=batch.key)


def _recover_after_stop(conn: Connection, ledger: Ledger, tenant: str) -> None:
    """After a stop, settle what Xero holds of the unanswered batches, if Xero can be asked."""
    try:
        recover(conn, ledger)
    except ClientError as lookup_exc:
        # Xero cannot be asked either (same cause): the intents stay open and the next run
        # resolves them before it sends anything.
        ledger.event(
            "xero", "recover", "deferred to the next run", tenant_id=tenant, detail=str(lookup_exc)
        )


def _settle_in_flight(
    conn: Connection,
    plan: TransferPlan,
    ledger: Ledger,
    flight: _InFlight,
    contact_ids: dict[str, str],
    after_batch: Callable[[int, list[dict[str, Any]]], None] | None,
    stops: list[_RunStopped],
) -> list[dict[str, Any]]:
    """The outcomes of a sent batch once Xero answered; a stop condition is added to ``stops``
    (its settled rows returned, its sent rows left for the caller)."""
    try:
        return flight.settled + _settle_batch(
            conn, plan, ledger, flight.batch, flight.answer, contact_ids, after_batch
        )
    except _RunStopped as stop:
        stops.append(stop)
        return flight.settled + stop.done


def _claim_batch(
    plan: TransferPlan,
    ledger: Ledger,
    kind: str,
    chunk: list[dict[str, Any]],
    contact_ids: dict[str, str],
) -> tuple[list[dict[str, Any]], _Batch | None]:
    """Claim each invoice of the chunk in the ledger (compare-and-set) and record the intent:
    (the outcomes of rows not to send, the batch to send or None)."""
    tenant = plan.tenant_id
    out, sendable = _claimable(ledger, tenant, chunk)
    if not sendable:
        return out, None
    payloads = []
    for r in sendable:
        body = dict(plan.payloads[int(r["nexudus_invoice_id"])])
        body["Contact"] = {"ContactID": contact_ids[r["contact_number"]]}
        payloads.append(body)
    attempt_of = ledger.next_attempts(tenant, [int(r["nexudus_invoice_id"]) for r in sendable])
    attempts = [attempt_of[int(r["nexudus_invoice_id"])] for r in sendable]
    key = batch_key(tenant, payloads, attempts)
    claimed = ledger.claim_transfers(
        tenant, key, [{**r, "attempt": a} for r, a in zip(sendable, attempts, strict=True)]
    )
    if claimed != {int(r["nexudus_invoice_id"]) for r in sendable}:
        # Another run changed some of these rows between the read and the claim (it does not hold
        # the lock): send none of the batch, whose key was made for all of it.
        ledger.record_outcomes(
            tenant,
            [{"nexudus_invoice_id": i, "state": UNSENT} for i in claimed],
            expected="sending",
        )
        reason = (
            f"{NOT_SENT}another run changed this batch's invoices in the ledger while this one "
            "prepared it; the next run sends what is still to send"
        )
        skipped = [outcome_row(r, TransferOutcome.SKIPPED, messages=[reason]) for r in sendable]
        return out + skipped, None
    ledger.event(
        "xero",
        f"create {kind}s",
        "sending",
        tenant_id=tenant,
        subject=key,
        detail=[r["invoice_number"] for r in sendable],
    )
    return out, _Batch(kind, key, sendable, payloads)


def _send_batch(
    conn: Connection,
    plan: TransferPlan,
    ledger: Ledger,
    kind: str,
    chunk: list[dict[str, Any]],
    contact_ids: dict[str, str],
    after_batch: Callable[[int, list[dict[str, Any]]], None] | None,
) -> list[dict[str, Any]]:
    """Send one batch: claim each invoice in the ledger (compare-and-set), send, record each
    answer. Raises ``_RunStopped`` for a stop condition, with what it settled."""
    out, batch = _claim_batch(plan, ledger, kind, chunk, contact_ids)
    if batch is None:
        return out
    answer: Future[list[dict[str, Any]]] = Future()
    try:
        answer.set_result(_post_batch(conn, batch))
    except ClientError as exc:
        answer.set_exception(exc)
    try:
        return out + _settle_batch(conn, plan, ledger, batch, answer, contact_ids, after_batch)
    except _RunStopped as stop:
        stop.done[:0] = out
        raise


def _settle_batch(
    conn: Connection,
    plan: TransferPlan,
    ledger: Ledger,
    batch: _Batch,
    answer: Future[list[dict[str, Any]]],
    contact_ids: dict[str, str],
    after_batch: Callable[[int, list[dict[str, Any]]], None] | None,
) -> list[dict[str, Any]]:
    """Record Xero's answer to a sent batch (waiting for it), invoice by invoice. Raises
    ``_RunStopped`` for a stop condition, with what it settled."""
    tenant = plan.tenant_id
    kind, key, sendable = batch.kind, batch.key, batch.sendable
    out: list[dict[str, Any]] = []
    try:
        elements = answer.result()
    except (AuthError, RateLimited) as exc:
        raise _RunStopped(exc, out, sendable) from exc
    except ClientError as exc:
        # Whole batch refused or unanswered: Xero may or may not have saved it. Ask, by number.
        ledger.event(
            "xero", f"create {kind}s", "error", tenant_id=tenant, subject=key, detail=str(exc)
        )
        # Xero answered (a refusal it caches under the key, or a 5xx): the next send is a new
        # attempt. No answer at all (a timeout, a dropped connection): the same attempt again.
        answered = not (isinstance(exc, ServiceUnavailable) and exc.status is None)
        messages = getattr(exc, "messages", None) or [str(exc)]
        return out + _settle_by_lookup(conn, ledger, tenant, sendable, exc, messages, answered)
    if after_batch:
        after_batch(len(sendable), elements)
    if not isinstance(elements, list) or len(elements) != len(sendable):
        count = len(elements) if isinstance(elements, list) else "no list of"
        problem = f"Xero answered {count} records for the {len(sendable)} sent"
        ledger.event(
            "xero", f"create {kind}s", "error", tenant_id=tenant, subject=key, detail=problem
        )
        return out + _settle_by_lookup(
            conn, ledger, tenant, sendable, problem, [f"{problem}; not found in Xero"], True
        )
    duplicates = []
    recorded = []
    unreadable: list[dict[str, Any]] = []
    problems: list[str] = []
    id_key = "CreditNoteID" if kind == "credit_note" else "InvoiceID"
    for r, el in zip(sendable, elements, strict=True):
        try:
            shown, booked, duplicate = _read_element(r, el, id_key)
        except (AttributeError, KeyError, TypeError, ValueError, ArithmeticError) as exc:
            unreadable.append(r)
            problems.append(f"{r['invoice_number']}: {type(exc).__name__}: {exc}")
            continue
        if duplicate:
            duplicates.append(r)
            continue
        recorded.append(booked)
        out.append(shown)
    changed = ledger.record_outcomes(tenant, recorded, expected="sending")
    _note_moved_on(ledger, tenant, [b["nexudus_invoice_id"] for b in recorded], changed)
    if unreadable:
        detail = "; ".join(problems)
        ledger.event(
            "xero", f"create {kind}s", "unreadable answer", tenant_id=tenant, detail=detail
        )
        out.extend(
            _settle_by_lookup(
                conn,
                ledger,
                tenant,
                unreadable,
                detail,
                [f"Xero's answer for it could not be read ({detail}) and Xero does not hold it"],
                True,
            )
        )
    if duplicates:
        out.extend(_adopt(conn, ledger, tenant, duplicates, contact_ids))
    return out


def _claimable(
    ledger: Ledger, tenant: str, chunk: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(outcomes of the rows the ledger says must not be sent now, the rows that may be)."""
    states = ledger.transfer_states(tenant, [int(r["nexudus_invoice_id"]) for r in chunk])
    out: list[dict[str, Any]] = []
    sendable: list[dict[str, Any]] = []
    for r in chunk:
        state, xero_id = states.get(int(r["nexudus_invoice_id"]), (None, None))
        if state is None or (state in Ledger.SENDABLE_STATES and not xero_id):
            sendable.append(r)
        elif state == TransferOutcome.CREATED:
            out.append(
                outcome_row(r, TransferOutcome.SKIPPED)
                | {"messages": "already transferred (ledger)"}
            )
        elif state == "sending":
            message = (
                "unknown: another run is sending it, or left it unanswered; the next run checks "
                "Xero before sending it"
            )
            out.append(outcome_row(r, TransferOutcome.UNKNOWN, messages=[message]))
        else:
            message = (
                f"Xero holds it (id {xero_id}) but not as planned (ledger: {state}): a person must "
                "check it there; recon will not send it again"
            )
            out.append(outcome_row(r, TransferOutcome.FAILED, xero_id=xero_id, messages=[message]))
    return out, sendable


def _read_element(
    r: dict[str, Any], el: Any, id_key: str
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """One invoice's element of Xero's answer: (its outcome row, its ledger outcome, whether Xero
    says its number is taken). Raises for an element that is not an answer recon can read."""
    messages = [str(m.get("Message", "")) for m in el.get("ValidationErrors") or []]
    saved = el.get("StatusAttributeString") in ("OK", "WARNING") and el.get(id_key)
    differences = booked_differences(r, el) if saved else []
    if saved and differences:
        shown, booked = _booked_differently(r, str(el[id_key]), el, differences)
        return shown, booked, False
    if saved:
        total = D(el.get("Total", 0))
        if not total.is_finite():
            raise ValueError(f"Total {el.get('Total')!r} is not a number")
        booked = {
            "nexudus_invoice_id": r["nexudus_invoice_id"],
            "state": TransferOutcome.CREATED,
            "xero_id": str(el[id_key]),
            "xero_total": total,
        }
        shown = outcome_row(r, TransferOutcome.CREATED, xero_id=str(el[id_key]), xero_total=total)
        return shown, booked, False
    if any("must be unique" in m for m in messages):
        return {}, {}, True
    if not messages:
        messages = [
            f"Xero did not save it and gave no reason (status {el.get('StatusAttributeString')!r})"
        ]
    booked = {
        "nexudus_invoice_id": r["nexudus_invoice_id"],
        "state": TransferOutcome.FAILED,
        "messages": messages,
    }
    return outcome_row(r, TransferOutcome.FAILED, messages=messages), booked, False


def _note_moved_on(ledger: Ledger, tenant: str, ids: list[Any], changed: set[int]) -> None:
    """An audit line for each outcome the ledger did not take: another run settled the row first
    (its record stands; this run's answer is in the audit trail)."""
    for invoice_id in ids:
        if int(invoice_id) not in changed:
            ledger.event(
                "xero",
                "record outcome",
                "already settled by another run",
                tenant_id=tenant,
                subject=str(invoice_id),
            )


def _settle_by_lookup(
    conn: Connection,
    ledger: Ledger,
    tenant: str,
    rows: list[dict[str, Any]],
    cause: object,
    messages: list[str],
    answered: bool,
) -> list[dict[str, Any]]:
    """Rows whose answer is missing or unreadable, settled by looking their numbers up in Xero:
    found -> created (failed if booked differently); not found -> failed when Xero answered
    (``messages``), else ``UNSENT``; Xero cannot be asked -> unknown, intents left open."""
    try:
        found = _lookup(conn, [str(r["invoice_number"]) for r in rows])
    except ClientError as lookup_exc:
        # Cannot tell whether Xero saved them: the intents stay open for the next run to resolve.
        message = (
            f"unknown: Xero did not answer ({cause}) and could not be asked ({lookup_exc}); the "
            "next run resolves it"
        )
        return [outcome_row(r, TransferOutcome.UNKNOWN, messages=[message]) for r in rows]
    out = []
    for r in rows:
        hit = found.get(str(r["invoice_number"]))
        differences = booked_differences(r, hit["booked"]) if hit else []
        if hit and differences:
            shown, ledger_row = _booked_differently(r, hit["id"], hit["booked"], differences)
            ledger.record_outcomes(tenant, [ledger_row], expected="sending")
            out.append(shown)
        elif hit:
            ledger.record_outcome(
                tenant,
                r["nexudus_invoice_id"],
                TransferOutcome.CREATED,
                xero_id=hit["id"],
                xero_total=hit["total"],
                expected="sending",
            )
            out.append(
                outcome_row(r, TransferOutcome.CREATED, xero_id=hit["id"], xero_total=hit["total"])
            )
        else:
            ledger.record_outcome(
                tenant,
                r["nexudus_invoice_id"],
                TransferOutcome.FAILED if answered else UNSENT,
                messages=messages,
                expected="sending",
            )
            out.append(outcome_row(r, TransferOutcome.FAILED, messages=messages))
    return out


def _adopt(
    conn: Connection,
    ledger: Ledger,
    tenant: str,
    rows: list[dict[str, Any]],
    contact_ids: dict[str, str],
) -> list[dict[str, Any]]:
    """Xero already has these numbers: the same invoice (contact and total agree) is adopted, else
    it fails. If Xero cannot be asked, the intents stay open for the next run's recovery."""
    try:
        found = _lookup(conn, [str(r["invoice_number"]) for r in rows])
    except ClientError as exc:
        message = (
            f"unknown: Xero says the number is taken and could not be asked whose it is ({exc}); "
            "the next run checks Xero before sending it again"
        )
        return [outcome_row(r, TransferOutcome.UNKNOWN, messages=[message]) for r in rows]
    out = []
    for r in rows:
        hit = found.get(str(r["invoice_number"]))
        if (
            hit is not None
            and hit["total"] == abs(D(r["nexudus_total"]))
            and hit["contact"] == contact_ids.get(r["contact_number"])
        ):
            ledger.record_outcome(
                tenant,
                r["nexudus_invoice_id"],
                TransferOutcome.CREATED,
                xero_id=hit["id"],
                xero_total=hit["total"],
                messages=["adopted: Xero already had this invoice"],
                expected="sending",
            )
            out.append(
                outcome_row(r, TransferOutcome.ADOPTED, xero_id=hit["id"], xero_total=hit["total"])
            )
        else:
            messages = [
                "Invoice # must be unique.",
                "Xero has another invoice with this number (different customer or total)",
            ]
            ledger.record_outcome(
                tenant,
                r["nexudus_invoice_id"],
                TransferOutcome.FAILED,
                messages=messages,
                expected="sending",
            )
            out.append(outcome_row(r, TransferOutcome.FAILED, messages=messages))
    return out


def _write_back(conn: Connection, ledger: Ledger, tenant: str, budget: int) -> dict[str, int]:
    """Store each new Xero id in its Nexudus invoice's SystemId, within ``budget`` Nexudus calls.

    Each is a whole-record PUT built from a fresh read and read back (nexudus.md §4), each call
    paced by the Nexudus client under Nexudus' limits (60 writes and 120 calls a minute, 5,000
    calls an hour, §5). A refused sign-in or a rate limit stops the write-back; what is left
    (also past the budget) the next push writes back. Returns ``written_back`` and
    ``write_back_left``.
    """
    rows = ledger.transfers(tenant)
    todo = records(rows[(rows["state"] == TransferOutcome.CREATED) & (rows["written_back"] == 0)])
    fits = max(0, budget) // WRITE_BACK_CALLS
    if len(todo) > fits:
        ledger.event(
            "nexudus",
            "write back xero id",
            "deferred",
            tenant_id=tenant,
            detail=f"{len(todo) - fits} of {len(todo)} left for the next push: the write-back "
            f"may make {budget} Nexudus calls, {WRITE_BACK_CALLS} an invoice",
        )
    written = 0
    for rec in todo[:fits]:
        try:
            conn.nexudus.update_invoice(
                int(rec["nexudus_invoice_id"]), SystemId=f"xero:{rec['xero_id']}"
            )
        except ClientError as exc:
            ledger.event(
                "nexudus",
                "write back xero id",
                "error",
                tenant_id=tenant,
                subject=rec["invoice_number"],
                detail=str(exc),
            )
            if isinstance(exc, (AuthError, RateLimited)):
                break  # the next push writes back the rest
            continue
        ledger.record_written_back(tenant, int(rec["nexudus_invoice_id"]))
        written += 1
    return {"written_back": written, "write_back_left": len(todo) - written}
