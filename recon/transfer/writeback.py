"""The push's write-back: each new Xero id stored in its Nexudus invoice (params
``write_back_system_id``, off by default), within a budget of Nexudus calls."""

from __future__ import annotations

from recon.errors import AuthError, ClientError, RateLimited
from recon.ledger import Ledger
from recon.outcomes import TransferOutcome
from recon.session import Connection
from recon.transfer.plan import WRITE_BACK_CALLS
from recon.values import records

__all__ = ["write_back"]


def write_back(conn: Connection, ledger: Ledger, tenant: str, budget: int) -> dict[str, int]:
    """Store each new Xero id in its Nexudus invoice's SystemId, within ``budget`` Nexudus calls.

    Each is a whole-record PUT built from a fresh read and read back (nexudus.md §4), each call
    paced by the Nexudus client under Nexudus' limits (60 writes and 120 calls a minute, 5,000
    calls an hour, §5). A refused sign-in or a rate limit stops the write-back; what is left
    (also past the budget) the next push writes back. Returns ``written_back`` and
    ``write_back_left``.
    """
    rows = ledger.transfers(tenant)
    todo = records(rows[(rows["state"] == TransferOutcome.CREATED) & (rows["written_back"] == 0)])
    fits = max(0, budget) // WRITE_BACK_CALLS
    if len(todo) > fits:
        ledger.event(
            "nexudus",
            "write back xero id",
            "deferred",
            tenant_id=tenant,
            detail=f"{len(todo) - fits} of {len(todo)} left for the next push: the write-back "
            f"may make {budget} Nexudus calls, {WRITE_BACK_CALLS} an invoice",
        )
    written = 0
    for rec in todo[:fits]:
        try:
            conn.nexudus.update_invoice(
                int(rec["nexudus_invoice_id"]), SystemId=f"xero:{rec['xero_id']}"
            )
        except ClientError as exc:
            ledger.event(
                "nexudus",
                "write back xero id",
                "error",
                tenant_id=tenant,
                subject=rec["invoice_number"],
                detail=str(exc),
            )
            if isinstance(exc, (AuthError, RateLimited)):
                break  # the next push writes back the rest
            continue
        ledger.record_written_back(tenant, int(rec["nexudus_invoice_id"]))
        written += 1
    return {"written_back": written, "write_back_left": len(todo) - written}
