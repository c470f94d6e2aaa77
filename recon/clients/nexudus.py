"""The Nexudus admin API client: sign-in, paging, retries, DataFrames, invoice writes.

``NexudusClient`` reads locations, members, the chart of accounts, tax rates,
invoices and invoice lines as pandas DataFrames (money as ``Decimal``, never
float) in as few calls as the API allows (pages of 1000, parent filters for
lines), and writes the two things recon changes in Nexudus: an invoice's
writable fields and a payment (a coworker ledger entry).

Sign-in is the password grant at ``{base}/token`` through authlib's httpx
``OAuth2Client``, refreshed with the refresh token and, when that fails, by
signing in again. The password lives only in memory, inside the sign-in
closure; it is never written, logged or shown. Tokens are saved through
``TokenStore`` under a name hashed from the base URL and username.

httpx and authlib errors are translated here, once, into ``recon.errors``.

Floor 1: imports ``recon.errors``, ``recon.money`` and ``recon.clients.*``; never
``recon.sandbox``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import authlib.deprecate  # noqa: F401  (its "always" filter must exist before ours is added)
import httpx
import pandas as pd

with warnings.catch_warnings():
    # authlib 1.9 warns on every import that it runs on httpx rather than httpx2.
    # recon pins httpx 0.28.1 with authlib 1.9.6 on purpose, and the warning
    # would show in every notebook: silence that one message, only here.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated", category=DeprecationWarning)
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.httpx_client import OAuth2Client

from recon.clients.retry import RETRY_STATUSES, RetryPolicy
from recon.clients.tokens import TokenStore
from recon.errors import ApiRejected, AuthError, ClientError, NotFound, RateLimited, ServiceUnavailable
from recon.money import CENT, D

__all__ = ["DEFAULT_PAGE_SIZE", "DEFAULT_TIMEOUT", "NexudusClient"]

SERVICE = "nexudus"
DEFAULT_TIMEOUT = 30.0
# The largest page Nexudus serves (ASSUMPTION in the reference: 1000).
DEFAULT_PAGE_SIZE = 1000
TOKEN_LEEWAY_SECONDS = 60
# Token fields worth keeping between runs; the rest (userName, .issued) stay out of the file.
SAVED_TOKEN_KEYS = ("access_token", "token_type", "refresh_token", "expires_in", "expires_at")
# For a POST (not idempotent) only answers that say the request was not processed.
NOT_PROCESSED_STATUSES = frozenset({429, 503})
# Invoice ids this far apart go in separate line queries (a gap costs about a page of lines).
LINE_QUERY_MAX_GAP = 250

MONEY_FIELDS = frozenset(
    "TotalAmount TaxAmount PaidAmount CreditedAmount ReceivedAmount DiscountAmount RefundedAmount SubTotal "
    "Credit Debit".split()
)
DECIMAL_FIELDS = MONEY_FIELDS | {"TaxRate", "Rate", "TransactionExchangeRate"}
BOOL_FIELDS = frozenset(
    "Draft Void WaitingForInvoiceNumber Paid Sent Refunded CreditNote XeroInvoiceTransfered "
    "XeroPaymentTransfered".split()
)

INVOICE_COLUMNS = (
    "Id UniqueId InvoiceNumber BusinessId BusinessName CoworkerId CoworkerFullName CoworkerCompanyName "
    "CoworkerBillingEmail BillToName PurchaseOrder PaymentReference Description DiscountAmount DueDate "
    "InvoiceFromDate InvoiceToDate TotalAmount TaxAmount PaidAmount CreditedAmount ReceivedAmount CurrencyCode "
    "Draft Void Paid PaidOn Sent Refunded RefundedAmount CreditNote OriginalInvoiceGuid XeroInvoiceTransfered "
    "XeroPaymentTransfered CreatedOn UpdatedOn SystemId"
).split()
LINE_COLUMNS = (
    "Id UniqueId CoworkerInvoiceId Description Quantity SubTotal TaxAmount TaxRate TaxCategoryName "
    "FinancialAccountCode FinancialAccountName DiscountAmount Position SaleDate TariffName"
).split()

T = TypeVar("T")


# --------------------------------------------------------------------------- retries


class _RetryableAnswer(Exception):
    """A 429/5xx answer worth another attempt. Holds no request (a token request carries the password)."""

    def __init__(self, status: int, retry_after: float | None, text: str) -> None:
        self.status = status
        self.retry_after = retry_after
        self.text = text
        super().__init__(f"HTTP {status}")

    @classmethod
    def of(cls, response: httpx.Response) -> _RetryableAnswer:
        return cls(response.status_code, RetryPolicy.retry_after(response.headers.get("Retry-After")), response.text[:300])


# --------------------------------------------------------------------------- values and frames


def _decode(content: bytes) -> Any:
    """JSON with every non-integer number as Decimal (floats would lose cents)."""
    return json.loads(content, parse_float=Decimal)


def _query_value(value: Any) -> str:
    """A filter value as Nexudus reads it: booleans lower-case, dates ISO, times in UTC with Z."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _decimal_or_none(value: Any, is_money: bool) -> Decimal | None:
    if value is None or value == "":
        return None
    amount = D(value)
    # JSON drops trailing zeros (120.0); give amounts their cents back when that is exact.
    if is_money and amount == amount.quantize(CENT):
        return amount.quantize(CENT)
    return amount


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
        return pd.Series([_decimal_or_none(v, name in MONEY_FIELDS) for v in values], dtype=object)
    if _is_date_field(name) and all(isinstance(v, str) for v in present):
        # ASSUMPTION: a date-time without a zone is UTC, as the API's own are.
        parsed = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")
        return parsed.dt.as_unit("us")  # one resolution, whether a column is all null or not
    if name in BOOL_FIELDS or (present and all(isinstance(v, bool) for v in present)):
        return pd.Series(values, dtype="boolean" if has_null else bool)
    if (present or _is_id_field(name)) and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="Int64" if has_null else "int64")
    if all(isinstance(v, str) for v in present):
        return pd.Series(values, dtype="str")
    return pd.Series(values, dtype=object)


def _frame(records: list[dict[str, Any]], columns: Iterable[str] = ()) -> pd.DataFrame:
    """A DataFrame of API records; an empty result still has ``columns``."""
    names = list(dict.fromkeys([*(k for r in records for k in r), *([] if records else columns)]))
    return pd.DataFrame({n: _column(n, [r.get(n) for r in records]) for n in names}, index=pd.RangeIndex(len(records)))


def _id_runs(ids: Iterable[int], max_gap: int) -> list[tuple[int, int]]:
    """Sorted ids grouped into (first, last) runs with no gap above ``max_gap``."""
    runs: list[tuple[int, int]] = []
    for i in sorted(set(ids)):
        if runs and i - runs[-1][1] <= max_gap:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def _field_messages(body: Any) -> list[str]:
    """'Field: message' for each of the error shape's Errors, else its Message."""
    if not isinstance(body, Mapping):
        return []
    errors = body.get("Errors") or []
    messages = [f"{e.get('PropertyName') or '(request)'}: {e.get('Message')}" for e in errors if isinstance(e, Mapping)]
    if not messages and body.get("Message"):
        messages = [str(body["Message"])]
    if not messages and body.get("error"):
        messages = [f"{body['error']}: {body.get('error_description') or ''}".strip(": ")]
    return messages


# --------------------------------------------------------------------------- the client


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
        Where tokens persist between runs; None keeps them in memory only.
    timeout
        Seconds per HTTP request.
    retry
        The shared ``recon.clients.retry.RetryPolicy`` (tests pin its ``sleep`` and ``jitter``).
    transport
        An httpx transport (tests).

    ``calls`` counts every HTTP request sent (token requests and retries included).
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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.retry = retry or RetryPolicy()
        self.calls = 0
        self._token_store = token_store
        self._token_name = "nexudus-" + hashlib.sha256(f"{self.base_url}\n{username}".encode()).hexdigest()[:24]
        self._http = OAuth2Client(
            # Nexudus' client_id defaults to the username and must be the same on refresh.
            client_id=username,
            token_endpoint_auth_method="none",
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
            event_hooks={"request": [self._count]},
        )
        self._http.register_compliance_hook("access_token_response", self._check_token_answer)
        self._http.register_compliance_hook("refresh_token_response", self._check_token_answer)
        self._sign_in = self._password_grant(password)
        saved = token_store.load(self._token_name) if token_store else None
        if saved and saved.get("access_token"):
            self._http.token = saved

    def __repr__(self) -> str:
        return f"NexudusClient(base_url={self.base_url!r}, username={self.username!r}, calls={self.calls})"

    def close(self) -> None:
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
        order_by: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield every record of a list endpoint (e.g. ``billing/coworkerinvoices``), a page at a time.

        Pages are fetched lazily and paging stops when ``HasNextPage`` is false.
        Ordering defaults to ``Id`` so that offset pages neither skip nor repeat.
        """
        params = {k: _query_value(v) for k, v in (filters or {}).items() if v is not None}
        params.update(size=str(page_size), orderBy=order_by or "Id")
        for page in itertools.count(1):
            params["page"] = str(page)
            body = self._request("GET", path, params=params)
            if not isinstance(body, Mapping):
                raise ClientError(f"Nexudus answered {path} without a list envelope.", service=SERVICE, url=self._url(path))
            records = body.get("Records") or []
            yield from records
            if not body.get("HasNextPage") or not records:
                return

    def fetch_businesses(self) -> pd.DataFrame:
        """Every location (business) the user can see."""
        return _frame(list(self.iter_records("sys/businesses")), ("Id", "Name", "CurrencyCode"))

    def fetch_coworkers(self) -> pd.DataFrame:
        """Every coworker (member or company billed by Nexudus)."""
        return _frame(list(self.iter_records("spaces/coworkers")), ("Id", "FullName", "CompanyName", "BillingEmail"))

    def fetch_financial_accounts(self, business_id: int | None = None) -> pd.DataFrame:
        """The chart of accounts, optionally of one location."""
        filters = {"FinancialAccount_Business": business_id}
        return _frame(list(self.iter_records("billing/financialaccounts", filters)), ("Id", "Name", "Code", "BusinessId"))

    def fetch_tax_rates(self, business_id: int | None = None) -> pd.DataFrame:
        """Tax rates (``Rate`` is a percent, as Decimal), optionally of one location."""
        filters = {"TaxRate_Business": business_id}
        return _frame(list(self.iter_records("billing/taxrates", filters)), ("Id", "Name", "Rate", "BusinessId"))

    def fetch_invoices(
        self,
        business_id: int | None = None,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        updated_since: datetime | str | None = None,
        **filters: Any,
    ) -> pd.DataFrame:
        """Coworker invoices created between ``start`` and ``end`` (inclusive; a date covers its whole day).

        ``updated_since`` keeps those changed since then; extra keyword filters
        name invoice fields (``Paid=False``, ``CreditNote=True``, ``from_DueDate=...``).
        Money columns hold Decimal; ids int64; dates are UTC-aware.
        """
        query: dict[str, Any] = {
            # ASSUMPTION: foreign keys are filtered by navigation name, as the
            # reference's CoworkerInvoice_Coworker=<id>.
            "CoworkerInvoice_Business": business_id,
            "from_CoworkerInvoice_CreatedOn": start,
            "to_CoworkerInvoice_CreatedOn": end,
            "from_CoworkerInvoice_UpdatedOn": updated_since,
        }
        query.update(self._entity_filters("CoworkerInvoice", filters))
        return _frame(list(self.iter_records("billing/coworkerinvoices", query)), INVOICE_COLUMNS)

    def fetch_invoice_lines(
        self,
        business_id: int | None = None,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        invoice_ids: Iterable[int] | None = None,
    ) -> pd.DataFrame:
        """Lines of the invoices of a location and period (by the invoice's CreatedOn), or of given invoices.

        Filters on the parent invoice, so a quarter of one location is a few pages.
        ``invoice_ids`` are fetched as id ranges (ASSUMPTION: Nexudus accepts
        from_/to_ on the parent's Id) and trimmed here to exactly those invoices.
        """
        parent = "CoworkerInvoiceLine_CoworkerInvoice"
        base: dict[str, Any] = {
            f"{parent}_Business": business_id,
            f"from_{parent}_CreatedOn": start,
            f"to_{parent}_CreatedOn": end,
        }
        if invoice_ids is None:
            return _frame(list(self.iter_records("billing/coworkerinvoicelines", base)), LINE_COLUMNS)
        wanted = {int(i) for i in invoice_ids}
        records: list[dict[str, Any]] = []
        for first, last in _id_runs(wanted, LINE_QUERY_MAX_GAP):
            if first == last:
                query = {**base, parent: first}
            else:
                query = {**base, f"from_{parent}_Id": first, f"to_{parent}_Id": last}
            records.extend(r for r in self.iter_records("billing/coworkerinvoicelines", query) if r.get("CoworkerInvoiceId") in wanted)
        return _frame(records, LINE_COLUMNS)

    def get_invoice(self, invoice_id: int) -> dict[str, Any]:
        """One coworker invoice as a dict (money as Decimal); NotFound if there is none."""
        result = self._request("GET", f"billing/coworkerinvoices/{int(invoice_id)}")
        return {k: _decimal_or_none(v, True) if k in MONEY_FIELDS else v for k, v in result.items()}

    # ---- writes

    def update_invoice(self, invoice_id: int, **fields: Any) -> dict[str, Any]:
        """Change an invoice's writable fields (SystemId, PaidOn, PurchaseOrder, Description).

        Sends ``PUT billing/coworkerinvoices`` with ``Id`` in the body; returns
        Nexudus' action result (``Value.Id``, ``UpdatedOn``, ``WasSuccessful``).
        Safe to retry: the same PUT sets the same values.
        """
        body = {"Id": int(invoice_id), **{k: _json_value(v) for k, v in fields.items()}}
        return self._request("PUT", "billing/coworkerinvoices", json_body=body)

    def record_payment(
        self,
        invoice_id: int,
        amount: Decimal,
        date: date | datetime | str | None,
        description: str,
        code: str | None = None,
    ) -> dict[str, Any]:
        """Record a payment as a coworker ledger entry (a Credit) against an invoice.

        Reads the invoice first and refuses (ApiRejected, nothing sent) a void,
        draft or credit-note invoice and an amount above what is still due
        (TotalAmount - PaidAmount); Nexudus refuses the same. Returns the action
        result (``Value.Id`` is the ledger entry).

        Not idempotent: a payment recorded twice is paid twice. This client
        retries only answers that say the request was not processed (429, 503,
        no connection made); after any other failure the caller must re-read the
        invoice's PaidAmount (or its ledger entries) before trying again, and
        should key each payment in its own ledger.
        """
        credit = D(amount)
        invoice = self.get_invoice(invoice_id)
        self._check_payable(invoice, credit)
        body = {
            "BusinessId": invoice["BusinessId"],
            "CoworkerId": invoice["CoworkerId"],
            "CoworkerInvoiceId": invoice["Id"],
            "Description": description,
            "Code": code,
            "Credit": credit,
            "Date": None if date is None else _query_value(date),
        }
        return self._request("POST", "billing/coworkerledgerentries", json_body=body, idempotent=False)

    def _check_payable(self, invoice: Mapping[str, Any], credit: Decimal) -> None:
        number = invoice.get("InvoiceNumber") or invoice.get("Id")
        due = D(invoice.get("TotalAmount")) - D(invoice.get("PaidAmount"))
        problem = None
        if credit <= 0:
            problem = f"Credit: the payment {credit} must be above zero."
        elif invoice.get("Void") or invoice.get("Draft") or invoice.get("CreditNote"):
            problem = f"CoworkerInvoiceId: invoice {number} is void, a draft or a credit note and cannot be paid."
        elif credit > due:
            problem = f"Credit: {credit} is more than the {due} still due on invoice {number}."
        if problem:
            raise ApiRejected(
                f"Payment not recorded on invoice {number}: {problem}",
                messages=[problem], service=SERVICE, method="POST", url=self._url("billing/coworkerledgerentries"),
            )

    # ---- HTTP

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _count(self, request: httpx.Request) -> None:
        self.calls += 1

    @staticmethod
    def _entity_filters(entity: str, filters: Mapping[str, Any]) -> dict[str, Any]:
        """``Paid=False`` -> ``CoworkerInvoice_Paid=false``; ``from_DueDate`` -> ``from_CoworkerInvoice_DueDate``."""
        out = {}
        for key, value in filters.items():
            bound, _, rest = key.partition("_") if key.startswith(("from_", "to_")) else ("", "", key)
            name = rest if rest.startswith(entity + "_") else f"{entity}_{rest}"
            out[f"{bound}_{name}" if bound else name] = value
        return out

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        idempotent: bool = True,
    ) -> Any:
        """Send one API call with retries and one re-sign-in on 401; return the decoded JSON."""
        url = self._url(path)
        content = None if json_body is None else _encode(json_body)

        def send() -> httpx.Response:
            headers = {"Authorization": f"Bearer {self._access_token()}"}
            if content is not None:
                headers["Content-Type"] = "application/json"
            response = self._http.request(method, url, params=params, content=content, headers=headers, withhold_token=True)
            if response.status_code in RETRY_STATUSES:
                raise _RetryableAnswer.of(response)
            return response

        response = self._retrying(send, method=method, url=url, idempotent=idempotent)
        if response.status_code == 401:
            self._renew_token()
            response = self._retrying(send, method=method, url=url, idempotent=idempotent)
        return self._decoded(response, method, url)

    def _decoded(self, response: httpx.Response, method: str, url: str) -> Any:
        """The JSON body of a 2xx answer; otherwise the matching recon error."""
        context = {"service": SERVICE, "status": response.status_code, "method": method, "url": url}
        try:
            body = _decode(response.content) if response.content else None
        except ValueError as exc:
            if response.is_success:
                raise ServiceUnavailable(f"Nexudus answered {method} {url} with something that is not JSON.", **context) from exc
            body = None
        status = response.status_code
        if status == 401 or status == 403:
            raise AuthError(
                f"Nexudus refused the credentials of {self.username} (HTTP {status}). Check the user has "
                "'API access' and the needed roles (Settings > Users and Security).",
                **context,
            )
        if status == 404:
            raise NotFound(f"Nexudus has no {url} (HTTP 404).", detail=body, **context)
        if status >= 400 or (isinstance(body, Mapping) and body.get("WasSuccessful") is False):
            messages = _field_messages(body)
            raise ApiRejected(
                f"Nexudus refused {method} {url}: {'; '.join(messages) or f'HTTP {status}'}",
                messages=messages, detail=body, **context,
            )
        return body

    def _retrying(self, action: Callable[[], T], *, method: str, url: str, idempotent: bool = True) -> T:
        """Run ``action``, retrying 429/5xx answers and connection failures with capped backoff."""
        for attempt in itertools.count(1):
            try:
                return action()
            except _RetryableAnswer as exc:
                safe = idempotent or exc.status in NOT_PROCESSED_STATUSES
                wait = exc.retry_after if exc.retry_after is not None else self.retry.backoff(attempt)
                if not safe or attempt >= self.retry.attempts or wait > self.retry.max_retry_after:
                    raise self._gave_up(exc, method, url, attempt) from exc
            except httpx.TransportError as exc:
                # A POST may have been processed unless the connection was never made.
                safe = idempotent or isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                if not safe or attempt >= self.retry.attempts:
                    raise ServiceUnavailable(
                        f"Nexudus could not be reached for {method} {url} after {attempt} attempt(s): {exc!r}."
                        + ("" if idempotent else " It may have been processed: check before sending it again."),
                        service=SERVICE, method=method, url=url,
                    ) from exc
                wait = self.retry.backoff(attempt)
            self.retry.sleep(wait)
        raise AssertionError("unreachable")

    def _gave_up(self, exc: _RetryableAnswer, method: str, url: str, attempts: int) -> ClientError:
        context = {"service": SERVICE, "status": exc.status, "method": method, "url": url, "detail": exc.text}
        if exc.status == 429:
            return RateLimited(
                f"Nexudus is still rate-limiting {method} {url} after {attempts} attempt(s); "
                f"wait {exc.retry_after or 'a while'} s and run again.",
                retry_after=exc.retry_after, problem=None, **context,  # Nexudus documents no limit names
            )
        return ServiceUnavailable(
            f"Nexudus answered {method} {url} with HTTP {exc.status} {attempts} time(s); try again later.", **context
        )

    # ---- tokens

    def _access_token(self) -> str:
        """A live access token: the saved one, a refreshed one, or a new sign-in."""
        token = self._http.token
        if not token or not token.get("access_token"):
            self._sign_in()
        elif token.is_expired(leeway=TOKEN_LEEWAY_SECONDS):
            self._renew_token()
        return str(self._http.token["access_token"])

    def _renew_token(self) -> None:
        """Refresh the token; if that is refused, sign in again with the password."""
        refresh = (self._http.token or {}).get("refresh_token")
        if refresh:
            try:
                token = self._token_call(lambda: self._http.refresh_token(self._url("token"), refresh_token=refresh))
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
                    self._url("token"), grant_type="password", username=self.username, password=password
                )
            )
            self._keep(token)

        return sign_in

    def _token_call(self, call: Callable[[], Any]) -> Any:
        """A token-endpoint call with retries; authlib and httpx errors become AuthError/ServiceUnavailable."""
        url = self._url("token")
        try:
            return self._retrying(call, method="POST", url=url)
        except OAuthError as exc:
            raise AuthError(
                f"Nexudus refused the sign-in of {self.username}: {exc.error}"
                + (f" ({exc.description})" if exc.description else "")
                + ". Check the username and password, and that the user has 'API access'.",
                service=SERVICE, status=400, method="POST", url=url, detail=exc.error,
            ) from exc
        except httpx.HTTPStatusError as exc:
            raise ServiceUnavailable(
                f"Nexudus' token endpoint answered HTTP {exc.response.status_code}.",
                service=SERVICE, status=exc.response.status_code, method="POST", url=url,
            ) from None  # the request carries the password: do not chain it
        except ValueError as exc:
            raise AuthError(f"Nexudus' token endpoint gave no token: {exc}", service=SERVICE, method="POST", url=url) from exc

    def _check_token_answer(self, response: httpx.Response) -> httpx.Response:
        """authlib compliance hook: retry 429/5xx; refuse a 4xx without an OAuth2 error as AuthError."""
        if response.status_code in RETRY_STATUSES:
            raise _RetryableAnswer.of(response)
        if 400 <= response.status_code < 500:
            try:
                body = response.json()
            except ValueError:
                body = None
            if not (isinstance(body, dict) and "error" in body):
                raise AuthError(
                    f"Nexudus' token endpoint refused the sign-in of {self.username} (HTTP {response.status_code}).",
                    service=SERVICE, status=response.status_code, method="POST", url=str(response.url),
                )
        return response

    def _keep(self, token: Mapping[str, Any]) -> None:
        """Use ``token`` and save its OAuth2 fields (never the password or username)."""
        self._http.token = dict(token)
        if self._token_store is not None:
            saved = {k: token[k] for k in SAVED_TOKEN_KEYS if k in token}
            self._token_store.save(self._token_name, saved)


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return _query_value(value)
    return value


def _encode(body: Any) -> bytes:
    """JSON with each Decimal written as a bare number of exactly its digits (no float on the way)."""
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
