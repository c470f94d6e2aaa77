"""The ``payments`` table: Nexudus invoices marked paid from Xero."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import ClassVar

import pandas as pd

from recon.ledger.store import LedgerStore
from recon.ledger.stored import utc_now


class PaymentsTable(LedgerStore):
    """The payment rows of ``Ledger``."""

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
            utc_now(),
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
                    utc_now(),
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
