"""The status sync's journal: what was written since a sync, and what it listed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from recon.ledger.columns import PackedColumns, pack_columns, unpack_columns
from recon.ledger.schema import KEPT_COLUMNS, KEPT_FLAGS, KEPT_MONEY, KEPT_TEXT
from recon.ledger.store import ID_CHUNK, LedgerStore
from recon.ledger.stored import decimal_or_none, money_from_codes, utc_now


class StatusJournal(LedgerStore):
    """The status sync journal of ``Ledger``."""

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
        difference or still owing (those it kept rows of), and the Xero ids it reported as
        unknown to the ledger."""
        kept = self.kept_status_rows(tenant_id, business_id)
        invoices = set() if kept is None else {int(i) for i in kept["nexudus_invoice_id"]}
        return invoices, self.status_unknown(tenant_id, business_id)

    def status_unknown(self, tenant_id: str, business_id: int) -> set[str]:
        """The Xero ids the last status sync of a location reported as unknown to the ledger."""
        rows = self._db.execute(
            "SELECT xero_id FROM status_unknown WHERE tenant_id=? AND business_id=?",
            (tenant_id, int(business_id)),
        ).fetchall()
        return {str(r[0]) for r in rows}

    def status_members(
        self, tenant_id: str, business_id: int, nexudus_invoice_ids: Iterable[int]
    ) -> set[int]:
        """Of these invoices, those the last status sync of a location compared."""
        wanted = sorted({int(i) for i in nexudus_invoice_ids})
        found: set[int] = set()
        for start in range(0, len(wanted), ID_CHUNK):
            chunk = wanted[start : start + ID_CHUNK]
            rows = self._db.execute(
                "SELECT nexudus_invoice_id FROM status_members WHERE tenant_id=? AND "
                f"business_id=? AND nexudus_invoice_id IN ({','.join('?' * len(chunk))})",
                (tenant_id, int(business_id), *chunk),
            )
            found.update(int(r[0]) for r in rows)
        return found

    def kept_status_rows(
        self, tenant_id: str, business_id: int, *, units: int | None = None
    ) -> pd.DataFrame | None:
        """The rows the last status sync of a location kept (``KEPT_COLUMNS``: each invoice it
        listed, as it compared it), money as Decimal, flags as bool; none if it kept none, and
        None if what it kept cannot be read (the next sync must then read all). ``units`` (a
        power of ten): also each amount as whole units, ``<money>_units`` (int64, blanks 0) and
        ``<money>_known``."""
        row = self._db.execute(
            "SELECT columns FROM status_kept WHERE tenant_id=? AND business_id=?",
            (tenant_id, int(business_id)),
        ).fetchone()
        try:
            packed = unpack_columns(bytes(row[0]) if row else _NOTHING_KEPT)
            return _kept_frame(packed, units)
        except (KeyError, ValueError):
            return None

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
        kept: pd.DataFrame | None = None,
        kept_as_before: bool = False,
    ) -> None:
        """After a status sync of a location: the transferred invoices it compared (id ->
        whether it listed it), the Xero ids it reported unknown, where it stopped reading.

        ``checked`` (an incremental sync): the invoices it compared as ``status_members`` gave
        them, and the Xero ids it checked; only invoices that joined or left are written. None
        (a whole sync): the location's rows are replaced. ``kept``: the rows of every invoice
        it listed (``KEPT_COLUMNS``), replacing all the location kept before (what a sync
        listed is what it kept); None keeps none. ``kept_as_before``: the rows kept before stand
        as they are (the sync compared only them and listed each again), nothing is rewritten.
        Journal lines every location of the organisation has read are dropped. One transaction.
        """
        business = int(business_id)
        key = (tenant_id, business)
        with self._tx() as db:
            if checked is None:
                db.execute("DELETE FROM status_members WHERE tenant_id=? AND business_id=?", key)
                db.execute("DELETE FROM status_unknown WHERE tenant_id=? AND business_id=?", key)
                gone: list[int] = []
                joined = sorted(members)
                transferred = len(members)
            else:
                before, xero_ids = checked
                gone = [i for i in before if i not in members]
                joined = sorted(i for i in members if i not in before)
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
                "INSERT OR IGNORE INTO status_members(tenant_id,business_id,nexudus_invoice_id) "
                "VALUES(?,?,?)",
                ((*key, int(i)) for i in joined),
            )
            db.executemany(
                "INSERT OR IGNORE INTO status_unknown(tenant_id,business_id,xero_id) VALUES(?,?,?)",
                ((*key, str(x)) for x in unknown),
            )
            if kept is not None:
                packed = pack_columns(
                    kept.sort_values("nexudus_invoice_id"),
                    integers=("nexudus_invoice_id", *KEPT_FLAGS),
                    texts=KEPT_TEXT,
                    amounts=KEPT_MONEY,
                )
                db.execute(
                    "INSERT OR REPLACE INTO status_kept(tenant_id,business_id,rows,columns) "
                    "VALUES(?,?,?,?)",
                    (*key, len(kept), packed),
                )
            elif not kept_as_before:
                db.execute("DELETE FROM status_kept WHERE tenant_id=? AND business_id=?", key)
            db.execute(
                "INSERT INTO status_syncs(tenant_id,business_id,touched_id,event_id,transferred,"
                "at) VALUES(?,?,?,?,?,?) ON CONFLICT(tenant_id,business_id) DO UPDATE SET "
                "touched_id=excluded.touched_id, event_id=excluded.event_id, "
                "transferred=excluded.transferred, at=excluded.at",
                (*key, int(touched_id), int(event_id), transferred, utc_now()),
            )
            db.execute(
                "DELETE FROM status_touched WHERE tenant_id=? AND id <= (SELECT MIN(touched_id) "
                "FROM status_syncs WHERE tenant_id=?)",
                (tenant_id, tenant_id),
            )


# What a location that kept no rows reads.
_NOTHING_KEPT = pack_columns(
    pd.DataFrame(columns=list(KEPT_COLUMNS)),
    integers=("nexudus_invoice_id", *KEPT_FLAGS),
    texts=KEPT_TEXT,
    amounts=KEPT_MONEY,
)


def _kept_frame(packed: PackedColumns, units: int | None) -> pd.DataFrame:
    """Kept rows as ``Ledger.kept_status_rows`` gives them, from their packed columns
    (``KeyError``, ``ValueError``: they are not kept rows)."""
    groups = {packed.groups[name] for name in KEPT_MONEY}
    if len(groups) != 1:
        raise ValueError("the kept amounts do not share one list of values")
    index = pd.RangeIndex(packed.rows)
    columns: dict[str, Any] = {"nexudus_invoice_id": packed.integers["nexudus_invoice_id"]}
    columns |= {name: pd.Series(packed.text(name), index=index, dtype=object) for name in KEPT_TEXT}
    columns |= money_from_codes(
        {name: packed.codes[name] for name in KEPT_MONEY},
        packed.values[groups.pop()],
        decimal_or_none,
        units,
        index,
    )
    columns |= {name: packed.integers[name].astype(bool) for name in KEPT_FLAGS}
    first = {name: columns.pop(name) for name in KEPT_COLUMNS}
    return pd.DataFrame(first | columns, index=index)
