"""The status sync's journal: what was written since a sync, and what it listed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from recon.ledger.store import ID_CHUNK, LedgerStore
from recon.ledger.stored import utc_now


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
                (*key, int(touched_id), int(event_id), transferred, utc_now()),
            )
            db.execute(
                "DELETE FROM status_touched WHERE tenant_id=? AND id <= (SELECT MIN(touched_id) "
                "FROM status_syncs WHERE tenant_id=?)",
                (tenant_id, tenant_id),
            )
