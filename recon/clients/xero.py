"""The Xero Accounting API client: OAuth2, tenants, paging, pacing, retries, errors.

Floor 1: imports recon.errors, recon.money and recon.clients.*; never the
sandbox. The same code talks to the real Xero and to the embedded sandbox:
only ``XeroConfig`` (URLs and credentials) differs.

- Tokens: authlib's httpx ``OAuth2Client`` fetches and refreshes them
  (client_credentials for a Custom Connection, authorization_code + PKCE with
  refresh-token rotation for a web app); every new token set is saved through
  ``TokenStore`` (a user config folder, 0600) and never printed.
- Calls: ``Accept: application/json``, ``xero-tenant-id`` on accounting
  calls, JSON money parsed as ``Decimal`` and written from ``Decimal`` digit for
  digit (never through a float). Invoice and credit-note writes, and the reads
  of them, send ``unitdp=4`` (xero-api.md §3.1, §3.3): unit amounts keep four
  places. Paged reads stop on the answer's ``pagination.pageCount`` (§3.4),
  or on a short page when an answer carries no page object.
- Limits: ``MinutePacer`` keeps under the per-minute and concurrent-call limits
  (a slot reserved before each call, given back on its answer) and the quota
  headers; calls may be made from several threads at once; 429/503 are retried
  honouring ``Retry-After``; writes are retried only with an ``Idempotency-Key``.
- Errors: httpx and authlib failures become recon.errors exceptions here, once.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import secrets
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode

import httpx
import numpy as np
import pandas as pd
from authlib.deprecate import AuthlibDeprecationWarning

from recon.clients.pacing import MinutePacer
from recon.clients.retry import RETRY_STATUSES, RetryPolicy
from recon.clients.tokens import TokenStore
from recon.errors import (
    ApiRejected,
    AuthError,
    ClientError,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    WrongOrganisation,
)
from recon.progress import Counter

with warnings.catch_warnings():
    # authlib warns that it would rather use the httpx2 fork; recon pins httpx (design card).
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.base_client.errors import OAuthError as AuthlibOAuthError
    from authlib.integrations.httpx_client import OAuth2Client
    from authlib.oauth2.rfc6749.errors import OAuth2Error

__all__ = [
    "BATCH_SIZE",
    "IDS_PER_CALL",
    "MAX_PAGE_SIZE",
    "XeroClient",
    "XeroConfig",
    "json_text",
    "parse_xero_date",
    "xero_day_texts",
    "xero_time_texts",
]

MAX_PAGE_SIZE = 1000  # reference §3.4
# Unit amounts to four places on every invoice and credit-note write and read (reference §3.1,
# §3.3): recon's replay of Xero's arithmetic (recon.money) assumes them.
UNIT_DECIMALS: Mapping[str, str] = MappingProxyType({"unitdp": "4"})
BATCH_SIZE = 50  # reference §3.6: "batch elements in bundles of up to 50"
IDS_PER_CALL = 50  # reference §3.4: ~52 GUIDs fit in IDs=
DEFAULT_SCOPES = (
    "accounting.invoices accounting.payments accounting.contacts accounting.settings.read"
)
_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")
# The same as a whole text, for pandas' extract (which searches).
_MS_DATE_ANCHORED = r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/\Z"


@dataclass(frozen=True)
class XeroConfig:
    """Where Xero is and who recon is to it. The defaults are the real service."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    grant: str = "client_credentials"  # or "authorization_code"
    api_url: str = "https://api.xero.com/api.xro/2.0"
    identity_url: str = "https://api.xero.com"
    token_url: str = "https://identity.xero.com/connect/token"
    authorize_url: str = "https://login.xero.com/identity/connect/authorize"
    redirect_uri: str | None = None
    scopes: str = DEFAULT_SCOPES
    tenant_id: str | None = None
    tenant_name: str | None = None
    per_minute: int = 60
    minute_seconds: float = 60.0
    timeout: float = 30.0


def parse_xero_date(value: Any) -> datetime | None:
    """``/Date(1539993600000+0000)/`` or ISO text as an aware UTC datetime."""
    if value in (None, ""):
        return None
    return _date_of_text(str(value))


def xero_time_texts(values: Sequence[Any]) -> list[str | None]:
    """Each Xero date as ``parse_xero_date(v).isoformat()`` gives it; blanks None (column-wise,
    see ``_ms_dates``)."""
    found, ms, texts = _ms_dates(values)
    stamps = np.full(len(texts), None, dtype=object)
    whole = ms.astype("datetime64[s]")  # floors, also before 1970
    # isoformat() writes microseconds only when there are some.
    stamps[found] = np.strings.add(
        np.where(
            ms == whole,
            np.datetime_as_string(whole, unit="s"),
            np.strings.add(np.datetime_as_string(ms, unit="ms"), "000"),
        ),
        "+00:00",
    )
    for i in np.flatnonzero(~found).tolist():
        when = parse_xero_date(texts.iat[i])
        stamps[i] = when.isoformat() if when else None
    return list(stamps.tolist())


def xero_day_texts(values: Sequence[Any]) -> list[str | None]:
    """Each Xero date as ``parse_xero_date(v).date().isoformat()`` gives it; blanks None
    (column-wise, see ``_ms_dates``)."""
    found, ms, texts = _ms_dates(values)
    days = np.full(len(texts), None, dtype=object)
    days[found] = np.datetime_as_string(ms, unit="D")
    for i in np.flatnonzero(~found).tolist():
        when = parse_xero_date(texts.iat[i])
        days[i] = when.date().isoformat() if when else None
    return list(days.tolist())


def _ms_dates(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Which values are MS-JSON dates (``/Date(ms+0000)/``, every date of Xero's JSON), their
    instants (``datetime64[ms]``, UTC) and the values as a Series: converted together, since a
    page of 1,000 changed invoices holds 1,000 distinct ``UpdatedDateUTC``. The rest go through
    ``parse_xero_date`` one at a time."""
    texts = pd.Series(list(values), dtype=object)
    matched = texts.str.extract(_MS_DATE_ANCHORED, expand=False)
    found = matched.notna().to_numpy()
    ms = matched[found].astype("int64").to_numpy().astype("datetime64[ms]")
    return found, ms, texts


# A page of invoices repeats the same few dates; a datetime is immutable, so one can be shared.
@functools.lru_cache(maxsize=4096)
def _date_of_text(text: str) -> datetime:
    m = _MS_DATE.fullmatch(text)
    if m:
        return datetime.fromtimestamp(int(m.group(1)) / 1000, tz=UTC)
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _messages(body: Any) -> list[str]:
    """Every validation message in a Xero error body, in order."""
    out: list[str] = []
    if isinstance(body, dict):
        for el in body.get("Elements") or []:
            out.extend(m.get("Message", "") for m in el.get("ValidationErrors") or [])
            for line in el.get("LineItems") or []:
                out.extend(m.get("Message", "") for m in (line or {}).get("ValidationErrors") or [])
        if not out:
            for key in ("Message", "Detail", "detail", "error_description", "error"):
                if body.get(key):
                    out.append(str(body[key]))
                    break
    elif isinstance(body, str) and body:
        out.append(body)
    return out


# Seconds before its expiry a token counts as expired (authlib's default leeway): refreshed by
# recon, under the token store's lock, before a call rather than by authlib during it.
TOKEN_LEEWAY_SECONDS = 60


class XeroClient:
    """One Xero app's connection to one organisation (tenant)."""

    def __init__(
        self,
        config: XeroConfig,
        *,
        token_store: TokenStore | None = None,
        retry: RetryPolicy | None = None,
        pacer: MinutePacer | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.retry = retry or RetryPolicy()
        self.pacer = pacer or MinutePacer(config.per_minute, config.minute_seconds)
        self.token_store = token_store or TokenStore()
        self.calls = 0
        self._calls_lock = threading.Lock()  # calls may be sent from several threads at once
        self.tenant_id: str | None = config.tenant_id
        self._token_name = (
            "xero-"
            + hashlib.sha256(f"{config.token_url}|{config.client_id}".encode()).hexdigest()[:16]
        )
        self._code_verifier: str | None = None
        self._http = OAuth2Client(
            client_id=config.client_id,
            client_secret=config.client_secret,
            token_endpoint=config.token_url,
            # xero-python sends the secret in the form body; both are accepted (reference §11).
            token_endpoint_auth_method="client_secret_post" if config.client_secret else "none",
            scope=config.scopes,
            redirect_uri=config.redirect_uri,
            grant_type=config.grant,
            update_token=self._save_token,
            timeout=config.timeout,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "recon/0.1"},
        )
        saved = self.token_store.load(self._token_name)
        if saved:
            self._http.token = saved

    def __repr__(self) -> str:
        return (
            f"XeroClient(api_url={self.config.api_url!r}, client_id={self.config.client_id!r}, "
            f"tenant_id={self.tenant_id!r})"
        )

    def close(self) -> None:
        """Close the client's HTTP connections."""
        self._http.close()

    def __enter__(self) -> XeroClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- tokens ------------------------------------------------------------
    def _save_token(
        self,
        token: Mapping[str, Any],
        refresh_token: str | None = None,
        access_token: str | None = None,
    ) -> None:
        self.token_store.save(self._token_name, dict(token))

    def _fetch_client_credentials(self) -> None:
        try:
            token = self._http.fetch_token(self.config.token_url, grant_type="client_credentials")
        except (OAuth2Error, AuthlibOAuthError) as exc:
            # A saved token these credentials can no longer renew is dropped: the next run
            # signs in from scratch.
            self.token_store.delete(self._token_name)
            raise AuthError(
                f"Xero refused the app's credentials ({exc.error}): check the client id and secret "
                "of the Custom Connection.",
                service="xero",
                status=400,
            ) from exc
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"Xero's token service could not be reached: {exc}", service="xero"
            ) from exc
        self._save_token(token)

    def authorization_url(self, state: str | None = None) -> str:
        """Start an authorization-code + PKCE sign-in: open this URL, then call ``finish_login``."""
        self._code_verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(self._code_verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        # Without offline_access Xero gives no refresh token and the sign-in dies after 30 minutes
        # (reference §11).
        scopes = self.config.scopes.split()
        if "offline_access" not in scopes:
            scopes.insert(0, "offline_access")
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_uri or "",
            "scope": " ".join(scopes),
            "state": state or secrets.token_urlsafe(16),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.config.authorize_url}?{urlencode(params)}"

    def finish_login(self, redirected_to: str) -> None:
        """Trade the code in the redirect URL for tokens (PKCE verifier from
        ``authorization_url``)."""
        try:
            token = self._http.fetch_token(
                self.config.token_url,
                authorization_response=redirected_to,
                code_verifier=self._code_verifier,
                redirect_uri=self.config.redirect_uri,
            )
        except (OAuth2Error, AuthlibOAuthError) as exc:
            raise AuthError(
                f"Xero refused the sign-in code ({exc.error}): start the sign-in again.",
                service="xero",
            ) from exc
        self._save_token(token)

    def refresh(self, stale: str | None = None) -> None:
        """Get a new access token now (refresh-token rotation or a new client_credentials token).

        ``stale``: the access token a call found expired or refused. When the client already
        holds another one (a concurrent call of this client refreshed first), nothing is done:
        the push's worker threads share one client, and authlib's sync client does not
        serialise its own refreshes.

        Another process sharing the token store may have rotated the token since this client
        loaded it (a scheduled run beside a notebook). Its set is then adopted instead of
        spending the old refresh token, which Xero would refuse as ``invalid_grant``
        (reference §13, "refresh rotation races"). The check and the refresh happen under the
        store's lock, so two processes never spend one refresh token.
        """
        with self.token_store.lock(self._token_name):
            held = self._http.token
            if stale is not None and held is not None and held.get("access_token") != stale:
                return
            if self._adopt_rotated_token():
                return
            self._refresh_held_token()

    def _live_token(self) -> str | None:
        """The access token to send, refreshed first (under the store's lock) when it is about to
        expire, so that authlib's unlocked auto-refresh never runs from two threads at once."""
        token = self._http.token
        if token is not None and token.is_expired(leeway=TOKEN_LEEWAY_SECONDS):
            self.refresh(stale=token.get("access_token"))
            token = self._http.token
        return None if token is None else token.get("access_token")

    def _adopt_rotated_token(self) -> bool:
        """Take the store's token set if another process saved a different one since this client
        last loaded or saved; whether it is still live (if not, it is the newest refresh token to
        spend)."""
        held = self._http.token
        saved = self.token_store.load(self._token_name)
        if not saved or not saved.get("access_token"):
            return False
        if held and saved.get("access_token") == held.get("access_token"):
            return False
        self._http.token = saved
        adopted = self._http.token
        return adopted is not None and not adopted.is_expired(leeway=TOKEN_LEEWAY_SECONDS)

    def _refresh_held_token(self) -> None:
        token = self._http.token
        try:
            if token and token.get("refresh_token"):
                new = self._http.refresh_token(
                    self.config.token_url, refresh_token=token["refresh_token"]
                )
                self._save_token(new)
            elif self.config.grant == "client_credentials":
                self._fetch_client_credentials()
            else:
                raise AuthError(
                    "No Xero sign-in is stored: run the sign-in (authorization_url / "
                    "finish_login) first.",
                    service="xero",
                )
        except (OAuth2Error, AuthlibOAuthError) as exc:
            self.token_store.delete(self._token_name)
            raise AuthError(
                f"Xero refused the refresh token ({exc.error}): sign in again. A refresh token "
                "works once; another process may have used it.",
                service="xero",
                status=400,
            ) from exc

    def _ensure_token(self) -> None:
        if not self._http.token:
            if self.config.grant == "client_credentials":
                self._fetch_client_credentials()
            else:
                raise AuthError(
                    "No Xero sign-in is stored: run the sign-in (authorization_url / "
                    "finish_login) first.",
                    service="xero",
                )

    # ---- the one request path ------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        tenant: bool = True,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Send one call with pacing and safe retries; return the successful answer or raise."""
        self._ensure_token()
        hdrs = dict(headers or {})
        if tenant:
            if not self.tenant_id:
                self.select_tenant()
            hdrs["xero-tenant-id"] = str(self.tenant_id)
        if idempotency_key:
            hdrs["Idempotency-Key"] = idempotency_key
        content = None
        if json_body is not None:
            content = json_text(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        is_write = method.upper() not in ("GET", "HEAD")
        retry_safe = not is_write or bool(idempotency_key)
        refreshed = False
        pace_key = str(self.tenant_id) if tenant else "identity"
        for attempt in range(1, self.retry.attempts + 1):
            # A slot in the organisation's minute and calls in flight, given back on the answer.
            slot = self.pacer.reserve(pace_key) if tenant else None
            answer: httpx.Response | None = None
            try:
                try:
                    used = self._live_token()
                    with self._calls_lock:
                        self.calls += 1
                    response: httpx.Response = self._http.request(
                        method, url, params=params, content=content, headers=hdrs
                    )
                    answer = response
                finally:
                    if slot is not None:
                        self.pacer.release(slot, None if answer is None else answer.headers)
            except (OAuth2Error, AuthlibOAuthError) as exc:
                self.token_store.delete(self._token_name)
                raise AuthError(
                    f"Xero refused to renew the token ({exc.error}): sign in again.", service="xero"
                ) from exc
            except httpx.TransportError as exc:
                # A dropped connection after the server got a write could have committed it:
                # only a keyed write (replayed by Xero) or a read is safe to send again.
                if retry_safe and attempt < self.retry.attempts:
                    self.retry.sleep(self.retry.backoff(attempt))
                    continue
                raise ServiceUnavailable(
                    f"Xero could not be reached ({type(exc).__name__}: {exc}).",
                    service="xero",
                    method=method,
                    url=url,
                ) from exc
            status = response.status_code
            if status < 400:
                return response
            if status == 401 and not refreshed:
                refreshed = True
                self.refresh(stale=used)
                continue
            if (
                status in RETRY_STATUSES
                and (retry_safe or status == 429)
                and attempt < self.retry.attempts
            ):
                # A 429 was refused before doing anything, so even an unkeyed write may be resent.
                wait = self.retry.retry_after(response.headers.get("Retry-After"))
                if wait is not None and wait > self.retry.max_retry_after:
                    break
                self.retry.sleep(wait if wait is not None else self.retry.backoff(attempt))
                if status == 429 and tenant:
                    # Retry-After said when the server has room again: its "0 left" must not add a
                    # pacer wait on top.
                    self.pacer.remaining[pace_key].minute = None
                continue
            break
        raise self._error(response, method, url)

    def _error(self, response: httpx.Response, method: str, url: str) -> ClientError:
        status = response.status_code
        try:
            body: Any = (
                json.loads(response.content, parse_float=Decimal) if response.content else None
            )
        except ValueError:
            body = response.text
        messages = _messages(body)
        kw: dict[str, Any] = {
            "service": "xero",
            "status": status,
            "method": method,
            "url": str(url),
            "request_id": response.headers.get("Xero-Correlation-Id"),
            "detail": body,
        }
        text = "; ".join(messages) or response.reason_phrase
        if status == 401:
            return AuthError(f"Xero refused the access token ({text}): sign in again.", **kw)
        if status == 403:
            return WrongOrganisation(
                f"Xero refused access to organisation {self.tenant_id} ({text}): the app is not "
                "connected to it, or lacks the scope. Check the tenant in params and the app's "
                "connections.",
                **kw,
            )
        if status == 404:
            return NotFound(f"Xero has no such record or path: {method} {url}.", **kw)
        if status == 429:
            problem = response.headers.get("X-Rate-Limit-Problem")
            return RateLimited(
                f"Xero's {problem or 'rate'} limit was still hit after retrying; "
                f"try again in {response.headers.get('Retry-After', '?')} s.",
                retry_after=self.retry.retry_after(response.headers.get("Retry-After")),
                problem=problem,
                **kw,
            )
        if status >= 500:
            return ServiceUnavailable(f"Xero failed ({status}): {text}", **kw)
        return ApiRejected(f"Xero rejected {method} {url}: {text}", messages=messages, **kw)

    @staticmethod
    def parse(response: httpx.Response) -> Any:
        """The JSON body with every non-integer number as Decimal."""
        return json.loads(response.content, parse_float=Decimal)

    def _get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        return self.parse(
            self.request("GET", self.config.api_url + path, params=params, headers=headers)
        )

    # ---- identity --------------------------------------------------------------
    def connections(self) -> list[dict[str, Any]]:
        """The organisations this token can reach (``GET /connections``)."""
        body = self.parse(
            self.request("GET", self.config.identity_url + "/connections", tenant=False)
        )
        return _record_list(body, "/connections")

    def select_tenant(self, tenant_id: str | None = None, name: str | None = None) -> str:
        """Choose the organisation by id or name (config's if not given); return its id."""
        tenant_id = tenant_id or self.config.tenant_id
        name = name or self.config.tenant_name
        conns = self.connections()
        if tenant_id:
            match = [c for c in conns if c["tenantId"].lower() == tenant_id.lower()]
        elif name:
            match = [c for c in conns if c.get("tenantName", "").casefold() == name.casefold()]
        else:
            match = conns if len(conns) == 1 else []
        if len(match) != 1:
            known = ", ".join(f"{c.get('tenantName')} ({c['tenantId']})" for c in conns) or "none"
            wanted = tenant_id or name or "(none given, and the token reaches several)"
            raise WrongOrganisation(
                f"Xero organisation {wanted} is not connected to this app. Connected: {known}.",
                service="xero",
                status=403,
            )
        self.tenant_id = match[0]["tenantId"]
        return self.tenant_id

    # ---- settings --------------------------------------------------------------
    def fetch_organisation(self) -> dict[str, Any]:
        """The organisation's settings (``GET /Organisation``)."""
        return _first(self._get("/Organisation"), "Organisations")

    def fetch_accounts(self, where: str | None = None) -> pd.DataFrame:
        """The chart of accounts, archived ones included (the mapping check needs them)."""
        rows = self._get("/Accounts", {"where": where} if where else None)["Accounts"]
        return _frame(
            rows,
            [
                "AccountID",
                "Code",
                "Name",
                "Type",
                "Class",
                "Status",
                "TaxType",
                "SystemAccount",
                "EnablePaymentsToAccount",
                "BankAccountType",
                "CurrencyCode",
                "Description",
            ],
        )

    def fetch_tax_rates(self) -> pd.DataFrame:
        """Every tax rate with its effective rate as Decimal and where it may be used."""
        rows = self._get("/TaxRates")["TaxRates"]
        return _frame(
            rows,
            [
                "TaxType",
                "Name",
                "Status",
                "EffectiveRate",
                "DisplayTaxRate",
                "ReportTaxType",
                "CanApplyToRevenue",
                "CanApplyToExpenses",
                "CanApplyToLiabilities",
                "CanApplyToAssets",
                "CanApplyToEquity",
            ],
        )

    def fetch_tracking_categories(self, include_archived: bool = False) -> list[dict[str, Any]]:
        """Tracking categories with their options (``GET /TrackingCategories``)."""
        params = {"includeArchived": "true"} if include_archived else None
        return _records(self._get("/TrackingCategories", params), "TrackingCategories")

    def fetch_currencies(self) -> pd.DataFrame:
        """The organisation's currencies: code and description."""
        return _frame(self._get("/Currencies")["Currencies"], ["Code", "Description"])

    # ---- paged collections -----------------------------------------------------
    def iter_pages(
        self,
        path: str,
        key: str,
        params: Mapping[str, Any] | None = None,
        *,
        page_size: int = MAX_PAGE_SIZE,
        modified_since: datetime | None = None,
        item_count: Callable[[int], None] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield each page's records (pages are 1-based) up to the answer's
        ``pagination.pageCount``; without a page object, until a short page. ``item_count`` is
        told the first answer's ``pagination.itemCount`` (how many records all pages hold), when
        it gives one, before its page is yielded."""
        headers = {"If-Modified-Since": _http_timestamp(modified_since)} if modified_since else None
        page = 1
        with Counter(f"Xero {path}", unit="page") as bar:
            while True:
                query = dict(params or {})
                query.update({"page": page, "pageSize": page_size})
                body = self._get(path, query, headers)
                records = _records(body, key)
                pages = _page_count(body)
                items = _pagination_figure(body, "itemCount")
                if page == 1 and item_count is not None and items is not None:
                    item_count(items)
                bar(page, pages if pages is not None else page)
                if records:
                    yield records
                if not records or (pages is not None and page >= pages):
                    return
                if pages is None and len(records) < page_size:
                    return
                page += 1

    def iter_invoices(
        self,
        *,
        where: str | None = None,
        statuses: Iterable[str] | None = None,
        invoice_numbers: Iterable[str] | None = None,
        ids: Iterable[str] | None = None,
        modified_since: datetime | None = None,
        order: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        summary_only: bool = False,
        created_by_my_app: bool = False,
        item_count: Callable[[int], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Invoices matching the filters, with line items, in as few calls as paging allows.

        ``ids`` and ``invoice_numbers`` are sent in chunks that fit in a URL. ``item_count``:
        see ``iter_pages`` (told only for a read without chunks: one count for all).
        """
        base: dict[str, Any] = dict(UNIT_DECIMALS)
        if where:
            base["where"] = where
        if statuses:
            base["Statuses"] = ",".join(statuses)
        if order:
            base["order"] = order
        if summary_only:
            base["summaryOnly"] = "true"
        if created_by_my_app:
            base["createdByMyApp"] = "true"
        chunked: list[tuple[str, list[str]]] = []
        if ids is not None:
            chunked.append(("IDs", list(ids)))
        if invoice_numbers is not None:
            chunked.append(("InvoiceNumbers", list(invoice_numbers)))
        if not chunked:
            for page in self.iter_pages(
                "/Invoices",
                "Invoices",
                base,
                page_size=page_size,
                modified_since=modified_since,
                item_count=item_count,
            ):
                yield from page
            return
        name, values = chunked[0]
        for chunk in _chunks_for_url(values, IDS_PER_CALL if name == "IDs" else None):
            query = dict(base, **{name: ",".join(chunk)})
            for page in self.iter_pages(
                "/Invoices", "Invoices", query, page_size=page_size, modified_since=modified_since
            ):
                yield from page

    def fetch_invoices(self, **filters: Any) -> pd.DataFrame:
        """``iter_invoices`` as a DataFrame, one row per invoice, money as Decimal."""
        return invoices_frame(list(self.iter_invoices(**filters)))

    def get_invoice(self, invoice_id_or_number: str) -> dict[str, Any]:
        """One invoice by InvoiceID or InvoiceNumber; ``NotFound`` if Xero has none."""
        return _first(self._get(f"/Invoices/{invoice_id_or_number}", UNIT_DECIMALS), "Invoices")

    def iter_contacts(
        self,
        *,
        where: str | None = None,
        include_archived: bool = False,
        modified_since: datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Contacts matching ``where`` (archived ones too if asked) and, if given, changed since
        ``modified_since``, page after page."""
        params: dict[str, Any] = {"includeArchived": "true"} if include_archived else {}
        if where:
            params["where"] = where
        for page in self.iter_pages("/Contacts", "Contacts", params, modified_since=modified_since):
            yield from page

    # ---- writes -----------------------------------------------------------------
    def _write_batch(
        self,
        method: str,
        path: str,
        key: str,
        elements: list[dict[str, Any]],
        idempotency_key: str | None,
        summarize_errors: bool = False,
    ) -> list[dict[str, Any]]:
        params: dict[str, str] = {} if summarize_errors else {"summarizeErrors": "false"}
        if key in ("Invoices", "CreditNotes"):
            params.update(UNIT_DECIMALS)
        response = self.request(
            method,
            self.config.api_url + path,
            params=params or None,
            json_body={key: elements},
            idempotency_key=idempotency_key,
        )
        return _records(self.parse(response), key)

    def create_invoices(
        self, invoices: list[dict[str, Any]], *, idempotency_key: str | None = None
    ) -> list[dict[str, Any]]:
        """PUT a batch (≤ 50) with summarizeErrors=false: one result element per invoice, in
        order."""
        return self._write_batch("PUT", "/Invoices", "Invoices", invoices, idempotency_key)

    def save_invoices(
        self, invoices: list[dict[str, Any]], *, idempotency_key: str | None = None
    ) -> list[dict[str, Any]]:
        """POST a batch: create or update (matched by InvoiceID or InvoiceNumber)."""
        return self._write_batch("POST", "/Invoices", "Invoices", invoices, idempotency_key)

    def update_invoice(
        self, invoice_id: str, fields: dict[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Update one invoice with ``fields`` (a POST); return the invoice as Xero answered."""
        response = self.request(
            "POST",
            f"{self.config.api_url}/Invoices/{invoice_id}",
            params=UNIT_DECIMALS,
            json_body={"Invoices": [fields]},
            idempotency_key=idempotency_key,
        )
        return _first(self.parse(response), "Invoices")

    def create_contacts(
        self, contacts: list[dict[str, Any]], *, idempotency_key: str | None = None
    ) -> list[dict[str, Any]]:
        """PUT a batch of contacts with summarizeErrors=false: one result element per contact."""
        return self._write_batch("PUT", "/Contacts", "Contacts", contacts, idempotency_key)

    def create_payments(
        self, payments: list[dict[str, Any]], *, idempotency_key: str | None = None
    ) -> list[dict[str, Any]]:
        """PUT a batch of payments with summarizeErrors=false: one result element per payment."""
        return self._write_batch("PUT", "/Payments", "Payments", payments, idempotency_key)

    def delete_payment(self, payment_id: str) -> dict[str, Any]:
        """Delete a payment (status DELETED); return it as Xero answered."""
        response = self.request(
            "POST",
            f"{self.config.api_url}/Payments/{payment_id}",
            json_body={"Payments": [{"Status": "DELETED"}]},
        )
        return _first(self.parse(response), "Payments")

    # ---- credit notes ------------------------------------------------------------
    def create_credit_notes(
        self, notes: list[dict[str, Any]], *, idempotency_key: str | None = None
    ) -> list[dict[str, Any]]:
        """PUT a batch of credit notes (≤ 50) with summarizeErrors=false."""
        return self._write_batch("PUT", "/CreditNotes", "CreditNotes", notes, idempotency_key)

    def allocate_credit_note(
        self, credit_note_id: str, allocations: list[dict[str, Any]], *, idempotency_key: str
    ) -> list[dict[str, Any]]:
        """Allocate one credit note to invoices (``PUT /CreditNotes/{id}/Allocations``,
        summarizeErrors=false): each allocation is ``{"Invoice": {"InvoiceID": …}, "Amount":
        Decimal, "Date": "YYYY-MM-DD"}``; one result element per allocation, in order."""
        return self._write_batch(
            "PUT",
            f"/CreditNotes/{credit_note_id}/Allocations",
            "Allocations",
            allocations,
            idempotency_key,
        )

    def iter_credit_notes(
        self,
        *,
        numbers: Iterable[str] | None = None,
        where: str | None = None,
        modified_since: datetime | None = None,
        order: str | None = None,
        item_count: Callable[[int], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Credit notes, paged; ``numbers`` are looked up with a where filter, 50 at a time.
        ``item_count``: see ``iter_pages`` (told only for a read without ``numbers``)."""
        if numbers is None:
            for page in self.iter_pages(
                "/CreditNotes",
                "CreditNotes",
                {
                    **UNIT_DECIMALS,
                    **({"where": where} if where else {}),
                    **({"order": order} if order else {}),
                },
                modified_since=modified_since,
                item_count=item_count,
            ):
                yield from page
            return
        values = list(numbers)
        for start in range(0, len(values), IDS_PER_CALL):
            clause = " OR ".join(
                f'CreditNoteNumber=="{n}"' for n in values[start : start + IDS_PER_CALL]
            )
            for page in self.iter_pages(
                "/CreditNotes",
                "CreditNotes",
                {**UNIT_DECIMALS, "where": clause},
                modified_since=modified_since,
            ):
                yield from page


# Keep a list filter's query text under this many characters: ~52 GUIDs are known to fit
# (reference §3.4), so short invoice numbers may go 100 or more to a call.
URL_LIST_BUDGET = 1900


def _chunks_for_url(values: list[str], max_items: int | None) -> Iterator[list[str]]:
    """Split a comma-separated filter so each call's list stays within the URL budget (and
    ``max_items``)."""
    chunk: list[str] = []
    length = 0
    for value in values:
        cost = len(value) + 3  # the value, URL-encoded comma
        if chunk and (
            length + cost > URL_LIST_BUDGET or (max_items is not None and len(chunk) >= max_items)
        ):
            yield chunk
            chunk, length = [], 0
        chunk.append(value)
        length += cost
    if chunk:
        yield chunk


def _record_list(items: Any, where: str) -> list[dict[str, Any]]:
    """``items`` if it is a list of JSON objects; otherwise the answer is not Xero's shape."""
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ServiceUnavailable(
            f"Xero answered {where} with something that is not a list of records.", service="xero"
        )
    return items


def _records(body: Any, key: str) -> list[dict[str, Any]]:
    """The ``key`` collection of a Xero answer (``{"Invoices": [...]}``)."""
    if not isinstance(body, dict):
        raise ServiceUnavailable(f"Xero answered without a {key} collection.", service="xero")
    return _record_list(body.get(key), key)


def _first(body: Any, key: str) -> dict[str, Any]:
    """The one record of a single-record answer (``{"Invoices": [{...}]}``)."""
    records = _records(body, key)
    if not records:
        raise ServiceUnavailable(f"Xero answered with an empty {key} collection.", service="xero")
    return records[0]


def _page_count(body: Any) -> int | None:
    """The answer's ``pagination.pageCount`` (reference §3.4), or None when it carries none."""
    return _pagination_figure(body, "pageCount")


def _pagination_figure(body: Any, name: str) -> int | None:
    """A whole number of the answer's ``pagination`` object (reference §1: ``page``,
    ``pageSize``, ``pageCount``, ``itemCount``), or None when it carries none."""
    pagination = body.get("pagination") if isinstance(body, dict) else None
    count = pagination.get(name) if isinstance(pagination, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def json_text(value: Any) -> str:
    """``value`` as compact JSON with every Decimal written digit for digit as a JSON number.

    ``json`` can only write a Decimal through a float, which loses digits past ~15 significant
    places (``100000000000000.01`` would go out as ``100000000000000.02``). Dates go as ISO text.
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"cannot send {value} as a JSON number")
        return format(value, "f")
    if isinstance(value, Mapping):
        return (
            "{" + ",".join(f"{json.dumps(str(k))}:{json_text(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    if isinstance(value, (datetime, date)):
        return json.dumps(value.isoformat())
    if value is None or isinstance(value, (str, int, float)):
        return json.dumps(value, allow_nan=False)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def _http_timestamp(dt: datetime) -> str:
    """If-Modified-Since as ISO 8601 UTC with milliseconds (the spec's example has them:
    ``…43.202-08:00``)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="milliseconds")


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)
    return frame


INVOICE_COLUMNS = [
    "InvoiceID",
    "InvoiceNumber",
    "Type",
    "Status",
    "ContactID",
    "ContactName",
    "ContactNumber",
    "Reference",
    "Date",
    "DueDate",
    "CurrencyCode",
    "CurrencyRate",
    "LineAmountTypes",
    "SubTotal",
    "TotalTax",
    "Total",
    "AmountDue",
    "AmountPaid",
    "AmountCredited",
    "FullyPaidOnDate",
    "UpdatedDateUTC",
]
MONEY_COLUMNS = (
    "SubTotal",
    "TotalTax",
    "Total",
    "AmountDue",
    "AmountPaid",
    "AmountCredited",
    "CurrencyRate",
)
DATE_COLUMNS = ("Date", "DueDate", "FullyPaidOnDate", "UpdatedDateUTC")


def invoices_frame(invoices: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per Xero invoice; money as Decimal (object dtype), dates as UTC datetimes."""
    rows = []
    for inv in invoices:
        contact = inv.get("Contact") or {}
        row = {c: inv.get(c) for c in INVOICE_COLUMNS}
        row.update(
            ContactID=contact.get("ContactID"),
            ContactName=contact.get("Name"),
            ContactNumber=contact.get("ContactNumber"),
        )
        for c in MONEY_COLUMNS:
            value = inv.get(c)
            row[c] = Decimal(str(value)) if value is not None else Decimal("0")
        for c in DATE_COLUMNS:
            # Parsed before the frame exists: in a text column pandas would turn a missing date into
            # NaN.
            row[c] = parse_xero_date(row[c])
        rows.append(row)
    frame = pd.DataFrame(rows, columns=INVOICE_COLUMNS)
    for c in DATE_COLUMNS:
        frame[c] = pd.to_datetime(frame[c], utc=True)
    return frame
