"""What each side last showed: ``xero_state``, ``nexudus_state`` and the sync
``watermarks``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar

import pandas as pd

from recon.ledger.store import ID_CHUNK, LedgerStore
from recon.ledger.stored import decimal_or_none, with_money
from recon.values import cell_int, optional_int

# The amounts of a Xero record, as the ledger keeps them (text) and reads them (Decimal).
_XERO_MONEY = ("total", "amount_due", "amount_paid", "amount_credited")

_NEXUDUS_MONEY = ("total", "paid_amount")


class RemoteState(LedgerStore):
    """The watermarks and last-seen states of ``Ledger``."""

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
        self,
        tenant_id: str,
        rows: pd.DataFrame | Iterable[Mapping[str, Any]],
        *,
        complete: bool = False,
    ) -> int:
        """Upsert records as Xero last showed them: ``XERO_STATE_COLUMNS``, of which only
        ``xero_id`` is required (``kind`` defaults to invoice, amounts as Decimal or their
        text); ``created_by_recon`` only ever turns on.

        ``complete``: the rows are everything Xero has, so invoices not among them are forgotten.
        """
        columns = self._xero_cells(tenant_id, rows)
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
                "kind=excluded.kind, status=excluded.status, total=excluded.total, "
                "amount_due=excluded.amount_due, amount_paid=excluded.amount_paid, "
                "amount_credited=excluded.amount_credited, "
                "fully_paid_on=excluded.fully_paid_on, updated_utc=excluded.updated_utc, "
                "created_by_recon=MAX(xero_state.created_by_recon, excluded.created_by_recon) "
                # A record read again as it was is not written (see update_nexudus_state).
                "WHERE (number, kind, status, total, amount_due, amount_paid, amount_credited, "
                "fully_paid_on, updated_utc, created_by_recon) IS NOT (excluded.number, "
                "excluded.kind, excluded.status, excluded.total, excluded.amount_due, "
                "excluded.amount_paid, excluded.amount_credited, excluded.fully_paid_on, "
                "excluded.updated_utc, "
                "MAX(xero_state.created_by_recon, excluded.created_by_recon))",
                zip(*columns, strict=True),
            )
        return len(columns[0])

    def _xero_cells(
        self,
        tenant_id: str,
        rows: pd.DataFrame | Iterable[Mapping[str, Any]],
        *,
        key_order: bool = True,
    ) -> list[list[Any]]:
        """``update_xero_state``'s rows as it binds them, a list per column (``tenant_id``, then
        ``XERO_STATE_COLUMNS``): blanks None, amounts as text, ``created_by_recon`` 0 or 1;
        ``key_order``: sorted by ``xero_id``, else as given."""
        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        frame = frame.reindex(columns=self.XERO_STATE_COLUMNS)
        if key_order:
            # Stable, so of two rows for one record the later still wins: neighbouring keys
            # share pages, so each page is written once.
            frame = frame.sort_values("xero_id", kind="stable")
        frame["kind"] = frame["kind"].astype(object).fillna("invoice")
        return [
            [tenant_id] * len(frame),
            *(
                _cells(frame[name], str if name in _XERO_MONEY else None)
                for name in self.XERO_STATE_COLUMNS[:-1]
            ),
            [int(v is not None and bool(v)) for v in _cells(frame["created_by_recon"])],
        ]

    def xero_state_written(
        self,
        tenant_id: str,
        rows: pd.DataFrame | Iterable[Mapping[str, Any]],
        *,
        units: int | None = None,
    ) -> pd.DataFrame:
        """Of records just given to ``update_xero_state``, those whose stored row that write
        alone decides, as ``xero_state`` reads them back, without reading: every one it marked
        ``created_by_recon`` (the flag only turns on, so it is on whatever was stored before;
        any other row's flag is the one stored before). Of two rows for one record, the later."""
        cells = self._xero_cells(tenant_id, rows, key_order=False)
        last = {row[1]: row for row in zip(*cells, strict=True)}
        # Built as a read builds its frame (``_tuples``), so each column takes the same type.
        written = pd.DataFrame.from_records(
            [row for row in last.values() if row[-1] == 1],
            columns=["tenant_id", *self.XERO_STATE_COLUMNS],
            coerce_float=False,
        )
        return with_money(written, _XERO_MONEY, decimal_or_none, units)

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
        frame = self._select_where(
            "xero_state",
            tenant_id,
            ["tenant_id", *self.XERO_STATE_COLUMNS],
            key=None if xero_ids is None else "xero_id",
            wanted=None if xero_ids is None else [str(x) for x in xero_ids],
        )
        return with_money(frame, _XERO_MONEY, decimal_or_none, units)

    def update_nexudus_state(self, tenant_id: str, frame: pd.DataFrame) -> int:
        """Upsert Nexudus invoices as last read (columns Id, TotalAmount, Paid, PaidAmount, Void,
        DueDate, UpdatedOn, BusinessId)."""
        rows = _nexudus_rows(frame)
        with self._tx() as db:
            db.executemany(
                "INSERT INTO nexudus_state(tenant_id,nexudus_invoice_id,total,paid,paid_amount,"
                "void,due_date,updated_on,business_id) VALUES(?,?,?,?,?,?,?,?,?) ON CONFLICT("
                "tenant_id,nexudus_invoice_id) DO UPDATE SET total=excluded.total, "
                "paid=excluded.paid, "
                "paid_amount=excluded.paid_amount, void=excluded.void, "
                "due_date=excluded.due_date, updated_on=excluded.updated_on WHERE "
                # An invoice read again as it was (Nexudus' last second is read twice) is not
                # written: the journal then holds only what changed, and so does the next sync.
                "(total, paid, paid_amount, void, due_date, updated_on) IS NOT (excluded.total, "
                "excluded.paid, excluded.paid_amount, excluded.void, excluded.due_date, "
                "excluded.updated_on)",
                ((tenant_id, *row) for row in rows),
            )
            # The location apart, and only where it changed: naming an indexed column in an
            # UPDATE rewrites its index entry even when the value stays, a page per invoice.
            db.executemany(
                "UPDATE nexudus_state SET business_id=? WHERE tenant_id=? AND "
                "nexudus_invoice_id=? AND business_id IS NOT ?",
                ((row[-1], tenant_id, row[0], row[-1]) for row in rows),
            )
        return len(rows)

    def nexudus_state_written(
        self, tenant_id: str, frame: pd.DataFrame, *, units: int | None = None
    ) -> pd.DataFrame:
        """Invoices just given to ``update_nexudus_state``, as ``nexudus_state`` reads them back,
        without reading (that write decides every column). Of two rows for one invoice, the
        later."""
        last = {row[0]: (tenant_id, *row) for row in _nexudus_rows(frame)}
        # Built as a read builds its frame (``_tuples``), so each column takes the same type.
        written = pd.DataFrame.from_records(
            list(last.values()), columns=self.NEXUDUS_STATE_COLUMNS, coerce_float=False
        )
        return with_money(written, _NEXUDUS_MONEY, decimal_or_none, units)

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
        frame = self._select_where(
            "nexudus_state",
            tenant_id,
            self.NEXUDUS_STATE_COLUMNS,
            key=None if nexudus_invoice_ids is None else "nexudus_invoice_id",
            wanted=None if nexudus_invoice_ids is None else [int(i) for i in nexudus_invoice_ids],
        )
        return with_money(frame, _NEXUDUS_MONEY, decimal_or_none, units)

    def count_nexudus_state(
        self, tenant_id: str, business_id: int, *, excluding: Iterable[int] = ()
    ) -> int:
        """How many of a location's Nexudus invoices the ledger knows, not counting
        ``excluding``."""
        row = self._db.execute(
            "SELECT invoices FROM nexudus_counts WHERE tenant_id=? AND business_id=?",
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
        return (int(row[0]) if row else 0) - found

    def forget_nexudus_state(self, tenant_id: str, nexudus_invoice_ids: Iterable[int]) -> int:
        """Drop invoices Nexudus no longer has from an organisation's Nexudus state."""
        ids = [(tenant_id, int(i)) for i in nexudus_invoice_ids]
        with self._tx() as db:
            db.executemany(
                "DELETE FROM nexudus_state WHERE tenant_id=? AND nexudus_invoice_id=?", ids
            )
        return len(ids)


def _nexudus_rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Nexudus invoices (columns Id, TotalAmount, Paid, PaidAmount, Void, DueDate, UpdatedOn,
    BusinessId) as ``update_nexudus_state`` binds them (``NEXUDUS_STATE_COLUMNS`` but the
    organisation), in key order: stable, so of two rows for one invoice the later is written
    last (see ``update_xero_state``)."""
    columns = [
        [cell_int(v) for v in frame["Id"]],
        [str(v) for v in frame["TotalAmount"]],
        [int(bool(v)) for v in frame["Paid"]],
        [str(v or 0) for v in frame["PaidAmount"]],
        [int(bool(v)) for v in frame["Void"]],
        _iso_times(frame["DueDate"]),
        _iso_times(frame["UpdatedOn"]),
        [optional_int(v) for v in frame["BusinessId"]],
    ]
    return sorted(zip(*columns, strict=True), key=lambda row: row[0])


def _iso_times(values: pd.Series) -> list[str | None]:
    """Each time or date as ISO text (``pd.Timestamp.isoformat``), blanks None; each distinct
    value converted once."""
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    texts = [*(pd.Timestamp(v).isoformat() for v in distinct), None]
    return [texts[c] for c in codes.tolist()]


def _cells(values: pd.Series, convert: Callable[[Any], Any] | None = None) -> list[Any]:
    """A column's cells as SQLite takes them: blanks (None, NaN) as None, the others as they
    are or as ``convert`` gives them."""
    cells = values.to_numpy(dtype=object)
    blank = pd.isna(cells).tolist()
    if convert is None:
        return [None if b else v for v, b in zip(cells.tolist(), blank, strict=True)]
    return [None if b else convert(v) for v, b in zip(cells.tolist(), blank, strict=True)]
