"""recon: reconcile Nexudus billing with Xero books from Jupyter.

The front door: the names a notebook or a script should use. Everything else
stays importable but is not promised.

    from recon import connect, check_location, plan_transfer, push, plan_allocations, allocate
    from recon import sync_status, apply_paid
"""

from recon.errors import (
    ApiRejected,
    AuthError,
    ClientError,
    NotFound,
    ParamsError,
    RateLimited,
    ReconError,
    ServiceUnavailable,
    StepError,
    WrongOrganisation,
)
from recon.ledger import Ledger
from recon.mapping import MappingResult, check_location
from recon.params import RunParams, load_params
from recon.report import ReportPaths, build_report
from recon.session import Connection, connect
from recon.status import Difference, StatusDiff, apply_paid, sync_status
from recon.transfer import (
    AllocationPlan,
    AllocationResult,
    TransferOptions,
    TransferPlan,
    TransferResult,
    allocate,
    plan_allocations,
    plan_transfer,
    push,
)

__version__ = "0.1.0"

__all__ = [
    "AllocationPlan",
    "AllocationResult",
    "ApiRejected",
    "AuthError",
    "ClientError",
    "Connection",
    "Difference",
    "Ledger",
    "MappingResult",
    "NotFound",
    "ParamsError",
    "RateLimited",
    "ReconError",
    "ReportPaths",
    "RunParams",
    "ServiceUnavailable",
    "StatusDiff",
    "StepError",
    "TransferOptions",
    "TransferPlan",
    "TransferResult",
    "WrongOrganisation",
    "allocate",
    "apply_paid",
    "build_report",
    "check_location",
    "connect",
    "load_params",
    "plan_allocations",
    "plan_transfer",
    "push",
    "sync_status",
]
