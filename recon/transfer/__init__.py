"""Transfer: Nexudus invoices to Xero as sales invoices, previewed, then pushed safely; then the
credit notes allocated to their invoices.

Floor 4. Two steps, as an accountant works, and a third for credit notes:

``plan_transfer(conn)`` reads both sides (no writes) and returns a
``TransferPlan``: every eligible invoice with the Xero payload recon will send
and the totals Xero will compute (per-line tax, rounded half away from zero to
the cent), and every excluded invoice with its reason (void, draft, already
transferred, blocked by the mapping, currency not in the organisation, a total
Xero would compute differently, a customer name Xero would refuse).

``push(conn, plan, ledger)`` writes: missing contacts first (keyed on a stable
``ContactNumber``, never a name), then invoices in batches of 50 with
``summarizeErrors=false`` and an ``Idempotency-Key`` derived from the batch's
content. The ledger records the intent before each batch and the outcome
after; a run that finds intents without outcomes looks those invoice numbers
up in Xero before sending anything. One invoice's error never stops the batch
or the run; a whole-batch failure is resolved the same way as a crash. The Xero
write calls a push needs are ``calls_needed``; storing each new Xero id in
Nexudus (params ``write_back_system_id``, off by default: the ledger is the
record) costs ``write_back_calls`` Nexudus calls, paced under Nexudus' limits.

``plan_allocations(conn, ledger)`` previews (an ``AllocationPlan``) and
``allocate(conn, plan, ledger)`` writes (an ``AllocationResult``) the allocation
of each transferred credit note to its original invoice in Xero, which a pushed
credit note otherwise leaves due in full (``recon.transfer.allocate``).
"""

from recon.transfer.allocate import (
    AllocationPlan,
    AllocationResult,
    allocate,
    plan_allocations,
)
from recon.transfer.plan import (
    TransferOptions,
    TransferPlan,
    calls_needed,
    day_calls_left,
    fit_budget,
    plan_transfer,
    write_back_calls,
)
from recon.transfer.push import BUDGET_RESERVE, TransferResult, batch_key, push, recover

__all__ = [
    "BUDGET_RESERVE",
    "AllocationPlan",
    "AllocationResult",
    "TransferOptions",
    "TransferPlan",
    "TransferResult",
    "allocate",
    "batch_key",
    "calls_needed",
    "day_calls_left",
    "fit_budget",
    "plan_allocations",
    "plan_transfer",
    "push",
    "recover",
    "write_back_calls",
]
