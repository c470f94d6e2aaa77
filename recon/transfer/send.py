"""The push's sending: contacts, then claimed batches of invoices, sent (several in flight as
Xero's pacing allows) and settled invoice by invoice from Xero's answer.

Keys and attempts (xero-api.md §7: Xero replays a key's first answer, errors
included, for about six minutes): an invoice's key is derived from its batch's
content and, from the second attempt on, the attempt numbers. A send Xero
answered with a refusal makes the next send a new attempt (a new key, so the
resend after a fix is not answered with the cached refusal); a send Xero never
answered (a crash, a timeout) is sent again as the same attempt, under the same
key, so Xero replays rather than duplicates.

The ledger work is done in the caller's thread, in batch order; only the HTTP calls run in the
``Sender``'s threads.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from recon.errors import AuthError, ClientError, RateLimited, ServiceUnavailable
from recon.ledger import Ledger
from recon.money import D
from recon.outcomes import TransferOutcome
from recon.session import Connection
from recon.transfer.lookups import lookup_file, remember_sent
from recon.transfer.plan import TransferPlan
from recon.transfer.recovery import booked_differences, booked_differently, lookup
from recon.transfer.result import NOT_SENT, UNSENT, outcome_row
from recon.values import records

__all__ = [
    "InFlight",
    "RunStopped",
    "Sender",
    "batch_key",
    "claim_batch",
    "create_contacts",
    "settle_in_flight",
]


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


def create_contacts(conn: Connection, plan: TransferPlan, ledger: Ledger) -> dict[str, str]:
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


class RunStopped(Exception):
    """A batch's send met a stop condition (sign-in refused, a rate limit outlasting the retries):
    the outcomes of the batch's rows already settled and the rows that were being sent."""

    def __init__(
        self, cause: ClientError, done: list[dict[str, Any]], sent: list[dict[str, Any]]
    ) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.done = done
        self.sent = sent


@dataclass(frozen=True)
class _Batch:
    """A batch claimed in the ledger and ready to go: its kind, key, rows and Xero payloads."""

    kind: str
    key: str
    sendable: list[dict[str, Any]]
    payloads: list[dict[str, Any]]


@dataclass
class InFlight:
    """A batch sent and not yet settled: the outcomes already known for its chunk, the batch, and
    Xero's answer to come."""

    settled: list[dict[str, Any]]
    batch: _Batch
    answer: Future[list[dict[str, Any]]]


class Sender:
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


def settle_in_flight(
    conn: Connection,
    plan: TransferPlan,
    ledger: Ledger,
    flight: InFlight,
    contact_ids: dict[str, str],
    after_batch: Callable[[int, list[dict[str, Any]]], None] | None,
    stops: list[RunStopped],
) -> list[dict[str, Any]]:
    """The outcomes of a sent batch once Xero answered; a stop condition is added to ``stops``
    (its settled rows returned, its sent rows left for the caller)."""
    try:
        return flight.settled + _settle_batch(
            conn, plan, ledger, flight.batch, flight.answer, contact_ids, after_batch
        )
    except RunStopped as stop:
        stops.append(stop)
        return flight.settled + stop.done


def claim_batch(
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
    ``RunStopped`` for a stop condition, with what it settled."""
    tenant = plan.tenant_id
    kind, key, sendable = batch.kind, batch.key, batch.sendable
    out: list[dict[str, Any]] = []
    try:
        elements = answer.result()
    except (AuthError, RateLimited) as exc:
        raise RunStopped(exc, out, sendable) from exc
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
    created: list[dict[str, Any]] = []  # Xero's records of what this batch created
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
        if booked.get("xero_id"):
            created.append(el)
    changed = ledger.record_outcomes(tenant, recorded, expected="sending")
    # The next plan's number lookup learns these from here, not by paging through them in Xero.
    remember_sent(lookup_file(ledger.path, tenant), tenant, kind, created)
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
        shown, booked = booked_differently(r, str(el[id_key]), el, differences)
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
        found = lookup(conn, [str(r["invoice_number"]) for r in rows])
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
            shown, ledger_row = booked_differently(r, hit["id"], hit["booked"], differences)
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
        found = lookup(conn, [str(r["invoice_number"]) for r in rows])
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
