"""Nexudus records as typed values and DataFrames, and filters re-checked on this side.

Money and rates become ``Decimal`` (never float); ids integers; date-times
tz-aware. ``frame_of`` converts every date-time column into the location's time
zone, so a date-like field (the UTC instant of local midnight, nexudus.md §6)
reads as the location's calendar date. ``recheck`` applies a query's documented
equality and range filters again to what came back: an unknown or unsupported
filter is most likely ignored by Nexudus (nexudus.md §3, §13), which would
widen the answer.

Floor 1: imports ``recon.money`` only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from recon.money import CENT, D

__all__ = [
    "BOOL_FIELDS",
    "DECIMAL_FIELDS",
    "MONEY_FIELDS",
    "decimal_or_none",
    "decode",
    "field_messages",
    "frame_of",
    "query_value",
    "recheck",
]

MONEY_FIELDS = frozenset(
    [
        "TotalAmount",
        "TaxAmount",
        "PaidAmount",
        "CreditedAmount",
        "ReceivedAmount",
        "DiscountAmount",
        "RefundedAmount",
        "SubTotal",
        "Credit",
        "Debit",
    ]
)
DECIMAL_FIELDS = MONEY_FIELDS | {"TaxRate", "Rate", "TransactionExchangeRate"}
BOOL_FIELDS = frozenset(
    [
        "Draft",
        "Void",
        "WaitingForInvoiceNumber",
        "Paid",
        "Sent",
        "Refunded",
        "CreditNote",
        "XeroInvoiceTransfered",
        "XeroPaymentTransfered",
    ]
)

INVOICE_COLUMNS = [
    "Id",
    "UniqueId",
    "InvoiceNumber",
    "BusinessId",
    "BusinessName",
    "CoworkerId",
    "CoworkerFullName",
    "CoworkerCompanyName",
    "CoworkerBillingEmail",
    "BillToName",
    "PurchaseOrder",
    "PaymentReference",
    "Description",
    "DiscountAmount",
    "DueDate",
    "InvoiceFromDate",
    "InvoiceToDate",
    "TotalAmount",
    "TaxAmount",
    "PaidAmount",
    "CreditedAmount",
    "ReceivedAmount",
    "CurrencyCode",
    "Draft",
    "Void",
    "Paid",
    "PaidOn",
    "Sent",
    "Refunded",
    "RefundedAmount",
    "CreditNote",
    "OriginalInvoiceGuid",
    "XeroInvoiceTransfered",
    "XeroPaymentTransfered",
    "CreatedOn",
    "UpdatedOn",
    "SystemId",
]
LINE_COLUMNS = [
    "Id",
    "UniqueId",
    "CoworkerInvoiceId",
    "Description",
    "Quantity",
    "SubTotal",
    "TaxAmount",
    "TaxRate",
    "TaxCategoryName",
    "FinancialAccountCode",
    "FinancialAccountName",
    "DiscountAmount",
    "Position",
    "SaleDate",
    "TariffName",
]


def decode(content: bytes) -> Any:
    """JSON with every non-integer number as Decimal (floats would lose cents)."""
    return json.loads(content, parse_float=Decimal)


def query_value(value: Any) -> str:
    """A filter value as Nexudus reads it: booleans lower-case, dates ISO, times in UTC with Z."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return str(value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def decimal_or_none(value: Any, is_money: bool) -> Decimal | None:
    """A Nexudus number as ``Decimal``, or None when missing (None or "").

    A money amount that is a whole number of cents gets its two places back (120.0 -> 120.00).
    """
    if value is None or value == "":
        return None
    amount = D(value)
    # JSON drops trailing zeros (120.0); give amounts their cents back when that is exact.
    if is_money and amount.is_finite() and amount == amount.quantize(CENT):
        return amount.quantize(CENT)
    return amount


def _number_or_as_is(value: Any, is_money: bool) -> object:
    """``decimal_or_none``, except that a value which is not a number is kept as it came.

    One line with a bad figure must not stop the read of a whole location: the transfer
    plan names the invoice, line and field, and holds back that invoice alone.
    """
    try:
        return decimal_or_none(value, is_money)
    except ValueError:
        return value


def _is_date_field(name: str) -> bool:
    return name == "Date" or name.endswith("Date") or name.endswith("On")


def _is_id_field(name: str) -> bool:
    # SystemId ends in Id but is free text.
    return name.endswith("Id") and not name.endswith("UniqueId") and name != "SystemId"


def _column(name: str, values: list[Any]) -> pd.Series:
    """One DataFrame column typed from the field name and its values."""
    present = [v for v in values if v is not None]
    has_null = len(present) < len(values)
    if name in DECIMAL_FIELDS or any(isinstance(v, Decimal) for v in present):
        return pd.Series([_number_or_as_is(v, name in MONEY_FIELDS) for v in values], dtype=object)
    if _is_date_field(name) and all(isinstance(v, str) for v in present):
        # ASSUMPTION: a date-time without a zone is UTC, as the API's own are.
        # A value that is no date becomes empty: one bad record must not stop a location's read
        # (the steps hold back an invoice whose dates are missing).
        parsed = pd.to_datetime(
            pd.Series(values, dtype=object), utc=True, format="ISO8601", errors="coerce"
        )
        return parsed.dt.as_unit("us")  # one resolution, whether a column is all null or not
    if name in BOOL_FIELDS or (present and all(isinstance(v, bool) for v in present)):
        return pd.Series(values, dtype="boolean" if has_null else bool)
    if (present or _is_id_field(name)) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in present
    ):
        return pd.Series(values, dtype="Int64" if has_null else "int64")
    if all(isinstance(v, str) for v in present):
        return pd.Series(values, dtype="str")
    return pd.Series(values, dtype=object)


def frame_of(
    records: list[dict[str, Any]], columns: Iterable[str] = (), zone: ZoneInfo | None = None
) -> pd.DataFrame:
    """A DataFrame of API records; an empty result still has ``columns``.

    Date-time columns are in ``zone`` (the location's), UTC when None.
    """
    names = list(dict.fromkeys([*(k for r in records for k in r), *([] if records else columns)]))
    frame = pd.DataFrame(
        {n: _column(n, [r.get(n) for r in records]) for n in names},
        index=pd.RangeIndex(len(records)),
    )
    if zone is not None:
        for name in frame.columns:
            if isinstance(frame[name].dtype, pd.DatetimeTZDtype):
                frame[name] = frame[name].dt.tz_convert(zone)
    return frame


def field_messages(body: Any) -> list[str]:
    """'Field: message' for each of the error shape's Errors, else its Message."""
    if not isinstance(body, Mapping):
        return []
    errors = body.get("Errors") or []
    messages = [
        f"{e.get('PropertyName') or '(request)'}: {e.get('Message')}"
        for e in errors
        if isinstance(e, Mapping)
    ]
    if not messages and body.get("Message"):
        messages = [str(body["Message"])]
    if not messages and body.get("error"):
        messages = [f"{body['error']}: {body.get('error_description') or ''}".strip(": ")]
    return messages


def _instant(value: Any) -> datetime | None:
    """A filter or record value as a UTC instant (zone-less = UTC, nexudus.md §13)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, date):
        stamp = datetime(value.year, value.month, value.day)
    else:
        stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def _same(record_value: Any, wanted: Any) -> bool:
    if isinstance(wanted, bool) or isinstance(record_value, bool):
        return bool(record_value) == (wanted if isinstance(wanted, bool) else str(wanted) == "true")
    if isinstance(wanted, int) or isinstance(record_value, int):
        try:
            return int(record_value) == int(wanted)
        except (TypeError, ValueError):
            return False
    return str(record_value) == str(wanted)


def _in_range(value: Any, low: Any, high: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        number = D(value)
        return (low is None or number >= D(low)) and (high is None or number <= D(high))
    instant = _instant(value)
    lo, hi = _instant(low), _instant(high)
    return instant is not None and (lo is None or instant >= lo) and (hi is None or instant <= hi)


def recheck(
    records: Iterable[dict[str, Any]], entity: str, filters: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The records that truly match ``filters`` on their own properties.

    ``Entity_Prop=v`` keeps records whose ``Prop`` (or ``PropId`` for a foreign
    key such as ``CoworkerInvoice_Business``) equals v; ``from_Entity_Prop`` /
    ``to_Entity_Prop`` keep records inside the inclusive range. Filters on
    another entity's properties are left to the caller.
    """
    equal: dict[str, Any] = {}
    ranges: dict[str, list[Any]] = {}
    for key, wanted in filters.items():
        if wanted is None:
            continue
        bound = ""
        if key.startswith(("from_", "to_")):
            bound, _, key = key.partition("_")
        prefix = entity + "_"
        if not key.startswith(prefix) or "_" in key[len(prefix) :]:
            continue
        prop = key[len(prefix) :]
        if bound:
            ranges.setdefault(prop, [None, None])[0 if bound == "from" else 1] = wanted
        else:
            equal[prop] = wanted
    kept = []
    for record in records:
        ok = True
        for prop, wanted in equal.items():
            field = prop if prop in record else prop + "Id"
            if field not in record or not _same(record[field], wanted):
                ok = False
                break
        if ok:
            ok = all(_in_range(record.get(p), lo, hi) for p, (lo, hi) in ranges.items())
        if ok:
            kept.append(record)
    return kept
