"""The Nexudus admin API client: sign-in, paging, pacing, retries, DataFrames, writes.

``NexudusClient`` reads locations, their time zones, members, the chart of
accounts, tax rates, invoices and invoice lines as pandas DataFrames (money as
``Decimal``, date-times in the location's zone) with only the filters Nexudus
documents, each re-checked on the answer (nexudus.md §3). It writes the two
things recon changes in Nexudus: an invoice, always as a whole record built
from a fresh read and read back (§4), and a payment, as the documented ledger
entry followed by moving ``PaidOn`` to the real payment date (§8).

Sign-in is the password grant at ``{base}/token`` through authlib's httpx
``OAuth2Client`` with recon's own ``client_id`` (a GUID kept with the token),
so recon and another tool of the same user do not void each other's refresh
tokens (§1). The password lives only inside the sign-in closure; it is never
written, logged or shown.

Calls are paced under Nexudus' limits (``nexudus_limits``); throttled answers
(409, or 429 "Wait N seconds") and the transient 500 "An error has occurred"
are retried for reads and whole-record PUTs; a payment POST is never resent
after an answer that leaves its outcome unknown (§5, §4, §8).

httpx and authlib errors are translated here, once, into ``recon.errors``.

Floor 1: imports ``recon.errors``, ``recon.money`` and ``recon.clients.*``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import authlib.deprecate  # noqa: F401  (its "always" filter must exist before ours is added)
import httpx
import pandas as pd

with warnings.catch_warnings():
    # authlib 1.9 warns on every import that it runs on httpx rather than httpx2.
    # recon pins httpx 0.28.1 with authlib 1.9.6 on purpose, and the warning
    # would show in every notebook: silence that one message, only here.
    warnings.filterwarnings(
        "ignore", message="The httpx module is deprecated", category=DeprecationWarning
    )
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.httpx_client import OAuth2Client

from recon.clients.nexudus_frames import (
    MONEY_FIELDS,
    decimal_or_none,
    decode,
    field_messages,
    frame_of,
    query_value,
    recheck,
)
from recon.clients.nexudus_limits import (
    THROTTLE_STATUSES,
    NexudusLimits,
    NexudusPacer,
    throttle_wait,
)
from recon.clients.retry import RetryPolicy
from recon.clients.tokens import TokenStore
from recon.clients.zones import day_bounds_utc, iana_zone
from recon.errors import (
    ApiRejected,
    AuthError,
    ClientError,
    NotFound,
    RateLimited,
    ServiceUnavailable,
)
from recon.money import D
from recon.progress import Counter

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_TIMEOUT",
    "GATEWAY_XERO",
    "NexudusClient",
    "PaymentRecorded",
]

SERVICE = "nexudus"
DEFAULT_TIMEOUT = 30.0
# The largest page Nexudus serves: 1000 documented, above it cap or refusal unknown (§3, §13).
DEFAULT_PAGE_SIZE = 1000
TOKEN_LEEWAY_SECONDS = 60
# Token fields worth keeping between runs, with recon's own client_id (§1).
SAVED_TOKEN_KEYS = (
    "access_token",
    "token_type",
    "refresh_token",
    "expires_in",
    "expires_at",
    "client_id",
)
# Answers worth another attempt for a read or a whole-record PUT: throttled (409/429, §5),
# Nexudus' transient "An error has occurred." bursts (500, §4) and gateway errors.
RETRY_STATUSES = THROTTLE_STATUSES | {500, 502, 503, 504}
# For a POST (not idempotent) only answers that say the request was not processed:
# a throttled request was not processed, so it may be resent (§5 "For recon").
NOT_PROCESSED_STATUSES = THROTTLE_STATUSES | {503}
# Lines are paged by their own CreatedOn, widened this much each side of the invoices' (§3).
LINE_WINDOW_MARGIN = timedelta(days=1)
# ePaymentProvider for money received in Xero: 500 Xero (§8, §13 ASSUMPTION; 996 Bank the fallback).
GATEWAY_XERO = 500
# Required on a PUT of a coworker invoice (§7.1, NX put-coworkerinvoices).
INVOICE_REQUIRED = (
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

INVOICE_COLUMNS = [
    "Id", "UniqueId", "InvoiceNumber", "BusinessId", "BusinessName", "CoworkerId",
    "CoworkerFullName", "CoworkerCompanyName", "CoworkerBillingEmail", "BillToName",
    "PurchaseOrder", "PaymentReference", "Description", "DiscountAmount", "DueDate",
    "InvoiceFromDate", "InvoiceToDate", "TotalAmount", "TaxAmount", "PaidAmount",
    "CreditedAmount", "ReceivedAmount", "CurrencyCode", "TransactionExchangeRate", "Draft",
    "Void", "Paid", "PaidOn", "Sent", "Refunded", "RefundedAmount", "CreditNote",
    "OriginalInvoiceGuid", "XeroInvoiceTransfered", "XeroPaymentTransfered",
    "AutoTransferToXeroOrQuickBooks", "CreatedOn", "UpdatedOn", "SystemId",
]  # fmt: skip
LINE_COLUMNS = [
    "Id", "UniqueId", "CoworkerInvoiceId", "Description", "Quantity", "UnitPrice", "SubTotal",
    "TaxAmount", "TaxRate", "TaxCategoryName", "FinancialAccountCode", "FinancialAccountName",
    "DiscountAmount", "Position", "SaleDate", "TariffName", "CreatedOn",
]  # fmt: skip

T = TypeVar("T")


class _RetryableAnswer(Exception):
    """A throttled or failed answer worth another attempt. Holds no request (a token
    request carries the password)."""

    def __init__(self, status: int, wait: float | None, text: str) -> None:
        self.status = status
        self.wait = wait
        self.text = text
        super().__init__(f"HTTP {status}")

    @classmethod
    def of(cls, response: httpx.Response) -> _RetryableAnswer:
        text = response.text[:300]
        wait = (
            throttle_wait(response.headers.get("Retry-After"), text)
            if response.status_code in THROTTLE_STATUSES
            else RetryPolicy.retry_after(response.headers.get("Retry-After"))
        )
        return cls(response.status_code, wait, text)


@dataclass(frozen=True)
class PaymentRecorded:
    """What marking an invoice paid did in Nexudus.

    ``invoice`` is the invoice as re-read after the payment (``Paid``,
    ``PaidAmount``, ``PaidOn``); ``paid_on_moved`` is False when the payment did
    not settle the invoice (a part payment: Nexudus' PaidOn is left alone) or when
    PaidOn could not be moved to the payment date, and ``problem`` then says why
    (the payment itself is recorded either way).
    """

    entry_id: int | None
    invoice: dict[str, Any]
    paid_on_moved: bool
    problem: str | None = None


class NexudusClient:
    """A signed-in Nexudus admin API session.

    Parameters
    ----------
    base_url
        The API root, e.g. ``https://spaces.nexudus.com/api`` or a sandbox URL + ``/api``.
    username, password
        A Nexudus user with "API access" ticked. The password is used only to get
        tokens and is kept nowhere but the sign-in closure.
    token_store
        Where tokens (and recon's client_id) persist between runs; None keeps them in memory.
    timeout
        Seconds per HTTP request.
    retry
        The shared ``recon.clients.retry.RetryPolicy`` (tests pin its ``sleep`` and ``jitter``).
    limits
        The request limits to pace under (``NexudusLimits``; the sandbox may shrink the minute).
    transport
        An httpx transport (tests).

    ``calls`` counts every HTTP request sent (token requests and retries included);
    ``zone`` is the location's time zone once ``use_location`` has set it (UTC before).
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        token_store: TokenStore | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        limits: NexudusLimits | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.retry = retry or RetryPolicy()
        self.pacer = NexudusPacer(limits or NexudusLimits(), sleep=self.retry.sleep)
        self.calls = 0
        self.zone: ZoneInfo = ZoneInfo("UTC")
        self._token_store = token_store
        digest = hashlib.sha256(f"{self.base_url}\n{username}".encode()).hexdigest()[:24]
        self._token_name = "nexudus-" + digest
        saved = token_store.load(self._token_name) if token_store else None
        # recon's own client_id (§1): a GUID kept with the token, so a refresh by recon
        # never voids the refresh token of another program signed in as the same user.
        self.client_id = str((saved or {}).get("client_id") or uuid.uuid4())
        self._http = OAuth2Client(
            client_id=self.client_id,
            token_endpoint_auth_method="none",
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
            event_hooks={"request": [self._count]},
        )
        self._http.register_compliance_hook("access_token_response", self._check_token_answer)
        self._http.register_compliance_hook("refresh_token_response", self._check_token_answer)
        self._sign_in = self._password_grant(password)
        if saved and saved.get("access_token"):
            self._http.token = {k: v for k, v in saved.items() if k != "client_id"}

    def __repr__(self) -> str:
        return (
            f"NexudusClient(base_url={self.base_url!r}, username={self.username!r}, "
            f"calls={self.calls})"
        )

    def close(self) -> None:
        """Close the client's HTTP connections."""
        self._http.close()

    def __enter__(self) -> NexudusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reads

    def iter_records(
        self,
        path: str,
        filters: Mapping[str, Any] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """Yield every record of a list endpoint (e.g. ``billing/coworkerinvoices``), a page at a
        time.

        Ordered by ``Id`` and never by ``dir``, whose values the official pages
        disagree on (§3, §13); paging stops when ``HasNextPage`` is false, on an
        empty page, or when Nexudus answers another page than the one asked.
        """
        params = {k: query_value(v) for k, v in (filters or {}).items() if v is not None}
        params.update(size=str(page_size), orderBy="Id")
        with Counter(f"Nexudus {path}", unit="page") as bar:
            for page in itertools.count(1):
                params["page"] = str(page)
                body = self._request("GET", path, params=params)
                if not isinstance(body, Mapping):
                    raise ClientError(
                        f"Nexudus answered {path} without a list envelope.",
                        service=SERVICE,
                        url=self._url(path),
                    )
                records = [r for r in body.get("Records") or [] if isinstance(r, dict)]
                current = body.get("CurrentPage")
                if page > 1 and current is not None and int(current) != page:
                    # Another page than the one asked (a paging name ignored, §3): its records
                    # were yielded already; stop rather than repeat them.
                    return
                bar(page, _int_or(body.get("TotalPages"), page))
                yield from records
                if not body.get("HasNextPage") or not records:
                    return

    def use_location(self, business: Mapping[str, Any]) -> ZoneInfo:
        """Read the location's time zone and use it for every date from now on (§6)."""
        self.zone = self.fetch_time_zone(business)
        return self.zone

    def fetch_time_zone(self, business: Mapping[str, Any]) -> ZoneInfo:
        """The location's zone: Business.SimpleTimeZoneId -> ``sys/simpletimezones/{id}`` (§6)."""
        zone_id = business.get("SimpleTimeZoneId")
        if zone_id in (None, "", 0):
            raise ClientError(
                f"Nexudus location {business.get('Name')!r} has no time zone "
                "(Settings > General > Time zone): set it, then run again.",
                service=SERVICE,
            )
        record = self._request("GET", f"sys/simpletimezones/{int(zone_id)}")
        if not isinstance(record, Mapping) or not record.get("Name"):
            raise ClientError(f"Nexudus time zone {zone_id} has no name.", service=SERVICE)
        return iana_zone(str(record["Name"]))

    def fetch_businesses(self) -> pd.DataFrame:
        """Every location (business) the user can see."""
        return self._frame(
            list(self.iter_records("sys/businesses")),
            ("Id", "Name", "CurrencyCode", "SimpleTimeZoneId"),
        )

    def fetch_coworkers(self) -> pd.DataFrame:
        """Every coworker (member or company billed by Nexudus)."""
        return self._frame(
            list(self.iter_records("spaces/coworkers")),
            ("Id", "FullName", "CompanyName", "BillingName", "BillingEmail"),
        )

    def fetch_financial_accounts(self, business_id: int | None = None) -> pd.DataFrame:
        """The chart of accounts (with ``AccountType``: 1 Sales, 2 Payments, 3 Deposits)."""
        return self._listed(
            "billing/financialaccounts",
            "FinancialAccount",
            {"FinancialAccount_Business": business_id},
            ("Id", "Name", "Code", "AccountType", "BusinessId"),
        )

    def fetch_tax_rates(self, business_id: int | None = None) -> pd.DataFrame:
        """Tax rate records at ``sys/taxrates`` (§2; ``Rate`` is a percent, as Decimal)."""
        return self._listed(
            "sys/taxrates",
            "TaxRate",
            {"TaxRate_Business": business_id},
            ("Id", "Name", "Rate", "BusinessId"),
        )

    def fetch_invoices(
        self,
        business_id: int | None = None,
        start: date | datetime | None = None,
        end: date | datetime | None = None,
        updated_since: datetime | None = None,
        **filters: Any,
    ) -> pd.DataFrame:
        """Coworker invoices created from ``start`` to ``end`` (both inclusive).

        A ``date`` is a whole day of the location's calendar, sent as the UTC
        instants of its local bounds (§6, §13); a ``datetime`` is an instant.
        ``updated_since`` keeps those changed since then; keyword filters name
        documented invoice fields (``Paid=False``, ``XeroInvoiceTransfered=True``,
        ``from_DueDate=...``). Every filter is re-checked on the answer. Money
        columns hold Decimal; ids int64; date-times are in the location's zone.
        """
        first, last = self._instant_bounds(start, end)
        query: dict[str, Any] = {
            "CoworkerInvoice_Business": business_id,
            "from_CoworkerInvoice_CreatedOn": first,
            "to_CoworkerInvoice_CreatedOn": last,
            "from_CoworkerInvoice_UpdatedOn": updated_since,
        }
        query.update(_entity_filters("CoworkerInvoice", filters))
        return self._listed("billing/coworkerinvoices", "CoworkerInvoice", query, INVOICE_COLUMNS)

    def count_invoices(self, business_id: int) -> int | None:
        """How many coworker invoices a location has now: the list envelope's ``TotalItems``
        (§3), read with one call of one record; None if Nexudus did not say."""
        params = {"CoworkerInvoice_Business": str(int(business_id)), "size": "1", "page": "1"}
        body = self._request("GET", "billing/coworkerinvoices", params={**params, "orderBy": "Id"})
        total = body.get("TotalItems") if isinstance(body, Mapping) else None
        return _int_or_none(total)

    def fetch_invoice_lines(
        self,
        invoice_ids: Iterable[int],
        start: date | datetime | None = None,
        end: date | datetime | None = None,
        totals: Mapping[int, Decimal] | None = None,
    ) -> pd.DataFrame:
        """The lines of the given invoices, in as few calls as the documented filters allow.

        Pages the lines' own CreatedOn range (``start``..``end``, widened a day
        each side) and keeps those of the given invoices; an invoice none of whose
        lines came back is asked for by ``CoworkerInvoiceLine_CoworkerInvoice=<id>``
        (§3: the parent's Business and CreatedOn are not documented line filters).
        With ``totals`` (invoice id -> TotalAmount), an invoice whose lines found do
        not add up to its total either way (§7.2: Σ SubTotal, or Σ SubTotal + Σ
        TaxAmount) is asked for by id too: a line added outside the window is not lost.
        """
        wanted = {int(i) for i in invoice_ids}
        if not wanted:
            return self._frame([], LINE_COLUMNS)
        records: list[dict[str, Any]] = []
        if start is not None or end is not None:
            first, last = self._instant_bounds(start, end)
            query = {
                "from_CoworkerInvoiceLine_CreatedOn": first - LINE_WINDOW_MARGIN if first else None,
                "to_CoworkerInvoiceLine_CreatedOn": last + LINE_WINDOW_MARGIN if last else None,
            }
            found = recheck(
                self.iter_records("billing/coworkerinvoicelines", query),
                "CoworkerInvoiceLine",
                query,
            )
            records = [r for r in found if _int_or_none(r.get("CoworkerInvoiceId")) in wanted]
        seen = {int(r["CoworkerInvoiceId"]) for r in records}
        short = _short_invoices(records, totals or {}) & seen
        records = [r for r in records if int(r["CoworkerInvoiceId"]) not in short]
        for invoice_id in sorted((wanted - seen) | short):
            by_invoice = {"CoworkerInvoiceLine_CoworkerInvoice": invoice_id}
            records.extend(
                r
                for r in self.iter_records("billing/coworkerinvoicelines", by_invoice)
                if _int_or_none(r.get("CoworkerInvoiceId")) == invoice_id
            )
        return self._frame(records, LINE_COLUMNS)

    def get_invoice(self, invoice_id: int) -> dict[str, Any]:
        """One coworker invoice as a dict (money as Decimal); NotFound if there is none."""
        record = self._get_record("billing/coworkerinvoices", invoice_id)
        return {k: decimal_or_none(v, True) if k in MONEY_FIELDS else v for k, v in record.items()}

    # ---- writes

    def update_invoice(
        self, invoice_id: int, *, base: Mapping[str, Any] | None = None, **changes: Any
    ) -> dict[str, Any]:
        """Change fields of an invoice: a fresh GET by id, the changes, the whole record PUT back.

        A PUT replaces the record, so a partial body would clear or refuse the
        rest (§4). Only the whole record read by id is a safe base (list records
        are a reduced projection). The invoice is read again afterwards and each
        changed field must hold the value sent (ApiRejected otherwise, naming the
        field). Safe to retry: the same PUT sets the same values. Returns the
        invoice as read back. ``base``: the invoice as just read by id, to save a read.
        """
        current = dict(base) if base else self._get_record("billing/coworkerinvoices", invoice_id)
        # A calendar date is stored as the UTC instant of the location's midnight (§6).
        changes = {
            k: self._local_midnight(v) if isinstance(v, date) and not isinstance(v, datetime) else v
            for k, v in changes.items()
        }
        body = {**current, **{k: _json_value(v) for k, v in changes.items()}, "Id": int(invoice_id)}
        missing = [f for f in INVOICE_REQUIRED if body.get(f) in (None, "")]
        if missing:
            raise ApiRejected(
                f"Invoice {current.get('InvoiceNumber') or invoice_id} cannot be saved: Nexudus "
                f"requires {', '.join(missing)}, which the invoice has no value for. Fill them in "
                "Nexudus (the invoice's billing details), then run again.",
                messages=[f"{f} is a required field" for f in missing],
                service=SERVICE,
                method="PUT",
                url=self._url("billing/coworkerinvoices"),
            )
        self._request("PUT", "billing/coworkerinvoices", json_body=body)
        after = self.get_invoice(invoice_id)
        lost = [name for name, value in changes.items() if not _same_value(after.get(name), value)]
        if lost:
            raise ApiRejected(
                f"Nexudus accepted the change to invoice {current.get('InvoiceNumber')} but did "
                f"not keep {', '.join(lost)}: it reads back "
                + ", ".join(f"{n}={after.get(n)!r}" for n in lost)
                + ".",
                messages=[f"{n}: not kept" for n in lost],
                service=SERVICE,
                method="PUT",
                url=self._url("billing/coworkerinvoices"),
            )
        return after

    def record_payment(
        self,
        invoice_id: int,
        amount: Decimal,
        paid_on: date,
        description: str,
        code: str = "XERO",
        gateway: int = GATEWAY_XERO,
        *,
        invoice: Mapping[str, Any] | None = None,
    ) -> PaymentRecorded:
        """Mark an invoice paid as Nexudus' own flow does (§8), confirmed by reading it back.

        1. Reads the invoice and refuses, before any write, a void, draft or
           credit-note invoice and an amount that is not above zero or is above
           what is still due: Nexudus documents no refusal of its own (§8, §13).
        2. Posts the documented ledger entry (BusinessId, CoworkerId,
           CoworkerInvoiceId, Description, Code, Debit 0, Credit, Balance 0,
           PaymentGatewayName, TransactionDate = the payment date).
        3. Re-reads the invoice: the payment counts only if PaidAmount grew by
           ``amount`` (the entry's own answer may echo Credit 0, §8).
        4. Moves PaidOn, which the entry set to the moment of the call, to the
           payment date with a whole-record PUT.

        Not idempotent: a payment recorded twice is paid twice. Only answers
        that say the POST was not processed (throttled, 503, no connection) are
        retried; after any other failure the caller must re-read the invoice
        (PaidAmount) before trying again, and keys each payment in its ledger.
        ``invoice``: the invoice as the caller just read it by id, to save a read.
        """
        credit = D(amount)
        invoice = dict(invoice) if invoice else self.get_invoice(invoice_id)
        self._check_payable(invoice, credit)
        before = D(invoice.get("PaidAmount"))
        at = self._local_midnight(paid_on)
        entry = {
            "BusinessId": invoice["BusinessId"],
            "CoworkerId": invoice["CoworkerId"],
            "CoworkerInvoiceId": invoice["Id"],
            "Description": description,
            "Code": code,
            "Debit": Decimal("0"),
            "Credit": credit,
            "Balance": Decimal("0"),
            "PaymentGatewayName": gateway,
            "TransactionDate": at,
        }
        answer = self._request(
            "POST", "billing/coworkerledgerentries", json_body=entry, idempotent=False
        )
        value = answer.get("Value") if isinstance(answer, Mapping) else None
        entry_id = _int_or_none(value.get("Id")) if isinstance(value, Mapping) else None
        after = self.get_invoice(invoice_id)
        if D(after.get("PaidAmount")) < before + credit:
            raise ApiRejected(
                f"Nexudus accepted the payment of {credit} on invoice "
                f"{invoice.get('InvoiceNumber')} but the invoice shows {after.get('PaidAmount')} "
                f"paid (was {before}): check the customer's ledger in Nexudus before trying again.",
                messages=["PaidAmount: payment not reflected on the invoice"],
                service=SERVICE,
                method="POST",
                url=self._url("billing/coworkerledgerentries"),
            )
        if not after.get("Paid"):
            # A part payment: Nexudus leaves PaidOn for the payment that settles it (§8).
            return PaymentRecorded(entry_id, after, False)
        try:
            after = self.update_invoice(invoice_id, base=after, PaidOn=at)
        except ClientError as exc:
            return PaymentRecorded(entry_id, after, False, f"PaidOn not moved to {paid_on}: {exc}")
        return PaymentRecorded(entry_id, after, True)

    def _check_payable(self, invoice: Mapping[str, Any], credit: Decimal) -> None:
        number = invoice.get("InvoiceNumber") or invoice.get("Id")
        due = D(invoice.get("TotalAmount")) - D(invoice.get("PaidAmount"))
        problem = None
        if credit <= 0:
            problem = f"Credit: the payment {credit} must be above zero."
        elif invoice.get("Void") or invoice.get("Draft") or invoice.get("CreditNote"):
            problem = (
                f"CoworkerInvoiceId: invoice {number} is void, a draft or a credit note and "
                "cannot be paid."
            )
        elif credit > due:
            problem = f"Credit: {credit} is more than the {due} still due on invoice {number}."
        if problem:
            raise ApiRejected(
                f"Payment not recorded on invoice {number}: {problem}",
                messages=[problem],
                service=SERVICE,
                method="POST",
                url=self._url("billing/coworkerledgerentries"),
            )

    # ---- helpers

    def _local_midnight(self, day: date) -> datetime:
        """The UTC instant of ``day``'s local midnight, as Nexudus stores a date (§6)."""
        return datetime.combine(day, time(0, 0), tzinfo=self.zone).astimezone(UTC)

    def _instant_bounds(
        self, start: date | datetime | None, end: date | datetime | None
    ) -> tuple[datetime | None, datetime | None]:
        """Query instants: a date is a local whole day (§6 "Period queries"), a datetime itself."""

        first = last = None
        if isinstance(start, datetime):
            first = start
        elif isinstance(start, date):
            first = day_bounds_utc(start, start, self.zone)[0]
        if isinstance(end, datetime):
            last = end
        elif isinstance(end, date):
            last = day_bounds_utc(end, end, self.zone)[1]
        return first, last

    def _frame(self, records: list[dict[str, Any]], columns: Iterable[str]) -> pd.DataFrame:
        return frame_of(records, columns, self.zone)

    def _listed(
        self, path: str, entity: str, query: Mapping[str, Any], columns: Iterable[str]
    ) -> pd.DataFrame:
        """Every record of ``path`` matching ``query``, re-checked here (§3: an unsupported
        filter is most likely ignored, which would widen the answer)."""
        found = recheck(self.iter_records(path, query), entity, query)
        return self._frame(found, columns)

    def _get_record(self, path: str, record_id: int) -> dict[str, Any]:
        record = self._request("GET", f"{path}/{int(record_id)}")
        if not isinstance(record, dict):
            raise ClientError(
                f"Nexudus answered {path}/{record_id} without a record.", service=SERVICE
            )
        return record

    # ---- HTTP

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _count(self, request: httpx.Request) -> None:
        self.calls += 1

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        idempotent: bool = True,
    ) -> Any:
        """Send one API call, paced, with retries and one re-sign-in on 401/403; the decoded
        JSON."""
        url = self._url(path)
        content = None if json_body is None else _encode(json_body)
        is_write = method != "GET"

        def send() -> httpx.Response:
            headers = {"Authorization": f"Bearer {self._access_token()}"}
            if content is not None:
                headers["Content-Type"] = "application/json"
            booking = self.pacer.before_call(is_write)
            try:
                response: httpx.Response = self._http.request(
                    method,
                    url,
                    params=params,
                    content=content,
                    headers=headers,
                    withhold_token=True,
                )
            finally:
                self.pacer.after_call(booking)
            if response.status_code in RETRY_STATUSES:
                raise _RetryableAnswer.of(response)
            return response

        response = self._retrying(send, method=method, url=url, idempotent=idempotent)
        if response.status_code in (401, 403):
            # 403 is treated as 401 (§1: the CLI reports "Forbidden" for refused credentials).
            self._renew_token()
            response = self._retrying(send, method=method, url=url, idempotent=idempotent)
        return self._decoded(response, method, url)

    def _decoded(self, response: httpx.Response, method: str, url: str) -> Any:
        """The JSON body of a 2xx answer; otherwise the matching recon error."""
        status = response.status_code
        try:
            body = decode(response.content) if response.content else None
        except ValueError as exc:
            if response.is_success:
                raise ServiceUnavailable(
                    f"Nexudus answered {method} {url} with something that is not JSON.",
                    service=SERVICE,
                    status=status,
                    method=method,
                    url=url,
                ) from exc
            body = None
        if status in (401, 403):
            raise AuthError(
                f"Nexudus refused the credentials of {self.username} (HTTP {status}). Check the "
                "user has 'API access' and the needed roles (Settings > Users and Security).",
                service=SERVICE,
                status=status,
                method=method,
                url=url,
            )
        if status == 404:
            raise NotFound(
                f"Nexudus has no {url} (HTTP 404).",
                detail=body,
                service=SERVICE,
                status=status,
                method=method,
                url=url,
            )
        # A 200 may still be a refusal: always read WasSuccessful (§4).
        if status >= 400 or (isinstance(body, Mapping) and body.get("WasSuccessful") is False):
            messages = field_messages(body)
            raise ApiRejected(
                f"Nexudus refused {method} {url}: {'; '.join(messages) or f'HTTP {status}'}",
                messages=messages,
                detail=body,
                service=SERVICE,
                status=status,
                method=method,
                url=url,
            )
        return body

    def _retrying(
        self, action: Callable[[], T], *, method: str, url: str, idempotent: bool = True
    ) -> T:
        """Run ``action``; retry throttled, 5xx and dropped calls where that is safe.

        The wait is Nexudus' own (Retry-After, else "Wait N seconds"), else capped backoff.
        """
        for attempt in itertools.count(1):
            try:
                return action()
            except _RetryableAnswer as exc:
                safe = idempotent or exc.status in NOT_PROCESSED_STATUSES
                wait = exc.wait if exc.wait is not None else self.retry.backoff(attempt)
                if not safe or attempt >= self.retry.attempts or wait > self.retry.max_retry_after:
                    raise self._gave_up(exc, method, url, attempt, idempotent) from exc
                if exc.status in THROTTLE_STATUSES:
                    self.pacer.hold_off(wait)
                    wait = 0.0  # the pacer now holds the next call back
            except httpx.TransportError as exc:
                # A POST may have been processed unless the connection was never made.
                safe = idempotent or isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                if not safe or attempt >= self.retry.attempts:
                    raise ServiceUnavailable(
                        f"Nexudus could not be reached for {method} {url} after {attempt} "
                        f"attempt(s): {exc!r}."
                        + (
                            ""
                            if idempotent
                            else " It may have been processed: check before sending it again."
                        ),
                        service=SERVICE,
                        method=method,
                        url=url,
                    ) from exc
                wait = self.retry.backoff(attempt)
            if wait > 0:
                self.retry.sleep(wait)
        raise AssertionError("unreachable")

    def _gave_up(
        self, exc: _RetryableAnswer, method: str, url: str, attempts: int, idempotent: bool
    ) -> ClientError:
        if exc.status in THROTTLE_STATUSES:
            return RateLimited(
                f"Nexudus is still throttling {method} {url} after {attempts} attempt(s) "
                f"(HTTP {exc.status}); wait {exc.wait or 'a minute'} s and run again.",
                retry_after=exc.wait,
                problem=None,  # Nexudus names no limit in its answer
                service=SERVICE,
                status=exc.status,
                method=method,
                url=url,
                detail=exc.text,
            )
        unknown = (
            "" if idempotent else " It may have been processed: check before sending it again."
        )
        return ServiceUnavailable(
            f"Nexudus answered {method} {url} with HTTP {exc.status} {attempts} time(s); try "
            f"again later.{unknown}",
            service=SERVICE,
            status=exc.status,
            method=method,
            url=url,
            detail=exc.text,
        )

    # ---- tokens

    def _access_token(self) -> str:
        """A live access token: the saved one, a refreshed one, or a new sign-in."""
        token = self._http.token
        if not token or not token.get("access_token"):
            self._sign_in()
        elif token.is_expired(leeway=TOKEN_LEEWAY_SECONDS):
            self._renew_token()
        access = (self._http.token or {}).get("access_token")
        if not access:
            raise AuthError(
                f"Nexudus' token endpoint answered the sign-in of {self.username} without an "
                "access token; check the API address (it must end in /api).",
                service=SERVICE,
                method="POST",
                url=self._url("token"),
            )
        return str(access)

    def _renew_token(self) -> None:
        """Refresh the token; if that is refused, sign in again with the password.

        Under the token store's lock, a live token set another process saved since (it
        refreshed first) is adopted instead: spending the old refresh token again would be
        refused, and a new sign-in would void the other process's token.
        """
        if self._token_store is None:
            self._refresh_or_sign_in()
            return
        with self._token_store.lock(self._token_name):
            if not self._adopt_rotated_token():
                self._refresh_or_sign_in()

    def _adopt_rotated_token(self) -> bool:
        """Take a different, live token set from the store; whether one was taken."""
        assert self._token_store is not None
        saved = self._token_store.load(self._token_name) or {}
        held = self._http.token or {}
        if not saved.get("access_token") or saved.get("access_token") == held.get("access_token"):
            return False
        candidate = {k: v for k, v in saved.items() if k != "client_id"}
        previous = self._http.token
        self._http.token = candidate
        token = self._http.token
        if token is not None and not token.is_expired(leeway=TOKEN_LEEWAY_SECONDS):
            return True
        if candidate.get("refresh_token"):
            return False  # expired: its refresh token is the newest one to spend
        self._http.token = previous
        return False

    def _refresh_or_sign_in(self) -> None:
        refresh = (self._http.token or {}).get("refresh_token")
        if refresh:
            try:
                token = self._token_call(
                    lambda: self._http.refresh_token(self._url("token"), refresh_token=refresh)
                )
            except AuthError:
                pass
            else:
                self._keep(token)
                return
        self._sign_in()

    def _password_grant(self, password: str) -> Callable[[], None]:
        """The sign-in, holding the password in its closure (never on self, never on disk)."""

        def sign_in() -> None:
            token = self._token_call(
                lambda: self._http.fetch_token(
                    self._url("token"),
                    grant_type="password",
                    username=self.username,
                    password=password,
                )
            )
            self._keep(token)

        return sign_in

    def _token_call(self, call: Callable[[], Any]) -> Any:
        """A paced token-endpoint call with retries; authlib and httpx errors become recon's."""
        url = self._url("token")

        def paced() -> Any:
            booking = self.pacer.before_call(True)
            try:
                return call()
            finally:
                self.pacer.after_call(booking)

        try:
            return self._retrying(paced, method="POST", url=url)
        except OAuthError as exc:
            raise AuthError(
                f"Nexudus refused the sign-in of {self.username}: {exc.error}"
                + (f" ({exc.description})" if exc.description else "")
                + ". Check the username and password, and that the user has 'API access'.",
                service=SERVICE,
                status=400,
                method="POST",
                url=url,
                detail=exc.error,
            ) from exc
        except httpx.HTTPStatusError as exc:
            raise ServiceUnavailable(
                f"Nexudus' token endpoint answered HTTP {exc.response.status_code}.",
                service=SERVICE,
                status=exc.response.status_code,
                method="POST",
                url=url,
            ) from None  # the request carries the password: do not chain it
        except ValueError as exc:
            raise AuthError(
                f"Nexudus' token endpoint gave no token: {exc}",
                service=SERVICE,
                method="POST",
                url=url,
            ) from exc

    def _check_token_answer(self, response: httpx.Response) -> httpx.Response:
        """authlib compliance hook: retry throttled/5xx; a 4xx without an OAuth2 error is
        AuthError."""
        if response.status_code in RETRY_STATUSES:
            raise _RetryableAnswer.of(response)
        if 400 <= response.status_code < 500:
            try:
                body = response.json()
            except ValueError:
                body = None
            if not (isinstance(body, dict) and "error" in body):
                raise AuthError(
                    f"Nexudus' token endpoint refused the sign-in of {self.username} "
                    f"(HTTP {response.status_code}).",
                    service=SERVICE,
                    status=response.status_code,
                    method="POST",
                    url=str(response.url),
                )
        return response

    def _keep(self, token: Mapping[str, Any]) -> None:
        """Use ``token`` and save its OAuth2 fields (never the password or username)."""
        self._http.token = dict(token)
        if self._token_store is not None:
            saved = {k: token[k] for k in SAVED_TOKEN_KEYS if k in token}
            saved["client_id"] = self.client_id
            self._token_store.save(self._token_name, saved)


def _entity_filters(entity: str, filters: Mapping[str, Any]) -> dict[str, Any]:
    """``Paid=False`` -> ``CoworkerInvoice_Paid=false``; ``from_DueDate`` ->
    ``from_CoworkerInvoice_DueDate``."""
    out = {}
    for key, value in filters.items():
        bound, _, rest = key.partition("_") if key.startswith(("from_", "to_")) else ("", "", key)
        name = rest if rest.startswith(entity + "_") else f"{entity}_{rest}"
        out[f"{bound}_{name}" if bound else name] = value
    return out


def _short_invoices(records: list[dict[str, Any]], totals: Mapping[int, Decimal]) -> set[int]:
    """Invoices whose lines add up to their total neither gross nor net (§7.2)."""
    sums: dict[int, list[Decimal]] = {}
    for r in records:
        pair = sums.setdefault(int(r["CoworkerInvoiceId"]), [Decimal(0), Decimal(0)])
        pair[0] += _amount_or_zero(r.get("SubTotal"))
        pair[1] += _amount_or_zero(r.get("TaxAmount"))
    return {
        invoice_id
        for invoice_id, (sub, tax) in sums.items()
        if invoice_id in totals and _amount_or_zero(totals[invoice_id]) not in (sub, sub + tax)
    }


def _amount_or_zero(value: object) -> Decimal:
    """A figure for the add-up check; one that is no finite number counts as zero (the transfer
    plan holds its invoice back, naming line and field)."""
    try:
        amount = D(value)
    except ValueError:
        return Decimal(0)
    return amount if amount.is_finite() else Decimal(0)


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def _same_value(read_back: Any, sent: Any) -> bool:
    """Whether a field read back holds what was sent (instants compared as instants)."""
    if isinstance(sent, (datetime, date)):
        if read_back in (None, ""):
            return False
        stamp = pd.Timestamp(read_back)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
        wanted = pd.Timestamp(sent)
        wanted = wanted.tz_localize("UTC") if wanted.tzinfo is None else wanted
        return bool(stamp == wanted)
    if isinstance(sent, Decimal) or isinstance(read_back, Decimal):
        return D(read_back) == D(sent)
    return bool(read_back == sent)


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return query_value(value)
    return value


def _encode(body: Any) -> bytes:
    """JSON with each Decimal written as a bare number of exactly its digits (no float on the
    way)."""
    numbers: dict[str, str] = {}

    def prepare(obj: Any) -> Any:
        if isinstance(obj, Mapping):
            return {str(k): prepare(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [prepare(v) for v in obj]
        if isinstance(obj, Decimal):
            marker = f"\x00decimal{len(numbers)}\x00"
            numbers[json.dumps(marker)] = format(obj, "f")
            return marker
        return _json_value(obj)

    text = json.dumps(prepare(body), separators=(",", ":"), ensure_ascii=False)
    for marker, digits in numbers.items():
        text = text.replace(marker, digits)
    return text.encode("utf-8")


def _int_or(value: object, default: int) -> int:
    """``value`` as a whole number (an envelope's page count), else ``default``."""
    try:
        return int(str(value))
    except ValueError:
        return default
