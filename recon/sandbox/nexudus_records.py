"""The fake Nexudus API's records: SQLite schema, entities and their fields, value conversion, field errors.

No HTTP here. Each ``Entity`` names its filter prefix, table, indexed columns and
documented fields; ``_row`` and ``_insert_sql`` turn an API-shaped document into
its SQL row; ``FieldError`` and ``Rejected`` carry the validation errors the
other ``nexudus_*`` modules raise and ``nexudus_app`` answers with.

Floor 0: imports only ``recon.sandbox.*`` and the leaves ``recon.money`` and
``recon.errors``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import cached_property
from typing import Any

from recon.sandbox import jsonutil

TABLES = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens(token_hash TEXT PRIMARY KEY, kind TEXT NOT NULL, client_id TEXT NOT NULL,
    expires REAL NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS businesses(id INTEGER PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS coworkers(id INTEGER PRIMARY KEY, business_id INTEGER, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS financial_accounts(id INTEGER PRIMARY KEY, business_id INTEGER, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tax_rates(id INTEGER PRIMARY KEY, business_id INTEGER, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invoices(id INTEGER PRIMARY KEY, business_id INTEGER, coworker_id INTEGER,
    invoice_number TEXT, created_on TEXT, updated_on TEXT, paid INTEGER, void INTEGER, draft INTEGER,
    credit_note INTEGER, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invoice_lines(id INTEGER PRIMARY KEY, coworker_invoice_id INTEGER, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_entries(id INTEGER PRIMARY KEY, business_id INTEGER, coworker_id INTEGER,
    coworker_invoice_id INTEGER, created_on TEXT, updated_on TEXT, doc TEXT NOT NULL);
"""
# Kept apart so load_seed can build them after a bulk insert (about twice as fast).
INDEXES = {
    "invoices_business_created": "invoices(business_id, created_on)",
    "invoices_created": "invoices(created_on)",
    "invoices_updated": "invoices(updated_on)",
    "invoices_coworker": "invoices(coworker_id)",
    "invoices_number": "invoices(invoice_number)",
    "invoices_paid": "invoices(paid, void, draft, credit_note)",
    "lines_invoice": "invoice_lines(coworker_invoice_id)",
    "ledger_invoice": "ledger_entries(coworker_invoice_id)",
}
CREATE_INDEXES = [f"CREATE INDEX IF NOT EXISTS {name} ON {target}" for name, target in INDEXES.items()]
SCHEMA = TABLES + "".join(f"{sql};\n" for sql in CREATE_INDEXES)

# --------------------------------------------------------------------------- entities

INVOICE_FIELDS = (
    "Id UniqueId InvoiceNumber BusinessId BusinessName CoworkerId CoworkerFullName CoworkerCompanyName "
    "CoworkerBillingEmail BillToName BillToAddress BillToCity BillToPostCode BillToCountryId BillToTaxIDNumber "
    "PurchaseOrder PaymentReference Description DiscountAmount DueDate InvoiceFromDate InvoiceToDate TotalAmount "
    "TaxAmount PaidAmount CreditedAmount ReceivedAmount CurrencyId CurrencyCode TransactionCurrencyCode "
    "TransactionExchangeRate Draft Void WaitingForInvoiceNumber Paid PaidOn Sent SentOn Refunded RefundedOn "
    "RefundedAmount CreditNote OriginalInvoiceGuid XeroInvoiceTransfered XeroPaymentTransfered CreatedOn "
    "UpdatedOn SystemId"
).split()
LINE_FIELDS = (
    "Id UniqueId CoworkerInvoiceId Description Quantity SubTotal TaxAmount TaxRate TaxCategoryName "
    "FinancialAccountCode FinancialAccountName DiscountAmount DiscountCode Position Refunded RefundedAmount "
    "SaleDate TariffName CoworkerContractUniqueId BookingUniqueId ContractDepositUniqueId "
    "CoworkerTimePassUniqueId CoworkerChargeUniqueId CoworkerProductUniqueId CoworkerExtraServiceUniqueId "
    "EventAttendeeUniqueId CreatedOn UpdatedOn"
).split()
# ASSUMPTION: the ledger entry's fields beyond what public code posts (Id, Date,
# Debit, CreatedOn, UpdatedOn) are the sandbox's choice.
LEDGER_FIELDS = (
    "Id UniqueId BusinessId CoworkerId CoworkerInvoiceId Description Code Credit Debit Date CreatedOn UpdatedOn"
).split()

_BOOL_FIELDS = frozenset(
    "Draft Void WaitingForInvoiceNumber Paid Sent Refunded CreditNote XeroInvoiceTransfered "
    "XeroPaymentTransfered".split()
)
_DECIMAL_FIELDS = frozenset("TransactionExchangeRate SubTotal TaxRate Rate Credit Debit".split())
_INT_FIELDS = frozenset("Quantity Position".split())
_TEXT_FIELDS = frozenset({"SystemId"})  # ends in Id, but is free text


def _kind(name: str, sample: Any = None) -> str:
    """The type a field's filter values are read as: bool, int, decimal, date or str."""
    if name in _TEXT_FIELDS:
        return "str"
    if name in _BOOL_FIELDS:
        return "bool"
    if name in _DECIMAL_FIELDS or name.endswith("Amount"):
        return "decimal"
    if name in _INT_FIELDS or (name.endswith("Id") and not name.endswith("UniqueId")):
        return "int"
    if name == "Date" or name.endswith("Date") or name.endswith("On"):
        return "date"
    if isinstance(sample, bool):
        return "bool"
    if isinstance(sample, int):
        return "int"
    if isinstance(sample, Decimal):
        return "decimal"
    return "str"


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per entity
class Entity:
    """One Nexudus entity: its filter name, table, indexed columns and documented fields."""

    name: str  # the filter prefix, e.g. CoworkerInvoice in CoworkerInvoice_Paid=true
    table: str
    columns: Mapping[str, str]  # API field -> indexed SQL column
    fields: tuple[str, ...] = ()
    parent: Entity | None = None
    parent_key: str = ""  # the field holding the parent's Id

    @cached_property
    def column_kinds(self) -> tuple[tuple[str, str], ...]:
        return tuple((name, _kind(name)) for name in self.columns)


BUSINESS = Entity("Business", "businesses", {"Id": "id"}, ("Id", "Name", "CurrencyCode"))
COWORKER = Entity(
    "Coworker", "coworkers", {"Id": "id", "BusinessId": "business_id"},
    ("Id", "FullName", "CompanyName", "BillingEmail", "BusinessId"),
)
FINANCIAL_ACCOUNT = Entity(
    "FinancialAccount", "financial_accounts", {"Id": "id", "BusinessId": "business_id"},
    ("Id", "Name", "Code", "BusinessId"),
)
TAX_RATE = Entity("TaxRate", "tax_rates", {"Id": "id", "BusinessId": "business_id"}, ("Id", "Name", "Rate", "BusinessId"))
INVOICE = Entity(
    "CoworkerInvoice", "invoices",
    {
        "Id": "id", "BusinessId": "business_id", "CoworkerId": "coworker_id", "InvoiceNumber": "invoice_number",
        "CreatedOn": "created_on", "UpdatedOn": "updated_on", "Paid": "paid", "Void": "void", "Draft": "draft",
        "CreditNote": "credit_note",
    },
    tuple(INVOICE_FIELDS),
)
LINE = Entity(
    "CoworkerInvoiceLine", "invoice_lines", {"Id": "id", "CoworkerInvoiceId": "coworker_invoice_id"},
    tuple(LINE_FIELDS), parent=INVOICE, parent_key="CoworkerInvoiceId",
)
LEDGER_ENTRY = Entity(
    "CoworkerLedgerEntry", "ledger_entries",
    {
        "Id": "id", "BusinessId": "business_id", "CoworkerId": "coworker_id",
        "CoworkerInvoiceId": "coworker_invoice_id", "CreatedOn": "created_on", "UpdatedOn": "updated_on",
    },
    tuple(LEDGER_FIELDS),
)
ENTITIES = (BUSINESS, COWORKER, FINANCIAL_ACCOUNT, TAX_RATE, INVOICE, LINE, LEDGER_ENTRY)

# --------------------------------------------------------------------------- values


def _iso(dt: datetime) -> str:
    """Nexudus date-time text as the seed writes it: ``YYYY-MM-DDTHH:MM:SSZ`` in UTC.

    One fixed format keeps text comparison equal to time comparison in SQLite.
    """
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_when(text: str) -> tuple[datetime, bool]:
    """(UTC datetime, whether only a date was given). Raises ValueError.

    ASSUMPTION: a date-time without a zone is UTC (Nexudus may read it in the
    location's time zone; the sandbox keeps every time in UTC).
    """
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.combine(date.fromisoformat(text), time(), UTC), True
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC), False


def _column_value(kind: str, value: Any) -> Any:
    """A document value as its indexed SQL column holds it."""
    if value is None or value == "":
        return None
    if kind == "bool":
        return int(bool(value))
    if kind == "int":
        return int(value)
    if kind == "date":
        return _iso(_parse_when(str(value))[0])
    return str(value)


def _row(entity: Entity, doc: Mapping[str, Any]) -> tuple[Any, ...]:
    """The SQL row (indexed columns in declaration order, then the JSON doc) for a document."""
    cols = tuple(_column_value(kind, doc.get(name)) for name, kind in entity.column_kinds)
    return (*cols, jsonutil.dumps(doc))


def _insert_sql(entity: Entity) -> str:
    cols = [*entity.columns.values(), "doc"]
    return f"INSERT OR REPLACE INTO {entity.table}({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"


# --------------------------------------------------------------------------- errors as answers


@dataclass
class FieldError:
    """One entry of the (ASSUMPTION) Nexudus validation error shape."""

    property_name: str
    message: str
    attempted_value: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"AttemptedValue": self.attempted_value, "Message": self.message, "PropertyName": self.property_name}


class Rejected(Exception):
    """A request the API refuses with 400 and field errors."""

    def __init__(self, message: str, errors: Iterable[FieldError] = ()) -> None:
        self.message = message
        self.errors = list(errors)
        super().__init__(message)

