"""A fake Nexudus admin REST API: tokens, paged lists with filters, invoice writes, payments.

``NexudusApp`` is a WSGI-like callable ``(Request) -> Response`` for
``recon.sandbox.http.Server``. Everything lives under ``/api/`` as on
``https://spaces.nexudus.com/api/``; shapes follow ``shared/reference/nexudus.md``.
State is one SQLite file (``recon.sandbox.store.Store``): documents kept as JSON
in the API's own shape, with real indexed columns for what clients filter and
sort on, so 100,000 invoices page as fast as ten. A reopened app sees every
earlier write, issued tokens included.

Endpoints (all but the first take ``Authorization: Bearer <token>`` or HTTP Basic)::

    POST /api/token                              form: grant_type=password|refresh_token, ...
    GET  /api/billing/coworkerinvoices           list (envelope; page, size, orderBy, dir, filters)
    GET  /api/billing/coworkerinvoices/{id}      one invoice
    PUT  /api/billing/coworkerinvoices[/{id}]    JSON {Id, writable fields} -> action result
    GET  /api/billing/coworkerinvoicelines       list; parent filters CoworkerInvoiceLine_CoworkerInvoice_<Field>
    GET  /api/billing/coworkerledgerentries      list
    POST /api/billing/coworkerledgerentries      JSON payment -> action result
    GET  /api/billing/financialaccounts, /api/billing/taxrates, /api/sys/businesses, /api/spaces/coworkers

Where the public material is silent, the choice made is marked ASSUMPTION.

Floor 0: imports only ``recon.sandbox.*`` and the leaves ``recon.money`` and
``recon.errors``.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
import sqlite3
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from recon.money import CENT, ZERO, D
from recon.sandbox import jsonutil
from recon.sandbox.clock import Clock
from recon.sandbox.http import BadRequestBody, Request, Response, Router
from recon.sandbox.seed import NexudusSeed
from recon.sandbox.store import Store

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "Faults", "NexudusApp"]

DEFAULT_PAGE_SIZE = 25
# ASSUMPTION: the maximum page size is undocumented; public scripts use 1000, so
# larger sizes are capped to 1000 (not refused) and CurrentPageSize says so.
MAX_PAGE_SIZE = 1000
DEFAULT_TOKEN_SECONDS = 3600
# ASSUMPTION: refresh-token lifetime is undocumented; 14 days, the ASP.NET
# (OWIN) template's default, which Nexudus' token endpoint resembles.
DEFAULT_REFRESH_SECONDS = 14 * 86400
RATE_WINDOW_SECONDS = 60.0

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

# ASSUMPTION: PUT may change only these. The reference says most status fields are
# read-only and PaidOn is writable; SystemId is "free text only the API can read
# and write"; PurchaseOrder and Description are plain text a back office edits.
# Paid, PaidAmount, Void, Draft and the Xero transfer flags (XeroInvoiceTransfered,
# XeroPaymentTransfered) are status fields, so read-only: payments go through a
# ledger entry, transfer flags are Nexudus' own Xero integration's business.
WRITABLE_INVOICE_FIELDS = ("SystemId", "PaidOn", "PurchaseOrder", "Description")

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


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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


def _rejection(message: str, errors: list[FieldError], status: int = 400) -> Response:
    """The reference's ASSUMPTION error shape: Status, Message, Errors, WasSuccessful."""
    return Response.json(
        {"Status": status, "Message": message, "Errors": [e.to_json() for e in errors], "WasSuccessful": False},
        status=status,
    )


def _message(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    # ASSUMPTION: non-validation errors answer like ASP.NET Web API: {"Message": ...}.
    return Response.json({"Message": message}, status=status, headers=headers)


def _oauth_error(error: str, description: str | None = None) -> Response:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return Response.json(body, status=400, headers={"Cache-Control": "no-store"})


# --------------------------------------------------------------------------- faults and rate limit


@dataclass
class _Fault:
    kind: str  # "fail" or "drop"
    status: int = 503
    retry_after: int | None = None
    method: str | None = None  # only requests with this method; None: any

    def matches(self, request: Request) -> bool:
        return self.method is None or self.method.upper() == request.method


class Faults:
    """Failures queued for the next API requests (tests only): statuses or dropped connections.

    Each fault hits the next request it matches (any request, or only ``method``),
    in the order queued. Faults apply before the rate limit and authentication,
    as a gateway's would, and to the token endpoint too.
    """

    def __init__(self) -> None:
        self._queue: list[_Fault] = []
        self._lock = threading.Lock()

    def fail_next(self, n: int = 1, status: int = 503, retry_after: int | None = None, method: str | None = None) -> None:
        """Answer the next ``n`` API requests with ``status`` (429 gets ``Retry-After``, 1 s by default)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._queue.extend(_Fault("fail", status, retry_after, method) for _ in range(n))

    def drop_next(self, n: int = 1, method: str | None = None) -> None:
        """Close the connection of the next ``n`` API requests without answering."""
        with self._lock:
            self._queue.extend(_Fault("drop", method=method) for _ in range(n))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def take(self, request: Request) -> _Fault | None:
        """Remove and return the first queued fault this request meets, if any."""
        with self._lock:
            for i, fault in enumerate(self._queue):
                if fault.matches(request):
                    return self._queue.pop(i)
            return None


class _DroppingHeaders(dict[str, str]):
    """Headers that end the request as it is being answered, so nothing reaches the client.

    A handler cannot reach its socket, and ``recon.sandbox.http`` answers any
    exception from the app with a 500. Raising while the server walks the
    headers happens after that guard and before anything is written (the status
    line is still in the buffer); ``http.server`` treats a TimeoutError there as a
    timed-out request and closes the connection, silently.
    """

    def items(self):  # type: ignore[override]
        raise TimeoutError("sandbox fault: connection dropped")


def _dropped_connection() -> Response:
    return Response(500, b"", _DroppingHeaders())


class _RateLimiter:
    """ASSUMPTION: Nexudus documents no rate limit; an optional sliding window per minute.

    Counts every API request (tokens included) on the sandbox clock; a refused
    request is not counted, so a retry after ``Retry-After`` succeeds.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.per_minute: int | None = None
        self.window_seconds = RATE_WINDOW_SECONDS
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def admit(self) -> int:
        """0 if the call may go ahead, else the seconds to wait."""
        if self.per_minute is None:
            return 0
        with self._lock:
            now = self.clock.monotonic()
            while self._calls and self._calls[0] <= now - self.window_seconds:
                self._calls.popleft()
            if len(self._calls) >= self.per_minute:
                return max(1, math.ceil(self._calls[0] + self.window_seconds - now))
            self._calls.append(now)
            return 0


# --------------------------------------------------------------------------- list queries


@dataclass
class _Query:
    """A list request translated to SQL."""

    where: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)
    joins_parent: bool = False

    def add(self, sql: str, *args: Any) -> None:
        self.where.append(sql)
        self.args.extend(args)


_RESERVED = {"page", "size", "orderby", "dir"}


class _Lister:
    """Turns ``Entity_Property`` filters, ranges, paging and order into SQL for one entity."""

    def __init__(self, store: Store, entity: Entity) -> None:
        self.store = store
        self.entity = entity
        self._fields: dict[Entity, dict[str, tuple[str, str]]] = {}

    def forget_fields(self) -> None:
        self._fields.clear()

    def fields(self, entity: Entity) -> dict[str, tuple[str, str]]:
        """lower-case name -> (field, kind): documented fields plus those in a stored document."""
        if entity not in self._fields:
            doc_text = self.store.scalar(f"SELECT doc FROM {entity.table} LIMIT 1")
            sample: dict[str, Any] = jsonutil.loads(doc_text) if doc_text else {}
            names = dict.fromkeys([*entity.fields, *entity.columns, *sample])
            self._fields[entity] = {n.lower(): (n, _kind(n, sample.get(n))) for n in names}
        return self._fields[entity]

    def resolve(self, entity: Entity, name: str) -> tuple[str, str] | None:
        """(field, kind) for a property name, matched case-insensitively.

        ``Coworker`` means ``CoworkerId``: the reference filters foreign keys by
        the navigation name (``CoworkerInvoice_Coworker=<id>``).
        """
        known = self.fields(entity)
        return known.get(name.lower()) or known.get(name.lower() + "id")

    def expr(self, entity: Entity, name: str, alias: str) -> str:
        column = entity.columns.get(name)
        if column:
            return f"{alias}.{column}"
        if not re.fullmatch(r"[A-Za-z0-9]+", name):  # names come from documents: keep SQL safe
            raise Rejected(f"Cannot filter on {name!r}.")
        return f"json_extract({alias}.doc, '$.{name}')"

    def translate(self, query: Mapping[str, list[str]]) -> _Query:
        """The WHERE clause for the request's filters.

        ASSUMPTION: unknown properties and empty values are ignored, as ASP.NET
        model binding ignores what it cannot bind (so a misspelt filter returns
        more, never fewer, records: clients must check what they get).
        """
        out = _Query()
        for key, values in query.items():
            if key.lower() in _RESERVED or not values or values[0] == "":
                continue
            target = self._target(key)
            if target is None:
                continue
            bound, entity, name, kind = target
            alias = "p" if entity is not self.entity else "t"
            out.joins_parent |= alias == "p"
            self._condition(out, bound, self.expr(entity, name, alias), kind, values[0], key)
        return out

    def _target(self, key: str) -> tuple[str, Entity, str, str] | None:
        """(bound, entity, field, kind) for a query key, or None if it is not a filter here."""
        bound, rest = "", key
        for prefix in ("from_", "to_"):
            if key.lower().startswith(prefix):
                bound, rest = prefix[:-1], key[len(prefix):]
        own = self.entity.name.lower() + "_"
        if not rest.lower().startswith(own):
            return None
        rest = rest[len(own):]
        parent = self.entity.parent
        if parent is not None:
            if rest.lower() == parent.name.lower():  # CoworkerInvoiceLine_CoworkerInvoice=<id>
                rest = self.entity.parent_key
            elif rest.lower().startswith(parent.name.lower() + "_"):
                found = self.resolve(parent, rest[len(parent.name) + 1:])
                return (bound, parent, *found) if found else None
        found = self.resolve(self.entity, rest)
        return (bound, self.entity, *found) if found else None

    def _condition(self, out: _Query, bound: str, expr: str, kind: str, raw: str, key: str) -> None:
        try:
            if kind == "date":
                self._date_condition(out, bound, expr, raw)
                return
            value = _filter_value(kind, raw)
        except (ValueError, InvalidOperation) as exc:
            raise Rejected(f"The value of {key} is not valid.", [FieldError(key, f"Not a valid {kind}: {raw!r}.", raw)]) from exc
        op = {"": "=", "from": ">=", "to": "<="}[bound]
        if kind == "decimal":
            expr = f"CAST({expr} AS REAL)"
        out.add(f"{expr} {op} ?", value)

    @staticmethod
    def _date_condition(out: _Query, bound: str, expr: str, raw: str) -> None:
        """Inclusive date ranges: a bare ``to_`` date covers that whole day, ``=date`` the day."""
        when, date_only = _parse_when(raw)
        day_end = _iso(when + timedelta(days=1) - timedelta(seconds=1))
        if bound == "from":
            out.add(f"{expr} >= ?", _iso(when))
        elif bound == "to":
            out.add(f"{expr} <= ?", day_end if date_only else _iso(when))
        elif date_only:
            out.add(f"{expr} BETWEEN ? AND ?", _iso(when), day_end)
        else:
            out.add(f"{expr} = ?", _iso(when))

    def order(self, request: Request) -> tuple[str, str, int]:
        """(ORDER BY clause, field name echoed, CurrentSortDirection).

        ASSUMPTION: default order is Id ascending (stable paging). ``dir`` is read
        under both documented conventions where they agree: -1, ``desc`` or
        ``descending`` sort descending; 0, 1, ``asc`` or ``ascending`` ascending
        (the conventions clash on 1; the envelope example shows 1 on a default
        listing, so 1 is ascending). The envelope echoes 1 or -1.
        """
        wanted = request.arg("orderBy") or "Id"
        found = self.resolve(self.entity, wanted)
        name = found[0] if found else "Id"
        descending = (request.arg("dir") or "").strip().lower() in {"-1", "desc", "descending"}
        direction = "DESC" if descending else "ASC"
        expr = self.expr(self.entity, name, "t")
        tiebreak = "" if name == "Id" else f", t.id {direction}"
        return f"{expr} {direction}{tiebreak}", name, -1 if descending else 1

    def page(self, request: Request) -> Response:
        """One page of records in the Nexudus list envelope."""
        page, size = _paging(request)
        query = self.translate(request.query)
        order_sql, order_name, direction = self.order(request)
        source = f"{self.entity.table} t"
        if query.joins_parent and self.entity.parent is not None:
            source += f" JOIN {self.entity.parent.table} p ON p.id = t.{self.entity.columns[self.entity.parent_key]}"
        where = " AND ".join(query.where) or "1=1"
        total = int(self.store.scalar(f"SELECT COUNT(*) FROM {source} WHERE {where}", query.args))
        rows = self.store.query(
            f"SELECT t.doc FROM {source} WHERE {where} ORDER BY {order_sql} LIMIT ? OFFSET ?",
            [*query.args, size, (page - 1) * size],
        )
        envelope = _envelope(page, size, total, len(rows), order_name, direction)
        # Documents are already JSON: splice them in rather than parse and re-dump.
        records = ",".join(r[0] for r in rows)
        body = '{"Records":[' + records + "]," + jsonutil.dumps(envelope)[1:]
        return Response(200, body.encode("utf-8"), {"Content-Type": "application/json; charset=utf-8"})


def _filter_value(kind: str, raw: str) -> Any:
    if kind == "bool":
        text = raw.strip().lower()
        if text not in {"true", "false", "1", "0"}:
            raise ValueError(raw)
        return int(text in {"true", "1"})
    if kind == "int":
        return int(raw)
    if kind == "decimal":
        return float(Decimal(raw))  # documents hold JSON numbers, which SQLite reads as REAL
    return raw


def _paging(request: Request) -> tuple[int, int]:
    """(page, size) from the query. ASSUMPTION: below 1 means the default; non-numbers are refused."""
    try:
        page = int(request.arg("page") or 1)
        size = int(request.arg("size") or DEFAULT_PAGE_SIZE)
    except ValueError as exc:
        raise Rejected("page and size must be whole numbers.", [FieldError("size", str(exc))]) from exc
    return max(page, 1), min(size if size >= 1 else DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _envelope(page: int, size: int, total: int, count: int, order: str, direction: int) -> dict[str, Any]:
    """The list envelope without Records. ASSUMPTION: an empty page has FirstItem and LastItem 0."""
    first = (page - 1) * size + 1 if count else 0
    pages = math.ceil(total / size) if total else 0
    return {
        "CurrentPage": page,
        "CurrentPageSize": size,
        "CurrentOrderField": order,
        "CurrentSortDirection": direction,
        "FirstItem": first,
        "LastItem": first + count - 1 if count else 0,
        "TotalItems": total,
        "TotalPages": pages,
        "HasNextPage": page < pages,
        "HasPreviousPage": page > 1,
    }


# --------------------------------------------------------------------------- the app


class NexudusApp:
    """The fake Nexudus admin API for one administrator account.

    ``NexudusApp(db_path, *, username, password, clock=None)``; then
    ``load_seed(seed)`` once (a no-op on a file that already holds data).
    Test knobs: ``faults`` (``fail_next``, ``drop_next``), ``rate_limit_per_minute``
    (None = off), ``rate_window_seconds``, ``token_seconds``, ``refresh_seconds``.
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        username: str,
        password: str,
        clock: Clock | None = None,
        token_seconds: int = DEFAULT_TOKEN_SECONDS,
        refresh_seconds: int = DEFAULT_REFRESH_SECONDS,
        rate_limit_per_minute: int | None = None,
    ) -> None:
        self.store = Store(db_path, SCHEMA)
        self.username = username
        self._password = password
        self.clock = clock or Clock()
        self.token_seconds = token_seconds
        self.refresh_seconds = refresh_seconds
        self.faults = Faults()
        self._limiter = _RateLimiter(self.clock)
        self._limiter.per_minute = rate_limit_per_minute
        self._listers = {e: _Lister(self.store, e) for e in ENTITIES}
        self.router = Router()
        self._add_routes()

    # ---- settings

    @property
    def rate_limit_per_minute(self) -> int | None:
        return self._limiter.per_minute

    @rate_limit_per_minute.setter
    def rate_limit_per_minute(self, value: int | None) -> None:
        self._limiter.per_minute = value

    @property
    def rate_window_seconds(self) -> float:
        return self._limiter.window_seconds

    @rate_window_seconds.setter
    def rate_window_seconds(self, value: float) -> None:
        self._limiter.window_seconds = value

    def __repr__(self) -> str:
        return f"NexudusApp({str(self.store.path)!r}, username={self.username!r})"

    # ---- data

    def is_empty(self) -> bool:
        return self.store.scalar("SELECT value FROM meta WHERE key = 'seeded'") is None

    def load_seed(self, seed: NexudusSeed) -> bool:
        """Load the seed into an empty store; return whether it loaded (False: data already there)."""
        with self.store.write() as db:
            if db.execute("SELECT 1 FROM meta WHERE key = 'seeded'").fetchone():
                return False
            for name in INDEXES:
                db.execute(f"DROP INDEX IF EXISTS {name}")
            for entity, docs in (
                (BUSINESS, seed.businesses),
                (COWORKER, seed.coworkers),
                (FINANCIAL_ACCOUNT, seed.financial_accounts),
                (TAX_RATE, seed.tax_rates),
                (INVOICE, seed.invoices),
                (LINE, seed.invoice_lines),
            ):
                db.executemany(_insert_sql(entity), (_row(entity, d) for d in docs))
            for sql in CREATE_INDEXES:
                db.execute(sql)
            db.execute("INSERT INTO meta(key, value) VALUES ('seeded', ?)", (_iso(self.clock.now()),))
        for lister in self._listers.values():
            lister.forget_fields()
        return True

    # ---- dispatch

    def _add_routes(self) -> None:
        r = self.router
        r.add("POST", "/api/token", self._token)
        lists = {
            "/api/billing/coworkerinvoices": INVOICE,
            "/api/billing/coworkerinvoicelines": LINE,
            "/api/billing/financialaccounts": FINANCIAL_ACCOUNT,
            "/api/billing/taxrates": TAX_RATE,
            "/api/sys/businesses": BUSINESS,
            "/api/spaces/coworkers": COWORKER,
            "/api/billing/coworkerledgerentries": LEDGER_ENTRY,
        }
        for path, entity in lists.items():
            r.add("GET", path, self._listers[entity].page)
        r.add("GET", "/api/billing/coworkerinvoices/{id}", self._get_invoice)
        r.add("PUT", "/api/billing/coworkerinvoices", self._put_invoice)
        r.add("PUT", "/api/billing/coworkerinvoices/{id}", self._put_invoice)
        r.add("POST", "/api/billing/coworkerledgerentries", self._post_ledger_entry)

    def __call__(self, request: Request) -> Response:
        """Answer one HTTP request: faults, rate limit, auth, then the route."""
        if not request.path.lower().startswith("/api/"):
            return _message(404, "No HTTP resource was found that matches the request URI.")
        fault = self.faults.take(request)
        if fault is not None:
            if fault.kind == "drop":
                return _dropped_connection()
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return _message(fault.status, "The service is temporarily unavailable (sandbox fault).", headers)
        wait = self._limiter.admit()
        if wait:
            return _message(429, "Too many requests; slow down.", {"Retry-After": str(wait)})
        handler, params, path_exists = self.router.resolve(request.method, request.path)
        if handler is None:
            if path_exists:
                return _message(405, f"The requested resource does not support http method '{request.method}'.")
            return _message(404, "No HTTP resource was found that matches the request URI.")
        request.params = params
        if handler != self._token and not self._is_authorised(request):
            # ASSUMPTION: the body ASP.NET Web API gives for [Authorize] failures.
            return _message(401, "Authorization has been denied for this request.", {"WWW-Authenticate": "Bearer"})
        try:
            return handler(request)
        except Rejected as exc:
            return _rejection(exc.message, exc.errors)
        except BadRequestBody as exc:
            return _rejection("The request body is not valid JSON.", [FieldError("", str(exc))])

    # ---- auth

    def _is_right_password(self, username: str, password: str) -> bool:
        # ASSUMPTION: usernames (e-mail addresses) match case-insensitively, passwords exactly.
        same_user = secrets.compare_digest(username.strip().lower().encode(), self.username.lower().encode())
        return same_user and secrets.compare_digest(password.encode(), self._password.encode())

    def _is_authorised(self, request: Request) -> bool:
        """Bearer token (live, on the sandbox clock) or HTTP Basic with the username and password."""
        header = request.header("Authorization") or ""
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            row = self.store.one(
                "SELECT expires FROM tokens WHERE token_hash = ? AND kind = 'access'", (_hash(credentials.strip()),)
            )
            return row is not None and row["expires"] > self.clock.time()
        if scheme.lower() == "basic" and credentials:
            try:
                user, _, password = base64.b64decode(credentials.strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return self._is_right_password(user, password)
        return False

    def _token(self, request: Request) -> Response:
        """POST /api/token: password and refresh_token grants, form-encoded only.

        A JSON body carries no readable ``grant_type``, hence ``unsupported_grant_type``
        as the reference records. ``totp`` is accepted and ignored (no 2FA here).
        """
        content_type = (request.header("Content-Type") or "").lower()
        form = request.form() if content_type.startswith("application/x-www-form-urlencoded") else {}
        grant = form.get("grant_type", "")
        if grant == "password":
            if not self._is_right_password(form.get("username", ""), form.get("password", "")):
                return _oauth_error("invalid_grant", "The user name or password is incorrect.")
            return self._issue(form.get("client_id") or self.username)
        if grant == "refresh_token":
            return self._refresh(form)
        return _oauth_error("unsupported_grant_type")

    def _refresh(self, form: Mapping[str, str]) -> Response:
        """Rotate a refresh token. ASSUMPTION: a used refresh token is refused (rotation);
        an absent ``client_id`` defaults to the username, as on the password grant."""
        client_id = form.get("client_id") or self.username
        token_hash = _hash(form.get("refresh_token", ""))
        with self.store.write() as db:
            row = db.execute(
                "SELECT client_id, expires, used FROM tokens WHERE token_hash = ? AND kind = 'refresh'", (token_hash,)
            ).fetchone()
            if row is None or row["used"] or row["expires"] <= self.clock.time():
                return _oauth_error("invalid_grant", "The refresh token is invalid or expired.")
            if row["client_id"] != client_id:
                return _oauth_error("invalid_grant", "The refresh token was issued to a different client_id.")
            db.execute("UPDATE tokens SET used = 1 WHERE token_hash = ?", (token_hash,))
        return self._issue(client_id)

    def _issue(self, client_id: str) -> Response:
        """New access and refresh tokens; only their hashes are kept.

        ASSUMPTION: the response carries the ASP.NET (OWIN) token fields
        ``userName``, ``.issued`` and ``.expires`` besides the OAuth2 ones.
        """
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock.time()
        with self.store.write() as db:
            db.executemany(
                "INSERT INTO tokens(token_hash, kind, client_id, expires) VALUES (?, ?, ?, ?)",
                [
                    (_hash(access), "access", client_id, now + self.token_seconds),
                    (_hash(refresh), "refresh", client_id, now + self.refresh_seconds),
                ],
            )
        issued = datetime.fromtimestamp(now, UTC)
        return Response.json(
            {
                "access_token": access,
                "token_type": "bearer",
                "expires_in": self.token_seconds,
                "refresh_token": refresh,
                "userName": self.username,
                ".issued": format_datetime(issued, usegmt=True),
                ".expires": format_datetime(issued + timedelta(seconds=self.token_seconds), usegmt=True),
            },
            headers={"Cache-Control": "no-store"},
        )

    # ---- invoices

    def _get_invoice(self, request: Request) -> Response:
        doc = self._invoice_text(request.params["id"])
        if doc is None:
            return _not_found(request.params["id"])
        return Response(200, doc.encode("utf-8"), {"Content-Type": "application/json; charset=utf-8"})

    def _invoice_text(self, raw_id: Any) -> str | None:
        try:
            invoice_id = int(raw_id)
        except (TypeError, ValueError):
            return None
        value = self.store.scalar("SELECT doc FROM invoices WHERE id = ?", (invoice_id,))
        return None if value is None else str(value)

    def _put_invoice(self, request: Request) -> Response:
        """Update an invoice's writable fields.

        ASSUMPTION: Nexudus updates by PUT to the collection with ``Id`` in the JSON
        body (``/coworkerinvoices/{id}`` is accepted too). Body keys match
        case-insensitively; unknown keys are ignored; a read-only field sent with
        its current value is accepted (a client may PUT back the whole record),
        with another value it is refused with 400.
        """
        body = _json_object(request)
        raw_id = request.params.get("id", _get_ci(body, "Id"))
        with self.store.write() as db:
            doc = _load_invoice(db, raw_id)
            if doc is None:
                return _not_found(raw_id)
            errors = _apply_invoice_changes(doc, body)
            if errors:
                raise Rejected("The invoice could not be updated.", errors)
            doc["UpdatedOn"] = _iso(self.clock.now())
            db.execute(_insert_sql(INVOICE), _row(INVOICE, doc))
        return Response.json(self._action_result("Invoice updated.", {"Id": doc["Id"]}))

    def _post_ledger_entry(self, request: Request) -> Response:
        """Record a payment against an invoice (a ledger entry with a Credit).

        ASSUMPTION: ``Date`` (optional) is the payment date and becomes the invoice's
        ``PaidOn`` once it is fully paid; default now. Only credits are supported.
        """
        body = _json_object(request)
        now = _iso(self.clock.now())
        with self.store.write() as db:
            invoice = _load_invoice(db, _get_ci(body, "CoworkerInvoiceId"))
            payment = _check_payment(body, invoice, now)
            assert invoice is not None  # _check_payment refuses a missing invoice
            entry_id = int(db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM ledger_entries").fetchone()[0])
            entry = {
                "Id": entry_id,
                "UniqueId": str(uuid.uuid4()),
                "BusinessId": invoice["BusinessId"],
                "CoworkerId": invoice["CoworkerId"],
                "CoworkerInvoiceId": invoice["Id"],
                "Description": payment.description,
                "Code": payment.code,
                "Credit": payment.credit,
                "Debit": ZERO,
                "Date": payment.date,
                "CreatedOn": now,
                "UpdatedOn": now,
            }
            db.execute(_insert_sql(LEDGER_ENTRY), _row(LEDGER_ENTRY, entry))
            _apply_payment(invoice, payment, now)
            db.execute(_insert_sql(INVOICE), _row(INVOICE, invoice))
        return Response.json(self._action_result("Ledger entry added.", {"Id": entry_id}))

    def _action_result(self, message: str, value: dict[str, Any]) -> dict[str, Any]:
        """Nexudus' answer to a successful write (its ActionResult shape)."""
        return {
            "Status": 200,
            "Message": message,
            "Value": value,
            "OpenInDialog": False,
            "OpenInWindow": False,
            "RedirectURL": None,
            "JavaScript": None,
            "UpdatedOn": _iso(self.clock.now()),
            "UpdatedBy": self.username,
            "Errors": None,
            "WasSuccessful": True,
        }


# --------------------------------------------------------------------------- write helpers


def _not_found(raw_id: Any) -> Response:
    # ASSUMPTION: 404 with the error shape's Status/Message and no field errors.
    return Response.json(
        {"Status": 404, "Message": f"CoworkerInvoice {raw_id} was not found.", "Errors": [], "WasSuccessful": False},
        status=404,
    )


def _json_object(request: Request) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise Rejected("The request body must be a JSON object.", [FieldError("", "Expected a JSON object.", None)])
    return body


def _get_ci(body: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """A body value by key, case-insensitively (as ASP.NET JSON binding reads keys)."""
    for key, value in body.items():
        if key.lower() == name.lower():
            return value
    return default


def _load_invoice(db: sqlite3.Connection, raw_id: Any) -> dict[str, Any] | None:
    if isinstance(raw_id, bool):
        return None
    try:
        invoice_id = int(raw_id)
    except (TypeError, ValueError):
        return None
    row = db.execute("SELECT doc FROM invoices WHERE id = ?", (invoice_id,)).fetchone()
    return None if row is None else dict(jsonutil.loads(row[0]))


def _same(kind: str, old: Any, new: Any) -> bool:
    """Whether a value sent back equals the stored one (dates compared as times)."""
    if kind == "date" and old and new and isinstance(new, str):
        try:
            return _parse_when(str(old))[0] == _parse_when(new)[0]
        except ValueError:
            return False
    if kind == "decimal" and old is not None and new is not None and not isinstance(new, (bool, str)):
        return D(old) == D(new)
    return bool(old == new and type(old) is type(new)) or (old in (None, "") and new in (None, ""))


def _apply_invoice_changes(doc: dict[str, Any], body: Mapping[str, Any]) -> list[FieldError]:
    """Set the writable fields from ``body`` on ``doc``; return the field errors."""
    known = {n.lower(): n for n in (*INVOICE_FIELDS, *doc)}
    writable = {n.lower() for n in WRITABLE_INVOICE_FIELDS}
    errors: list[FieldError] = []
    for key, value in body.items():
        name = known.get(key.lower())
        if name is None or name == "Id":
            continue
        if key.lower() in writable:
            error = _set_writable(doc, name, value)
        elif _same(_kind(name), doc.get(name), value):
            error = None
        else:
            error = FieldError(name, f"{name} is read-only through the API.", value)
        if error:
            errors.append(error)
    return errors


def _set_writable(doc: dict[str, Any], name: str, value: Any) -> FieldError | None:
    if name == "PaidOn":
        if value in (None, ""):
            doc[name] = None
            return None
        try:
            doc[name] = _iso(_parse_when(str(value))[0])
        except ValueError:
            return FieldError(name, "PaidOn must be an ISO 8601 date or date-time.", value)
        return None
    if value is not None and not isinstance(value, str):
        return FieldError(name, f"{name} must be text.", value)
    doc[name] = value
    return None


@dataclass(frozen=True)
class _Payment:
    credit: Decimal
    date: str
    description: str
    code: str | None


def _check_payment(body: Mapping[str, Any], invoice: dict[str, Any] | None, now: str) -> _Payment:
    """Validate a ledger entry against its invoice; raise Rejected with every field error."""
    errors: list[FieldError] = []

    def refuse(name: str, message: str) -> None:
        errors.append(FieldError(name, message, _get_ci(body, name)))

    credit = _amount(_get_ci(body, "Credit"))
    if credit is None or credit <= 0:
        refuse("Credit", "Credit must be an amount above zero.")
    if _amount(_get_ci(body, "Debit")) not in (None, ZERO):
        refuse("Debit", "Only payments (Credit) can be recorded against an invoice here.")
    description = _get_ci(body, "Description")
    if not isinstance(description, str) or not description.strip():
        refuse("Description", "Description is required.")
    code = _get_ci(body, "Code")
    if code is not None and not isinstance(code, str):
        refuse("Code", "Code must be text.")
    when = _get_ci(body, "Date")
    paid_on = now
    if when not in (None, ""):
        try:
            paid_on = _iso(_parse_when(str(when))[0])
        except ValueError:
            refuse("Date", "Date must be an ISO 8601 date or date-time.")
    if invoice is None:
        refuse("CoworkerInvoiceId", "No such invoice.")
    else:
        _check_invoice_payable(body, invoice, credit, refuse)
    if errors:
        raise Rejected("The ledger entry could not be added.", errors)
    assert credit is not None
    return _Payment(credit, paid_on, str(description), code)


def _check_invoice_payable(
    body: Mapping[str, Any], invoice: Mapping[str, Any], credit: Decimal | None, refuse: Callable[[str, str], None]
) -> None:
    """The invoice-side rules: owner, location, status, and no paying beyond what is due.

    ASSUMPTION: BusinessId and CoworkerId are required and must be the invoice's;
    a credit note is not paid through a ledger entry.
    """
    if _as_int(_get_ci(body, "CoworkerId")) != invoice.get("CoworkerId"):
        refuse("CoworkerId", f"The invoice {invoice.get('InvoiceNumber')} belongs to another coworker.")
    if _as_int(_get_ci(body, "BusinessId")) != invoice.get("BusinessId"):
        refuse("BusinessId", f"The invoice {invoice.get('InvoiceNumber')} was issued by another location.")
    if invoice.get("Void"):
        refuse("CoworkerInvoiceId", "The invoice is void and cannot be paid.")
    elif invoice.get("Draft"):
        refuse("CoworkerInvoiceId", "The invoice is a draft; finalise it before recording a payment.")
    elif invoice.get("CreditNote"):
        refuse("CoworkerInvoiceId", "A credit note cannot be paid.")
    else:
        due = D(invoice.get("TotalAmount")) - D(invoice.get("PaidAmount"))
        if due <= 0:
            refuse("CoworkerInvoiceId", f"The invoice {invoice.get('InvoiceNumber')} is already paid.")
        elif credit is not None and credit > due:
            refuse("Credit", f"Credit {_money_text(credit)} is more than the amount due ({_money_text(due)}).")


def _apply_payment(invoice: dict[str, Any], payment: _Payment, now: str) -> None:
    paid = D(invoice.get("PaidAmount")) + payment.credit
    invoice["PaidAmount"] = paid
    if paid >= D(invoice.get("TotalAmount")):
        invoice["Paid"] = True
        invoice["PaidOn"] = payment.date
    invoice["UpdatedOn"] = now


def _money_text(amount: Decimal) -> str:
    """An amount with its cents (JSON storage turns 140.00 into 140.0)."""
    return str(amount.quantize(CENT)) if amount == amount.quantize(CENT) else str(amount)


def _amount(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return D(value)
    except ValueError:
        return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
