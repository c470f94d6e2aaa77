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

from recon.errors import AuthError, ClientError, RateLimited
from recon.ledger import Ledger
from recon.outcomes import TransferOutcome, counts_text
from recon.session import Connection
from recon.transfer.plan import TransferPlan, calls_needed, day_calls_left, fit_budget
from recon.troubleshooting import explain_all
from recon.values import records

__all__ = ["BUDGET_RESERVE", "TransferResult", "batch_key", "push", "recover"]

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


def batch_key(tenant_id: str, payloads: list[dict[str, Any]]) -> str:
    """An Idempotency-Key from the batch's content: the same batch always gets the same key."""
    body = json.dumps([tenant_id, payloads], sort_keys=True, default=str, separators=(",", ":"))
    return "recon-" + hashlib.sha256(body.encode()).hexdigest()[:58]


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
    """Resolve intents a crash left behind: found in Xero -> created; not found -> cleared for a
    resend."""
    tenant = str(conn.xero.tenant_id)
    pending = ledger.unfinished(tenant)
    if pending.empty:
        return pd.DataFrame(columns=["invoice_number", "resolution", "xero_id"])
    found = _lookup(conn, list(pending["invoice_number"]))
    rows = []
    for rec in records(pending):
        hit = found.get(rec["invoice_number"])
        if hit is not None:
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
            ledger.record_outcome(
                tenant,
                rec["nexudus_invoice_id"],
                TransferOutcome.FAILED,
                messages=["interrupted before Xero saved it; resent"],
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
    """Invoice and credit-note numbers -> their Xero id and total (batched)."""
    out: dict[str, dict[str, Any]] = {}
    for inv in conn.xero.iter_invoices(invoice_numbers=numbers, summary_only=True):
        if inv.get("Status") not in ("DELETED",):
            out[str(inv["InvoiceNumber"])] = {
                "id": inv["InvoiceID"],
                "total": Decimal(str(inv.get("Total", 0))),
                "contact": (inv.get("Contact") or {}).get("ContactID"),
            }
    missing = [n for n in numbers if n not in out]
    if missing and hasattr(conn.xero, "iter_credit_notes"):
        for note in conn.xero.iter_credit_notes(numbers=missing):
            if note.get("Status") not in ("DELETED",):
                out[str(note["CreditNoteNumber"])] = {
                    "id": note["CreditNoteID"],
                    "total": Decimal(str(note.get("Total", 0))),
                    "contact": (note.get("Contact") or {}).get("ContactID"),
                }
    return out


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
                stop_reason = f"not sent: {exc}"
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
    key = batch_key(tenant, payloads)
    ledger.record_intents(tenant, key, [{**r, "nexudus_total": r["nexudus_total"]} for r in chunk])
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
        out = []
        for r in chunk:
            hit = found.get(r["invoice_number"])
            if hit:
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
                    tenant, r["nexudus_invoice_id"], TransferOutcome.FAILED, messages=messages
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
        if el.get("StatusAttributeString") in ("OK", "WARNING") and el.get(id_key):
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
