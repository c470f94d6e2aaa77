"""The ``allocations`` table: credit notes allocated to their original invoices."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import ClassVar

import pandas as pd

from recon.ledger.store import LedgerStore
from recon.ledger.stored import utc_now


class AllocationsTable(LedgerStore):
    """The allocation rows of ``Ledger``."""

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
        now = utc_now()
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
                (state, json.dumps(messages or []), utc_now(), tenant_id, idempotency_key),
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
