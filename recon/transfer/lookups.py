"""Which invoice and credit-note numbers Xero already holds, read as cheaply as Xero allows.

Floor 4 (the transfer): imports the Xero client and the leaves. The plan checks every
planned number against Xero (``guards.check_number_clashes``). ``fetch_numbered_documents``
reads them in one paged read of the plan's dates (up to 1,000 documents a call, narrowed by
type and status, xero-api.md §3, §4), or by number when the numbers fit in one call; the next
plan brings that read up to date with If-Modified-Since, from the copy kept beside the ledger
(``lookup_file``). No writes to Xero.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from recon.clients.xero import (
    IDS_PER_CALL,
    MAX_PAGE_SIZE,
    URL_LIST_BUDGET,
    XeroClient,
)

__all__ = [
    "DOCUMENT_COLUMNS",
    "LIVE_STATUSES",
    "LOOKUP_MARGIN",
    "LOOKUP_MAX_AGE",
    "DateWindow",
    "fetch_numbered_documents",
    "lookup_file",
    "lookup_window",
]

# A DELETED document frees its number (the sandbox and Xero's PUT both let it be reused).
LIVE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED")
DOCUMENT_COLUMNS = [
    "kind",
    "number",
    "xero_id",
    "status",
    "contact_id",
    "contact_name",
    "contact_number",
    "currency",
    "total",
]

# The Xero side of each kind the plan sends: number field, id field, Xero Type.
KINDS: Mapping[str, tuple[str, str, str]] = {
    "invoice": ("InvoiceNumber", "InvoiceID", "ACCREC"),
    "credit_note": ("CreditNoteNumber", "CreditNoteID", "ACCRECCREDIT"),
}
# Days added on each side of the dates the planned documents will carry. What the window must
# catch is the same invoice sent before (it carries the very date the plan computes) and a
# number someone keyed by hand near its Nexudus twin (the seed's is six days earlier). A week
# also absorbs a calendar date read in another time zone (nexudus.md §6: up to a day off).
# Wider costs pages: each day of margin reads a day of the neighbouring periods' documents.
LOOKUP_MARGIN = timedelta(days=7)
# A kept lookup older than this is read again in full rather than brought up to date with
# If-Modified-Since: it bounds how long a change If-Modified-Since cannot show (an organisation
# restored or reset under the same tenant id) can mislead the plan.
LOOKUP_MAX_AGE = timedelta(hours=24)
# If-Modified-Since is sent this much earlier than the local clock said the last read began,
# so a local clock ahead of Xero's never hides a change (re-reading a few is harmless).
CLOCK_MARGIN = timedelta(minutes=5)
LOOKUP_FORMAT = 1  # version of the kept lookup file


@dataclass(frozen=True)
class DateWindow:
    """The inclusive range of document dates a lookup reads (``first`` to ``last``)."""

    first: date
    last: date

    def covers(self, other: DateWindow) -> bool:
        """Whether every date of ``other`` lies in this window."""
        return self.first <= other.first and other.last <= self.last

    def where(self) -> str:
        """The window as a Xero ``where`` clause on ``Date`` (xero-api.md §3.4)."""
        return f"Date>={_xero_datetime(self.first)} AND Date<={_xero_datetime(self.last)}"


def _xero_datetime(day: date) -> str:
    return f"DateTime({day.year},{day.month:02d},{day.day:02d})"


def lookup_window(
    dates: Iterable[date | None], margin: timedelta = LOOKUP_MARGIN
) -> DateWindow | None:
    """The dates the planned documents will carry in Xero, widened by ``margin`` each side
    (None when no date is known)."""
    known = [d for d in dates if isinstance(d, date)]
    if not known:
        return None
    return DateWindow(min(known) - margin, max(known) + margin)


def lookup_file(ledger_path: str | Path, tenant_id: str) -> Path:
    """Where the last Xero number lookup of an organisation is kept: a JSON file per
    organisation in a ``<ledger file>.lookups`` folder beside the ledger."""
    ledger = Path(ledger_path)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(tenant_id)) or "tenant"
    return ledger.with_name(f"{ledger.name}.lookups") / f"xero-{safe}.json"


def fetch_numbered_documents(
    xero: XeroClient,
    planned: pd.DataFrame,
    *,
    window: DateWindow | None = None,
    kept: Path | None = None,
    now: Callable[[], datetime] | None = None,
) -> pd.DataFrame:
    """Xero's live ACCREC invoices and ACCRECCREDIT credit notes with the planned numbers.

    Per kind, the cheaper exact read when it is one call (the numbers fit one ``InvoiceNumbers``
    list, or one 50-number ``where`` for credit notes), and always when no ``window`` is given.
    Otherwise one paged read of up to 1,000 a page narrowed by type, live status and the
    ``window`` of dates (xero-api.md §3.4); with ``kept`` (see ``lookup_file``), that read is
    kept, and a later lookup within 24 hours and inside its window asks Xero only for what was
    created or modified since (``If-Modified-Since``, §2). A number Xero holds under a date
    outside the window is not seen here: Xero refuses it when the push sends it ("Invoice #
    must be unique.") and the push settles it by number (adopted, or failed as a clash).
    ``now``: the clock (UTC), for tests.
    """
    kinds = planned["kind"].astype(str)
    numbers = planned["invoice_number"].astype("object")
    wanted = {
        kind: sorted({str(n) for n in numbers[kinds == kind] if isinstance(n, str) and n})
        for kind in KINDS
    }
    clock = now or (lambda: datetime.now(UTC))
    store = _load_kept(kept, str(xero.tenant_id)) if kept is not None and window else {}
    rows: list[dict[str, Any]] = []
    read_window = False
    for kind, values in wanted.items():
        if not values:
            continue
        if window is None or _one_call(kind, values):
            found = _read_numbers(xero, kind, values)
        else:
            found, store[kind] = _read_window(xero, kind, window, store.get(kind), clock)
            read_window = True
        chosen = set(values)
        rows.extend(r for r in found if r["number"] in chosen)
    if kept is not None and read_window:
        _save_kept(kept, str(xero.tenant_id), store)
    frame = pd.DataFrame(rows, columns=DOCUMENT_COLUMNS).astype("object")
    return frame[frame["status"].isin(LIVE_STATUSES)].reset_index(drop=True)


def _one_call(kind: str, numbers: list[str]) -> bool:
    """Whether a read by these numbers is a single call (as ``XeroClient`` splits them)."""
    if kind == "credit_note":
        return len(numbers) <= IDS_PER_CALL
    return sum(len(n) + 3 for n in numbers) <= URL_LIST_BUDGET  # a value and its encoded comma


def _read_numbers(xero: XeroClient, kind: str, numbers: list[str]) -> list[dict[str, Any]]:
    """The documents of one kind with these numbers, by number lists (a call per URL's worth)."""
    if kind == "invoice":
        return [
            _document(kind, inv)
            for inv in xero.iter_invoices(
                invoice_numbers=numbers,
                statuses=LIVE_STATUSES,
                where='Type=="ACCREC"',
                summary_only=True,
            )
        ]
    return [
        _document(kind, note)
        for note in xero.iter_credit_notes(numbers=numbers)
        if note.get("Type", "ACCRECCREDIT") == "ACCRECCREDIT"
    ]


def _read_window(
    xero: XeroClient,
    kind: str,
    window: DateWindow,
    kept: Mapping[str, Any] | None,
    clock: Callable[[], datetime],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The live documents of one kind dated in ``window``, and what to keep of the read.

    With a fresh ``kept`` read covering the window, only the changes since it are asked for:
    every document of the type created or modified since, whatever its date or status (a
    DELETED one frees its number, one whose date or number moved is replaced).
    """
    started = clock()
    since = _since(kept, window, started)
    type_name = KINDS[kind][2]
    narrowed = f'Type=="{type_name}"' + ("" if since else f" AND {window.where()}")
    if kind == "invoice":
        answer: Iterable[Mapping[str, Any]] = xero.iter_invoices(
            where=narrowed,
            statuses=None if since else LIVE_STATUSES,
            modified_since=since,
            summary_only=True,
            page_size=MAX_PAGE_SIZE,
        )
    else:
        # GET CreditNotes has no Statuses list (spec getCreditNotes): the status goes in where.
        status = "" if since else ' AND Status!="DELETED"'
        answer = xero.iter_credit_notes(where=narrowed + status, modified_since=since)
    by_id: dict[str, dict[str, Any]] = {}
    if since and kept is not None:
        by_id = {str(d["xero_id"]): _from_kept(d) for d in kept["documents"]}
    for doc in answer:
        if doc.get("Type", type_name) == type_name:
            row = _document(kind, doc)
            by_id[str(row["xero_id"])] = row
    live = [r for r in by_id.values() if r["status"] in LIVE_STATUSES]
    covered = window if not since or kept is None else _window_of(kept)
    return live, {
        "read_at": started.isoformat(),
        "window": [covered.first.isoformat(), covered.last.isoformat()],
        "documents": [{**r, "total": str(r["total"])} for r in live],
    }


def _since(kept: Mapping[str, Any] | None, window: DateWindow, now: datetime) -> datetime | None:
    """The If-Modified-Since for a lookup that can build on ``kept``, or None (a full read)."""
    if not kept:
        return None
    try:
        read_at = datetime.fromisoformat(str(kept["read_at"]))
        covered = _window_of(kept)
    except (KeyError, TypeError, ValueError):
        return None
    if read_at.tzinfo is None or not covered.covers(window):
        return None
    if not now - LOOKUP_MAX_AGE <= read_at <= now + CLOCK_MARGIN:
        return None
    return read_at - CLOCK_MARGIN


def _window_of(kept: Mapping[str, Any]) -> DateWindow:
    first, last = kept["window"]
    return DateWindow(date.fromisoformat(str(first)), date.fromisoformat(str(last)))


def _from_kept(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**{c: row.get(c) for c in DOCUMENT_COLUMNS}, "total": Decimal(str(row["total"]))}


def _load_kept(path: Path, tenant: str) -> dict[str, Any]:
    """The kept lookup of ``tenant`` per kind; empty when there is none or it is unreadable
    (the next read is then a full one)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if (
        not isinstance(saved, dict)
        or saved.get("format") != LOOKUP_FORMAT
        or saved.get("tenant_id") != tenant
    ):
        return {}
    kinds = saved.get("kinds")
    if not isinstance(kinds, dict):
        return {}
    usable = {}
    for kind, kept in kinds.items():
        try:
            rows = [_from_kept(d) for d in kept["documents"]]
            _window_of(kept)
        except (KeyError, TypeError, ValueError, ArithmeticError):
            continue
        if kind in KINDS and all(isinstance(r["xero_id"], str) for r in rows):
            usable[kind] = kept
    return usable


def _save_kept(path: Path, tenant: str, kinds: Mapping[str, Any]) -> None:
    """Keep the lookup for the next run (replaced whole, so a reader never sees half a file).
    A folder that cannot be written only costs the next run a full read."""
    body = {"format": LOOKUP_FORMAT, "tenant_id": tenant, "kinds": dict(kinds)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(body), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        return


def _document(kind: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    number, id_key, _ = KINDS[kind]
    contact = doc.get("Contact") or {}
    return {
        "kind": kind,
        "number": str(doc.get(number) or ""),
        "xero_id": doc.get(id_key),
        "status": str(doc.get("Status") or "").upper(),
        "contact_id": contact.get("ContactID"),
        "contact_name": contact.get("Name"),
        "contact_number": contact.get("ContactNumber"),
        "currency": doc.get("CurrencyCode"),
        "total": Decimal(str(doc.get("Total") or 0)),
    }
