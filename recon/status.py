"""Status sync (Nexudus' "second transfer"), both ways: every transferred invoice's Xero and
Nexudus state compared, each difference with its action and who acts.

Floor 4. ``sync_status(conn, ledger)`` refreshes the ledger's copy of both sides
with as few calls as the APIs allow (Xero: ``If-Modified-Since`` from the stored
watermark, pages of 1,000, summary objects; Nexudus: the ``UpdatedOn`` range since
its watermark, plus a one-record count that tells whether anything was deleted)
and returns a ``StatusDiff``: one row per difference of a transferred invoice, with
a ``Difference``, its ``action``, its ``actor`` (``recon``: recon does it once
confirmed; ``person``: a decision recon leaves to people) and both sides' figures.

Writes are gated, never automatic: ``apply_paid`` marks paid in Nexudus exactly the
invoices fully paid in Xero with money (never one settled by credit), recording
intent and outcome in the ledger, so a repeat changes nothing. The changes a diff
asks for in Xero (void, allocate a credit note) are ``recon.status_xero``'s, a floor
above, since the allocation is the transfer's writer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from recon.cells import csv_safe
from recon.clients.xero import parse_xero_date
from recon.errors import ApiRejected, AuthError, ClientError, NotFound, RateLimited, StepError
from recon.ledger import Ledger
from recon.money import D
from recon.outcomes import PaymentOutcome, TransferOutcome
from recon.session import Connection
from recon.values import decimal_sum, records

__all__ = [
    "Actor",
    "Difference",
    "StatusDiff",
    "apply_paid",
    "is_credit_settled",
    "sync_status",
    "xero_state_row",
]

ZERO = Decimal("0")


class Actor(StrEnum):
    """Who acts on a difference."""

    RECON = "recon"  # recon writes it, after the same gate as a transfer (button or params flag)
    PERSON = "person"  # a person's decision: recon only reports it


class Difference(StrEnum):
    """Every kind of difference the status sync reports."""

    PAID_IN_XERO = "paid in Xero, unpaid in Nexudus"
    PART_PAID_IN_XERO = "part-paid in Xero"
    CREDITED_IN_XERO = "credited in Xero, not in Nexudus"
    VOIDED_IN_XERO = "voided or deleted in Xero, live in Nexudus"
    PAID_IN_NEXUDUS = "paid in Nexudus, still owing in Xero"
    PART_PAID_IN_NEXUDUS = "part-paid in Nexudus, less paid in Xero"
    VOIDED_IN_NEXUDUS = "voided in Nexudus, live in Xero"
    VOIDED_IN_NEXUDUS_WITH_MONEY = "voided in Nexudus, paid or credited in Xero"
    DELETED_IN_NEXUDUS = "deleted in Nexudus, live in Xero"
    CREDIT_NOTE_IN_NEXUDUS = "credit note raised in Nexudus, not allocated in Xero"
    PAID_TWICE = "paid twice, or paid on both sides with different amounts"
    TOTAL_CHANGED = "total changed in Xero after transfer"
    TOTAL_CHANGED_IN_NEXUDUS = "total changed in Nexudus after transfer"
    MISSING_FROM_XERO = "in the ledger but missing from Xero"
    UNKNOWN_TO_LEDGER = "in Xero (created by recon) but unknown to the ledger"
    AWAITING_APPROVAL = "draft or awaiting approval in Xero"

    @property
    def action(self) -> str:
        """What to do about this difference, in a sentence."""
        return ACTIONS[self]

    @property
    def actor(self) -> Actor:
        """Who acts: recon (once confirmed) or a person."""
        return Actor.RECON if self in RECON_ACTS else Actor.PERSON


ACTIONS = {
    Difference.PAID_IN_XERO: (
        "Mark paid in Nexudus with Xero's payment date (recon does this on apply)."
    ),
    Difference.PART_PAID_IN_XERO: (
        "Record the part payment in Nexudus by hand; recon marks only fully paid invoices."
    ),
    Difference.CREDITED_IN_XERO: (
        "Settled or reduced by a credit note in Xero: raise the matching credit note in Nexudus "
        "(cancel the invoice). recon never marks a credited invoice paid with a payment."
    ),
    Difference.VOIDED_IN_XERO: (
        "Void the invoice or issue a credit note in Nexudus, or reinstate it in Xero."
    ),
    Difference.PAID_IN_NEXUDUS: "Record the payment in Xero (it was taken in Nexudus).",
    Difference.PART_PAID_IN_NEXUDUS: (
        "Record in Xero the part payment Nexudus took (Nexudus shows more paid than Xero)."
    ),
    Difference.VOIDED_IN_NEXUDUS: (
        "Void in Xero (recon does this once confirmed: apply_xero_changes / the Void button)."
    ),
    Difference.VOIDED_IN_NEXUDUS_WITH_MONEY: (
        "Decide: Xero holds a payment or credit on it, so it cannot be voided there as it is. "
        "Refund or remove the payment in Xero and then void it, or reinstate it in Nexudus."
    ),
    Difference.DELETED_IN_NEXUDUS: (
        "Decide: billed in error (void it in Xero: recon offers it once confirmed, if Xero holds "
        "no payment) or deleted by mistake (raise it again in Nexudus)."
    ),
    Difference.CREDIT_NOTE_IN_NEXUDUS: (
        "Credit in Xero: transfer the Nexudus credit note (transfer step), then allocate it to "
        "this invoice (recon does this once confirmed: apply_xero_changes / the button)."
    ),
    Difference.PAID_TWICE: (
        "Decide: compare the payments and credits on both sides; refund, reverse or reallocate. "
        "recon changes nothing."
    ),
    Difference.TOTAL_CHANGED: (
        "Someone edited the invoice in Xero: align Nexudus or undo the edit in Xero."
    ),
    Difference.TOTAL_CHANGED_IN_NEXUDUS: (
        "Decide: the invoice was re-totalled in Nexudus after transfer. Credit or void it in Xero "
        "and transfer the new version, or undo the change in Nexudus."
    ),
    Difference.MISSING_FROM_XERO: (
        "Find out what happened to it in Xero; the ledger still holds its Xero id."
    ),
    Difference.UNKNOWN_TO_LEDGER: (
        "Run the transfer again: its recovery step adopts the invoice into the ledger."
    ),
    Difference.AWAITING_APPROVAL: "Approve it in Xero; it cannot be paid until it is AUTHORISED.",
}
# What recon itself writes, each behind its gate: mark paid (apply_paid), void and credit in Xero
# (apply_xero_changes), adopt into the ledger (the transfer's recovery step).
RECON_ACTS = frozenset(
    {
        Difference.PAID_IN_XERO,
        Difference.VOIDED_IN_NEXUDUS,
        Difference.CREDIT_NOTE_IN_NEXUDUS,
        Difference.UNKNOWN_TO_LEDGER,
    }
)
# Nexudus' figures beside Xero's: status, total, paid, credited, due.
DIFF_COLUMNS = [
    "difference",
    "actor",
    "invoice_number",
    "nexudus_invoice_id",
    "xero_id",
    "currency",
    "nexudus_status",
    "xero_status",
    "nexudus_total",
    "xero_total",
    "nexudus_paid_amount",
    "xero_amount_paid",
    "nexudus_credited",
    "xero_amount_credited",
    "nexudus_due",
    "xero_amount_due",
    "nexudus_paid",
    "xero_paid_on",
    "nexudus_total_at_transfer",
    "transferred_total",
    "action",
]
# The watermark is the newest UpdatedDateUTC seen, sent with milliseconds; Xero returns what changed
# after it. Nexudus stamps to the second and its from_ filter is inclusive, so its last second is
# read again (harmless).
WATERMARK_OVERLAP = timedelta(0)
# What the status sync finds in Nexudus and keeps in the ledger's audit trail (system "nexudus"):
# a credit note linked to the invoice it credits (subject: the credit note's id), an invoice
# confirmed deleted by a GET answering 404 (subject: its id).
CREDIT_NOTE_FOUND = "credit note found"
DELETED_FOUND = "deleted found"
XERO_LIVE = ("AUTHORISED", "DRAFT", "SUBMITTED", "PAID")
XERO_GONE = ("VOIDED", "DELETED")


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

    def of(self, *kinds: Difference) -> pd.DataFrame:
        """The differences of the given kinds."""
        return self.differences[self.differences["difference"].isin([k.value for k in kinds])]

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
        csv_safe(self.differences).to_csv(path, index=False)
        return path

    def __str__(self) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in self.counts().items()) or "no differences"
        return (
            f"Status sync: {counts} ({self.calls.get('xero', 0)} Xero calls, "
            f"{self.calls.get('nexudus', 0)} Nexudus calls)"
        )

    def __repr__(self) -> str:
        return f"<StatusDiff {len(self.differences)} differences>"

    def _repr_html_(self) -> str:
        from recon.display import status_diff_html

        return status_diff_html(self)


def xero_state_row(inv: dict[str, Any], *, kind: str, created_by_recon: bool) -> dict[str, Any]:
    """One row of the ledger's copy of Xero (``Ledger.update_xero_state``) from an invoice, or a
    credit note (``kind="credit_note"``), as Xero answers it."""
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
        [
            xero_state_row(i, kind="invoice", created_by_recon=i["InvoiceID"] in mine)
            for i in changed
        ],
        complete=since is None,
    )
    stamps = [parse_xero_date(i.get("UpdatedDateUTC")) for i in changed]
    newest = max((s for s in stamps if s is not None), default=None)
    if newest is not None and (mark is None or newest > mark):
        ledger.set_watermark(tenant, "xero_invoices", newest)
    return {"full": since is None, "changed": len(changed), "watermark": newest or mark}


# ---- Nexudus' side: the ledger's copy, kept current with what changed ----------------------------
def refresh_nexudus_state(
    conn: Connection, ledger: Ledger, transferred_ids: set[int], *, full: bool = False
) -> dict[str, Any]:
    """Bring the ledger's copy of this location's Nexudus invoices up to date; returns what it
    read.

    Incremental (a watermark exists): the invoices whose ``UpdatedOn`` is at or
    after it (§3 range filter), then the location's invoice count (one record,
    ``TotalItems``). Only when that count differs from the invoices the ledger
    knows (something was deleted), or a new credit note names an original the
    read did not include, is the whole location read again (1,000 a page). From a
    whole read, transferred invoices no longer listed are asked for by id, and only
    a 404 counts as deleted (§4 "Not found"). Credit notes (``CreditNote``) are
    linked to the invoice whose ``UniqueId`` is their ``OriginalInvoiceGuid`` (§7.1).
    """
    tenant = str(conn.xero.tenant_id)
    business_id = int(conn.business["Id"])
    # One watermark per location: locations that share an organisation are read separately.
    kind = f"nexudus_invoices:{business_id}"
    mark = None if full else ledger.watermark(tenant, kind)
    since = mark - WATERMARK_OVERLAP if mark else None
    changed = conn.nexudus.fetch_invoices(business_id=business_id, updated_since=since)
    if len(changed):
        ledger.update_nexudus_state(tenant, changed)
    linked = _ids(ledger.event_states(tenant, "nexudus", CREDIT_NOTE_FOUND)["subject"])
    whole = changed if since is None else None
    if whole is None and (
        _unresolved_credit_notes(changed, linked)
        or _count_differs(conn, ledger, tenant, business_id)
    ):
        whole = conn.nexudus.fetch_invoices(business_id=business_id)
        if len(whole):
            ledger.update_nexudus_state(tenant, whole)
    found = _link_credit_notes(
        ledger, tenant, changed if whole is None else whole, linked, final=whole is not None
    )
    deleted = (
        _confirm_deleted(conn, ledger, tenant, business_id, whole, transferred_ids)
        if whole is not None
        else 0
    )
    stamps = pd.concat([changed["UpdatedOn"], whole["UpdatedOn"] if whole is not None else None])
    newest = pd.to_datetime(stamps, utc=True).max() if len(stamps) else pd.NaT
    if not pd.isna(newest) and (mark is None or newest.to_pydatetime() > mark):
        ledger.set_watermark(tenant, kind, newest.to_pydatetime())
    return {
        "full": since is None,
        "changed": len(changed),
        "whole_read": whole is not None,
        "credit_notes_found": found,
        "deleted_found": deleted,
    }


def _or_zero(values: pd.Series) -> pd.Series:
    """Money with blanks as zero (Decimal cells kept)."""
    return values.astype(object).fillna(cast(Any, ZERO))


def _ids(values: pd.Series) -> set[int]:
    return {int(v) for v in values.dropna()}


def _credit_notes(frame: pd.DataFrame) -> pd.DataFrame:
    """The credit notes in a read of invoices that name the invoice they credit."""
    guid = frame["OriginalInvoiceGuid"].fillna("").astype(str)
    return frame[frame["CreditNote"].fillna(False).astype(bool) & (guid != "")]


def _unresolved_credit_notes(changed: pd.DataFrame, linked: set[int]) -> bool:
    """Whether a credit note not linked yet names an original missing from this read."""
    notes = _credit_notes(changed)
    notes = notes[~notes["Id"].isin(linked)]
    return bool((~notes["OriginalInvoiceGuid"].isin(set(changed["UniqueId"].dropna()))).any())


def _count_differs(conn: Connection, ledger: Ledger, tenant: str, business_id: int) -> bool:
    """Whether Nexudus counts another number of this location's invoices than the ledger knows
    (not counting those found deleted)."""
    remote = conn.nexudus.count_invoices(business_id)
    if remote is None:
        return False
    state = ledger.nexudus_state(tenant)
    known = state[state["business_id"] == business_id]["nexudus_invoice_id"]
    deleted = _ids(ledger.event_states(tenant, "nexudus", DELETED_FOUND)["subject"])
    return int((~known.isin(deleted)).sum()) != remote


def _link_credit_notes(
    ledger: Ledger, tenant: str, read: pd.DataFrame, linked: set[int], *, final: bool
) -> int:
    """Record each new credit note in ``read`` against the invoice it credits; returns how many
    were linked. ``final`` (``read`` is the whole location): one whose original is not among them
    (another location's invoice, say) is recorded without one, so it is not looked for again."""
    notes = _credit_notes(read)
    notes = notes[~notes["Id"].isin(linked)]
    by_guid = read.drop_duplicates("UniqueId").set_index("UniqueId")["Id"]
    originals = notes["OriginalInvoiceGuid"].map(by_guid)
    found = notes.assign(original_id=originals)
    if not final:
        found = found[originals.notna()]
    for note in records(found[["Id", "InvoiceNumber", "original_id"]]):
        original = note["original_id"]
        ledger.event(
            "nexudus",
            CREDIT_NOTE_FOUND,
            "linked" if not pd.isna(original) else "original not in this location",
            tenant_id=tenant,
            subject=str(int(note["Id"])),
            detail={
                "original_id": None if pd.isna(original) else int(original),
                "credit_note_number": str(note["InvoiceNumber"]),
            },
        )
    return int(originals.notna().sum())


def _confirm_deleted(
    conn: Connection,
    ledger: Ledger,
    tenant: str,
    business_id: int,
    whole: pd.DataFrame,
    transferred_ids: set[int],
) -> int:
    """Invoices the ledger knows that a whole read no longer lists: transferred ones confirmed by a
    GET answering 404, the others forgotten. Returns how many transferred ones were deleted."""
    state = ledger.nexudus_state(tenant)
    known = state[state["business_id"] == business_id]["nexudus_invoice_id"]
    missing = known[~known.isin(set(whole["Id"]))]
    already = _ids(ledger.event_states(tenant, "nexudus", DELETED_FOUND)["subject"])
    candidates = missing[missing.isin(transferred_ids) & ~missing.isin(already)]
    ledger.forget_nexudus_state(tenant, missing[~missing.isin(transferred_ids)])
    deleted = 0
    for invoice_id in candidates.astype(int):
        try:
            current = conn.nexudus.get_invoice(int(invoice_id))
        except NotFound:
            ledger.event(
                "nexudus",
                DELETED_FOUND,
                "not found",
                tenant_id=tenant,
                subject=str(int(invoice_id)),
                detail={"confirmed_by": "GET billing/coworkerinvoices/{id} answered 404"},
            )
            deleted += 1
        except ClientError:
            continue  # undecided: the count still differs, so the next sync looks again
        else:
            # Listed no more, yet there: moved to another location, say. Keep it as it now is.
            ledger.update_nexudus_state(tenant, pd.DataFrame([current]))
    return deleted


def _nexudus_side(
    ledger: Ledger, tenant: str, business_id: int, transfers: pd.DataFrame
) -> pd.DataFrame:
    """Nexudus' side of every transferred invoice of this location, from the ledger's copy."""
    state = ledger.nexudus_state(tenant)
    links = ledger.event_states(tenant, "nexudus", CREDIT_NOTE_FOUND)
    deleted = _ids(ledger.event_states(tenant, "nexudus", DELETED_FOUND)["subject"])
    credited = pd.Series(dtype=object)
    if len(links):
        notes = pd.DataFrame(
            {
                "note_id": links["subject"].astype(int).to_numpy(),
                "original_id": pd.DataFrame(list(links["detail"]))["original_id"].to_numpy(),
            }
        ).dropna(subset=["original_id"])
        notes = notes.astype({"original_id": "int64"}).merge(
            state[["nexudus_invoice_id", "total", "void"]],
            left_on="note_id",
            right_on="nexudus_invoice_id",
        )
        notes = notes[notes["void"].fillna(0).astype(int) == 0]
        amounts = notes.assign(amount=notes["total"].abs()).groupby("original_id")["amount"]
        credited = amounts.agg(decimal_sum)
    mine = state[
        state["nexudus_invoice_id"].isin(set(transfers["nexudus_invoice_id"]))
        & (state["business_id"] == business_id)
    ]
    return pd.DataFrame(
        {
            "nexudus_invoice_id": mine["nexudus_invoice_id"],
            "nexudus_total": mine["total"],
            "nexudus_paid": mine["paid"].astype(bool),
            "nexudus_paid_amount": mine["paid_amount"].pipe(_or_zero),
            "nexudus_void": mine["void"].astype(bool),
            "nexudus_deleted": mine["nexudus_invoice_id"].isin(deleted),
            "nexudus_credited": mine["nexudus_invoice_id"].map(credited).pipe(_or_zero),
            "nexudus_due_date": mine["due_date"],
        }
    )


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
    nexudus_read: dict[str, Any] = {}
    if len(transfers):
        nexudus_read = refresh_nexudus_state(
            conn, ledger, _ids(transfers["nexudus_invoice_id"]), full=full
        )
    nexudus = _nexudus_side(ledger, tenant, int(conn.business["Id"]), transfers)
    frame = transfers[
        [
            "nexudus_invoice_id",
            "invoice_number",
            "xero_id",
            "currency",
            "xero_total",
            "nexudus_total",
        ]
    ].rename(
        columns={"xero_total": "transferred_total", "nexudus_total": "nexudus_total_at_transfer"}
    )
    frame = frame.merge(
        state[
            [
                "xero_id",
                "status",
                "total",
                "amount_due",
                "amount_paid",
                "amount_credited",
                "fully_paid_on",
                "kind",
            ]
        ].rename(
            columns={
                "status": "xero_status",
                "total": "xero_total",
                "amount_due": "xero_amount_due",
                "amount_paid": "xero_amount_paid",
                "amount_credited": "xero_amount_credited",
                "fully_paid_on": "xero_paid_on",
            }
        ),
        on="xero_id",
        how="left",
        indicator=True,
    )
    # Only this location's invoices: another location may book into the same organisation.
    frame = _with_figures(frame.merge(nexudus, on="nexudus_invoice_id", how="inner"))
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
        "nexudus_changed": nexudus_read.get("changed", 0),
        "nexudus_whole_read": nexudus_read.get("whole_read", False),
        "full": read["full"],
    }
    return StatusDiff(
        differences, unpaid.reset_index(drop=True), calls, time.monotonic() - started, context
    )


def _with_figures(frame: pd.DataFrame) -> pd.DataFrame:
    """Both sides' money with blanks as zero, Nexudus' due amount and status in words."""
    money = [
        "xero_amount_paid",
        "xero_amount_due",
        "xero_amount_credited",
        "nexudus_paid_amount",
        "nexudus_credited",
    ]
    frame = frame.assign(**{c: frame[c].pipe(_or_zero) for c in money})
    total = frame["nexudus_total"].pipe(_or_zero)
    due = total - frame["nexudus_paid_amount"] - frame["nexudus_credited"]
    # As Nexudus' own DueAmount: never below zero, nothing due on a void or deleted invoice.
    frame["nexudus_due"] = due.where(
        (due > 0) & ~frame["nexudus_void"] & ~frame["nexudus_deleted"], ZERO
    )
    frame["nexudus_status"] = np.select(
        [
            frame["nexudus_deleted"],
            frame["nexudus_void"],
            (frame["nexudus_paid_amount"] > 0) & (frame["nexudus_credited"] > 0),
            (frame["nexudus_credited"] > 0) & (frame["nexudus_credited"] >= total),
            frame["nexudus_paid"],
            frame["nexudus_paid_amount"] > 0,
            frame["nexudus_credited"] > 0,
        ],
        ["deleted", "void", "paid and credited", "credited", "paid", "part-paid", "part-credited"],
        "unpaid",
    )
    return frame


def is_credit_settled(frame: pd.DataFrame) -> pd.Series:
    """Which Xero invoices are settled by credit, not money: AmountCredited covers the total, or
    PAID with AmountPaid 0 and AmountCredited above 0."""
    credited = frame["xero_amount_credited"].pipe(_or_zero)
    paid = frame["xero_amount_paid"].pipe(_or_zero)
    total = frame["xero_total"].pipe(_or_zero)
    status = frame["xero_status"].fillna("")
    return (credited > 0) & ((credited >= total) | ((status == "PAID") & (paid == 0)))


def _differences(
    frame: pd.DataFrame, state: pd.DataFrame, transfers: pd.DataFrame, *, full: bool
) -> pd.DataFrame:
    found = frame["_merge"] == "both"
    status = frame["xero_status"].fillna("")
    x_live, x_gone = found & status.isin(XERO_LIVE), found & status.isin(XERO_GONE)
    authorised, x_paid_status = status == "AUTHORISED", status == "PAID"
    paid, due = frame["xero_amount_paid"], frame["xero_amount_due"]
    x_credited = frame["xero_amount_credited"]
    n_paid, n_void, n_deleted = (
        frame["nexudus_paid"],
        frame["nexudus_void"],
        frame["nexudus_deleted"],
    )
    n_paid_amount, n_credited = frame["nexudus_paid_amount"], frame["nexudus_credited"]
    n_total = frame["nexudus_total"].pipe(_or_zero)
    n_live = ~n_void & ~n_deleted
    x_money = (paid > 0) | (x_credited > 0)
    credit_to_allocate = n_credited - x_credited
    masks = {
        Difference.PAID_IN_XERO: found
        & x_paid_status
        & (paid > 0)
        & (x_credited == 0)
        & ~n_paid
        & n_live
        & (n_credited == 0),
        Difference.PART_PAID_IN_XERO: found
        & authorised
        & (paid > 0)
        & (due > 0)
        & (n_paid_amount < paid)
        & n_live,
        Difference.CREDITED_IN_XERO: x_live & (x_credited > n_credited) & n_live,
        Difference.VOIDED_IN_XERO: x_gone & n_live,
        Difference.PAID_IN_NEXUDUS: found
        & authorised
        & (due > 0)
        & n_paid
        & (n_paid_amount > 0)
        & (n_credited == 0)
        & n_live,
        Difference.PART_PAID_IN_NEXUDUS: found
        & authorised
        & ~n_paid
        & (n_paid_amount > 0)
        & (n_paid_amount > paid)
        & n_live,
        Difference.VOIDED_IN_NEXUDUS: x_live & n_void & ~n_deleted & ~x_money,
        Difference.VOIDED_IN_NEXUDUS_WITH_MONEY: x_live & n_void & ~n_deleted & x_money,
        Difference.DELETED_IN_NEXUDUS: x_live & n_deleted,
        Difference.CREDIT_NOTE_IN_NEXUDUS: found
        & authorised
        & n_live
        & (credit_to_allocate > 0)
        & (credit_to_allocate <= due)
        & (n_paid_amount + n_credited <= n_total),
        Difference.PAID_TWICE: x_live
        & ~n_deleted
        & (
            (n_paid_amount > n_total)
            | (n_paid & x_paid_status & (x_credited == 0) & (n_paid_amount != paid))
            | ((n_paid_amount > 0) & (n_credited > 0) & (n_paid_amount + n_credited > n_total))
            | ((credit_to_allocate > 0) & (x_paid_status | (credit_to_allocate > due)))
        ),
        Difference.TOTAL_CHANGED: found
        & frame["transferred_total"].notna()
        & frame["xero_total"].notna()
        & (frame["transferred_total"] != frame["xero_total"])
        & ~x_gone,
        Difference.TOTAL_CHANGED_IN_NEXUDUS: n_live
        & frame["nexudus_total_at_transfer"].notna()
        & frame["nexudus_total"].notna()
        & (frame["nexudus_total_at_transfer"] != frame["nexudus_total"]),
        Difference.AWAITING_APPROVAL: found & status.isin(["DRAFT", "SUBMITTED"]),
    }
    if full:
        # Only a full read can tell that something the ledger knows is gone from Xero.
        masks[Difference.MISSING_FROM_XERO] = ~found
    parts = [
        frame[mask].assign(difference=kind.value, action=kind.action, actor=kind.actor.value)
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
                    "xero_amount_paid": unknown["amount_paid"],
                    "xero_amount_due": unknown["amount_due"],
                    "xero_amount_credited": unknown["amount_credited"],
                    "difference": Difference.UNKNOWN_TO_LEDGER.value,
                    "action": Difference.UNKNOWN_TO_LEDGER.action,
                    "actor": Difference.UNKNOWN_TO_LEDGER.actor.value,
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
    for i, rec in enumerate(records(todo)):
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
