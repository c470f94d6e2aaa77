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

Its parts, each a module of this package: ``send`` (contacts, then claimed batches, keys and
attempts), ``recovery`` (what Xero holds: the look-up by number, the booked-as-planned check,
the recovery of open intents), ``writeback`` (the new Xero ids into Nexudus) and ``result`` (the
outcome rows and ``TransferResult``); the names this module always offered are importable here.
"""

from __future__ import annotations

import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pandas as pd

from recon.errors import AuthError, ClientError, RateLimited, StepError
from recon.ledger import Ledger
from recon.money import D
from recon.outcomes import TransferOutcome
from recon.progress import Counter
from recon.session import Connection
from recon.transfer.plan import (
    WRITE_BACK_BUDGET,
    TransferPlan,
    calls_needed,
    day_calls_left,
    fit_budget,
)
from recon.transfer.recovery import BOOKED_DIFFERENTLY_FIX as BOOKED_DIFFERENTLY_FIX
from recon.transfer.recovery import BOOKED_DIFFERENTLY_MEANING as BOOKED_DIFFERENTLY_MEANING
from recon.transfer.recovery import CHECKED_FIGURES as CHECKED_FIGURES
from recon.transfer.recovery import as_recorded, recover_after_stop
from recon.transfer.recovery import booked_differences as booked_differences
from recon.transfer.recovery import recover as recover
from recon.transfer.result import NOT_SENT as NOT_SENT
from recon.transfer.result import OUTCOME_COLUMNS as OUTCOME_COLUMNS
from recon.transfer.result import TRANSFER_OUTCOMES as TRANSFER_OUTCOMES
from recon.transfer.result import UNSENT as UNSENT
from recon.transfer.result import TransferResult as TransferResult
from recon.transfer.result import invoice_id_of
from recon.transfer.result import outcome_row as outcome_row
from recon.transfer.result import unfinished_outcomes as unfinished_outcomes
from recon.transfer.send import (
    InFlight,
    RunStopped,
    Sender,
    claim_batch,
    create_contacts,
    settle_in_flight,
)
from recon.transfer.send import batch_key as batch_key
from recon.transfer.writeback import write_back
from recon.values import is_missing, records

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
        figures.update(write_back(conn, ledger, tenant, int(figures["write_back_budget"])))


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
            if invoice_id_of(r) in pending:
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
    already = sound["nexudus_invoice_id"].map(invoice_id_of).isin(done)
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
        contact_ids.update(create_contacts(conn, plan, ledger))
    except (AuthError, RateLimited) as exc:
        stop_reason = f"{NOT_SENT}{exc}"
    rows = records(todo)
    size = plan.options.batch_size
    total = len(rows)
    # Batches go out while earlier ones await their answers, as many as keep Xero's minute full
    # (the pacer's ``useful_in_flight``, at most its concurrent limit); the ledger is written
    # here, in batch order, and only the HTTP calls run in the sender's threads.
    # ``after_batch`` (a test hook) runs between one batch's answer and the next batch's send.
    sent = Sender(conn, one_at_a_time=after_batch is not None)
    in_flight: deque[InFlight] = deque()
    stops: list[RunStopped] = []

    def settle_oldest() -> None:
        nonlocal stop_reason
        outcomes.extend(
            settle_in_flight(
                conn, plan, ledger, in_flight.popleft(), contact_ids, after_batch, stops
            )
        )
        if stops and not stop_reason:
            # The run cannot go on (sign-in gone, or today's limit spent): the batches already
            # sent are settled, then the recovery asks Xero about what stayed unanswered.
            while in_flight:
                outcomes.extend(
                    settle_in_flight(
                        conn, plan, ledger, in_flight.popleft(), contact_ids, after_batch, stops
                    )
                )
            stop_reason = f"{NOT_SENT}{stops[0].cause}"
            recover_after_stop(conn, ledger, tenant)
            for stop in stops:
                outcomes.extend(as_recorded(ledger, tenant, stop.sent, stop_reason))
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
                settled, batch = claim_batch(plan, ledger, kind, ready, contact_ids)
                if batch is None:
                    outcomes.extend(failed + settled)
                    if progress and not in_flight:
                        progress(min(len(outcomes) - skipped, total), total)
                    continue
                in_flight.append(InFlight(failed + settled, batch, sent.send(batch)))
        while in_flight:
            settle_oldest()
    finally:
        # On the way out (also on a crash) the calls in flight finish; what they made stays in the
        # ledger's open intents for the next run's recovery.
        sent.close()


def _narrowed(plan: TransferPlan, rows: pd.DataFrame) -> TransferPlan:
    """The plan narrowed to these eligible rows (by Nexudus id: numbers may be blank or shared)."""
    ids = {i for i in rows["nexudus_invoice_id"].map(invoice_id_of) if i is not None}
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
    ids = [invoice_id_of(v) for v in eligible.get("nexudus_invoice_id", [])]
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
    rest = [r for r in records(plan.eligible) if invoice_id_of(r) not in given]
    usable = [r for r in rest if invoice_id_of(r) is not None]
    try:
        outcomes.extend(
            as_recorded(ledger, plan.tenant_id, usable, reason, TransferOutcome.UNKNOWN)
        )
    except sqlite3.Error:  # the ledger cannot be read either: what it holds stands for next time
        outcomes.extend(outcome_row(r, TransferOutcome.SKIPPED, messages=[reason]) for r in usable)
    outcomes.extend(
        outcome_row(r, TransferOutcome.FAILED, messages=[reason])
        for r in rest
        if invoice_id_of(r) is None
    )
