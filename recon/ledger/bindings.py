"""The ``bindings`` table: which Xero organisation each Nexudus location books into."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pandas as pd

from recon.ledger.store import LedgerStore
from recon.ledger.stored import utc_now


class BindingsTable(LedgerStore):
    """The binding rows of ``Ledger``."""

    # ---- bindings (location -> Xero organisation, confirmed by a person) ----------------
    BINDING_COLUMNS: ClassVar[list[str]] = [
        "business_id",
        "location",
        "tenant_id",
        "organisation_name",
        "base_currency",
        "confirmed_by",
        "confirmed_at",
        "source",
    ]

    def binding(self, business_id: int) -> dict[str, Any] | None:
        """The recorded binding of a Nexudus location (``BINDING_COLUMNS``), or None."""
        row = self._db.execute(
            "SELECT * FROM bindings WHERE business_id=?", (int(business_id),)
        ).fetchone()
        return dict(row) if row else None

    def bindings(self) -> pd.DataFrame:
        """Every recorded binding, by location name."""
        return self._select(
            "SELECT * FROM bindings ORDER BY location", (), list(self.BINDING_COLUMNS)
        )

    def record_binding(
        self,
        business_id: int,
        location: str,
        tenant_id: str,
        organisation_name: str,
        base_currency: str | None,
        *,
        confirmed_by: str,
        source: str,
        replaces: str | None = None,
    ) -> bool:
        """Record that a location books into an organisation; True when recorded.

        Compare-and-set: a first binding is recorded only while the location has none, a
        re-binding (``replaces``: the tenant id it moves away from) only while the location is
        still bound there. An audit line goes with it, in the same transaction.
        """
        now = utc_now()
        with self._tx() as db:
            if replaces is None:
                cursor = db.execute(
                    "INSERT INTO bindings(business_id,location,tenant_id,organisation_name,"
                    "base_currency,confirmed_by,confirmed_at,source) VALUES(?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(business_id) DO NOTHING",
                    (
                        int(business_id),
                        location,
                        tenant_id,
                        organisation_name,
                        base_currency,
                        confirmed_by,
                        now,
                        source,
                    ),
                )
            else:
                cursor = db.execute(
                    "UPDATE bindings SET location=?, tenant_id=?, organisation_name=?, "
                    "base_currency=?, confirmed_by=?, confirmed_at=?, source=? WHERE "
                    "business_id=? AND tenant_id=?",
                    (
                        location,
                        tenant_id,
                        organisation_name,
                        base_currency,
                        confirmed_by,
                        now,
                        source,
                        int(business_id),
                        replaces,
                    ),
                )
            recorded = cursor.rowcount == 1
            if recorded:
                db.execute(
                    "INSERT INTO events(at,system,action,tenant_id,subject,outcome,detail) "
                    "VALUES(?,?,?,?,?,?,?)",
                    (
                        now,
                        "recon",
                        "rebind location" if replaces else "bind location",
                        tenant_id,
                        location,
                        "recorded",
                        json.dumps(
                            {
                                "business_id": int(business_id),
                                "organisation": organisation_name,
                                "base_currency": base_currency,
                                "confirmed_by": confirmed_by,
                                "source": source,
                                "replaces": replaces,
                            }
                        ),
                    ),
                )
        return recorded
