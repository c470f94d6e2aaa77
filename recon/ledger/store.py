"""The ledger file's connection: opening and migrating it, transactions, the one-writer lock,
audit lines, and the reads every table group shares."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from recon.errors import StepError
from recon.ledger.schema import MIGRATIONS, SCHEMA_VERSION
from recon.ledger.stored import utc_now
from recon.ledger.writer_lock import WRITER_WAIT_SECONDS, hold_writer

# How much of the file SQLite may map into memory, and its page cache (KiB): reads by key from a
# ledger of a million invoices touch pages all over the file.
MMAP_BYTES = 1 << 30
CACHE_KIB = 65_536
# Ids per ``IN (...)`` query: under SQLite's old limit of 999 bound values, with room for the rest.
ID_CHUNK = 900
# Above this many ids, a filtered read reads the organisation's rows whole and keeps those asked
# for: one scan is cheaper than so many lookups.
WHOLE_READ_ABOVE = 100_000


class LedgerStore:
    """The open ledger file at ``path`` (created and brought up to date if needed), on which
    each table group of ``Ledger`` builds."""

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
            for migrate in MIGRATIONS[self._version() :]:
                migrate(db)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the ledger file."""
        self._db.close()

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
        with hold_writer(
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
                    utc_now(),
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
