"""Which invoice and credit-note numbers Xero already holds, read as cheaply as Xero allows.

Floor 4 (the transfer): imports the Xero client and the leaves. The plan checks every
planned number against Xero (``guards.check_number_clashes``). ``fetch_numbered_documents``
reads them in one paged read of the plan's dates (up to 1,000 documents a call, narrowed by
type and status, xero-api.md §3, §4), or by number when the numbers fit in one call; the next
plan brings that read up to date with If-Modified-Since, from the copy kept beside the ledger
(``lookup_file``). The push adds what it created to that copy (``remember_sent``), so the next
plan need not page through recon's own new documents to learn them (``_read_window``). No writes
to Xero.
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
    parse_xero_date,
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
    "remember_sent",
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
BY_CHANGE = "UpdatedDateUTC ASC"  # order of an If-Modified-Since read (xero-api.md §3.4)
# What a kept document holds beside DOCUMENT_COLUMNS: Xero's UpdatedDateUTC as ISO text
# ("updated"), and whether this app created it and recorded it so ("sent", ``remember_sent``).
KEPT_EXTRA = ("updated", "sent")


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


def remember_sent(
    kept: Path, tenant_id: str, kind: str, documents: Iterable[Mapping[str, Any]]
) -> None:
    """Add documents of ``kind`` this app has just created, as Xero answered them, to the kept
    lookup at ``kept`` (``lookup_file``): appended to a file beside it, which the next lookup
    reads with it. A file that cannot be written only costs the next lookup its full pages."""
    rows = [_document(kind, doc) for doc in documents]
    lines = [json.dumps({**row, "total": str(row["total"]), "sent": True}) for row in rows]
    if not lines:
        return
    try:
        if not _fresh(kept):  # its next use is a full read: nothing to spare it
            _sent_file(kept).unlink(missing_ok=True)
            return
        kept.parent.mkdir(parents=True, exist_ok=True)
        with _sent_file(kept).open("a", encoding="utf-8") as out:
            out.write("".join(f"{line}\n" for line in lines))
    except OSError:
        return


def _sent_file(kept: Path) -> Path:
    return kept.with_name(f"{kept.stem}.sent.jsonl")


def _fresh(kept: Path) -> bool:
    """Whether a kept lookup is there and young enough to be brought up to date (its file's
    time; the read time inside it decides, see ``_since``)."""
    try:
        saved = datetime.fromtimestamp(kept.stat().st_mtime, tz=UTC)
    except OSError:
        return False
    return datetime.now(UTC) - saved <= LOOKUP_MAX_AGE


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
    changed: list[int] = []  # how many documents all pages hold, as the first answer says
    if kind == "invoice":
        answer: Iterable[Mapping[str, Any]] = xero.iter_invoices(
            where=narrowed,
            statuses=None if since else LIVE_STATUSES,
            modified_since=since,
            # Oldest change first: what the last read saw comes before what was created since.
            order=BY_CHANGE if since else None,
            summary_only=True,
            page_size=MAX_PAGE_SIZE,
            item_count=changed.append,
        )
    else:
        # GET CreditNotes has no Statuses list (spec getCreditNotes): the status goes in where.
        status = "" if since else ' AND Status!="DELETED"'
        answer = xero.iter_credit_notes(
            where=narrowed + status,
            modified_since=since,
            order=BY_CHANGE if since else None,
            item_count=changed.append,
        )
    by_id: dict[str, dict[str, Any]] = {}
    if since and kept is not None:
        by_id = {str(d["xero_id"]): _from_kept(d) for d in kept["documents"]}
    known, sent = _known_since(by_id.values(), since) if since else (set(), set())
    first_page: set[str] = set()
    for read, doc in enumerate(answer, start=1):
        first_page.add(str(doc.get(KINDS[kind][1])))
        if doc.get("Type", type_name) == type_name:
            row = _document(kind, doc)
            by_id[str(row["xero_id"])] = row
        if read == MAX_PAGE_SIZE and _rest_is_sent(changed, first_page, known, sent):
            break  # the other pages hold only what this app created and kept already
    live = [r for r in by_id.values() if r["status"] in LIVE_STATUSES]
    covered = window if not since or kept is None else _window_of(kept)
    return live, {
        "read_at": started.isoformat(),
        "window": [covered.first.isoformat(), covered.last.isoformat()],
        "documents": [{**r, "total": str(r["total"])} for r in live],
    }


def _known_since(
    documents: Iterable[Mapping[str, Any]], since: datetime
) -> tuple[set[str], set[str]]:
    """Ids of the kept documents Xero stamped after ``since``, and of those the ones this app
    created (``remember_sent``). Xero's stamp only moves forward, so each one is among what an
    If-Modified-Since read from ``since`` answers."""
    known: set[str] = set()
    sent: set[str] = set()
    for doc in documents:
        stamp = doc.get("updated")
        try:
            after = isinstance(stamp, str) and datetime.fromisoformat(stamp) > since
        except (TypeError, ValueError):  # not a time, or one without its zone
            continue
        if after:
            known.add(str(doc["xero_id"]))
            if doc.get("sent") is True:
                sent.add(str(doc["xero_id"]))
    return known, sent


def _rest_is_sent(
    changed: list[int], first_page: set[str], known: set[str], sent: set[str]
) -> bool:
    """Whether the pages after the first of an If-Modified-Since read hold only documents this
    app created and kept (``sent``), so they need not be read.

    Every ``known`` document is among the changed (``_known_since``); when Xero counts as many
    changed as are known, the changed are exactly the known ones, and nobody created another.
    The first page must hold each known one that another hand may have changed again since it
    was read (all but the sent ones: read in order of Xero's stamp, it does, as they were read
    before the push began), and nothing else."""
    return (
        len(changed) == 1
        and changed[0] > MAX_PAGE_SIZE
        and changed[0] == len(known)
        and first_page <= known
        and known - sent <= first_page
    )


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
    return {
        **{c: row.get(c) for c in DOCUMENT_COLUMNS},
        **{c: row[c] for c in KEPT_EXTRA if c in row},
        "total": Decimal(str(row["total"])),
    }


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
    _add_sent(kinds, _sent_file(path))
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


def _add_sent(kinds: dict[str, Any], sent_file: Path) -> None:
    """Each kept kind with the documents ``remember_sent`` recorded since it was saved (a line
    that cannot be read is left out: its document is then only missing from the count that
    spares the next read its later pages)."""
    try:
        lines = sent_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return
    by_kind: dict[str, dict[str, Any]] = {}
    for line in lines:
        try:
            doc = json.loads(line)
            if doc["kind"] not in by_kind:
                by_kind[doc["kind"]] = {
                    str(d["xero_id"]): d for d in kinds[doc["kind"]]["documents"]
                }
            by_kind[doc["kind"]][str(doc["xero_id"])] = doc
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    for kind, documents in by_kind.items():
        kinds[kind]["documents"] = list(documents.values())


def _save_kept(path: Path, tenant: str, kinds: Mapping[str, Any]) -> None:
    """Keep the lookup for the next run (replaced whole, so a reader never sees half a file),
    with the documents the push recorded since the last one (read into it, so their file goes).
    A folder that cannot be written only costs the next run a full read."""
    body = {"format": LOOKUP_FORMAT, "tenant_id": tenant, "kinds": dict(kinds)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(body), encoding="utf-8")
        os.replace(temporary, path)
        _sent_file(path).unlink(missing_ok=True)
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
        "updated": _stamp(doc.get("UpdatedDateUTC")),
    }


def _stamp(value: Any) -> str | None:
    """Xero's UpdatedDateUTC as ISO text; None when blank or not a date (such a document then
    never spares a read its pages, see ``_known_since``)."""
    try:
        when = parse_xero_date(value)
    except ValueError:
        return None
    return when.isoformat() if when else None
