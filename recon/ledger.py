"""The durable local record of every write recon makes to Xero or Nexudus.

Floor 2: steps import it; it imports no step. One SQLite file in WAL mode,
synchronous=FULL, so a record survives a crash the moment ``record_*`` returns.

The rule that makes re-runs safe: an *intent* is written before a call and an
*outcome* after it. A run that finds an intent without an outcome (it crashed,
or the connection dropped) resolves it against the remote system before
sending anything again (``recon.transfer`` does that by invoice number).

Tables:
- ``transfers``: one row per (Xero organisation, Nexudus invoice): state
  ``sending`` (intent) / ``created`` / ``failed`` / ``unsent`` / ``held``; Xero id, number,
  amounts, attempts, messages, batch key, timestamps. ``unsent``: Xero never answered and
  does not hold it, so the next send is the same attempt again, under the same key; after
  ``failed`` Xero answered (and caches that answer under the key), so the next send is a new
  attempt with a new key (``next_attempts``, ``record_attempt_intents``).
- ``contacts``: Nexudus coworker -> Xero ContactID per organisation.
- ``payments``: Nexudus invoices marked paid from Xero (the status sync).
- ``events``: an append-only audit line for every write attempt and outcome.
- ``xero_state``: the last known Xero state of each invoice (kept current with If-Modified-Since).
- ``nexudus_state``: the same for the Nexudus side of each transferred invoice.
- ``watermarks``: the last successful sync time per organisation and kind.
- ``allocations`` (version 2): one row per attempt to allocate a credit note to an invoice in
  Xero: state ``sending`` (intent) / ``allocated`` / ``failed``, amount, the attempt's
  Idempotency-Key, how many equal allocations Xero already showed before it, messages.

The file carries its layout's version in ``PRAGMA user_version`` (``SCHEMA_VERSION``),
stamped when the file is created. A file from before versions were stamped (0) is
brought up to date when opened: any table it lacks is created, any column added since
(``LATE_COLUMNS``) is added, and it is stamped. A file stamped with a newer version than
this code knows is refused (``StepError``): a newer recon wrote it. Every INSERT names
its columns, so a table whose columns sit in another order is written correctly.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from recon.errors import StepError
from recon.values import cell_int, is_missing, optional_int, records

__all__ = ["SCHEMA_VERSION", "Ledger"]

# The layout SCHEMA describes. Raise it, and add a step to _MIGRATIONS, when the layout changes.
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS transfers(
    tenant_id TEXT NOT NULL, nexudus_invoice_id INTEGER NOT NULL, invoice_number TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'invoice', state TEXT NOT NULL, xero_id TEXT, batch_key TEXT,
    currency TEXT, nexudus_total TEXT, xero_total TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    messages TEXT NOT NULL DEFAULT '[]', written_back INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY(tenant_id, nexudus_invoice_id));
CREATE INDEX IF NOT EXISTS transfers_state ON transfers(tenant_id, state);
CREATE INDEX IF NOT EXISTS transfers_number ON transfers(tenant_id, invoice_number);
CREATE TABLE IF NOT EXISTS contacts(
    tenant_id TEXT NOT NULL, nexudus_coworker_id INTEGER NOT NULL, contact_number TEXT NOT NULL,
    xero_contact_id TEXT, state TEXT NOT NULL, name TEXT, updated_at TEXT NOT NULL,
    PRIMARY KEY(tenant_id, nexudus_coworker_id));
CREATE TABLE IF NOT EXISTS payments(
    tenant_id TEXT NOT NULL, nexudus_invoice_id INTEGER NOT NULL, invoice_number TEXT NOT NULL,
    state TEXT NOT NULL, amount TEXT, paid_on TEXT, xero_invoice_id TEXT,
    messages TEXT NOT NULL DEFAULT '[]', updated_at TEXT NOT NULL,
    PRIMARY KEY(tenant_id, nexudus_invoice_id));
CREATE TABLE IF NOT EXISTS events(
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, system TEXT NOT NULL,
    action TEXT NOT NULL, tenant_id TEXT, subject TEXT, outcome TEXT NOT NULL, detail TEXT);
CREATE TABLE IF NOT EXISTS xero_state(
    tenant_id TEXT NOT NULL, xero_id TEXT NOT NULL, number TEXT, kind TEXT NOT NULL, status TEXT,
    total TEXT, amount_due TEXT, amount_paid TEXT, amount_credited TEXT, fully_paid_on TEXT,
    updated_utc TEXT, created_by_recon INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(tenant_id, xero_id));
CREATE TABLE IF NOT EXISTS nexudus_state(
    tenant_id TEXT NOT NULL, nexudus_invoice_id INTEGER NOT NULL, total TEXT, paid INTEGER,
    paid_amount TEXT, void INTEGER, due_date TEXT, updated_on TEXT, business_id INTEGER,
    PRIMARY KEY(tenant_id, nexudus_invoice_id));
CREATE TABLE IF NOT EXISTS watermarks(tenant_id TEXT NOT NULL, kind TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY(tenant_id, kind));
"""

# Columns added to a table after the table first shipped, so a version-0 file may lack them
# (ledgers written before nexudus_state had business_id). Each is nullable or has a default.
LATE_COLUMNS: tuple[tuple[str, str, str], ...] = (("nexudus_state", "business_id", "INTEGER"),)


# Version 2: credit notes allocated to their original invoices (recon.transfer.allocate).
ALLOCATIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS allocations(
    id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, idempotency_key TEXT NOT NULL,
    credit_note_id TEXT NOT NULL, credit_note_number TEXT, invoice_id TEXT NOT NULL,
    invoice_number TEXT, currency TEXT, amount TEXT NOT NULL, attempt INTEGER NOT NULL,
    seen_before INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL,
    messages TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    UNIQUE(tenant_id, idempotency_key));
CREATE INDEX IF NOT EXISTS allocations_note ON allocations(tenant_id, credit_note_id);
"""


def _schema_statements(script: str = SCHEMA) -> list[str]:
    """A script one statement at a time (``executescript`` would commit the open transaction)."""
    return [statement.strip() for statement in script.split(";") if statement.strip()]


def _from_version_0(db: sqlite3.Connection) -> None:
    """A new file, or one written before versions were stamped: the tables and columns of 1."""
    for statement in _schema_statements():
        db.execute(statement)
    for table, column, declaration in LATE_COLUMNS:
        present = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def _from_version_1(db: sqlite3.Connection) -> None:
    """Version 1 to 2: the ``allocations`` table."""
    for statement in _schema_statements(ALLOCATIONS_SCHEMA):
        db.execute(statement)


# _MIGRATIONS[v] brings a file at version v to v + 1.
_MIGRATIONS = (_from_version_0, _from_version_1)
assert len(_MIGRATIONS) == SCHEMA_VERSION


def _now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="milliseconds")


class Ledger:
    """Open (creating if needed) the ledger file at ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._db.row_factory = sqlite3.Row
        try:
            self._bring_up_to_date()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
        except BaseException:
            self._db.close()
            raise

    def _version(self) -> int:
        version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StepError(
                f"The ledger file {self.path} was written by a newer version of recon (ledger "
                f"version {version}; this recon reads versions up to {SCHEMA_VERSION}). Upgrade "
                "recon, then run again. Keep the file as it is: it is the record of every write "
                "made to Xero and Nexudus."
            )
        return version

    def _bring_up_to_date(self) -> None:
        """Refuse a file from a newer recon; create, or migrate and stamp, an older one."""
        if self._version() == SCHEMA_VERSION:
            return
        with self._tx() as db:
            # Read again under the write lock: another process may have migrated it meanwhile.
            for migrate in _MIGRATIONS[self._version() :]:
                migrate(db)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the ledger file."""
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def event(
        self,
        system: str,
        action: str,
        outcome: str,
        *,
        tenant_id: str | None = None,
        subject: str | None = None,
        detail: Any = None,
    ) -> None:
        """Append one line to the audit trail (``detail`` is stored as JSON)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO events(at,system,action,tenant_id,subject,outcome,detail) "
                "VALUES(?,?,?,?,?,?,?)",
                (
                    _now(),
                    system,
                    action,
                    tenant_id,
                    subject,
                    outcome,
                    json.dumps(detail, default=str) if detail is not None else None,
                ),
            )

    def _select(self, sql: str, args: tuple[object, ...], columns: list[str]) -> pd.DataFrame:
        """The rows of a query as a DataFrame with ``columns`` (also when there are none)."""
        rows = self._db.execute(sql, args).fetchall()
        return pd.DataFrame([dict(r) for r in rows], columns=columns)

    # ---- transfers ------------------------------------------------------------------
    def transfers(self, tenant_id: str) -> pd.DataFrame:
        """Every transfer row of an organisation."""
        frame = self._select(
            "SELECT * FROM transfers WHERE tenant_id=? ORDER BY invoice_number",
            (tenant_id,),
            [
                "tenant_id",
                "nexudus_invoice_id",
                "invoice_number",
                "kind",
                "state",
                "xero_id",
                "batch_key",
                "currency",
                "nexudus_total",
                "xero_total",
                "attempts",
                "messages",
                "written_back",
                "created_at",
                "updated_at",
            ],
        )
        for col in ("nexudus_total", "xero_total"):
            frame[col] = frame[col].map(lambda v: Decimal(v) if v not in (None, "") else None)
        return frame

    def record_intents(
        self, tenant_id: str, batch_key: str, invoices: Iterable[dict[str, Any]]
    ) -> None:
        """Before a batch is sent: each invoice is 'sending' under this batch key."""
        now = _now()
        with self._tx() as db:
            for inv in invoices:
                db.execute(
                    "INSERT INTO transfers(tenant_id,nexudus_invoice_id,invoice_number,kind,state,"
                    "batch_key,currency,nexudus_total,attempts,created_at,updated_at) "
                    "VALUES(?,?,?,?,'sending',?,?,?,1,?,?) "
                    "ON CONFLICT(tenant_id,nexudus_invoice_id) DO UPDATE SET state='sending', "
                    "batch_key=excluded.batch_key, attempts=transfers.attempts+1, "
                    "updated_at=excluded.updated_at",
                    (
                        tenant_id,
                        int(inv["nexudus_invoice_id"]),
                        inv["invoice_number"],
                        inv.get("kind", "invoice"),
                        batch_key,
                        inv.get("currency"),
                        str(inv.get("nexudus_total", "")),
                        now,
                        now,
                    ),
                )

    def record_outcome(
        self,
        tenant_id: str,
        nexudus_invoice_id: int,
        state: str,
        *,
        xero_id: str | None = None,
        xero_total: Decimal | None = None,
        messages: list[str] | None = None,
    ) -> None:
        """After the answer: created / failed / held, with Xero's id, total and messages."""
        with self._tx() as db:
            db.execute(
                "UPDATE transfers SET state=?, xero_id=COALESCE(?, xero_id), "
                "xero_total=COALESCE(?, xero_total), messages=?, updated_at=? WHERE tenant_id=? "
                "AND nexudus_invoice_id=?",
                (
                    state,
                    xero_id,
                    str(xero_total) if xero_total is not None else None,
                    json.dumps(messages or []),
                    _now(),
                    tenant_id,
                    int(nexudus_invoice_id),
                ),
            )

    def record_outcomes(self, tenant_id: str, outcomes: Iterable[dict[str, Any]]) -> None:
        """Several outcomes in one transaction (one fsync per batch, not per invoice)."""
        now = _now()
        with self._tx() as db:
            for o in outcomes:
                db.execute(
                    "UPDATE transfers SET state=?, xero_id=COALESCE(?, xero_id), "
                    "xero_total=COALESCE(?, xero_total), messages=?, updated_at=? WHERE "
                    "tenant_id=? AND nexudus_invoice_id=?",
                    (
                        o["state"],
                        o.get("xero_id"),
                        str(o["xero_total"]) if o.get("xero_total") is not None else None,
                        json.dumps(o.get("messages") or []),
                        now,
                        tenant_id,
                        int(o["nexudus_invoice_id"]),
                    ),
                )

    def record_written_back(self, tenant_id: str, nexudus_invoice_id: int) -> None:
        """Note that a created invoice's Xero id has been written back to its Nexudus invoice."""
        with self._tx() as db:
            db.execute(
                "UPDATE transfers SET written_back=1, updated_at=? WHERE tenant_id=? AND "
                "nexudus_invoice_id=?",
                (_now(), tenant_id, int(nexudus_invoice_id)),
            )

    def unfinished(self, tenant_id: str) -> pd.DataFrame:
        """Intents with no outcome: what a crash or a dropped connection left behind."""
        frame = self.transfers(tenant_id)
        return frame[frame["state"] == "sending"]

    def transferred_ids(self, tenant_id: str) -> set[int]:
        """The Nexudus invoice ids an organisation's transfers created in Xero."""
        rows = self._db.execute(
            "SELECT nexudus_invoice_id FROM transfers WHERE tenant_id=? AND state='created'",
            (tenant_id,),
        )
        return {int(r[0]) for r in rows}

    def next_attempts(self, tenant_id: str, nexudus_invoice_ids: Iterable[int]) -> dict[int, int]:
        """The attempt number the next send of each invoice is: 1 for one never sent; the last
        attempt's number again when Xero never answered it (``sending``, ``unsent``); one more
        when Xero answered it (``failed``), since Xero replays a key's first answer."""
        wanted = [int(i) for i in nexudus_invoice_ids]
        found: dict[int, int] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._db.execute(
                "SELECT nexudus_invoice_id, state, attempts FROM transfers WHERE tenant_id=? AND "
                f"nexudus_invoice_id IN ({','.join('?' * len(chunk))})",
                (tenant_id, *chunk),
            )
            for r in rows:
                last = max(int(r["attempts"] or 0), 1)
                found[int(r["nexudus_invoice_id"])] = last + 1 if r["state"] == "failed" else last
        return {i: found.get(i, 1) for i in wanted}

    def record_attempt_intents(
        self, tenant_id: str, batch_key: str, invoices: Iterable[dict[str, Any]]
    ) -> None:
        """Before a batch is sent: each invoice is 'sending' as attempt ``invoice["attempt"]``
        under this batch key (``next_attempts`` says which attempt each is)."""
        now = _now()
        with self._tx() as db:
            for inv in invoices:
                db.execute(
                    "INSERT INTO transfers(tenant_id,nexudus_invoice_id,invoice_number,kind,state,"
                    "batch_key,currency,nexudus_total,attempts,created_at,updated_at) "
                    "VALUES(?,?,?,?,'sending',?,?,?,?,?,?) "
                    "ON CONFLICT(tenant_id,nexudus_invoice_id) DO UPDATE SET state='sending', "
                    "batch_key=excluded.batch_key, attempts=excluded.attempts, "
                    "updated_at=excluded.updated_at",
                    (
                        tenant_id,
                        int(inv["nexudus_invoice_id"]),
                        inv["invoice_number"],
                        inv.get("kind", "invoice"),
                        batch_key,
                        inv.get("currency"),
                        str(inv.get("nexudus_total", "")),
                        int(inv["attempt"]),
                        now,
                        now,
                    ),
                )

    # ---- contacts ---------------------------------------------------------------------
    def contacts(self, tenant_id: str) -> dict[int, dict[str, Any]]:
        """An organisation's contact rows, by Nexudus coworker id."""
        rows = self._db.execute("SELECT * FROM contacts WHERE tenant_id=?", (tenant_id,)).fetchall()
        return {int(r["nexudus_coworker_id"]): dict(r) for r in rows}

    def record_contact(
        self,
        tenant_id: str,
        coworker_id: int,
        contact_number: str,
        state: str,
        *,
        xero_contact_id: str | None = None,
        name: str | None = None,
    ) -> None:
        """Insert or update a coworker's contact row; a known Xero contact id or name is kept when
        not given."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO contacts(tenant_id,nexudus_coworker_id,contact_number,"
                "xero_contact_id,state,name,updated_at) VALUES(?,?,?,?,?,?,?) ON "
                "CONFLICT(tenant_id,nexudus_coworker_id) DO UPDATE SET "
                "contact_number=excluded.contact_number, "
                "xero_contact_id=COALESCE(excluded.xero_contact_id, contacts.xero_contact_id), "
                "state=excluded.state, name=COALESCE(excluded.name, contacts.name), "
                "updated_at=excluded.updated_at",
                (tenant_id, int(coworker_id), contact_number, xero_contact_id, state, name, _now()),
            )

    # ---- payments (status sync) -----------------------------------------------------------
    def payments(self, tenant_id: str) -> pd.DataFrame:
        """Every payment row of an organisation (invoices marked paid in Nexudus)."""
        return self._select(
            "SELECT * FROM payments WHERE tenant_id=?",
            (tenant_id,),
            [
                "tenant_id",
                "nexudus_invoice_id",
                "invoice_number",
                "state",
                "amount",
                "paid_on",
                "xero_invoice_id",
                "messages",
                "updated_at",
            ],
        )

    def record_payment(
        self,
        tenant_id: str,
        nexudus_invoice_id: int,
        invoice_number: str,
        state: str,
        *,
        amount: Decimal | None = None,
        paid_on: str | None = None,
        xero_invoice_id: str | None = None,
        messages: list[str] | None = None,
    ) -> None:
        """Insert or update an invoice's payment row; a known amount or date stays if not given."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO payments(tenant_id,nexudus_invoice_id,invoice_number,state,amount,"
                "paid_on,xero_invoice_id,messages,updated_at) VALUES(?,?,?,?,?,?,?,?,?) ON "
                "CONFLICT(tenant_id,nexudus_invoice_id) DO UPDATE SET state=excluded.state, "
                "amount=COALESCE(excluded.amount, payments.amount), "
                "paid_on=COALESCE(excluded.paid_on, payments.paid_on), "
                "messages=excluded.messages, updated_at=excluded.updated_at",
                (
                    tenant_id,
                    int(nexudus_invoice_id),
                    invoice_number,
                    state,
                    str(amount) if amount is not None else None,
                    paid_on,
                    xero_invoice_id,
                    json.dumps(messages or []),
                    _now(),
                ),
            )

    # ---- allocations (credit notes to their original invoices) --------------------------------
    ALLOCATION_COLUMNS: ClassVar[list[str]] = [
        "id",
        "tenant_id",
        "idempotency_key",
        "credit_note_id",
        "credit_note_number",
        "invoice_id",
        "invoice_number",
        "currency",
        "amount",
        "attempt",
        "seen_before",
        "state",
        "messages",
        "created_at",
        "updated_at",
    ]

    def allocations(self, tenant_id: str) -> pd.DataFrame:
        """Every allocation attempt of an organisation, oldest first, amounts as Decimal."""
        frame = self._select(
            "SELECT * FROM allocations WHERE tenant_id=? ORDER BY id",
            (tenant_id,),
            self.ALLOCATION_COLUMNS,
        )
        frame["amount"] = frame["amount"].map(Decimal)
        return frame

    def record_allocation_intent(
        self,
        tenant_id: str,
        idempotency_key: str,
        *,
        credit_note_id: str,
        invoice_id: str,
        amount: Decimal,
        attempt: int,
        seen_before: int = 0,
        credit_note_number: str | None = None,
        invoice_number: str | None = None,
        currency: str | None = None,
    ) -> None:
        """Before an allocation is sent: it is 'sending' under its Idempotency-Key.

        ``seen_before``: how many allocations of this credit note to this invoice, of this
        amount, Xero already showed; one more found later means this one was saved.
        """
        now = _now()
        with self._tx() as db:
            db.execute(
                "INSERT INTO allocations(tenant_id,idempotency_key,credit_note_id,"
                "credit_note_number,invoice_id,invoice_number,currency,amount,attempt,"
                "seen_before,state,created_at,updated_at) "
                "VALUES(?,?,?,?,?,?,?,?,?,?,'sending',?,?) "
                "ON CONFLICT(tenant_id,idempotency_key) DO UPDATE SET state='sending', "
                "updated_at=excluded.updated_at",
                (
                    tenant_id,
                    idempotency_key,
                    credit_note_id,
                    credit_note_number,
                    invoice_id,
                    invoice_number,
                    currency,
                    str(amount),
                    int(attempt),
                    int(seen_before),
                    now,
                    now,
                ),
            )

    def record_allocation_outcome(
        self,
        tenant_id: str,
        idempotency_key: str,
        state: str,
        *,
        messages: list[str] | None = None,
    ) -> None:
        """After the answer: the allocation is 'allocated' or 'failed', with Xero's messages."""
        with self._tx() as db:
            db.execute(
                "UPDATE allocations SET state=?, messages=?, updated_at=? WHERE tenant_id=? AND "
                "idempotency_key=?",
                (state, json.dumps(messages or []), _now(), tenant_id, idempotency_key),
            )

    def unfinished_allocations(self, tenant_id: str) -> pd.DataFrame:
        """Allocation intents with no outcome: what a crash or a dropped connection left."""
        frame = self.allocations(tenant_id)
        return frame[frame["state"] == "sending"].reset_index(drop=True)

    def allocated_amounts(self, tenant_id: str) -> dict[str, Decimal]:
        """Xero credit note id -> the sum of its allocations recorded as made."""
        frame = self.allocations(tenant_id)
        done = frame[frame["state"] == "allocated"]
        out: dict[str, Decimal] = {}
        for note, amount in zip(done["credit_note_id"], done["amount"], strict=True):
            out[str(note)] = out.get(str(note), Decimal(0)) + amount
        return out

    # ---- watermarks -------------------------------------------------------------------------
    def watermark(self, tenant_id: str, kind: str) -> datetime | None:
        """When the last successful sync of ``kind`` for an organisation was, or None if never."""
        row = self._db.execute(
            "SELECT at FROM watermarks WHERE tenant_id=? AND kind=?", (tenant_id, kind)
        ).fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    def set_watermark(self, tenant_id: str, kind: str, at: datetime) -> None:
        """Set the last successful sync of ``kind`` for an organisation to ``at``."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO watermarks(tenant_id,kind,at) VALUES(?,?,?) "
                "ON CONFLICT(tenant_id,kind) DO UPDATE SET at=excluded.at",
                (tenant_id, kind, at.isoformat()),
            )

    # ---- Xero's state, as last seen ------------------------------------------------------------
    XERO_STATE_COLUMNS: ClassVar[list[str]] = [
        "xero_id",
        "number",
        "kind",
        "status",
        "total",
        "amount_due",
        "amount_paid",
        "amount_credited",
        "fully_paid_on",
        "updated_utc",
        "created_by_recon",
    ]

    def update_xero_state(
        self, tenant_id: str, rows: Iterable[dict[str, Any]], *, complete: bool = False
    ) -> int:
        """Upsert invoices as Xero last showed them; ``created_by_recon`` only ever turns on.

        ``complete``: the rows are everything Xero has, so invoices not among them are forgotten.
        """
        n = 0
        rows = list(rows)
        with self._tx() as db:
            if complete:
                db.execute(
                    "DELETE FROM xero_state WHERE tenant_id=? AND kind='invoice'", (tenant_id,)
                )
            for r in rows:
                db.execute(
                    "INSERT INTO xero_state(tenant_id,xero_id,number,kind,status,total,amount_due,"
                    "amount_paid,amount_credited,fully_paid_on,updated_utc,created_by_recon) "
                    "VALUES(?,?,?,?,?,?,?,?,?,?,?,?) ON "
                    "CONFLICT(tenant_id,xero_id) DO UPDATE SET number=excluded.number, "
                    "status=excluded.status, total=excluded.total, "
                    "amount_due=excluded.amount_due, amount_paid=excluded.amount_paid, "
                    "amount_credited=excluded.amount_credited, "
                    "fully_paid_on=excluded.fully_paid_on, updated_utc=excluded.updated_utc, "
                    "created_by_recon=MAX(xero_state.created_by_recon, excluded.created_by_recon)",
                    (
                        tenant_id,
                        r["xero_id"],
                        r.get("number"),
                        r.get("kind", "invoice"),
                        r.get("status"),
                        *(
                            str(r[k]) if r.get(k) is not None else None
                            for k in ("total", "amount_due", "amount_paid", "amount_credited")
                        ),
                        r.get("fully_paid_on"),
                        r.get("updated_utc"),
                        int(bool(r.get("created_by_recon"))),
                    ),
                )
                n += 1
        return n

    def xero_state(self, tenant_id: str) -> pd.DataFrame:
        """An organisation's records as Xero last showed them (``XERO_STATE_COLUMNS``), money as
        Decimal."""
        frame = self._select(
            "SELECT * FROM xero_state WHERE tenant_id=?",
            (tenant_id,),
            ["tenant_id", *self.XERO_STATE_COLUMNS],
        )
        for col in ("total", "amount_due", "amount_paid", "amount_credited"):
            frame[col] = frame[col].map(lambda v: Decimal(v) if v not in (None, "") else None)
        return frame

    def update_nexudus_state(self, tenant_id: str, frame: pd.DataFrame) -> int:
        """Upsert Nexudus invoices as last read (columns Id, TotalAmount, Paid, PaidAmount, Void,
        DueDate, UpdatedOn)."""
        rows = [
            (
                tenant_id,
                cell_int(r["Id"]),
                str(r["TotalAmount"]),
                int(bool(r["Paid"])),
                str(r["PaidAmount"] or 0),
                int(bool(r["Void"])),
                None if is_missing(r["DueDate"]) else pd.Timestamp(r["DueDate"]).isoformat(),
                None if is_missing(r["UpdatedOn"]) else pd.Timestamp(r["UpdatedOn"]).isoformat(),
                optional_int(r["BusinessId"]),
            )
            for r in records(frame)
        ]
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO nexudus_state(tenant_id,nexudus_invoice_id,total,paid,"
                "paid_amount,void,due_date,updated_on,business_id) VALUES(?,?,?,?,?,?,?,?,?)",
                rows,
            )
        return len(rows)

    def nexudus_state(self, tenant_id: str) -> pd.DataFrame:
        """An organisation's Nexudus invoices as last read, one row each, money as Decimal."""
        frame = self._select(
            "SELECT * FROM nexudus_state WHERE tenant_id=?",
            (tenant_id,),
            [
                "tenant_id",
                "nexudus_invoice_id",
                "total",
                "paid",
                "paid_amount",
                "void",
                "due_date",
                "updated_on",
                "business_id",
            ],
        )
        for col in ("total", "paid_amount"):
            frame[col] = frame[col].map(lambda v: Decimal(v) if v not in (None, "") else None)
        return frame

    def forget_nexudus_state(self, tenant_id: str, nexudus_invoice_ids: Iterable[int]) -> int:
        """Drop invoices Nexudus no longer has from an organisation's Nexudus state."""
        ids = [(tenant_id, int(i)) for i in nexudus_invoice_ids]
        with self._tx() as db:
            db.executemany(
                "DELETE FROM nexudus_state WHERE tenant_id=? AND nexudus_invoice_id=?", ids
            )
        return len(ids)

    def event_states(self, tenant_id: str, system: str, action: str) -> pd.DataFrame:
        """The latest audit line of ``action`` for each subject of an organisation: its subject,
        outcome, detail (decoded JSON) and time; one row per subject."""
        frame = self._select(
            "SELECT e.subject, e.outcome, e.detail, e.at FROM events e JOIN (SELECT subject, "
            "MAX(id) AS id FROM events WHERE tenant_id=? AND system=? AND action=? "
            "GROUP BY subject) last ON e.id = last.id ORDER BY e.id",
            (tenant_id, system, action),
            ["subject", "outcome", "detail", "at"],
        )
        frame["detail"] = frame["detail"].map(lambda v: json.loads(v) if v else {})
        return frame

    def events(self) -> pd.DataFrame:
        """Every audit line, in the order written."""
        return self._select(
            "SELECT * FROM events ORDER BY id",
            (),
            ["id", "at", "system", "action", "tenant_id", "subject", "outcome", "detail"],
        )
