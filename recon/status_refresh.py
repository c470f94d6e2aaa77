"""The ledger's copy of both sides, kept current with what changed: the reads of the status sync.

Floor 3: the connection's clients and the ledger. Xero: ``If-Modified-Since`` from the
stored watermark, pages of 1,000, summary objects. Nexudus: the ``UpdatedOn`` range since
its watermark (nexudus.md §3), plus a one-record count that tells whether anything was
deleted; credit notes linked to the invoices they credit (§7.1), deletions confirmed by a
404 (§4).

Then which invoices the diff must look at (``sync_scope``): after a first or whole sync, all;
otherwise only those the last sync of the location listed and those the ledger's journal says
were written since (``Ledger.touched_since``), so a sync costs what changed, not the ledger's
size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import numpy as np
import pandas as pd

from recon.clients.xero import xero_day_texts, xero_time_texts
from recon.errors import ClientError, NotFound
from recon.ledger import Ledger
from recon.progress import progress
from recon.session import Connection
from recon.values import decimal_sum, records

__all__ = [
    "CREDIT_NOTE_FOUND",
    "DELETED_FOUND",
    "WATERMARK_OVERLAP",
    "SyncScope",
    "ids_of",
    "nexudus_side",
    "refresh_nexudus_state",
    "refresh_xero_state",
    "sync_scope",
    "written_or_read",
    "xero_state_rows",
]

ZERO = Decimal("0")
# The watermark is the newest UpdatedDateUTC seen, sent with milliseconds; Xero returns what changed
# after it. Nexudus stamps to the second and its from_ filter is inclusive, so its last second is
# read again (harmless).
WATERMARK_OVERLAP = timedelta(0)
# What the status sync finds in Nexudus and keeps in the ledger's audit trail (system "nexudus"):
# a credit note linked to the invoice it credits (subject: the credit note's id), an invoice
# confirmed deleted by a GET answering 404 (subject: its id).
CREDIT_NOTE_FOUND = "credit note found"
DELETED_FOUND = "deleted found"


def xero_state_rows(
    documents: Sequence[Mapping[str, Any]],
    *,
    kind: str,
    mine: AbstractSet[str] | None = None,
) -> pd.DataFrame:
    """The ledger's copy of Xero (``Ledger.update_xero_state``) of invoices, or credit notes
    (``kind="credit_note"``), as Xero answers them; ``created_by_recon`` for those whose id is in
    ``mine`` (None: all, as for a record recon has just written). A column at a time, each
    distinct amount and date read once; an amount that is not a number raises
    ``decimal.InvalidOperation``."""
    id_key, number_key = (
        ("CreditNoteID", "CreditNoteNumber")
        if kind == "credit_note"
        else ("InvoiceID", "InvoiceNumber")
    )
    ids = [d[id_key] for d in documents]
    paid_on = xero_day_texts([d.get("FullyPaidOnDate") for d in documents])
    updated = xero_time_texts([d.get("UpdatedDateUTC") for d in documents])
    columns = {
        "xero_id": ids,
        "number": [d.get(number_key) for d in documents],
        "kind": [kind] * len(ids),
        "status": [d.get("Status") for d in documents],
        **{
            name: _amount_texts([d.get(key) for d in documents])
            for name, key in (
                ("total", "Total"),
                ("amount_due", "AmountDue"),
                ("amount_paid", "AmountPaid"),
                ("amount_credited", "AmountCredited"),
            )
        },
        "fully_paid_on": paid_on,
        "updated_utc": updated,
        "created_by_recon": [True] * len(ids) if mine is None else [i in mine for i in ids],
    }
    return pd.DataFrame(columns, dtype=object)


def _amount_texts(values: list[Any]) -> list[str | None]:
    """Amounts as the ledger keeps them (a Decimal's text), blanks None; each distinct text read
    once."""
    texts = [None if v is None else str(v) for v in values]
    read = {t: str(Decimal(t)) for t in set(texts) if t is not None}
    return [None if t is None else read[t] for t in texts]


def refresh_xero_state(conn: Connection, ledger: Ledger, *, full: bool = False) -> dict[str, Any]:
    """Bring the ledger's copy of Xero up to date; returns what it read.

    Incremental (a watermark exists): invoices changed since it, and of those the
    ones this app created: typically two calls. Full (first run, or ``full``):
    every invoice and every one this app created, 1,000 a page.
    """
    tenant = str(conn.xero.tenant_id)
    mark = None if full else ledger.watermark(tenant, "xero_invoices")
    since = mark - WATERMARK_OVERLAP if mark else None
    changed = list(
        progress(
            conn.xero.iter_invoices(modified_since=since, summary_only=True),
            desc="Xero invoices changed",
            unit="invoice",
        )
    )
    mine = {
        inv["InvoiceID"]
        for inv in conn.xero.iter_invoices(
            modified_since=since, summary_only=True, created_by_my_app=True
        )
    }
    rows = xero_state_rows(changed, kind="invoice", mine=mine)
    ledger.update_xero_state(tenant, rows, complete=since is None)
    stamps = pd.to_datetime(rows["updated_utc"].dropna(), utc=True, format="ISO8601")
    newest = stamps.max().to_pydatetime() if len(stamps) else None
    if newest is not None and (mark is None or newest > mark):
        ledger.set_watermark(tenant, "xero_invoices", newest)
    return {
        "full": since is None,
        "changed": len(changed),
        "watermark": newest or mark,
        "written": rows,
    }


# ---- Nexudus' side: the ledger's copy, kept current with what changed ----------------------------
def refresh_nexudus_state(
    conn: Connection,
    ledger: Ledger,
    transferred_ids: set[int] | None = None,
    *,
    full: bool = False,
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
    ``transferred_ids``: the invoices the organisation's transfers created (read from the
    ledger when needed if not given).
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
    linked = ids_of(ledger.event_states(tenant, "nexudus", CREDIT_NOTE_FOUND)["subject"])
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
        _confirm_deleted(
            conn,
            ledger,
            tenant,
            business_id,
            whole,
            ledger.transferred_ids(tenant, "invoice")
            if transferred_ids is None
            else transferred_ids,
        )
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
        # What the ledger's copy now holds as read here; a whole read also wrote other rows.
        "written": changed if whole is None else None,
        "whole_read": whole is not None,
        "credit_notes_found": found,
        "deleted_found": deleted,
    }


def _or_zero(values: pd.Series) -> pd.Series:
    """Money with blanks as zero (Decimal cells kept)."""
    return values.astype(object).fillna(cast(Any, ZERO))


def ids_of(values: pd.Series) -> set[int]:
    """The ids in a column, as ints, blanks left out."""
    return set(values.dropna().astype("int64").tolist())


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
    deleted = ids_of(ledger.event_states(tenant, "nexudus", DELETED_FOUND)["subject"])
    return ledger.count_nexudus_state(tenant, business_id, excluding=deleted) != remote


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
    already = ids_of(ledger.event_states(tenant, "nexudus", DELETED_FOUND)["subject"])
    candidates = missing[missing.isin(transferred_ids) & ~missing.isin(already)]
    ledger.forget_nexudus_state(tenant, missing[~missing.isin(transferred_ids)])
    deleted = 0
    for invoice_id in progress(
        candidates.astype(int), total=len(candidates), desc="Nexudus deletions", unit="invoice"
    ):
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


def nexudus_side(
    ledger: Ledger,
    tenant: str,
    business_id: int,
    transfers: pd.DataFrame,
    *,
    units: int | None = None,
    written: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Nexudus' side of every transferred invoice of this location, from the ledger's copy.

    ``units`` (a power of ten): also ``<money>_units`` (int64) and ``<money>_known`` beside
    ``nexudus_total``, ``nexudus_paid_amount`` and ``nexudus_credited``. ``written``: Nexudus
    invoices this sync has just given to ``Ledger.update_nexudus_state``, taken as that wrote
    them rather than read back.
    """
    wanted = ids_of(transfers["nexudus_invoice_id"])
    state = written_or_read(
        None
        if written is None
        else ledger.nexudus_state_written(tenant, written[written["Id"].isin(wanted)], units=units),
        "nexudus_invoice_id",
        wanted,
        lambda rest: ledger.nexudus_state(tenant, nexudus_invoice_ids=rest, units=units),
    )
    links = ledger.event_states(tenant, "nexudus", CREDIT_NOTE_FOUND)
    deleted = ids_of(ledger.event_states(tenant, "nexudus", DELETED_FOUND)["subject"])
    credited = pd.Series(dtype=object)
    credited_units = pd.Series(dtype="int64")
    if len(links):
        notes = pd.DataFrame(
            {
                "note_id": links["subject"].astype(int).to_numpy(),
                "original_id": pd.DataFrame(list(links["detail"]))["original_id"].to_numpy(),
            }
        ).dropna(subset=["original_id"])
        notes = notes.astype({"original_id": "int64"})
        notes = notes[notes["original_id"].isin(wanted)]
        note_state = ledger.nexudus_state(
            tenant, nexudus_invoice_ids=ids_of(notes["note_id"]), units=units
        )
        money = ["total_units"] if units is not None else []
        notes = notes.merge(
            note_state[["nexudus_invoice_id", "total", "void", *money]],
            left_on="note_id",
            right_on="nexudus_invoice_id",
        )
        notes = notes[notes["void"].fillna(0).astype(int) == 0]
        amounts = notes.assign(amount=notes["total"].abs()).groupby("original_id")["amount"]
        credited = amounts.agg(decimal_sum)
        if units is not None:
            credited_units = notes["total_units"].abs().groupby(notes["original_id"]).sum()
    mine = state[state["nexudus_invoice_id"].isin(wanted) & (state["business_id"] == business_id)]
    side = pd.DataFrame(
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
    if units is None:
        return side
    known = np.ones(len(mine), dtype=bool)  # blanks count as zero, as in the Decimal columns
    return side.assign(
        nexudus_total_units=mine["total_units"].to_numpy(dtype=np.int64),
        nexudus_total_known=mine["total_known"].to_numpy(dtype=bool),
        nexudus_paid_amount_units=mine["paid_amount_units"].to_numpy(dtype=np.int64),
        nexudus_paid_amount_known=known,
        nexudus_credited_units=mine["nexudus_invoice_id"]
        .map(credited_units)
        .fillna(0)
        .to_numpy(dtype=np.int64),
        nexudus_credited_known=known,
    )


def written_or_read(
    written: pd.DataFrame | None,
    key: str,
    wanted: AbstractSet[Any],
    read: Callable[[AbstractSet[Any]], pd.DataFrame],
) -> pd.DataFrame:
    """The ledger's rows whose ``key`` is ``wanted``: those of ``written`` (rows this sync has
    just written, as the ledger reads them back), and the rest as ``read`` gives them.

    A sync reads back mostly what its refresh has just written (the changed invoices); each
    row read by key from a ledger of a million costs more than the diff of it."""
    if written is None or not len(written):
        return read(wanted)
    rest = read(set(wanted) - set(written[key]))
    return pd.concat([written, rest], ignore_index=True) if len(rest) else written


# ---- which invoices a sync diffs -----------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SyncScope:
    """Which invoices a status sync of a location diffs, and where its reading of the ledger's
    journal stops (``touched_id``, ``event_id``: ``Ledger.last_change_ids``).

    ``whole``: every transferred invoice and every Xero record. Otherwise
    ``nexudus_invoice_ids``: every invoice whose transfer row, Xero or Nexudus copy, deletion
    or credit note was written since the last sync, read again from the ledger, but for
    ``refreshed``: the rows the last sync kept (``Ledger.kept_status_rows``) of invoices it
    listed of which only the Xero record was written since, compared again with Xero's side
    read again; ``kept``: its rows of the other invoices it listed, compared again as they
    are; ``xero_ids``: the Xero records it reported unknown to the
    ledger plus every one written since (with the transfer rows that name them); ``members``:
    the stored row (listed or not) of each invoice of both, as the last sync left it; ``named``:
    the transfer rows naming ``xero_ids`` (``Ledger.transfer_keys``). Every other invoice is as
    the last sync found it: no difference, nothing owing.
    """

    whole: bool
    touched_id: int
    event_id: int
    nexudus_invoice_ids: frozenset[int] = frozenset()
    xero_ids: frozenset[str] = frozenset()
    members: dict[int, bool] | None = None
    kept: pd.DataFrame | None = None
    named: pd.DataFrame | None = None
    refreshed: pd.DataFrame | None = None


def sync_scope(
    ledger: Ledger, tenant: str, business_id: int, *, whole: bool, units: int | None = None
) -> SyncScope:
    """Which invoices this sync of a location diffs (``SyncScope``); ``whole`` (a full read, or
    a whole read of the location) diffs all, and so does a location never synced before.
    ``units``: the kept rows' money also in these whole units (``Ledger.kept_status_rows``)."""
    touched_id, event_id = ledger.last_change_ids()
    mark = None if whole else ledger.status_sync_mark(tenant, business_id)
    kept = None if mark is None else ledger.kept_status_rows(tenant, business_id, units=units)
    if mark is None or kept is None:
        return SyncScope(True, touched_id, event_id)
    invoices, xero_ids = ledger.touched_since(tenant, int(mark["touched_id"]), touched_id)
    found = ledger.events_between(
        tenant, "nexudus", (CREDIT_NOTE_FOUND, DELETED_FOUND), int(mark["event_id"]), event_id
    )
    invoices |= ids_of(found["subject"])
    # A credit note written or linked since: the invoices it was ever linked to change too.
    links = ledger.events_between(tenant, "nexudus", (CREDIT_NOTE_FOUND,), 0, event_id)
    originals = pd.Series(
        [d.get("original_id") if isinstance(d, dict) else None for d in links["detail"]],
        dtype=object,
    )
    noted = links["subject"].isin({str(i) for i in invoices}).to_numpy()
    invoices |= ids_of(originals[noted]) if len(links) else set()
    # The transfer rows naming a Xero record written since, or one the last sync reported
    # unknown to the ledger; an invoice whose Xero record was written since is diffed again.
    checked = xero_ids | ledger.status_unknown(tenant, business_id)
    named = ledger.transfer_keys(tenant, xero_ids=checked)
    via_xero = ids_of(named.loc[named["xero_id"].isin(xero_ids), "nexudus_invoice_id"])
    listed = ids_of(kept["nexudus_invoice_id"])
    # A kept invoice of which only the Xero record was written since (its transfer row, its
    # Nexudus copy, credit notes and deletion as kept): only Xero's side is read again.
    xero_only = (via_xero - invoices) & listed
    invoices |= via_xero - xero_only
    # The stored rows of what it compares: the kept ones are known to be listed already.
    members = dict.fromkeys(listed, True)
    members.update(
        dict.fromkeys(ledger.status_members(tenant, business_id, invoices - listed), False)
    )
    ids = kept["nexudus_invoice_id"]
    return SyncScope(
        False,
        touched_id,
        event_id,
        frozenset(invoices),
        frozenset(checked),
        members,
        kept[~ids.isin(invoices | xero_only)].reset_index(drop=True),
        named,
        kept[ids.isin(xero_only)].reset_index(drop=True),
    )
