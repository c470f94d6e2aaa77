"""Reading the audit trail (``events``); ``LedgerStore.event`` writes it."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pandas as pd

from recon.ledger.store import LedgerStore


class AuditTrail(LedgerStore):
    """The audit reads of ``Ledger``."""

    def event_states(self, tenant_id: str, system: str, action: str) -> pd.DataFrame:
        """The latest audit line of ``action`` for each subject of an organisation: its subject,
        outcome, detail (decoded JSON) and time; one row per subject."""
        frame = self._select(
            "SELECT e.subject, e.outcome, e.detail, e.at FROM events e JOIN (SELECT subject, "
            "MAX(id) AS id FROM events WHERE tenant_id=? AND system=? AND action=? "
            "GROUP BY subject) last ON e.id = last.id ORDER BY e.id",
            (tenant_id, system, action),
            ["subject", "outcome", "detail", "at"],
        )
        frame["detail"] = frame["detail"].map(lambda v: json.loads(v) if v else {})
        return frame

    def events_between(
        self, tenant_id: str, system: str, actions: Iterable[str], after: int, upto: int
    ) -> pd.DataFrame:
        """An organisation's audit lines of ``actions`` with ``after`` < id <= ``upto``: subject,
        action, detail (decoded JSON), in the order written."""
        wanted = list(actions)
        frame = self._select(
            "SELECT id, subject, action, detail FROM events WHERE id > ? AND id <= ? AND "
            f"tenant_id=? AND system=? AND action IN ({','.join('?' * len(wanted))}) ORDER BY id",
            (int(after), int(upto), tenant_id, system, *wanted),
            ["id", "subject", "action", "detail"],
        )
        frame["detail"] = frame["detail"].map(lambda v: json.loads(v) if v else {})
        return frame

    def events(self) -> pd.DataFrame:
        """Every audit line, in the order written."""
        return self._select(
            "SELECT * FROM events ORDER BY id",
            (),
            ["id", "at", "system", "action", "tenant_id", "subject", "outcome", "detail"],
        )
