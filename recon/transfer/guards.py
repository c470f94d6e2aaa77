"""Checks that hold an invoice back before anything is written to Xero. No writes.

Floor 4 (the transfer): imports the Xero client, ``recon.money`` and the leaves.
Each check answers with a reason per invoice ("" when the invoice may go), so the
plan shows a held-back row a bookkeeper can act on instead of a failed call:

- ``check_lock_dates``: Xero refuses a document dated on or before the organisation's
  lock date (xero-api.md §6, §13).
- ``check_number_clashes``: an invoice number Xero already uses is either this very
  invoice (sent before: skip it) or another one (a clash: renumber one of them). The
  numbers come from ``recon.transfer.lookups``.
- ``check_currencies``: a currency the organisation has not enabled (§3.2, §13).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd

from recon.clients.xero import (
    parse_xero_date,
)
from recon.money import to_minor
from recon.transfer.contacts import name_key

__all__ = [
    "PLANNED_COLUMNS",
    "UNLOCKED_STATUSES",
    "check_currencies",
    "check_lock_dates",
    "check_number_clashes",
    "lock_date",
]

PLANNED_COLUMNS = [
    "invoice_number",
    "kind",  # "invoice" or "credit_note", as plan.eligible has it
    "contact_number",
    "contact_name",
    "xero_contact_id",  # None for a contact the push will create
    "total",  # Nexudus' TotalAmount (credit notes negative)
    "currency",
]
# Xero's help ("Set and work with lock dates"): drafts and submitted documents may still be
# created in a locked period; only approving them is refused.
UNLOCKED_STATUSES = ("DRAFT", "SUBMITTED")
LOCK_FIELDS = {"PeriodLockDate": "period lock date", "EndOfYearLockDate": "end of year lock date"}


# ---- lock dates ----------------------------------------------------------------------------
def lock_date(organisation: Mapping[str, Any]) -> tuple[date, str] | None:
    """The lock date that governs (the later of the two that are set) and its name, or None."""
    found = []
    for key, label in LOCK_FIELDS.items():
        when = parse_xero_date(organisation.get(key))  # MS-JSON, present only when set (§6, §10)
        if when is not None:
            found.append((when.date(), label))
    # On a tie the end of year lock wins: it binds advisers too.
    return max(found, key=lambda f: (f[0], f[1] == LOCK_FIELDS["EndOfYearLockDate"]), default=None)


def check_lock_dates(
    dates: pd.Series, organisation: Mapping[str, Any], status: str = "AUTHORISED"
) -> pd.Series:
    """Per invoice, why Xero would refuse its date ("" when it would not).

    ``dates`` are the dates the invoices will carry in Xero (ISO text, dates or
    timestamps; the calendar date as written is used); ``status`` is the status they are
    sent with. Xero refuses an approved document dated on or before the lock date (its
    help: "on or before the lock date"; its message says "cannot be before", §13), and
    the sandbox refuses the same (``xero_books.lock_date_errors``). DRAFT and SUBMITTED
    documents may still be created in a locked period, so they are not held back.
    """
    reasons = pd.Series("", index=dates.index, dtype="object")
    lock = lock_date(organisation)
    if lock is None or dates.empty or status.upper() in UNLOCKED_STATUSES:
        return reasons
    when, label = lock
    text = dates.astype("object").where(dates.notna(), "").astype(str).str[:10]
    day = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    locked = day.notna() & (day <= pd.Timestamp(when))
    reasons[locked] = (
        "dated "
        + text[locked]
        + f", on or before Xero's {label} {when.day} {when:%b %Y}: ask the Xero adviser to "
        "move the lock date or change the invoice date policy (invoice_date)"
    )
    return reasons


# ---- invoice numbers -----------------------------------------------------------------------


def check_number_clashes(planned: pd.DataFrame, in_xero: pd.DataFrame) -> pd.DataFrame:
    """Per planned invoice (same index): is it already in Xero, or does its number clash?

    ``planned`` has ``PLANNED_COLUMNS``; ``in_xero`` is ``fetch_numbered_documents``'
    frame. Returns ``already_in_xero`` (bool: Xero holds this very invoice, same
    number, customer, currency and total: skip it), ``xero_id`` (that document's id)
    and ``reason`` (a clash: Xero uses the number for another customer or total; "" when
    none), with ``clash_xero_id`` (the id of the document it clashes with). The same
    customer is the same Xero ContactID when the plan knows it, else the same
    ContactNumber, else the same name as Xero compares names.
    """
    out = pd.DataFrame(
        {"already_in_xero": False, "xero_id": None, "reason": "", "clash_xero_id": None},
        index=planned.index,
    ).astype({"xero_id": "object", "reason": "object", "clash_xero_id": "object"})
    if planned.empty or in_xero.empty:
        return out
    left = pd.DataFrame(
        {
            "row": planned.index,
            "kind": planned["kind"].astype(str).to_numpy(),
            "number": planned["invoice_number"].astype("object").to_numpy(),
            "contact_number": planned["contact_number"].astype("object").to_numpy(),
            "contact_name": planned["contact_name"].astype("object").to_numpy(),
            "contact_id": planned["xero_contact_id"].astype("object").to_numpy()
            if "xero_contact_id" in planned.columns
            else None,
            "currency": planned["currency"].astype("object").to_numpy(),
            "cents": planned["total"].map(lambda t: abs(to_minor(t))).to_numpy(),
            "total": planned["total"].map(lambda t: abs(Decimal(t))).to_numpy(),
        }
    )
    right = in_xero.assign(cents=in_xero["total"].map(to_minor))
    pairs = left.merge(right, on=["kind", "number"], suffixes=("", "_xero"))
    if pairs.empty:
        return out
    known = pairs["contact_id"].notna() & (pairs["contact_id"].astype(str) != "")
    same_id = known & (
        pairs["contact_id"].astype(str).str.lower()
        == pairs["contact_id_xero"].astype(str).str.lower()
    )
    same_number = pairs["contact_number"].notna() & (
        pairs["contact_number"] == pairs["contact_number_xero"]
    )
    same_name = (
        ~known
        & (name_key(pairs["contact_name"]) == name_key(pairs["contact_name_xero"]))
        & (name_key(pairs["contact_name"]) != "")
    )
    pairs["same"] = (
        (same_id | same_number | same_name)
        & (pairs["currency"] == pairs["currency_xero"])
        & (pairs["cents"] == pairs["cents_xero"])
    )
    same = pairs[pairs["same"]].drop_duplicates("row").set_index("row")
    out.loc[same.index, "already_in_xero"] = True
    out.loc[same.index, "xero_id"] = same["xero_id"]
    other = pairs[~pairs["row"].isin(same.index)].drop_duplicates("row").set_index("row")
    if len(other):
        out.loc[other.index, "clash_xero_id"] = other["xero_id"]
        label = other["kind"].map({"invoice": "", "credit_note": "credit note "})
        out.loc[other.index, "reason"] = (
            label
            + other["number"].astype(str)
            + " is already used in Xero by '"
            + other["contact_name_xero"].fillna("(no name)").astype(str)
            + "' for "
            + other["currency_xero"].astype(str)
            + " "
            + other["total_xero"].map(_amount)
            + " (Nexudus: '"
            + other["contact_name"].astype(str)
            + "', "
            + other["currency"].astype(str)
            + " "
            + other["total"].map(_amount)
            + "): renumber one of them"
        )
    return out


def _amount(value: Any) -> str:
    return f"{Decimal(value):,.2f}"


# ---- currencies ----------------------------------------------------------------------------
def check_currencies(
    currencies: pd.Series, organisation: Mapping[str, Any], enabled: Iterable[str]
) -> pd.Series:
    """Per invoice, why Xero would refuse its currency ("" when it would not).

    A currency must be the organisation's ``BaseCurrency`` or one of ``GET /Currencies``
    (``enabled``; xero-api.md §3.2, §6); Xero answers otherwise "Organisation is not
    subscribed to currency …" (§13).
    """
    base = str(organisation.get("BaseCurrency") or "").upper()
    allowed = {str(c).upper() for c in enabled} | ({base} if base else set())
    codes = currencies.astype("object").where(currencies.notna(), "").astype(str).str.strip()
    reasons = pd.Series("", index=currencies.index, dtype="object")
    name = organisation.get("Name") or "(unnamed)"
    listed = ", ".join(sorted(allowed)) or "none"
    blank = codes == ""
    reasons[blank] = "no currency on the Nexudus invoice: set the location's currency in Nexudus"
    refused = ~blank & ~codes.str.upper().isin(allowed)
    reasons[refused] = (
        "currency "
        + codes[refused]
        + f" is not enabled in Xero organisation {name} (it has {listed}): add it in Xero "
        "(Settings > Currencies; needs a plan with multi-currency) or bill it in another currency"
    )
    return reasons
