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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from recon.errors import AuthError, ClientError, RateLimited, ServiceUnavailable
from recon.ledger import Ledger
from recon.money import D
from recon.outcomes import TransferOutcome, Verdict, counts_text
from recon.session import Connection
from recon.transfer.plan import TransferPlan, calls_needed, day_calls_left, fit_budget
from recon.troubleshooting import explain_all
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
]

# The ledger state of an invoice Xero never answered for and does not hold: the next send is the
# same attempt under the same key (a state of the ledger only; the outcomes table never shows it).
UNSENT = "unsent"
# How the messages of an invoice not sent because the run had to stop begin (outcome ``skipped``).
NOT_SENT = "not sent: "

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
        """Write the outcomes as ``transfer_outcomes.csv`` in ``folder``; returns its path."""
        path = Path(folder) / "transfer_outcomes.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.outcomes.to_csv(path, index=False)
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
        difference = abs(Decimal(nexudus_total)) - Decimal(xero_total)
    return {
        "invoice_number": row["invoice_number"],
        "nexudus_invoice_id": int(row["nexudus_invoice_id"]),
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
    (``booked``: what ``booked_differences`` reads), in batches."""
    out: dict[str, dict[str, Any]] = {}
    for inv in conn.xero.iter_invoices(invoice_numbers=numbers, summary_only=True):
        if inv.get("Status") not in ("DELETED",):
            out[str(inv["InvoiceNumber"])] = {
                "id": inv["InvoiceID"],
                "total": Decimal(str(inv.get("Total", 0))),
                "contact": (inv.get("Contact") or {}).get("ContactID"),
                "booked": inv,
            }
    missing = [n for n in numbers if n not in out]
    if missing and hasattr(conn.xero, "iter_credit_notes"):
        for note in conn.xero.iter_credit_notes(numbers=missing):
            if note.get("Status") not in ("DELETED",):
                out[str(note["CreditNoteNumber"])] = {
                    "id": note["CreditNoteID"],
                    "total": Decimal(str(note.get("Total", 0))),
                    "contact": (note.get("Contact") or {}).get("ContactID"),
                    "booked": note,
                }
    return out


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
        xero = None if value is None or is_missing(value) else D(value)
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
                **({"EmailAddress": r["email"]} if r["email"] else {}),
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
        except ClientError as exc:
            ledger.event("xero", "create contacts", "error", tenant_id=tenant, detail=str(exc))
            elements = []
        for r, el in zip(records(chunk), elements, strict=False):
            if el.get("ContactID") and not el.get("HasValidationErrors"):
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
            for contact in conn.xero.iter_contacts(
                where=" OR ".join(f'ContactNumber=="{n}"' for n in missing), include_archived=True
            ):
                ids[str(contact["ContactNumber"])] = contact["ContactID"]
    return ids


# Calls kept back from a day's budget for the run's own reads (recovery look-ups, the status sync).
BUDGET_RESERVE = 10


def _wrong_place(conn: Connection, plan: TransferPlan) -> str | None:
    """Why this plan must not be written through this connection, if it must not."""
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
    return None


def push(
    conn: Connection,
    plan: TransferPlan,
    ledger: Ledger,
    *,
    progress: Callable[[int, int], None] | None = None,
    after_batch: Callable[[int, list[dict[str, Any]]], None] | None = None,
    call_budget: int | None = None,
) -> TransferResult:
    """Write the plan to Xero. Safe to repeat: nothing is ever created twice.

    ``call_budget``: Xero write calls this push may make (default: what the last
    answer's ``X-DayLimit-Remaining`` says, less a reserve). When the plan needs
    more, the oldest invoices that fit go now and the rest are reported
    ``deferred`` for the next run. ``progress(done, total)`` is called after each
    batch; ``after_batch`` is a test hook called after Xero answered and before
    the ledger records it (a crash there is what the ledger's intents exist for).
    """
    started = time.monotonic()
    calls_before = conn.xero.calls
    tenant = plan.tenant_id
    refusal = _wrong_place(conn, plan)
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
            frame, {"xero": 0}, time.monotonic() - started, {**plan.context, "refused": refusal}
        )
    outcomes: list[dict[str, Any]] = []
    recover(conn, ledger)
    done = ledger.transferred_ids(tenant)
    todo = plan.eligible[~plan.eligible["nexudus_invoice_id"].isin(done)]
    for row in records(plan.eligible[plan.eligible["nexudus_invoice_id"].isin(done)]):
        outcomes.append(
            outcome_row(row, TransferOutcome.SKIPPED, messages=None)
            | {"messages": "already transferred (ledger)"}
        )
    skipped = len(outcomes)
    left_today = day_calls_left(conn)
    budget = (
        call_budget
        if call_budget is not None
        else (None if left_today is None else max(0, left_today - BUDGET_RESERVE))
    )
    needed = calls_needed(todo, plan.new_contacts, plan.options.batch_size)
    deferred_count = 0
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
        deferred_count = len(todo) - fits
        skipped = len(outcomes)
        todo = todo.iloc[:fits]
        plan = plan.only(todo["invoice_number"])
        ledger.event(
            "xero",
            "call budget",
            TransferOutcome.DEFERRED,
            tenant_id=tenant,
            detail={"needed": needed, "budget": budget, "deferred": deferred_count},
        )
    contact_ids = dict(zip(todo["contact_number"], todo["xero_contact_id"], strict=True))
    contact_ids = {k: v for k, v in contact_ids.items() if isinstance(v, str)}
    contact_ids.update(_create_contacts(conn, plan, ledger))
    stop_reason: str | None = None
    rows = records(todo)
    size = plan.options.batch_size
    total = len(rows)
    for kind in ("invoice", "credit_note"):
        batch_rows = [r for r in rows if r["kind"] == kind]
        for start in range(0, len(batch_rows), size):
            chunk = batch_rows[start : start + size]
            if stop_reason:
                outcomes.extend(
                    outcome_row(r, TransferOutcome.SKIPPED, messages=[stop_reason]) for r in chunk
                )
                continue
            ready: list[dict[str, Any]] = []
            no_contact: list[dict[str, Any]] = []
            for r in chunk:
                (ready if r["contact_number"] in contact_ids else no_contact).append(r)
            outcomes.extend(
                outcome_row(
                    r,
                    TransferOutcome.FAILED,
                    messages=["The Xero contact could not be created; see the contact's error"],
                )
                for r in no_contact
            )
            if not ready:
                continue
            try:
                outcomes.extend(
                    _send_batch(conn, plan, ledger, kind, ready, contact_ids, after_batch)
                )
            except (AuthError, RateLimited) as exc:
                # The run cannot go on (sign-in gone, or today's limit spent): say so for the rest.
                stop_reason = f"{NOT_SENT}{exc}"
                try:
                    recover(conn, ledger)
                except ClientError as lookup_exc:
                    # Xero cannot be asked either (same cause): the intents stay open and the
                    # next run resolves them before it sends anything.
                    ledger.event(
                        "xero",
                        "recover",
                        "deferred to the next run",
                        tenant_id=tenant,
                        detail=str(lookup_exc),
                    )
                outcomes.extend(
                    outcome_row(r, TransferOutcome.SKIPPED, messages=[stop_reason]) for r in ready
                )
            if progress:
                progress(min(len(outcomes) - skipped, total), total)
    if plan.options.write_back:
        _write_back(conn, ledger, tenant)
    frame = pd.DataFrame(outcomes, columns=OUTCOME_COLUMNS)
    return TransferResult(
        frame,
        {"xero": conn.xero.calls - calls_before},
        time.monotonic() - started,
        {
            **plan.context,
            "eligible": len(plan.eligible) + deferred_count,
            "write_calls_needed": needed,
            "call_budget": budget,
            "deferred": deferred_count,
        },
    )


def _send_batch(
    conn: Connection,
    plan: TransferPlan,
    ledger: Ledger,
    kind: str,
    chunk: list[dict[str, Any]],
    contact_ids: dict[str, str],
    after_batch: Callable[[int, list[dict[str, Any]]], None] | None,
) -> list[dict[str, Any]]:
    tenant = plan.tenant_id
    payloads = []
    for r in chunk:
        body = dict(plan.payloads[int(r["nexudus_invoice_id"])])
        body["Contact"] = {"ContactID": contact_ids[r["contact_number"]]}
        payloads.append(body)
    attempt_of = ledger.next_attempts(tenant, [int(r["nexudus_invoice_id"]) for r in chunk])
    attempts = [attempt_of[int(r["nexudus_invoice_id"])] for r in chunk]
    key = batch_key(tenant, payloads, attempts)
    ledger.record_attempt_intents(
        tenant, key, [{**r, "attempt": a} for r, a in zip(chunk, attempts, strict=True)]
    )
    ledger.event(
        "xero",
        f"create {kind}s",
        "sending",
        tenant_id=tenant,
        subject=key,
        detail=[r["invoice_number"] for r in chunk],
    )
    try:
        if kind == "credit_note":
            elements = conn.xero.create_credit_notes(payloads, idempotency_key=key)
        else:
            elements = conn.xero.create_invoices(payloads, idempotency_key=key)
    except (AuthError, RateLimited):
        raise
    except ClientError as exc:
        # Whole batch refused or unanswered: Xero may or may not have saved it. Ask, by number.
        ledger.event(
            "xero", f"create {kind}s", "error", tenant_id=tenant, subject=key, detail=str(exc)
        )
        try:
            found = _lookup(conn, [r["invoice_number"] for r in chunk])
        except ClientError as lookup_exc:
            # Cannot tell whether Xero saved them: the intents stay open for the next run to
            # resolve.
            message = (
                f"unknown: Xero did not answer ({exc}) and could not be asked ({lookup_exc}); the "
                "next run resolves it"
            )
            return [outcome_row(r, TransferOutcome.UNKNOWN, messages=[message]) for r in chunk]
        # Xero answered (a refusal it caches under the key, or a 5xx): the next send is a new
        # attempt. No answer at all (a timeout, a dropped connection): the same attempt again.
        answered = not (isinstance(exc, ServiceUnavailable) and exc.status is None)
        out = []
        for r in chunk:
            hit = found.get(r["invoice_number"])
            differences = booked_differences(r, hit["booked"]) if hit else []
            if hit and differences:
                shown, ledger_row = _booked_differently(r, hit["id"], hit["booked"], differences)
                ledger.record_outcomes(tenant, [ledger_row])
                out.append(shown)
            elif hit:
                ledger.record_outcome(
                    tenant,
                    r["nexudus_invoice_id"],
                    TransferOutcome.CREATED,
                    xero_id=hit["id"],
                    xero_total=hit["total"],
                )
                out.append(
                    outcome_row(
                        r, TransferOutcome.CREATED, xero_id=hit["id"], xero_total=hit["total"]
                    )
                )
            else:
                messages = getattr(exc, "messages", None) or [str(exc)]
                ledger.record_outcome(
                    tenant,
                    r["nexudus_invoice_id"],
                    TransferOutcome.FAILED if answered else UNSENT,
                    messages=messages,
                )
                out.append(outcome_row(r, TransferOutcome.FAILED, messages=messages))
        return out
    if after_batch:
        after_batch(len(chunk), elements)
    out = []
    duplicates = []
    recorded = []
    id_key = "CreditNoteID" if kind == "credit_note" else "InvoiceID"
    for r, el in zip(chunk, elements, strict=True):
        messages = [m.get("Message", "") for m in el.get("ValidationErrors") or []]
        saved = el.get("StatusAttributeString") in ("OK", "WARNING") and el.get(id_key)
        differences = booked_differences(r, el) if saved else []
        if saved and differences:
            shown, booked = _booked_differently(r, el[id_key], el, differences)
            recorded.append(booked)
            out.append(shown)
        elif saved:
            total = Decimal(str(el.get("Total", 0)))
            recorded.append(
                {
                    "nexudus_invoice_id": r["nexudus_invoice_id"],
                    "state": TransferOutcome.CREATED,
                    "xero_id": el[id_key],
                    "xero_total": total,
                }
            )
            out.append(
                outcome_row(r, TransferOutcome.CREATED, xero_id=el[id_key], xero_total=total)
            )
        elif any("must be unique" in m for m in messages):
            duplicates.append(r)
        else:
            recorded.append(
                {
                    "nexudus_invoice_id": r["nexudus_invoice_id"],
                    "state": TransferOutcome.FAILED,
                    "messages": messages,
                }
            )
            out.append(outcome_row(r, TransferOutcome.FAILED, messages=messages))
    ledger.record_outcomes(tenant, recorded)
    if duplicates:
        out.extend(_adopt(conn, ledger, tenant, duplicates, contact_ids))
    return out


def _adopt(
    conn: Connection,
    ledger: Ledger,
    tenant: str,
    rows: list[dict[str, Any]],
    contact_ids: dict[str, str],
) -> list[dict[str, Any]]:
    """Xero already has these numbers: the same invoice (contact and total agree) is adopted, else
    it fails."""
    found = _lookup(conn, [r["invoice_number"] for r in rows])
    out = []
    for r in rows:
        hit = found.get(r["invoice_number"])
        if (
            hit is not None
            and hit["total"] == abs(Decimal(r["nexudus_total"]))
            and hit["contact"] == contact_ids.get(r["contact_number"])
        ):
            ledger.record_outcome(
                tenant,
                r["nexudus_invoice_id"],
                TransferOutcome.CREATED,
                xero_id=hit["id"],
                xero_total=hit["total"],
                messages=["adopted: Xero already had this invoice"],
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
                tenant, r["nexudus_invoice_id"], TransferOutcome.FAILED, messages=messages
            )
            out.append(outcome_row(r, TransferOutcome.FAILED, messages=messages))
    return out


def _write_back(conn: Connection, ledger: Ledger, tenant: str) -> None:
    """Store each new Xero id in its Nexudus invoice's SystemId, when the params ask for it.

    Each is a whole-record PUT built from a fresh read and read back (nexudus.md §4).
    """
    if not conn.params.write_back_system_id:
        return  # off by default: the ledger is the record (see RunParams.write_back_system_id)
    rows = ledger.transfers(tenant)
    for rec in records(
        rows[(rows["state"] == TransferOutcome.CREATED) & (rows["written_back"] == 0)]
    ):
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
            continue
        ledger.record_written_back(tenant, int(rec["nexudus_invoice_id"]))
