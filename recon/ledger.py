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
- ``bindings`` (version 3): the Xero organisation (id, name, base currency) each Nexudus location
  books into, as a person confirmed it (who, when, how); one row per location (recon.bindings).
- version 4, what lets a status sync cost what changed: ``status_touched``, one line per write to
  ``transfers``, ``xero_state`` or ``nexudus_state`` (written by triggers, so no writer can forget
  it: the keys written, an increasing id); ``status_syncs``, per organisation and location, the
  last journal line and event a sync took in and how many transferred invoices it compared;
  ``status_members``, those invoices, each flagged ``listed`` when that sync listed it (a
  difference, or still owing in Xero); ``status_unknown``, the Xero records it reported as
  unknown to the ledger. Indexes on ``transfers.xero_id``, the events' action and
  ``nexudus_state.business_id``.

One writer at a time: ``Ledger.writer(tenant_id, purpose)`` is a lock per ledger file and
Xero organisation (``fcntl.flock``, or ``msvcrt.locking`` on Windows, on a ``.lock`` file beside
the ledger, naming its holder), across processes and threads, waiting a bounded time
(``WRITER_WAIT_SECONDS``) before it refuses with who holds it; ``push`` and ``apply_paid`` take
it. State changes are compare-and-set (``claim_transfers``, ``record_outcome(s)(expected=)``,
``claim_payment``, ``record_payment(expected=)``): a row another run moved on meanwhile keeps
that run's record, so nothing is sent twice or recorded failed after it succeeded.

The file carries its layout's version in ``PRAGMA user_version`` (``SCHEMA_VERSION``),
stamped when the file is created. A file from before versions were stamped (0) is
brought up to date when opened: any table it lacks is created, any column added since
(``LATE_COLUMNS``) is added, and it is stamped. A file stamped with a newer version than
this code knows is refused (``StepError``): a newer recon wrote it. Every INSERT names
its columns, so a table whose columns sit in another order is written correctly.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from recon.errors import StepError
from recon.values import cell_int, is_missing, optional_int, records

__all__ = ["SCHEMA_VERSION", "WRITER_WAIT_SECONDS", "Ledger"]

# The layout SCHEMA describes. Raise it, and add a step to _MIGRATIONS, when the layout changes.
SCHEMA_VERSION = 4

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


# Version 3: which Xero organisation each Nexudus location books into, confirmed by a person.
BINDINGS_SCHEMA = """
CREATE TABLE IF NOT EXISTS bindings(
    business_id INTEGER NOT NULL PRIMARY KEY, location TEXT NOT NULL, tenant_id TEXT NOT NULL,
    organisation_name TEXT NOT NULL, base_currency TEXT, confirmed_by TEXT NOT NULL,
    confirmed_at TEXT NOT NULL, source TEXT NOT NULL);
"""


def _from_version_2(db: sqlite3.Connection) -> None:
    """Version 2 to 3: the ``bindings`` table (a location's confirmed Xero organisation)."""
    for statement in _schema_statements(BINDINGS_SCHEMA):
        db.execute(statement)


# Version 4: the journal of writes a status sync reads to diff only what changed, and what the
# last sync of each location listed. Statements one by one (a trigger body holds semicolons).
_TOUCH = "INSERT INTO status_touched(tenant_id,nexudus_invoice_id,xero_id) "
STATUS_STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS status_touched(
    id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, nexudus_invoice_id INTEGER,
    xero_id TEXT)""",
    """CREATE TABLE IF NOT EXISTS status_syncs(
    tenant_id TEXT NOT NULL, business_id INTEGER NOT NULL, touched_id INTEGER NOT NULL,
    event_id INTEGER NOT NULL, transferred INTEGER NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY(tenant_id, business_id))""",
    """CREATE TABLE IF NOT EXISTS status_members(
    tenant_id TEXT NOT NULL, business_id INTEGER NOT NULL, nexudus_invoice_id INTEGER NOT NULL,
    listed INTEGER NOT NULL, PRIMARY KEY(tenant_id, business_id, nexudus_invoice_id))""",
    """CREATE INDEX IF NOT EXISTS status_members_listed
    ON status_members(tenant_id, business_id, listed)""",
    """CREATE TABLE IF NOT EXISTS status_unknown(
    tenant_id TEXT NOT NULL, business_id INTEGER NOT NULL, xero_id TEXT NOT NULL,
    PRIMARY KEY(tenant_id, business_id, xero_id))""",
    "CREATE INDEX IF NOT EXISTS transfers_xero_id ON transfers(tenant_id, xero_id)",
    "CREATE INDEX IF NOT EXISTS events_action ON events(tenant_id, system, action)",
    "CREATE INDEX IF NOT EXISTS nexudus_state_business ON nexudus_state(tenant_id, business_id)",
    # transfers: the columns a status diff reads (not written_back, messages, attempts...).
    f"""CREATE TRIGGER IF NOT EXISTS transfers_touched_insert AFTER INSERT ON transfers BEGIN
    {_TOUCH}VALUES(NEW.tenant_id, NEW.nexudus_invoice_id, NEW.xero_id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS transfers_touched_update AFTER UPDATE OF tenant_id,
    nexudus_invoice_id, invoice_number, kind, state, xero_id, currency, nexudus_total, xero_total
    ON transfers BEGIN
    {_TOUCH}VALUES(NEW.tenant_id, NEW.nexudus_invoice_id, NEW.xero_id);
    {_TOUCH}SELECT OLD.tenant_id, OLD.nexudus_invoice_id, OLD.xero_id
    WHERE OLD.xero_id IS NOT NEW.xero_id OR OLD.tenant_id IS NOT NEW.tenant_id
    OR OLD.nexudus_invoice_id IS NOT NEW.nexudus_invoice_id; END""",
    f"""CREATE TRIGGER IF NOT EXISTS transfers_touched_delete AFTER DELETE ON transfers BEGIN
    {_TOUCH}VALUES(OLD.tenant_id, OLD.nexudus_invoice_id, OLD.xero_id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS xero_state_touched_insert AFTER INSERT ON xero_state BEGIN
    {_TOUCH}VALUES(NEW.tenant_id, NULL, NEW.xero_id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS xero_state_touched_update AFTER UPDATE ON xero_state BEGIN
    {_TOUCH}VALUES(NEW.tenant_id, NULL, NEW.xero_id);
    {_TOUCH}SELECT OLD.tenant_id, NULL, OLD.xero_id
    WHERE OLD.xero_id IS NOT NEW.xero_id OR OLD.tenant_id IS NOT NEW.tenant_id; END""",
    f"""CREATE TRIGGER IF NOT EXISTS xero_state_touched_delete AFTER DELETE ON xero_state BEGIN
    {_TOUCH}VALUES(OLD.tenant_id, NULL, OLD.xero_id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS nexudus_state_touched_insert AFTER INSERT ON nexudus_state
    BEGIN {_TOUCH}VALUES(NEW.tenant_id, NEW.nexudus_invoice_id, NULL); END""",
    f"""CREATE TRIGGER IF NOT EXISTS nexudus_state_touched_update AFTER UPDATE ON nexudus_state
    BEGIN {_TOUCH}VALUES(NEW.tenant_id, NEW.nexudus_invoice_id, NULL);
    {_TOUCH}SELECT OLD.tenant_id, OLD.nexudus_invoice_id, NULL
    WHERE OLD.nexudus_invoice_id IS NOT NEW.nexudus_invoice_id
    OR OLD.tenant_id IS NOT NEW.tenant_id; END""",
    f"""CREATE TRIGGER IF NOT EXISTS nexudus_state_touched_delete AFTER DELETE ON nexudus_state
    BEGIN {_TOUCH}VALUES(OLD.tenant_id, OLD.nexudus_invoice_id, NULL); END""",
)


def _from_version_3(db: sqlite3.Connection) -> None:
    """Version 3 to 4: the status sync's journal of writes and what its last run listed."""
    for statement in STATUS_STATEMENTS:
        db.execute(statement)


# _MIGRATIONS[v] brings a file at version v to v + 1.
_MIGRATIONS = (_from_version_0, _from_version_1, _from_version_2, _from_version_3)
assert len(_MIGRATIONS) == SCHEMA_VERSION


def _now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="milliseconds")


# How much of the file SQLite may map into memory, and its page cache (KiB): reads by key from a
# ledger of a million invoices touch pages all over the file.
MMAP_BYTES = 1 << 30
CACHE_KIB = 65_536
# Ids per ``IN (...)`` query: under SQLite's old limit of 999 bound values, with room for the rest.
ID_CHUNK = 900
# Above this many ids, a filtered read reads the organisation's rows whole and keeps those asked
# for: one scan is cheaper than so many lookups.
WHOLE_READ_ABOVE = 100_000


def _places(units: int) -> int:
    """The decimal places of a whole unit (``units`` = 10, 100, 10_000...)."""
    places = len(str(units)) - 1
    if units < 1 or 10**places != units:
        raise ValueError(f"units must be a power of ten, not {units}")
    return places


def _with_money(
    frame: pd.DataFrame, money: tuple[str, ...], parse: Any, units: int | None
) -> pd.DataFrame:
    """``frame`` with each ``money`` column's text as ``parse`` gives it (Decimal, or None), and
    with ``units`` (a power of ten) ``<money>_units`` (int64, blanks 0) and ``<money>_known``
    beside it; each distinct text is read once (a million amounts hold far fewer distinct ones).

    Raises ``ValueError`` for an amount with more decimals than ``units`` keeps, which no
    whole-unit comparison could treat exactly."""
    places = None if units is None else _places(units)
    extra: dict[str, Any] = {}
    for column in money:
        codes, distinct = pd.factorize(frame[column].astype(object), use_na_sentinel=True)
        amounts = [*(parse(v) for v in distinct), parse(None)]
        parsed = np.empty(len(amounts), dtype=object)
        parsed[:] = amounts
        extra[column] = pd.Series(parsed[codes], index=frame.index, dtype=object)
        if places is None:
            continue
        whole = np.zeros(len(amounts), dtype=np.int64)
        known = np.zeros(len(amounts), dtype=bool)
        for position, amount in enumerate(amounts):
            if amount is None:
                continue
            scaled = amount.scaleb(places)
            if scaled != scaled.to_integral_value():
                raise ValueError(f"an amount has more than {places} decimal places in {column!r}")
            whole[position], known[position] = int(scaled), True
        extra[f"{column}_units"] = whole[codes]
        extra[f"{column}_known"] = known[codes]
    return frame.assign(**extra)


def _decimal_or_none(value: object) -> Decimal | None:
    return Decimal(str(value)) if value not in (None, "") else None


def _stored_amount(value: object) -> Decimal | None:
    """An amount column's text as Decimal; None when blank or not a number (a row written by an
    older recon from a malformed invoice must not make the whole table unreadable)."""
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


# ---- one writer at a time: a lock per ledger file and Xero organisation -------------------------
# How long a push or an apply waits for another run's hold on the same ledger and organisation
# before it gives up (and says who holds it): a scheduled run waiting for an accountant's click.
WRITER_WAIT_SECONDS = 120.0
# Between two tries for a lock another process holds (grows to the second value).
_WRITER_POLL_SECONDS = (0.02, 0.5)


class _WriterHold:
    """This process's hold on one lock file: threads queue on ``turn``; the holding thread may
    enter again (``depth``). flock locks belong to an open file, so the file is opened once per
    process hold, never by a second thread of a process that holds it."""

    def __init__(self) -> None:
        self.turn = threading.Lock()
        self.owner: int | None = None  # the holding thread's ident; set and cleared by it only
        self.depth = 0


_WRITER_HOLDS: dict[str, _WriterHold] = {}
_WRITER_HOLDS_GUARD = threading.Lock()


def _try_lock_file(fd: int) -> bool:
    """Take the lock of an open lock file without waiting; whether it was taken."""
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock_file(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


# The holder's description sits after the first byte: the byte Windows locks cannot be read by
# another process while it is held.
_HOLDER_OFFSET = 1


def _write_holder(fd: int, purpose: str) -> None:
    text = json.dumps(
        {
            "purpose": purpose,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": _now(),
        }
    )
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b" " + text.encode("utf-8"))
    os.fsync(fd)


def _read_holder(path: Path) -> str:
    """Who holds the lock at ``path``, in words (as the holder wrote it when it took it)."""
    try:
        with path.open("rb") as fh:
            fh.seek(_HOLDER_OFFSET)
            found = json.loads(fh.read().decode("utf-8") or "{}")
    except (OSError, ValueError):
        found = {}
    if not isinstance(found, dict) or not found.get("pid"):
        return "another recon run"
    return (
        f"{found.get('purpose') or 'a recon run'} (process {found.get('pid')} on "
        f"{found.get('host') or 'this machine'}, since {found.get('since') or 'a moment ago'})"
    )


def _busy(path: Path, waited: float) -> StepError:
    return StepError(
        f"another recon run is writing through this ledger to this Xero organisation: "
        f"{_read_holder(path)}; waited {waited:.0f} s for it (lock file {path}). Nothing was sent "
        "by this run; run it again once the other has finished (the ledger keeps anything from "
        "being written twice)."
    )


@contextmanager
def _hold_writer(path: Path, purpose: str, wait: float) -> Iterator[None]:
    """Hold the lock file ``path`` against every other process and thread, waiting up to ``wait``
    seconds for it (``StepError`` naming the holder after that); re-entrant within a thread."""
    key = str(path.resolve())
    with _WRITER_HOLDS_GUARD:
        hold = _WRITER_HOLDS.setdefault(key, _WriterHold())
    me = threading.get_ident()
    if hold.owner == me:
        hold.depth += 1
        try:
            yield
        finally:
            hold.depth -= 1
        return
    started = time.monotonic()
    if not hold.turn.acquire(timeout=max(wait, 0.0)):
        raise _busy(path, time.monotonic() - started)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            pause = _WRITER_POLL_SECONDS[0]
            while not _try_lock_file(fd):
                waited = time.monotonic() - started
                if waited >= wait:
                    raise _busy(path, waited)
                time.sleep(min(pause, max(wait - waited, 0.0)))
                pause = min(pause * 2, _WRITER_POLL_SECONDS[1])
            try:
                _write_holder(fd, purpose)
                hold.owner, hold.depth = me, 1
                try:
                    yield
                finally:
                    hold.owner, hold.depth = None, 0
                    os.ftruncate(fd, 0)
            finally:
                _unlock_file(fd)
        finally:
            os.close(fd)
    finally:
        hold.turn.release()


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
            # A sync reads tens of thousands of rows by key from a file of a million: pages read
            # through a memory map and a larger page cache cost far less than a read call each.
            self._db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
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

    # ---- one writer at a time ---------------------------------------------------------
    def writer_lock_path(self, tenant_id: str) -> Path:
        """The lock file of this ledger and Xero organisation, beside the ledger file."""
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(tenant_id))[:100] or "_"
        return self.path.with_name(f"{self.path.name}.{safe}.lock")

    @contextmanager
    def writer(self, tenant_id: str, purpose: str, *, wait: float | None = None) -> Iterator[None]:
        """Hold the one-writer lock of this ledger file and Xero organisation: one push or apply
        at a time, across processes (a scheduled run and a notebook) and threads.

        Waits up to ``wait`` seconds (default ``WRITER_WAIT_SECONDS``) for another holder, then
        raises ``StepError`` saying who holds it (``purpose``, process, host, since when).
        Re-entrant within a thread; released on leaving, and by the system if the process dies.
        """
        with _hold_writer(
            self.writer_lock_path(tenant_id),
            purpose,
            WRITER_WAIT_SECONDS if wait is None else wait,
        ):
            yield

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

    def _tuples(self, sql: str, args: tuple[object, ...], columns: list[str]) -> pd.DataFrame:
        """The rows of a query naming each of ``columns``, in that order, as a DataFrame."""
        cursor = self._db.cursor()
        cursor.row_factory = None
        rows = cursor.execute(sql, args).fetchall()
        return pd.DataFrame.from_records(rows, columns=columns, coerce_float=False)

    def _select_where(
        self,
        table: str,
        tenant_id: str,
        columns: list[str],
        *,
        key: str | None = None,
        wanted: Iterable[object] | None = None,
        order: str = "",
    ) -> pd.DataFrame:
        """An organisation's rows of ``table`` with ``columns``; only those whose ``key`` is among
        ``wanted`` when given (``IN`` in chunks of ``ID_CHUNK``, or one read for many)."""
        sql = f"SELECT {','.join(columns)} FROM {table} WHERE tenant_id=?"
        # Sorted: neighbouring keys share pages, so each page is read once.
        keys = None if wanted is None else sorted(set(wanted))  # type: ignore[type-var]
        if keys is None or key is None or len(keys) > WHOLE_READ_ABOVE:
            frame = self._tuples(sql + order, (tenant_id,), columns)
            if keys is not None and key is not None:
                frame = frame[frame[key].isin(keys)].reset_index(drop=True)
            return frame
        parts = [
            self._tuples(
                f"{sql} AND {key} IN ({','.join('?' * len(chunk))})", (tenant_id, *chunk), columns
            )
            for chunk in (keys[i : i + ID_CHUNK] for i in range(0, len(keys), ID_CHUNK))
        ]
        if not parts:
            return pd.DataFrame(columns=columns)
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    # ---- transfers ------------------------------------------------------------------
    TRANSFER_COLUMNS: ClassVar[list[str]] = [
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
    ]

    def transfers(
        self,
        tenant_id: str,
        *,
        nexudus_invoice_ids: Iterable[int] | None = None,
        xero_ids: Iterable[str] | None = None,
        units: int | None = None,
    ) -> pd.DataFrame:
        """Every transfer row of an organisation, by invoice number, money as Decimal.

        ``nexudus_invoice_ids`` / ``xero_ids``: only the rows of these invoices (both given:
        rows matching both). ``units`` (a power of ten, e.g. 10_000): also each amount as whole
        units, ``nexudus_total_units`` and ``xero_total_units`` (int64, blanks 0), with
        ``<amount>_known`` saying which were given.
        """
        if nexudus_invoice_ids is None and xero_ids is None:
            frame = self._select_where(
                "transfers",
                tenant_id,
                self.TRANSFER_COLUMNS,
                order=" ORDER BY invoice_number",
            )
        else:
            by_id = nexudus_invoice_ids is not None
            frame = self._select_where(
                "transfers",
                tenant_id,
                self.TRANSFER_COLUMNS,
                key="nexudus_invoice_id" if by_id else "xero_id",
                wanted=(
                    [int(i) for i in nexudus_invoice_ids]
                    if nexudus_invoice_ids is not None
                    else [str(x) for x in xero_ids or ()]
                ),
            )
            if by_id and xero_ids is not None:
                frame = frame[frame["xero_id"].isin(set(xero_ids))]
            frame = frame.sort_values("invoice_number", kind="stable").reset_index(drop=True)
        return _with_money(frame, ("nexudus_total", "xero_total"), _stored_amount, units)

    TRANSFER_KEYS: ClassVar[list[str]] = [
        "nexudus_invoice_id",
        "invoice_number",
        "kind",
        "state",
        "xero_id",
    ]

    def transfer_keys(self, tenant_id: str, *, xero_ids: Iterable[str]) -> pd.DataFrame:
        """The transfer rows of an organisation that name these Xero ids, without their money
        (``TRANSFER_KEYS``: which invoice, its kind and state), in no particular order."""
        return self._select_where(
            "transfers",
            tenant_id,
            self.TRANSFER_KEYS,
            key="xero_id",
            wanted=[str(x) for x in xero_ids],
        )

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
        expected: str | None = None,
    ) -> bool:
        """After the answer: created / failed / held, with Xero's id, total and messages.

        ``expected``: change the row only while its state is this one (compare-and-set, e.g.
        ``"sending"``: only the intent this run wrote). Returns whether the row was changed.
        """
        changed = self.record_outcomes(
            tenant_id,
            [
                {
                    "nexudus_invoice_id": nexudus_invoice_id,
                    "state": state,
                    "xero_id": xero_id,
                    "xero_total": xero_total,
                    "messages": messages,
                }
            ],
            expected=expected,
        )
        return bool(changed)

    def record_outcomes(
        self,
        tenant_id: str,
        outcomes: Iterable[dict[str, Any]],
        *,
        expected: str | None = None,
    ) -> set[int]:
        """Several outcomes in one transaction (one fsync per batch, not per invoice).

        ``expected``: change each row only while its state is this one (compare-and-set); a row
        another run has moved on meanwhile keeps what that run recorded. Returns the Nexudus
        invoice ids whose rows were changed.
        """
        now = _now()
        changed: set[int] = set()
        guard = "" if expected is None else " AND state=?"
        with self._tx() as db:
            for o in outcomes:
                invoice_id = int(o["nexudus_invoice_id"])
                cursor = db.execute(
                    "UPDATE transfers SET state=?, xero_id=COALESCE(?, xero_id), "
                    "xero_total=COALESCE(?, xero_total), messages=?, updated_at=? WHERE "
                    f"tenant_id=? AND nexudus_invoice_id=?{guard}",
                    (
                        o["state"],
                        o.get("xero_id"),
                        str(o["xero_total"]) if o.get("xero_total") is not None else None,
                        json.dumps(o.get("messages") or []),
                        now,
                        tenant_id,
                        invoice_id,
                        *(() if expected is None else (expected,)),
                    ),
                )
                if cursor.rowcount:
                    changed.add(invoice_id)
        return changed

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

    def transferred_ids(self, tenant_id: str, kind: str | None = None) -> set[int]:
        """The Nexudus invoice ids an organisation's transfers created in Xero (only those of
        ``kind``, ``"invoice"`` or ``"credit_note"``, when given)."""
        rows = self._db.execute(
            "SELECT nexudus_invoice_id FROM transfers WHERE tenant_id=? AND state='created'"
            + ("" if kind is None else " AND kind=?"),
            (tenant_id,) if kind is None else (tenant_id, kind),
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

    # States from which an invoice may be sent (again): Xero answered a refusal (``failed``, and
    # it holds no invoice for it: no Xero id), or never answered and does not hold it (``unsent``).
    SENDABLE_STATES: ClassVar[tuple[str, ...]] = ("failed", "unsent", "held")

    def claim_transfers(
        self, tenant_id: str, batch_key: str, invoices: Iterable[dict[str, Any]]
    ) -> set[int]:
        """Before a batch is sent: each invoice never recorded, or recorded in a
        ``SENDABLE_STATES`` state without a Xero id, becomes 'sending' as attempt
        ``invoice["attempt"]`` under this batch key (compare-and-set, one transaction).

        Returns the Nexudus invoice ids claimed. One not claimed is created, or being sent by
        another run, or in Xero already (a failed row with a Xero id): it must not be sent.
        """
        now = _now()
        allowed = ",".join("?" * len(self.SENDABLE_STATES))
        claimed: set[int] = set()
        with self._tx() as db:
            for inv in invoices:
                invoice_id = int(inv["nexudus_invoice_id"])
                cursor = db.execute(
                    "INSERT INTO transfers(tenant_id,nexudus_invoice_id,invoice_number,kind,state,"
                    "batch_key,currency,nexudus_total,attempts,created_at,updated_at) "
                    "VALUES(?,?,?,?,'sending',?,?,?,?,?,?) "
                    "ON CONFLICT(tenant_id,nexudus_invoice_id) DO UPDATE SET state='sending', "
                    "batch_key=excluded.batch_key, attempts=excluded.attempts, "
                    "updated_at=excluded.updated_at "
                    f"WHERE transfers.state IN ({allowed}) AND transfers.xero_id IS NULL",
                    (
                        tenant_id,
                        invoice_id,
                        str(inv["invoice_number"]),
                        inv.get("kind", "invoice"),
                        batch_key,
                        inv.get("currency"),
                        str(inv.get("nexudus_total", "")),
                        int(inv["attempt"]),
                        now,
                        now,
                        *self.SENDABLE_STATES,
                    ),
                )
                if cursor.rowcount:
                    claimed.add(invoice_id)
        return claimed

    def transfer_states(
        self, tenant_id: str, nexudus_invoice_ids: Iterable[int]
    ) -> dict[int, tuple[str, str | None]]:
        """The ledger state and Xero id of each of these invoices that has a transfer row."""
        wanted = [int(i) for i in nexudus_invoice_ids]
        found: dict[int, tuple[str, str | None]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._db.execute(
                "SELECT nexudus_invoice_id, state, xero_id FROM transfers WHERE tenant_id=? AND "
                f"nexudus_invoice_id IN ({','.join('?' * len(chunk))})",
                (tenant_id, *chunk),
            )
            found.update({int(r[0]): (str(r[1]), r[2]) for r in rows})
        return found

    # ---- bindings (location -> Xero organisation, confirmed by a person) ----------------
    BINDING_COLUMNS: ClassVar[list[str]] = [
        "business_id",
        "location",
        "tenant_id",
        "organisation_name",
        "base_currency",
        "confirmed_by",
        "confirmed_at",
        "source",
    ]

    def binding(self, business_id: int) -> dict[str, Any] | None:
        """The recorded binding of a Nexudus location (``BINDING_COLUMNS``), or None."""
        row = self._db.execute(
            "SELECT * FROM bindings WHERE business_id=?", (int(business_id),)
        ).fetchone()
        return dict(row) if row else None

    def bindings(self) -> pd.DataFrame:
        """Every recorded binding, by location name."""
        return self._select(
            "SELECT * FROM bindings ORDER BY location", (), list(self.BINDING_COLUMNS)
        )

    def record_binding(
        self,
        business_id: int,
        location: str,
        tenant_id: str,
        organisation_name: str,
        base_currency: str | None,
        *,
        confirmed_by: str,
        source: str,
        replaces: str | None = None,
    ) -> bool:
        """Record that a location books into an organisation; True when recorded.

        Compare-and-set: a first binding is recorded only while the location has none, a
        re-binding (``replaces``: the tenant id it moves away from) only while the location is
        still bound there. An audit line goes with it, in the same transaction.
        """
        now = _now()
        with self._tx() as db:
            if replaces is None:
                cursor = db.execute(
                    "INSERT INTO bindings(business_id,location,tenant_id,organisation_name,"
                    "base_currency,confirmed_by,confirmed_at,source) VALUES(?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(business_id) DO NOTHING",
                    (
                        int(business_id),
                        location,
                        tenant_id,
                        organisation_name,
                        base_currency,
                        confirmed_by,
                        now,
                        source,
                    ),
                )
            else:
                cursor = db.execute(
                    "UPDATE bindings SET location=?, tenant_id=?, organisation_name=?, "
                    "base_currency=?, confirmed_by=?, confirmed_at=?, source=? WHERE "
                    "business_id=? AND tenant_id=?",
                    (
                        location,
                        tenant_id,
                        organisation_name,
                        base_currency,
                        confirmed_by,
                        now,
                        source,
                        int(business_id),
                        replaces,
                    ),
                )
            recorded = cursor.rowcount == 1
            if recorded:
                db.execute(
                    "INSERT INTO events(at,system,action,tenant_id,subject,outcome,detail) "
                    "VALUES(?,?,?,?,?,?,?)",
                    (
                        now,
                        "recon",
                        "rebind location" if replaces else "bind location",
                        tenant_id,
                        location,
                        "recorded",
                        json.dumps(
                            {
                                "business_id": int(business_id),
                                "organisation": organisation_name,
                                "base_currency": base_currency,
                                "confirmed_by": confirmed_by,
                                "source": source,
                                "replaces": replaces,
                            }
                        ),
                    ),
                )
        return recorded

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
        expected: str | None = None,
    ) -> bool:
        """Insert or update an invoice's payment row; a known amount or date stays if not given.

        ``expected``: only update the row, and only while its state is this one
        (compare-and-set: e.g. settle only the ``"sending"`` intent this run wrote, never a
        payment another run has recorded ``applied`` meanwhile). Returns whether it was written.
        """
        values = (
            state,
            str(amount) if amount is not None else None,
            paid_on,
            xero_invoice_id,
            json.dumps(messages or []),
            _now(),
        )
        with self._tx() as db:
            if expected is not None:
                cursor = db.execute(
                    "UPDATE payments SET state=?, amount=COALESCE(?, amount), "
                    "paid_on=COALESCE(?, paid_on), "
                    "xero_invoice_id=COALESCE(?, xero_invoice_id), messages=?, updated_at=? "
                    "WHERE tenant_id=? AND nexudus_invoice_id=? AND state=?",
                    (*values, tenant_id, int(nexudus_invoice_id), expected),
                )
                return bool(cursor.rowcount)
            db.execute(
                "INSERT INTO payments(tenant_id,nexudus_invoice_id,invoice_number,state,amount,"
                "paid_on,xero_invoice_id,messages,updated_at) VALUES(?,?,?,?,?,?,?,?,?) ON "
                "CONFLICT(tenant_id,nexudus_invoice_id) DO UPDATE SET state=excluded.state, "
                "amount=COALESCE(excluded.amount, payments.amount), "
                "paid_on=COALESCE(excluded.paid_on, payments.paid_on), "
                "messages=excluded.messages, updated_at=excluded.updated_at",
                (tenant_id, int(nexudus_invoice_id), invoice_number, *values),
            )
            return True

    # Payment states a new payment may not be sent from: one is in flight, or done.
    UNCLAIMABLE_PAYMENT_STATES: ClassVar[tuple[str, ...]] = ("sending", "applied")

    def claim_payment(
        self,
        tenant_id: str,
        nexudus_invoice_id: int,
        invoice_number: str,
        *,
        amount: Decimal,
        paid_on: str,
        xero_invoice_id: str | None = None,
    ) -> bool:
        """Before a payment is sent: its row becomes 'sending' unless it is 'sending' or
        'applied' already (compare-and-set, ``UNCLAIMABLE_PAYMENT_STATES``). Returns whether it
        was claimed; one that was not must not be sent."""
        blocked = ",".join("?" * len(self.UNCLAIMABLE_PAYMENT_STATES))
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO payments(tenant_id,nexudus_invoice_id,invoice_number,state,amount,"
                "paid_on,xero_invoice_id,messages,updated_at) VALUES(?,?,?,'sending',?,?,?,'[]',?) "
                "ON CONFLICT(tenant_id,nexudus_invoice_id) DO UPDATE SET state='sending', "
                "amount=excluded.amount, paid_on=excluded.paid_on, "
                "xero_invoice_id=COALESCE(excluded.xero_invoice_id, payments.xero_invoice_id), "
                "messages='[]', updated_at=excluded.updated_at "
                f"WHERE payments.state NOT IN ({blocked})",
                (
                    tenant_id,
                    int(nexudus_invoice_id),
                    invoice_number,
                    str(amount),
                    paid_on,
                    xero_invoice_id,
                    _now(),
                    *self.UNCLAIMABLE_PAYMENT_STATES,
                ),
            )
            return bool(cursor.rowcount)

    def payment_state(self, tenant_id: str, nexudus_invoice_id: int) -> str | None:
        """The payment row's state of one invoice, or None if it has none."""
        row = self._db.execute(
            "SELECT state FROM payments WHERE tenant_id=? AND nexudus_invoice_id=?",
            (tenant_id, int(nexudus_invoice_id)),
        ).fetchone()
        return None if row is None else str(row[0])

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
        # In key order (stable, so of two rows for one record the later still wins): neighbouring
        # keys share pages, so each page is written once.
        rows = sorted(rows, key=lambda r: str(r["xero_id"]))
        with self._tx() as db:
            if complete:
                db.execute(
                    "DELETE FROM xero_state WHERE tenant_id=? AND kind='invoice'", (tenant_id,)
                )
            db.executemany(
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
                    )
                    for r in rows
                ),
            )
        return len(rows)

    def xero_state(
        self,
        tenant_id: str,
        *,
        xero_ids: Iterable[str] | None = None,
        units: int | None = None,
    ) -> pd.DataFrame:
        """An organisation's records as Xero last showed them (``XERO_STATE_COLUMNS``), money as
        Decimal.

        ``xero_ids``: only these records. ``units`` (a power of ten): also each amount as whole
        units, ``<amount>_units`` (int64, blanks 0) and ``<amount>_known``.
        """
        money = ("total", "amount_due", "amount_paid", "amount_credited")
        frame = self._select_where(
            "xero_state",
            tenant_id,
            ["tenant_id", *self.XERO_STATE_COLUMNS],
            key=None if xero_ids is None else "xero_id",
            wanted=None if xero_ids is None else [str(x) for x in xero_ids],
        )
        return _with_money(frame, money, _decimal_or_none, units)

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
        rows.sort(key=lambda row: row[1])  # key order, stable: see update_xero_state
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO nexudus_state(tenant_id,nexudus_invoice_id,total,paid,"
                "paid_amount,void,due_date,updated_on,business_id) VALUES(?,?,?,?,?,?,?,?,?)",
                rows,
            )
        return len(rows)

    NEXUDUS_STATE_COLUMNS: ClassVar[list[str]] = [
        "tenant_id",
        "nexudus_invoice_id",
        "total",
        "paid",
        "paid_amount",
        "void",
        "due_date",
        "updated_on",
        "business_id",
    ]

    def nexudus_state(
        self,
        tenant_id: str,
        *,
        nexudus_invoice_ids: Iterable[int] | None = None,
        units: int | None = None,
    ) -> pd.DataFrame:
        """An organisation's Nexudus invoices as last read, one row each, money as Decimal.

        ``nexudus_invoice_ids``: only these invoices. ``units`` (a power of ten): also
        ``total_units`` and ``paid_amount_units`` (int64, blanks 0) with ``<amount>_known``.
        """
        money = ("total", "paid_amount")
        frame = self._select_where(
            "nexudus_state",
            tenant_id,
            self.NEXUDUS_STATE_COLUMNS,
            key=None if nexudus_invoice_ids is None else "nexudus_invoice_id",
            wanted=None if nexudus_invoice_ids is None else [int(i) for i in nexudus_invoice_ids],
        )
        return _with_money(frame, money, _decimal_or_none, units)

    def has_transferred(self, tenant_id: str) -> bool:
        """Whether an organisation's transfers created any invoice (not credit note) in Xero."""
        row = self._db.execute(
            "SELECT 1 FROM transfers WHERE tenant_id=? AND state='created' AND kind='invoice' "
            "LIMIT 1",
            (tenant_id,),
        ).fetchone()
        return row is not None

    def count_nexudus_state(
        self, tenant_id: str, business_id: int, *, excluding: Iterable[int] = ()
    ) -> int:
        """How many of a location's Nexudus invoices the ledger knows, not counting
        ``excluding``."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM nexudus_state WHERE tenant_id=? AND business_id=?",
            (tenant_id, int(business_id)),
        ).fetchone()
        left_out = [int(i) for i in dict.fromkeys(excluding)]
        found = 0
        for start in range(0, len(left_out), ID_CHUNK):
            chunk = left_out[start : start + ID_CHUNK]
            found += self._db.execute(
                "SELECT COUNT(*) FROM nexudus_state WHERE tenant_id=? AND business_id=? AND "
                f"nexudus_invoice_id IN ({','.join('?' * len(chunk))})",
                (tenant_id, int(business_id), *chunk),
            ).fetchone()[0]
        return int(row[0]) - found

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

    # ---- the status sync's journal: what was written since a sync, what it listed ----------
    def last_change_ids(self) -> tuple[int, int]:
        """The newest journal line (``status_touched``) and audit line (``events``) ids, 0 when
        there are none: where the next status sync of each location starts reading."""
        touched = self._db.execute("SELECT MAX(id) FROM status_touched").fetchone()[0]
        event = self._db.execute("SELECT MAX(id) FROM events").fetchone()[0]
        return int(touched or 0), int(event or 0)

    def touched_since(self, tenant_id: str, after: int, upto: int) -> tuple[set[int], set[str]]:
        """The Nexudus invoice ids and Xero ids an organisation's transfers, Xero state or
        Nexudus state rows were written under, in journal lines ``after`` < id <= ``upto``."""
        rows = self._db.execute(
            "SELECT nexudus_invoice_id, xero_id FROM status_touched WHERE id > ? AND id <= ? AND "
            "tenant_id=?",
            (int(after), int(upto), tenant_id),
        ).fetchall()
        invoices = {int(r[0]) for r in rows if r[0] is not None}
        return invoices, {str(r[1]) for r in rows if r[1] is not None}

    def events_between(
        self, tenant_id: str, system: str, actions: Iterable[str], after: int, upto: int
    ) -> pd.DataFrame:
        """An organisation's audit lines of ``actions`` with ``after`` < id <= ``upto``: subject,
        action, detail (decoded JSON), in the order written."""
        wanted = list(actions)
        frame = self._select(
            "SELECT id, subject, action, detail FROM events WHERE id > ? AND id <= ? AND "
            f"tenant_id=? AND system=? AND action IN ({','.join('?' * len(wanted))}) ORDER BY id",
            (int(after), int(upto), tenant_id, system, *wanted),
            ["id", "subject", "action", "detail"],
        )
        frame["detail"] = frame["detail"].map(lambda v: json.loads(v) if v else {})
        return frame

    def status_sync_mark(self, tenant_id: str, business_id: int) -> dict[str, Any] | None:
        """Where the last status sync of a location stopped reading (``touched_id``,
        ``event_id``), how many transferred invoices it compared (``transferred``) and when
        (``at``); None if it has none."""
        row = self._db.execute(
            "SELECT touched_id, event_id, transferred, at FROM status_syncs WHERE tenant_id=? "
            "AND business_id=?",
            (tenant_id, int(business_id)),
        ).fetchone()
        return dict(row) if row else None

    def status_listed(self, tenant_id: str, business_id: int) -> tuple[set[int], set[str]]:
        """What the last status sync of a location listed: the Nexudus invoice ids with a
        difference or still owing, and the Xero ids it reported as unknown to the ledger."""
        invoices = self._db.execute(
            "SELECT nexudus_invoice_id FROM status_members WHERE tenant_id=? AND business_id=? "
            "AND listed=1",
            (tenant_id, int(business_id)),
        ).fetchall()
        unknown = self._db.execute(
            "SELECT xero_id FROM status_unknown WHERE tenant_id=? AND business_id=?",
            (tenant_id, int(business_id)),
        ).fetchall()
        return {int(r[0]) for r in invoices}, {str(r[0]) for r in unknown}

    def status_members(
        self, tenant_id: str, business_id: int, nexudus_invoice_ids: Iterable[int]
    ) -> dict[int, bool]:
        """Of these invoices, those the last status sync of a location compared, each with
        whether it listed it."""
        wanted = sorted({int(i) for i in nexudus_invoice_ids})
        found: dict[int, bool] = {}
        for start in range(0, len(wanted), ID_CHUNK):
            chunk = wanted[start : start + ID_CHUNK]
            rows = self._db.execute(
                "SELECT nexudus_invoice_id, listed FROM status_members WHERE tenant_id=? AND "
                f"business_id=? AND nexudus_invoice_id IN ({','.join('?' * len(chunk))})",
                (tenant_id, int(business_id), *chunk),
            )
            found.update({int(r[0]): bool(r[1]) for r in rows})
        return found

    def record_status_sync(
        self,
        tenant_id: str,
        business_id: int,
        *,
        touched_id: int,
        event_id: int,
        members: dict[int, bool],
        unknown: Iterable[str],
        checked: tuple[dict[int, bool], Iterable[str]] | None = None,
    ) -> None:
        """After a status sync of a location: the transferred invoices it compared (id ->
        whether it listed it), the Xero ids it reported unknown, where it stopped reading.

        ``checked`` (an incremental sync): the stored rows of the invoices it compared, as
        ``status_members`` gave them, and the Xero ids it checked; only rows that changed are
        written. None (a whole sync): the location's rows are replaced. Journal lines every
        location of the organisation has read are dropped. One transaction.
        """
        business = int(business_id)
        key = (tenant_id, business)
        with self._tx() as db:
            if checked is None:
                db.execute("DELETE FROM status_members WHERE tenant_id=? AND business_id=?", key)
                db.execute("DELETE FROM status_unknown WHERE tenant_id=? AND business_id=?", key)
                gone: list[int] = []
                written = members
                transferred = len(members)
            else:
                before, xero_ids = checked
                gone = [i for i in before if i not in members]
                written = {i: v for i, v in members.items() if before.get(i) != v}
                mark = self.status_sync_mark(tenant_id, business)
                base = int(mark["transferred"]) if mark else 0
                transferred = base - len(before) + len(members)
                db.executemany(
                    "DELETE FROM status_unknown WHERE tenant_id=? AND business_id=? AND xero_id=?",
                    ((*key, str(x)) for x in xero_ids),
                )
            db.executemany(
                "DELETE FROM status_members WHERE tenant_id=? AND business_id=? AND "
                "nexudus_invoice_id=?",
                ((*key, int(i)) for i in gone),
            )
            db.executemany(
                "INSERT INTO status_members(tenant_id,business_id,nexudus_invoice_id,listed) "
                "VALUES(?,?,?,?) ON CONFLICT(tenant_id,business_id,nexudus_invoice_id) DO "
                "UPDATE SET listed=excluded.listed",
                ((*key, int(i), int(v)) for i, v in written.items()),
            )
            db.executemany(
                "INSERT OR IGNORE INTO status_unknown(tenant_id,business_id,xero_id) VALUES(?,?,?)",
                ((*key, str(x)) for x in unknown),
            )
            db.execute(
                "INSERT INTO status_syncs(tenant_id,business_id,touched_id,event_id,transferred,"
                "at) VALUES(?,?,?,?,?,?) ON CONFLICT(tenant_id,business_id) DO UPDATE SET "
                "touched_id=excluded.touched_id, event_id=excluded.event_id, "
                "transferred=excluded.transferred, at=excluded.at",
                (*key, int(touched_id), int(event_id), transferred, _now()),
            )
            db.execute(
                "DELETE FROM status_touched WHERE tenant_id=? AND id <= (SELECT MIN(touched_id) "
                "FROM status_syncs WHERE tenant_id=?)",
                (tenant_id, tenant_id),
            )

    def events(self) -> pd.DataFrame:
        """Every audit line, in the order written."""
        return self._select(
            "SELECT * FROM events ORDER BY id",
            (),
            ["id", "at", "system", "action", "tenant_id", "subject", "outcome", "detail"],
        )
