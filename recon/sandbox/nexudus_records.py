"""The fake Nexudus API's records: SQLite schema, entities, fields, values, field errors.

No HTTP here. Each ``Entity`` names its filter prefix (``CoworkerInvoice`` in
``CoworkerInvoice_Paid=true``), table, indexed columns and documented fields
(``shared/reference/nexudus.md`` §7); ``sql_row`` and ``insert_sql`` turn an
API-shaped document into its SQL row; ``FieldError`` and ``Rejected`` carry the
validation errors the other ``nexudus_*`` modules raise and ``nexudus_app``
answers in the §4 shape.

Date-times are stored and served as the reference's UTC text (§6): one fixed
format, ``YYYY-MM-DDTHH:MM:SSZ``, so text order is time order in SQLite.

Imports nothing of recon outside ``recon.sandbox``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any, Final

from recon.sandbox import jsonutil

# --------------------------------------------------------------------------- date-time rules

# §3 range values "YYYY-MM-DDTHH:mm", public clients add ":SS" and "Z"; §6 answers carry up to
# 7 decimals. A bare date is read too (its midnight; §13: no whole-day expansion).
_WHEN = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?)?(?:Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)
_CANONICAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")  # what iso writes
# §13 "zone of a zone-less filter value": UTC. The same for date-times in request bodies.
ZONELESS: Final = UTC

TABLES = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens(token_hash TEXT PRIMARY KEY, kind TEXT NOT NULL,
    client_id TEXT NOT NULL, expires REAL NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS businesses(id INTEGER PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS coworkers(id INTEGER PRIMARY KEY, invoicing_business_id INTEGER,
    doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS financial_accounts(id INTEGER PRIMARY KEY, business_id INTEGER,
    doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tax_rates(id INTEGER PRIMARY KEY, business_id INTEGER,
    doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS currencies(id INTEGER PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS simple_time_zones(id INTEGER PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invoices(id INTEGER PRIMARY KEY, business_id INTEGER,
    coworker_id INTEGER, invoice_number TEXT, created_on TEXT, updated_on TEXT, paid INTEGER,
    void INTEGER, draft INTEGER, credit_note INTEGER, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invoice_lines(id INTEGER PRIMARY KEY, coworker_invoice_id INTEGER,
    created_on TEXT, updated_on TEXT, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_entries(id INTEGER PRIMARY KEY, business_id INTEGER,
    coworker_id INTEGER, coworker_invoice_id INTEGER, created_on TEXT, updated_on TEXT,
    doc TEXT NOT NULL);
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
    "lines_created": "invoice_lines(created_on)",
    "lines_updated": "invoice_lines(updated_on)",
    "ledger_invoice": "ledger_entries(coworker_invoice_id)",
}
CREATE_INDEXES = [
    f"CREATE INDEX IF NOT EXISTS {name} ON {target}" for name, target in INDEXES.items()
]
SCHEMA = TABLES + "".join(f"{sql};\n" for sql in CREATE_INDEXES)

# --------------------------------------------------------------------------- entities

# §7.1 CoworkerInvoice (the fields the sandbox stores; others of the reference's list are absent).
INVOICE_FIELDS = (
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
    "BillToAddress",
    "BillToCity",
    "BillToPostCode",
    "BillToState",
    "BillToCountryId",
    "BillToTaxIDNumber",
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
    "DueAmount",
    "IsDue",
    "CreditedAmount",
    "ReceivedAmount",
    "CurrencyId",
    "CurrencyCode",
    "TransactionCurrencyId",
    "TransactionCurrencyCode",
    "TransactionExchangeRate",
    "Draft",
    "Void",
    "WaitingForInvoiceNumber",
    "Paid",
    "PaidOn",
    "Sent",
    "SentOn",
    "Refunded",
    "RefundedOn",
    "RefundedAmount",
    "CreditNote",
    "OriginalInvoiceGuid",
    "CustomData",
    "XeroInvoiceTransfered",
    "XeroPaymentTransfered",
    "QuickbooksInvoiceTransfered",
    "QuickbooksPaymentTransfered",
    "AutoTransferToXeroOrQuickBooks",
    "StorecoveInvoiceStatus",
    "DoNotApplyCreditAutomatically",
    "CreatedOn",
    "UpdatedOn",
    "SystemId",
)
# §7.2 CoworkerInvoiceLine, with the parent invoice's echoes the reference lists.
LINE_FIELDS = (
    "Id",
    "UniqueId",
    "CoworkerInvoiceId",
    "CoworkerInvoiceInvoiceNumber",
    "CoworkerInvoicePaid",
    "CoworkerInvoicePaidOn",
    "CoworkerInvoiceCreditNote",
    "CoworkerInvoiceCurrencyCode",
    "CoworkerInvoiceDueDate",
    "Description",
    "Quantity",
    "UnitPrice",
    "SubTotal",
    "TaxAmount",
    "TaxRate",
    "TaxCategoryName",
    "FinancialAccountCode",
    "FinancialAccountName",
    "DiscountAmount",
    "DiscountCode",
    "Position",
    "Refunded",
    "RefundedAmount",
    "SaleDate",
    "TariffName",
    "CoworkerContractUniqueId",
    "BookingUniqueId",
    "ContractDepositUniqueId",
    "CoworkerTimePassUniqueId",
    "CoworkerChargeUniqueId",
    "CoworkerProductUniqueId",
    "CoworkerExtraServiceUniqueId",
    "EventAttendeeUniqueId",
    "CreatedOn",
    "UpdatedOn",
)
# §7.3 CoworkerLedgerEntry: its own fields, then the read-only echoes of its invoice and location.
LEDGER_FIELDS = (
    "Id",
    "UniqueId",
    "BusinessId",
    "CoworkerId",
    "CoworkerInvoiceId",
    "Description",
    "Code",
    "Debit",
    "Credit",
    "Balance",
    "PaymentGatewayName",
    "PaymentMethodNumber",
    "TransactionDate",
    "ConnectedTransactionGuid",
    "Billed",
    "BusinessCurrencyCode",
    "CoworkerInvoiceInvoiceNumber",
    "CoworkerInvoicePaid",
    "CoworkerInvoicePaidOn",
    "CoworkerInvoiceTotalAmount",
    "CreatedOn",
    "UpdatedOn",
)

_BOOL_FIELDS = frozenset(
    [
        "Draft",
        "Void",
        "WaitingForInvoiceNumber",
        "Paid",
        "IsDue",
        "Sent",
        "Refunded",
        "CreditNote",
        "XeroInvoiceTransfered",
        "XeroPaymentTransfered",
        "QuickbooksInvoiceTransfered",
        "QuickbooksPaymentTransfered",
        "AutoTransferToXeroOrQuickBooks",
        "DoNotApplyCreditAutomatically",
        "CoworkerInvoicePaid",
        "CoworkerInvoiceCreditNote",
        "UsesSummerTime",
        "Billed",
    ]
)
_DECIMAL_FIELDS = frozenset(
    [
        "TransactionExchangeRate",
        "UnitPrice",
        "SubTotal",
        "TaxRate",
        "Rate",
        "Credit",
        "Debit",
        "Balance",
        "TimeOffset",
    ]
)
_INT_FIELDS = frozenset(["Quantity", "Position", "AccountType", "ExemptionReason"])
# End in Id or Name but hold text or an enum; read by their own kind.
_TEXT_FIELDS = frozenset({"SystemId", "PaymentMethodNumber", "ConnectedTransactionGuid"})


def field_kind(name: str, sample: Any = None) -> str:
    """The type a field's filter values are read as: bool, int, decimal, date or str."""
    if name in _TEXT_FIELDS:
        return "str"
    if name in _BOOL_FIELDS:
        return "bool"
    if name in _DECIMAL_FIELDS or name.endswith("Amount"):
        return "decimal"
    if name in _INT_FIELDS or (name.endswith("Id") and not name.endswith("UniqueId")):
        return "int"
    if name.endswith("Date") or name.endswith("On"):
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

    @cached_property
    def column_kinds(self) -> tuple[tuple[str, str], ...]:
        """Each indexed field with the type its values are read as, in declaration order."""
        return tuple((name, field_kind(name)) for name in self.columns)


# §7.4 Business: no "prices include tax" property exists on it.
BUSINESS = Entity(
    "Business",
    "businesses",
    {"Id": "id"},
    (
        "Id",
        "UniqueId",
        "Name",
        "CurrencyId",
        "CurrencyCode",
        "CountryId",
        "CountryName",
        "SimpleTimeZoneId",
        "RootLocationId",
    ),
)
# §7.4 Coworker: no BusinessId; InvoicingBusinessId and the Businesses list instead.
COWORKER = Entity(
    "Coworker",
    "coworkers",
    {"Id": "id", "InvoicingBusinessId": "invoicing_business_id"},
    (
        "Id",
        "UniqueId",
        "FullName",
        "CompanyName",
        "BillingName",
        "BillingEmail",
        "Email",
        "TaxIDNumber",
        "InvoicingBusinessId",
        "Businesses",
    ),
)
# §7.4 FinancialAccount; AccountType 0 None, 1 Sales, 2 Payments, 3 Deposits.
FINANCIAL_ACCOUNT = Entity(
    "FinancialAccount",
    "financial_accounts",
    {"Id": "id", "BusinessId": "business_id"},
    ("Id", "UniqueId", "BusinessId", "Name", "Code", "Description", "AccountType"),
)
# §7.4 TaxRate (served at sys/taxrates, §2).
TAX_RATE = Entity(
    "TaxRate",
    "tax_rates",
    {"Id": "id", "BusinessId": "business_id"},
    ("Id", "UniqueId", "BusinessId", "Name", "Rate", "ExemptionReason"),
)
# §2 Currency (sys/currencies, read).
CURRENCY = Entity("Currency", "currencies", {"Id": "id"}, ("Id", "UniqueId", "Code", "Name"))
# §6 and §7.4 SimpleTimeZone: a Windows-style Name, TimeOffset, UsesSummerTime.
SIMPLE_TIME_ZONE = Entity(
    "SimpleTimeZone",
    "simple_time_zones",
    {"Id": "id"},
    ("Id", "Name", "TimeOffset", "UsesSummerTime"),
)
INVOICE = Entity(
    "CoworkerInvoice",
    "invoices",
    {
        "Id": "id",
        "BusinessId": "business_id",
        "CoworkerId": "coworker_id",
        "InvoiceNumber": "invoice_number",
        "CreatedOn": "created_on",
        "UpdatedOn": "updated_on",
        "Paid": "paid",
        "Void": "void",
        "Draft": "draft",
        "CreditNote": "credit_note",
    },
    INVOICE_FIELDS,
)
LINE = Entity(
    "CoworkerInvoiceLine",
    "invoice_lines",
    {
        "Id": "id",
        "CoworkerInvoiceId": "coworker_invoice_id",
        "CreatedOn": "created_on",
        "UpdatedOn": "updated_on",
    },
    LINE_FIELDS,
)
LEDGER_ENTRY = Entity(
    "CoworkerLedgerEntry",
    "ledger_entries",
    {
        "Id": "id",
        "BusinessId": "business_id",
        "CoworkerId": "coworker_id",
        "CoworkerInvoiceId": "coworker_invoice_id",
        "CreatedOn": "created_on",
        "UpdatedOn": "updated_on",
    },
    LEDGER_FIELDS,
)
ENTITIES = (
    BUSINESS,
    COWORKER,
    FINANCIAL_ACCOUNT,
    TAX_RATE,
    CURRENCY,
    SIMPLE_TIME_ZONE,
    INVOICE,
    LINE,
    LEDGER_ENTRY,
)

# --------------------------------------------------------------------------- values


def iso(dt: datetime) -> str:
    """Nexudus date-time text (§6): ``YYYY-MM-DDTHH:MM:SSZ`` in UTC, whole seconds."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_when(text: str) -> datetime:
    """A date-time value sent by a client, as an aware UTC datetime. Raises ValueError.

    §13 choice: a value without a zone is UTC (undocumented; public clients send
    ``Z``), and a bare date is that day's midnight UTC.
    """
    text = text.strip()
    if not _WHEN.fullmatch(text):
        raise ValueError(f"not a date-time: {text!r}")
    if "." in text:  # Python reads at most 6 decimals; Nexudus writes up to 7 (§6)
        head, _, tail = text.partition(".")
        digits = re.match(r"\d*", tail)
        assert digits is not None
        text = head + "." + digits.group()[:6].ljust(6, "0") + tail[digits.end() :]
    parsed = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZONELESS)
    return parsed.astimezone(UTC)


def _column_value(kind: str, value: Any) -> Any:
    """A document value as its indexed SQL column holds it."""
    if value is None or value == "":
        return None
    if kind == "bool":
        return int(bool(value))
    if kind == "int":
        return int(value)
    if kind == "date":
        text = str(value)
        if _CANONICAL.fullmatch(text):  # already the stored form (the seed's, the server's)
            return text
        return iso(parse_when(text))
    return str(value)


def sql_row(entity: Entity, doc: Mapping[str, Any]) -> tuple[Any, ...]:
    """The SQL row (indexed columns in declaration order, then the JSON doc) for a document."""
    cols = tuple(_column_value(kind, doc.get(name)) for name, kind in entity.column_kinds)
    return (*cols, jsonutil.dumps(doc))


def insert_sql(entity: Entity) -> str:
    """The INSERT OR REPLACE statement of one document row (indexed columns, then ``doc``)."""
    cols = [*entity.columns.values(), "doc"]
    marks = ", ".join("?" * len(cols))
    return f"INSERT OR REPLACE INTO {entity.table}({', '.join(cols)}) VALUES ({marks})"


# --------------------------------------------------------------------------- errors as answers


@dataclass
class FieldError:
    """One entry of §4's validation error shape: ``{AttemptedValue, Message, PropertyName}``."""

    property_name: str
    message: str
    attempted_value: Any = None

    def to_json(self) -> dict[str, Any]:
        """The error in the API's shape."""
        return {
            "AttemptedValue": self.attempted_value,
            "Message": self.message,
            "PropertyName": self.property_name,
        }


class Rejected(Exception):
    """A request the API refuses with §4's validation answer (HTTP 400, field errors)."""

    def __init__(self, message: str, errors: Iterable[FieldError] = ()) -> None:
        self.message = message
        self.errors = list(errors)
        super().__init__(message)
