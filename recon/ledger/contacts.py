"""The ``contacts`` table: each Nexudus coworker's Xero contact per organisation."""

from __future__ import annotations

from typing import Any

from recon.ledger.store import LedgerStore
from recon.ledger.stored import utc_now


class ContactsTable(LedgerStore):
    """The contact rows of ``Ledger``."""

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
                (
                    tenant_id,
                    int(coworker_id),
                    contact_number,
                    xero_contact_id,
                    state,
                    name,
                    utc_now(),
                ),
            )
