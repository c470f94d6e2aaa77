"""Durable sandbox state: one SQLite file per fake service, documents as JSON.

Each server keeps its records as JSON documents (the API's own shape) in
tables with a few real columns for what it filters and sorts on. The file
survives the process, so one run's writes are seen by the next. WAL mode lets
readers run beside the single writer; writes are serialised by a lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Store:
    """A thread-safe SQLite file: a connection per thread, one writer at a time."""

    def __init__(self, path: str | Path, schema: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self.ensure_schema(schema)

    def ensure_schema(self, schema: str) -> None:
        """Create tables and indexes (``executescript`` commits on its own, so no BEGIN)."""
        with self._write_lock:
            self._conn().executescript(schema)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def query(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Every row the query returns."""
        return self._conn().execute(sql, tuple(args)).fetchall()

    def one(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Row | None:
        """The query's first row, or None."""
        row: sqlite3.Row | None = self._conn().execute(sql, tuple(args)).fetchone()  # row_factory
        return row

    def scalar(self, sql: str, args: Iterable[Any] = ()) -> Any:
        """The first column of the query's first row, or None if no row."""
        row = self.one(sql, args)
        return None if row is None else row[0]

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; commits on success, rolls back on error."""
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection, if it has one."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
