"""The ``transfers`` table: intents, outcomes and claims of each invoice sent to Xero."""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, ClassVar

import pandas as pd

from recon.ledger.store import LedgerStore
from recon.ledger.stored import stored_amount, utc_now, with_money


class TransfersTable(LedgerStore):
    """The transfer rows of ``Ledger``."""

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
        return with_money(frame, ("nexudus_total", "xero_total"), stored_amount, units)

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
        now = utc_now()
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
        now = utc_now()
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
                (utc_now(), tenant_id, int(nexudus_invoice_id)),
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
        now = utc_now()
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
        now = utc_now()
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

    def has_transferred(self, tenant_id: str) -> bool:
        """Whether an organisation's transfers created any invoice (not credit note) in Xero."""
        row = self._db.execute(
            "SELECT 1 FROM transfers WHERE tenant_id=? AND state='created' AND kind='invoice' "
            "LIMIT 1",
            (tenant_id,),
        ).fetchone()
        return row is not None
