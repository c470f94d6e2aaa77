"""The status sync's journal: what was written since a sync, and what it listed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from recon.ledger.schema import KEPT_COLUMNS, KEPT_FLAGS, KEPT_MONEY
from recon.ledger.store import ID_CHUNK, LedgerStore
from recon.ledger.stored import decimal_or_none, utc_now, with_money


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
        invoices = self._db.execute(
            "SELECT nexudus_invoice_id FROM status_kept WHERE tenant_id=? AND business_id=?",
            (tenant_id, int(business_id)),
        ).fetchall()
        return {int(r[0]) for r in invoices}, self.status_unknown(tenant_id, business_id)

    def status_unknown(self, tenant_id: str, business_id: int) -> set[str]:
        """The Xero ids the last status sync of a location reported as unknown to the ledger."""
        rows = self._db.execute(
            "SELECT xero_id FROM status_unknown WHERE tenant_id=? AND business_id=?",
            (tenant_id, int(business_id)),
        ).fetchall()
        return {str(r[0]) for r in rows}

    def status_members(
        self, tenant_id: str, business_id: int, nexudus_invoice_ids: Iterable[int]
    ) -> dict[int, bool]:
        """Of these invoices, those the last status sync of a location compared, each with
        whether it listed it (kept its row)."""
        wanted = sorted({int(i) for i in nexudus_invoice_ids})
        found: dict[int, bool] = {}
        for start in range(0, len(wanted), ID_CHUNK):
            chunk = wanted[start : start + ID_CHUNK]
            rows = self._db.execute(
                "SELECT m.nexudus_invoice_id, k.nexudus_invoice_id IS NOT NULL FROM "
                "status_members m LEFT JOIN status_kept k ON k.tenant_id=m.tenant_id AND "
                "k.business_id=m.business_id AND k.nexudus_invoice_id=m.nexudus_invoice_id "
                "WHERE m.tenant_id=? AND m.business_id=? AND m.nexudus_invoice_id IN "
                f"({','.join('?' * len(chunk))})",
                (tenant_id, int(business_id), *chunk),
            )
            found.update({int(r[0]): bool(r[1]) for r in rows})
        return found

    def kept_status_rows(
        self, tenant_id: str, business_id: int, *, units: int | None = None
    ) -> pd.DataFrame:
        """The rows the last status sync of a location kept (``KEPT_COLUMNS``: each invoice it
        listed, as it compared it), money as Decimal, flags as bool. ``units`` (a power of ten):
        also each amount as whole units, ``<money>_units`` (int64, blanks 0) and
        ``<money>_known``."""
        frame = self._tuples(
            f"SELECT {','.join(KEPT_COLUMNS)} FROM status_kept WHERE tenant_id=? AND business_id=?",
            (tenant_id, int(business_id)),
            list(KEPT_COLUMNS),
        )
        frame = with_money(frame, KEPT_MONEY, decimal_or_none, units)
        return frame.assign(
            nexudus_invoice_id=frame["nexudus_invoice_id"].to_numpy(dtype=np.int64),
            **{c: frame[c].to_numpy(dtype=bool) for c in KEPT_FLAGS},
        )

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
    ) -> None:
        """After a status sync of a location: the transferred invoices it compared (id ->
        whether it listed it), the Xero ids it reported unknown, where it stopped reading.

        ``checked`` (an incremental sync): the invoices it compared as ``status_members`` gave
        them, and the Xero ids it checked; only invoices that joined or left are written. None
        (a whole sync): the location's rows are replaced. ``kept``: the listed invoices' rows
        (``KEPT_COLUMNS``) to keep, replacing any kept before (what a sync listed is what it
        kept); the kept row of every compared invoice not listed now is dropped. Journal lines
        every location of the organisation has read are dropped. One transaction.
        """
        business = int(business_id)
        key = (tenant_id, business)
        with self._tx() as db:
            if checked is None:
                db.execute("DELETE FROM status_members WHERE tenant_id=? AND business_id=?", key)
                db.execute("DELETE FROM status_unknown WHERE tenant_id=? AND business_id=?", key)
                db.execute("DELETE FROM status_kept WHERE tenant_id=? AND business_id=?", key)
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
            if checked is not None:
                db.executemany(
                    "DELETE FROM status_kept WHERE tenant_id=? AND business_id=? AND "
                    "nexudus_invoice_id=?",
                    ((*key, int(i)) for i in sorted({*before, *members}) if not members.get(i)),
                )
            if kept is not None and len(kept):
                db.executemany(
                    f"INSERT OR REPLACE INTO status_kept(tenant_id,business_id,"
                    f"{','.join(KEPT_COLUMNS)}) VALUES(?,?{',?' * len(KEPT_COLUMNS)})",
                    ((*key, *row) for row in _kept_rows(kept)),
                )
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


def _kept_rows(frame: pd.DataFrame) -> Iterator[tuple[object, ...]]:
    """``frame``'s ``KEPT_COLUMNS`` as the ledger stores them, in key order: text and money as
    text, blanks NULL; the id and flags as int."""
    ordered = frame.sort_values("nexudus_invoice_id")
    columns: list[list[object]] = []
    for name in KEPT_COLUMNS:
        values = ordered[name]
        if name == "nexudus_invoice_id" or name in KEPT_FLAGS:
            columns.append(values.to_numpy(dtype=np.int64).tolist())
        else:
            cells = values.to_numpy(dtype=object)
            blank = pd.isna(cells)
            columns.append([None if b else str(v) for v, b in zip(cells, blank, strict=True)])
    return zip(*columns, strict=True)
