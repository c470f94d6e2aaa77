"""The fake Nexudus API's billing rules: full-record invoice updates and ledger-entry payments.

No HTTP routing here. ``replace_invoice`` applies a ``PUT`` as
``shared/reference/nexudus.md`` §4 and §7.1 describe it: the body replaces the
record (required fields missing → 400 "<Field> is a required field"; writable
fields left out are cleared; read-only fields are kept whatever was sent).
``new_ledger_entry`` validates and applies a ``POST`` of a CoworkerLedgerEntry
(§7.3, §8): a Credit against an invoice raises its PaidAmount and, once it
covers the total, marks it paid at the server's now; no refusal for void,
draft, credit-note or over-paid invoices, and no idempotency. Both raise
``Rejected`` with every field error at once.

Imports nothing of recon outside ``recon.sandbox``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from recon.sandbox import jsonutil
from recon.sandbox.decimals import ZERO, D
from recon.sandbox.http import Request
from recon.sandbox.nexudus_records import (
    INVOICE,
    LEDGER_ENTRY,
    FieldError,
    Rejected,
    field_kind,
    insert_sql,
    iso,
    parse_when,
    sql_row,
)

# --------------------------------------------------------------------------- rules, in one place

# §7.1 "Required on PUT" (NX put-coworkerinvoices).
REQUIRED_INVOICE_FIELDS: Final = (
    "Id",
    "CoworkerId",
    "BusinessId",
    "InvoiceNumber",
    "BillToName",
    "BillToAddress",
    "BillToCity",
    "BillToPostCode",
    "BillToCountryId",
    "CurrencyId",
)
# §7.1 "Writable" (the other BillTo fields, the transaction currency fields, …) plus SystemId:
# §13 choice, SystemId round-trips on a full PUT. Left out of a PUT body, these are cleared
# (null, or false for a flag): §4 "missing ones are cleared or set false".
WRITABLE_INVOICE_FIELDS: Final = (
    "PaymentReference",
    "BillToState",
    "BillToTaxIDNumber",
    "PurchaseOrder",
    "DueDate",
    "InvoiceFromDate",
    "InvoiceToDate",
    "TransactionCurrencyId",
    "TransactionExchangeRate",
    "Draft",
    "PaidOn",
    "StorecoveInvoiceStatus",
    "DoNotApplyCreditAutomatically",
    "CustomData",
    "SentOn",
    "RefundedOn",
    "SystemId",
)
# Writable fields stored exactly as sent (their type is not documented).
AS_SENT: Final = frozenset({"StorecoveInvoiceStatus", "CustomData"})
# §7.1: CreatedOn "also round-trips on a full PUT". ASSUMPTION: sent, it is written; left out it
# keeps its value (a record never loses its creation time).
KEPT_WHEN_OMITTED: Final = ("CreatedOn",)
# §7.1 "Read-only" (Paid, PaidAmount, Void, CreditNote, Sent, Refunded, RefundedAmount, TotalAmount,
# TaxAmount, DiscountAmount, Description, OriginalInvoiceGuid, the Xero/Quickbooks flags) and every
# other field not named above: a value sent is ignored and the stored one kept (echoing them
# unchanged is what a client building its PUT from a GET does, FW).
# ASSUMPTION (§4 silent on what "required" rejects): a required field is missing when the key is
# absent or null; an empty string is a value.
REQUIRED_MESSAGE: Final = "{} is a required field"  # §4, FW (live): "X is a required field"
# ASSUMPTION (§4 gives no text): a value of the wrong type, in ASP.NET model binding's words.
INVALID_MESSAGE: Final = "The value '{}' is not valid for {}."

# §7.3 / §8 CoworkerLedgerEntry create.
REQUIRED_LEDGER_FIELDS: Final = (
    "BusinessId",
    "CoworkerId",
    "Description",
    "Code",
    "Debit",
    "Credit",
    "Balance",
)
OPTIONAL_LEDGER_FIELDS: Final = (
    "CoworkerInvoiceId",
    "PaymentGatewayName",
    "PaymentMethodNumber",
    "TransactionDate",
    "ConnectedTransactionGuid",
)
# Any other property (``Date`` included: §7.3 "There is no `Date` field") is ignored, as ASP.NET's
# JSON binding ignores unknown members.
# §8 "the create answer ... showed Credit 0 and Debit 0 although a Credit was sent": the create
# answer always echoes these two as 0, so a client must re-read the invoice. The stored entry keeps
# what was sent (ASSUMPTION: what a later list shows is not documented).
ECHOED_AS_ZERO: Final = ("Credit", "Debit")
# ASSUMPTION (§7.3 silent): an entry naming an invoice that does not exist is refused.
NO_SUCH_INVOICE: Final = "The invoice {} does not exist."

# The line fields that echo their invoice (§7.2), kept in step with it.
LINE_ECHOES: Final = {
    "CoworkerInvoiceInvoiceNumber": "InvoiceNumber",
    "CoworkerInvoicePaid": "Paid",
    "CoworkerInvoicePaidOn": "PaidOn",
    "CoworkerInvoiceCreditNote": "CreditNote",
    "CoworkerInvoiceCurrencyCode": "CurrencyCode",
    "CoworkerInvoiceDueDate": "DueDate",
}


def due_fields(total: Any, paid_amount: Any, credited_amount: Any = None) -> tuple[Decimal, bool]:
    """(DueAmount, IsDue) of an invoice (§7.1 "DueAmount and IsDue are returned too").

    ASSUMPTION (no source defines them): DueAmount is what is still owed,
    TotalAmount − PaidAmount − CreditedAmount (a credit note applied to it, §9
    COWORKER_INVOICE_CANCEL) and never below zero; IsDue says it is above zero.
    The seed computes them with this function too (without its credit note).
    """
    due = D(total) - D(paid_amount) - D(credited_amount)
    if due < 0:
        due -= due  # zero, with the amount's places (0.00, not 0)
    return due, due > 0


# --------------------------------------------------------------------------- request helpers


def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; any other JSON value is ``Rejected``."""
    body = request.json()
    if not isinstance(body, dict):
        raise Rejected(
            "The request body must be a JSON object.",
            [FieldError("", "Expected a JSON object.", None)],
        )
    return body


def get_ci(body: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """A body value by key, case-insensitively (as ASP.NET JSON binding reads keys)."""
    for key, value in body.items():
        if key.lower() == name.lower():
            return value
    return default


def has_ci(body: Mapping[str, Any], name: str) -> bool:
    return any(key.lower() == name.lower() for key in body)


def load_doc(db: sqlite3.Connection, table: str, raw_id: Any) -> dict[str, Any] | None:
    """The stored record of ``table`` with this id (given as int or text); None if none."""
    if isinstance(raw_id, bool):
        return None
    try:
        record_id = int(str(raw_id))
    except (TypeError, ValueError):
        return None
    row = db.execute(f"SELECT doc FROM {table} WHERE id = ?", (record_id,)).fetchone()
    return None if row is None else dict(jsonutil.loads(row[0]))


def _missing(body: Mapping[str, Any], names: tuple[str, ...]) -> list[FieldError]:
    return [
        FieldError(name, REQUIRED_MESSAGE.format(name), None)
        for name in names
        if get_ci(body, name) is None
    ]


def _convert(name: str, value: Any, kind: str | None = None) -> Any:
    """A body value as the field's type; raises ValueError when it is not one."""
    kind = kind or field_kind(name)
    if value is None or kind == "raw":
        return value
    if kind == "date":
        if not isinstance(value, str):
            raise ValueError(value)
        return None if value == "" else iso(parse_when(value))
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(value)
        return value
    if kind == "int":
        if isinstance(value, bool) or (isinstance(value, Decimal) and value != int(value)):
            raise ValueError(value)
        return int(value)
    if kind == "decimal":
        if isinstance(value, bool) or (isinstance(value, str) and not value.strip()):
            raise ValueError(value)
        return D(value)
    if isinstance(value, bool):
        raise ValueError(value)
    # Text: numbers are read as their text, as ASP.NET's JSON binding does.
    return value if isinstance(value, str) else str(value)


def _invalid(name: str, value: Any) -> FieldError:
    return FieldError(name, INVALID_MESSAGE.format(value, name), value)


def rejection_message(errors: list[FieldError]) -> str:
    """§4's top-level ``Message``: ``"Prop: message"`` (each error, one per line)."""
    return "\n".join(f"{e.property_name}: {e.message}" for e in errors)


# --------------------------------------------------------------------------- invoices


def replace_invoice(
    db: sqlite3.Connection, body: Mapping[str, Any], now: str
) -> dict[str, Any] | None:
    """Apply a full-record PUT (§4, §7.1); None when no invoice has the body's Id.

    Raises ``Rejected`` with every missing required field, or every value of the
    wrong type, before anything is written.
    """
    errors = _missing(body, REQUIRED_INVOICE_FIELDS)
    if errors:
        raise Rejected(rejection_message(errors), errors)
    doc = load_doc(db, INVOICE.table, get_ci(body, "Id"))
    if doc is None:
        return None
    changes: dict[str, Any] = {}
    for name in (*REQUIRED_INVOICE_FIELDS[1:], *WRITABLE_INVOICE_FIELDS, *KEPT_WHEN_OMITTED):
        if not has_ci(body, name):
            if name in WRITABLE_INVOICE_FIELDS:
                changes[name] = False if field_kind(name) == "bool" else None
            continue
        value = get_ci(body, name)
        try:
            changes[name] = _convert(name, value, "raw" if name in AS_SENT else None)
        except (ValueError, ArithmeticError):
            errors.append(_invalid(name, value))
    if errors:
        raise Rejected(rejection_message(errors), errors)
    doc.update(changes)
    _refresh_invoice_echoes(db, doc)
    doc["UpdatedOn"] = now
    write_invoice(db, doc)
    return doc


def _refresh_invoice_echoes(db: sqlite3.Connection, doc: dict[str, Any]) -> None:
    """Names echoed from the records the invoice points at, when those records exist here.

    ASSUMPTION (§7.1 silent on re-pointing an invoice): ids are stored as sent; the
    echoes follow them when the sandbox holds the record, else keep their value.
    """
    business = load_doc(db, "businesses", doc.get("BusinessId"))
    if business is not None:
        doc["BusinessName"] = business.get("Name")
    coworker = load_doc(db, "coworkers", doc.get("CoworkerId"))
    if coworker is not None:
        doc["CoworkerFullName"] = coworker.get("FullName")
        doc["CoworkerCompanyName"] = coworker.get("CompanyName")
        doc["CoworkerBillingEmail"] = coworker.get("BillingEmail")
    for id_field, code_field in (
        ("CurrencyId", "CurrencyCode"),
        ("TransactionCurrencyId", "TransactionCurrencyCode"),
    ):
        currency = load_doc(db, "currencies", doc.get(id_field))
        if currency is not None:
            doc[code_field] = currency.get("Code")


def write_invoice(db: sqlite3.Connection, doc: dict[str, Any]) -> None:
    """Store an invoice (DueAmount and IsDue recomputed) and bring its lines' echoes in step."""
    try:
        doc["DueAmount"], doc["IsDue"] = due_fields(
            doc.get("TotalAmount"), doc.get("PaidAmount"), doc.get("CreditedAmount")
        )
    except ValueError:  # a desk-made invoice whose total is no number (nexudus_desk, raw)
        doc["DueAmount"], doc["IsDue"] = None, False
    db.execute(insert_sql(INVOICE), sql_row(INVOICE, doc))
    sets = ", ".join(
        f"'$.{echo}', json(?)" if field_kind(source) == "bool" else f"'$.{echo}', ?"
        for echo, source in LINE_ECHOES.items()
    )
    values = [
        ("true" if doc.get(source) else "false")
        if field_kind(source) == "bool"
        else doc.get(source)
        for source in LINE_ECHOES.values()
    ]
    db.execute(
        f"UPDATE invoice_lines SET doc = json_set(doc, {sets}) WHERE coworker_invoice_id = ?",
        (*values, doc["Id"]),
    )


# --------------------------------------------------------------------------- ledger entries

_LEDGER_KINDS: Final = {
    "BusinessId": "int",
    "CoworkerId": "int",
    "CoworkerInvoiceId": "int",
    "Description": "str",
    "Code": "str",
    "Debit": "decimal",
    "Credit": "decimal",
    "Balance": "decimal",
    "PaymentMethodNumber": "str",
    "TransactionDate": "date",
    "ConnectedTransactionGuid": "str",
}


def _payment_gateway(value: Any) -> Any:
    """ePaymentProvider (§7.3): its number, or its name as ASP.NET also binds enums by name."""
    if value is None or isinstance(value, str):
        return value
    return _convert("PaymentGatewayName", value, "int")


def new_ledger_entry(
    db: sqlite3.Connection, body: Mapping[str, Any], entry_id: int, unique_id: str, now: str
) -> dict[str, Any]:
    """Validate and store a ledger entry, applying its Credit to its invoice (§7.3, §8).

    Returns the stored entry. Raises ``Rejected`` (nothing written) for missing
    required fields, values of the wrong type or an invoice that does not exist.
    """
    errors = _missing(body, REQUIRED_LEDGER_FIELDS)
    values: dict[str, Any] = {}
    for name in (*REQUIRED_LEDGER_FIELDS, *OPTIONAL_LEDGER_FIELDS):
        value = get_ci(body, name)
        try:
            if name == "PaymentGatewayName":
                values[name] = _payment_gateway(value)
            else:
                values[name] = _convert(name, value, _LEDGER_KINDS[name])
        except (ValueError, ArithmeticError):
            errors.append(_invalid(name, value))
    invoice = None
    if values.get("CoworkerInvoiceId") is not None:
        invoice = load_doc(db, INVOICE.table, values["CoworkerInvoiceId"])
        if invoice is None:
            raw = values["CoworkerInvoiceId"]
            errors.append(FieldError("CoworkerInvoiceId", NO_SUCH_INVOICE.format(raw), raw))
    if errors:
        raise Rejected(rejection_message(errors), errors)
    if invoice is not None:
        _apply_payment(invoice, values["Credit"], now)
        write_invoice(db, invoice)
    business = load_doc(db, "businesses", values["BusinessId"]) or {}
    entry: dict[str, Any] = {
        "Id": entry_id,
        "UniqueId": unique_id,
        **{name: values[name] for name in LEDGER_ENTRY.fields if name in values},
        # §7.3 (FW live): "Without TransactionDate the entry is dated now".
        "TransactionDate": values["TransactionDate"] or now,
        "Billed": False,
        "BusinessCurrencyCode": business.get("CurrencyCode"),
        "CoworkerInvoiceInvoiceNumber": invoice.get("InvoiceNumber") if invoice else None,
        "CoworkerInvoicePaid": bool(invoice.get("Paid")) if invoice else None,
        "CoworkerInvoicePaidOn": invoice.get("PaidOn") if invoice else None,
        "CoworkerInvoiceTotalAmount": invoice.get("TotalAmount") if invoice else None,
        "CreatedOn": now,
        "UpdatedOn": now,
    }
    entry = {name: entry.get(name) for name in LEDGER_ENTRY.fields}
    db.execute(insert_sql(LEDGER_ENTRY), sql_row(LEDGER_ENTRY, entry))
    return entry


def _apply_payment(invoice: dict[str, Any], credit: Decimal, now: str) -> None:
    """§8: "Nexudus reconciles the invoice's read-only Paid and PaidAmount; PaidOn becomes the
    server's now, not TransactionDate".

    §13 choice: PaidAmount accumulates over entries (a second POST is a second
    payment). No refusal for void, draft, credit-note or over-paid invoices (§8:
    FW saw an entry flip Paid "regardless of intent"). ASSUMPTION: PaidOn moves
    to now on each entry after which the invoice is paid (a part payment leaves
    it as it was), ReceivedAmount grows with PaidAmount, and Paid never turns
    back to false. Only Credit moves PaidAmount (a Debit is recorded on the entry
    only), and an entry whose BusinessId or CoworkerId is not the invoice's is
    accepted too (no refusal documented either).
    """
    invoice["PaidAmount"] = D(invoice.get("PaidAmount")) + credit
    invoice["ReceivedAmount"] = D(invoice.get("ReceivedAmount")) + credit
    if invoice["PaidAmount"] >= D(invoice.get("TotalAmount")):
        invoice["Paid"] = True
        invoice["PaidOn"] = now
    invoice["UpdatedOn"] = now


def answer_value(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The create answer's ``Value``: the entry, Credit and Debit shown as 0 (§8)."""
    return {**entry, **dict.fromkeys(ECHOED_AS_ZERO, ZERO)}


__all__ = [
    "LINE_ECHOES",
    "REQUIRED_INVOICE_FIELDS",
    "REQUIRED_LEDGER_FIELDS",
    "WRITABLE_INVOICE_FIELDS",
    "answer_value",
    "due_fields",
    "get_ci",
    "json_object",
    "load_doc",
    "new_ledger_entry",
    "replace_invoice",
    "write_invoice",
]
