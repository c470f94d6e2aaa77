"""Status sync (Nexudus' "second transfer"), both ways: every transferred invoice's Xero and
Nexudus state compared, each difference with its action and who acts.

Floor 4, the front of the status step: ``sync_status(conn, ledger)`` refreshes the
ledger's copy of both sides with as few calls as the APIs allow
(``recon.status_refresh``) and returns a ``StatusDiff`` (``recon.status_diff``): one row
per difference of a transferred invoice, with a ``Difference``, its ``action``, its
``actor`` (``recon``: recon does it once confirmed; ``person``: a decision recon leaves to
people) and both sides' figures.

Writes are gated, never automatic: ``apply_paid`` (``recon.status_paid``) marks paid in
Nexudus exactly the invoices fully paid in Xero with money (never one settled by credit).
The changes a diff asks for in Xero (void, allocate a credit note) are
``recon.status_xero``'s, a floor above, since the allocation is the transfer's writer.
Every name the step offers is importable from here.

A sync costs what changed: after the first (or a whole) sync of a location, it reads from the
ledger only the invoices the last sync listed and those written since (``sync_scope``), money
as whole units, and gives the rows a whole sync would give on the same ledger.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from recon.ledger import Ledger
from recon.ledger.schema import KEPT_MONEY, KEPT_TEXT
from recon.outcomes import TransferOutcome
from recon.session import Connection
from recon.status_diff import (
    ACTIONS,
    DIFF_COLUMNS,
    RECON_ACTS,
    SCALE,
    XERO_GONE,
    XERO_LIVE,
    Actor,
    Difference,
    StatusDiff,
    find_differences,
    or_zero,
)
from recon.status_paid import APPLY_COLUMNS, apply_paid, is_credit_settled
from recon.status_refresh import (
    CREDIT_NOTE_FOUND,
    DELETED_FOUND,
    WATERMARK_OVERLAP,
    SyncScope,
    ids_of,
    nexudus_side,
    refresh_nexudus_state,
    refresh_xero_state,
    sync_scope,
    written_or_read,
    xero_state_rows,
)

__all__ = [
    "ACTIONS",
    "APPLY_COLUMNS",
    "CREDIT_NOTE_FOUND",
    "DELETED_FOUND",
    "DIFF_COLUMNS",
    "RECON_ACTS",
    "WATERMARK_OVERLAP",
    "XERO_GONE",
    "XERO_LIVE",
    "Actor",
    "Difference",
    "StatusDiff",
    "apply_paid",
    "find_differences",
    "is_credit_settled",
    "refresh_nexudus_state",
    "refresh_xero_state",
    "sync_status",
    "xero_state_rows",
]


# The money the diff compares: its column in the sync's frame <- the ledger's column.
_TRANSFER_MONEY = {"transferred_total": "xero_total", "nexudus_total_at_transfer": "nexudus_total"}
_XERO_MONEY = {
    "xero_total": "total",
    "xero_amount_due": "amount_due",
    "xero_amount_paid": "amount_paid",
    "xero_amount_credited": "amount_credited",
}


def sync_status(
    conn: Connection, ledger: Ledger, *, full: bool = False, today: date | None = None
) -> StatusDiff:
    """Compare every transferred invoice's Xero and Nexudus state; one row per difference."""
    started = time.monotonic()
    xero_calls, nexudus_calls = conn.xero.calls, conn.nexudus.calls
    tenant = str(conn.xero.tenant_id)
    business_id = int(conn.business["Id"])
    read = refresh_xero_state(conn, ledger, full=full)
    nexudus_read: dict[str, Any] = {}
    if ledger.has_transferred(tenant):
        nexudus_read = refresh_nexudus_state(conn, ledger, full=full)
    whole = full or bool(read["full"]) or bool(nexudus_read.get("whole_read"))
    scope = sync_scope(ledger, tenant, business_id, whole=whole, units=SCALE)
    frame, state, transfers = _both_sides(
        ledger, tenant, business_id, scope, read["written"], nexudus_read.get("written")
    )
    differences = find_differences(frame, state, transfers, full=read["full"])
    owing = frame["xero_status"] == "AUTHORISED"
    unpaid = frame[owing]
    unpaid = pd.DataFrame(
        {
            "invoice_number": unpaid["invoice_number"],
            "currency": unpaid["currency"],
            "amount_due": or_zero(unpaid["xero_amount_due"]),
            "due_date": unpaid["nexudus_due_date"],
        }
    )
    transferred = _record_sync(ledger, tenant, business_id, scope, frame, owing, differences)
    calls = {"xero": conn.xero.calls - xero_calls, "nexudus": conn.nexudus.calls - nexudus_calls}
    context = {
        "location": conn.location,
        "organisation": conn.organisation.get("Name"),
        "tenant_id": tenant,
        "transferred": transferred,
        "xero_changed": read["changed"],
        "nexudus_changed": nexudus_read.get("changed", 0),
        "nexudus_whole_read": nexudus_read.get("whole_read", False),
        "full": read["full"],
    }
    return StatusDiff(
        differences, unpaid.reset_index(drop=True), calls, time.monotonic() - started, context
    )


def _created_invoices(transfers: pd.DataFrame) -> pd.DataFrame:
    return transfers[
        (transfers["state"] == TransferOutcome.CREATED) & (transfers["kind"] == "invoice")
    ]


def _both_sides(
    ledger: Ledger,
    tenant: str,
    business_id: int,
    scope: SyncScope,
    xero_written: pd.DataFrame | None = None,
    nexudus_written: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The sync's frame (each transferred invoice of the scope with both sides' copies, money
    also in whole ``SCALE`` units, read from the ledger, or as the last sync kept it), the Xero
    records and the transfer rows that tell which records recon created are unknown to the
    ledger. ``xero_written``, ``nexudus_written``: what this sync's refresh gave the ledger's
    copies, taken as written where the write alone decides the stored row, not read back."""
    if scope.whole:
        transfers = _created_invoices(ledger.transfers(tenant, units=SCALE))
        state = ledger.xero_state(tenant, units=SCALE)
        named = transfers
    else:
        transfers = _created_invoices(
            ledger.transfers(tenant, nexudus_invoice_ids=scope.nexudus_invoice_ids, units=SCALE)
        )
        wanted = set(transfers["xero_id"].dropna()) | scope.xero_ids
        state = written_or_read(
            None
            if xero_written is None
            else ledger.xero_state_written(
                tenant, xero_written[xero_written["xero_id"].isin(wanted)], units=SCALE
            ),
            "xero_id",
            wanted,
            lambda rest: ledger.xero_state(tenant, xero_ids=rest, units=SCALE),
        )
        named = _created_invoices(
            ledger.transfer_keys(tenant, xero_ids=scope.xero_ids)
            if scope.named is None
            else scope.named
        )
    frame = transfers[
        [
            "nexudus_invoice_id",
            "invoice_number",
            "xero_id",
            "currency",
            "xero_total",
            "nexudus_total",
        ]
    ].rename(columns={v: k for k, v in _TRANSFER_MONEY.items()})
    for column, source in _TRANSFER_MONEY.items():
        frame[f"{column}_scaled"] = transfers[f"{source}_units"].to_numpy(dtype="int64")
        frame[f"{column}_known"] = transfers[f"{source}_known"].to_numpy(dtype=bool)
    xero = state[
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
        columns={"status": "xero_status", "fully_paid_on": "xero_paid_on"}
        | {v: k for k, v in _XERO_MONEY.items()}
    )
    for column, source in _XERO_MONEY.items():
        xero[f"{column}_scaled"] = state[f"{source}_units"].to_numpy(dtype="int64")
        xero[f"{column}_known"] = state[f"{source}_known"].to_numpy(dtype=bool)
    frame = _with_xero_copy(frame, xero)
    nexudus = nexudus_side(
        ledger,
        tenant,
        business_id,
        transfers,
        units=SCALE,
        written=None if scope.whole else nexudus_written,
    )
    nexudus = nexudus.rename(columns=_UNITS_AS_SCALED)
    # Only this location's invoices: another location may book into the same organisation.
    frame = frame.merge(nexudus, on="nexudus_invoice_id", how="inner")
    parts = [frame]
    if scope.kept is not None and len(scope.kept):
        parts.append(_as_compared(scope.kept, frame.columns))
    if scope.refreshed is not None and len(scope.refreshed):
        # Only Xero's copy was written since: the kept row with Xero's columns read again.
        rows = scope.refreshed.rename(columns=_UNITS_AS_SCALED)
        theirs = [c for c in xero.columns if c != "xero_id"]
        parts.append(
            _with_xero_copy(rows.drop(columns=theirs), xero).reindex(columns=frame.columns)
        )
    # An empty part would make pandas type its columns as object: a sync that read nothing
    # again by key compares only kept rows, and must type them as any other sync does.
    parts = [part for part in parts if len(part)] or [frame]
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    # One order and one text type for a whole and an incremental sync, whatever rows each read:
    # by number, then Nexudus id; text as pandas' string type, blanks NaN.
    frame = (
        frame.astype(dict.fromkeys(KEPT_TEXT, "str"))
        .sort_values(["invoice_number", "nexudus_invoice_id"], kind="stable")
        .reset_index(drop=True)
    )
    known = state if scope.whole else state[state["xero_id"].isin(scope.xero_ids)]
    return frame, known, named


# The ledger's whole units of an amount, as the frame names them.
_UNITS_AS_SCALED = {f"{m}_units": f"{m}_scaled" for m in KEPT_MONEY}
# The Xero copy's columns, blank in the frame when the ledger has no copy of the record.
_XERO_COPY = ["xero_status", "xero_paid_on", "kind", *_XERO_MONEY]


def _as_compared(kept: pd.DataFrame, columns: pd.Index) -> pd.DataFrame:
    """Kept rows (``Ledger.kept_status_rows``) as the sync's frame holds them: whether Xero's
    copy was found as the merge's ``_merge``, its columns blank when it was not."""
    found = kept["found_in_xero"].to_numpy(dtype=bool)
    merged = pd.Categorical(
        np.where(found, "both", "left_only"), categories=["left_only", "right_only", "both"]
    )
    rows = kept.rename(columns=_UNITS_AS_SCALED).assign(_merge=merged)
    if not found.all():
        rows.loc[~found, _XERO_COPY] = np.nan
    return rows.reindex(columns=columns)


def _with_xero_copy(rows: pd.DataFrame, xero: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with the ledger's copy of their Xero record beside them (``_merge`` tells
    whether it was found; when not, its money is unknown, as a blank)."""
    joined = rows.merge(xero, on="xero_id", how="left", indicator=True)
    for column in _XERO_MONEY:
        joined[f"{column}_scaled"] = joined[f"{column}_scaled"].fillna(0).astype("int64")
        joined[f"{column}_known"] = joined[f"{column}_known"].fillna(False).astype(bool)
    return joined


def _kept(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame's rows as the ledger keeps them (``KEPT_COLUMNS``)."""
    return frame.assign(found_in_xero=(frame["_merge"] == "both").to_numpy())


def _record_sync(
    ledger: Ledger,
    tenant: str,
    business_id: int,
    scope: SyncScope,
    frame: pd.DataFrame,
    owing: pd.Series,
    differences: pd.DataFrame,
) -> int:
    """Keep in the ledger what this sync listed, the rows it compared of each listed invoice
    read afresh, and where it stopped reading; returns how many transferred invoices of the
    location there are."""
    unknown = differences["difference"] == Difference.UNKNOWN_TO_LEDGER.value
    listed = ids_of(frame.loc[owing.to_numpy(), "nexudus_invoice_id"]) | ids_of(
        differences.loc[~unknown, "nexudus_invoice_id"]
    )
    ids = frame["nexudus_invoice_id"]
    compared = ids.to_numpy(dtype=np.int64)
    members = dict(zip(compared.tolist(), np.isin(compared, list(listed)).tolist(), strict=True))
    before = scope.members
    kept_before = scope.kept["nexudus_invoice_id"] if scope.kept is not None else None
    # Only rows kept before were compared, each listed again: what the ledger keeps stands.
    as_kept = (
        kept_before is not None
        and len(frame) == len(kept_before) == len(listed)
        and bool(ids.isin(kept_before).all())
    )
    ledger.record_status_sync(
        tenant,
        business_id,
        touched_id=scope.touched_id,
        event_id=scope.event_id,
        members=members,
        unknown=set(differences.loc[unknown, "xero_id"].dropna().astype(str)),
        checked=None if scope.whole or before is None else (before, scope.xero_ids),
        kept=None if as_kept else _kept(frame[ids.isin(listed).to_numpy()]),
        kept_as_before=as_kept,
    )
    if scope.whole or before is None:
        return len(members)
    mark = ledger.status_sync_mark(tenant, business_id)
    return int(mark["transferred"]) if mark else len(members)
