"""The Xero sandbox as HTTP: identity, accounting API, limits, idempotency, faults.

One server answers what three Xero hosts do: ``/connect/token`` and
``/connect/revocation`` (identity.xero.com), ``/identity/connect/authorize``
(login.xero.com), ``/connections`` and ``/api.xro/2.0/…`` (api.xero.com).
Routes match case-insensitively. Contract: shared/reference/xero-api.md and
the OpenAPI spec (vendored in tests/openapi/, from shared/anchors/xero/).

Knowing departures (also in the README): JSON only (a request without
``Accept: application/json`` gets 406 where Xero would answer XML); the
authorize step consents without a login page; access tokens are opaque, not
JWTs; no XE.com rates (a fixed table); ``/_sandbox/*`` control routes exist
only here.
"""

from __future__ import annotations

import base64
import hashlib
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

from recon.sandbox import jsonutil
from recon.sandbox.clock import Clock
from recon.sandbox.http import BadRequestBody, Request, Response, Router
from recon.sandbox.seed import XeroAppSeed, XeroOrgSeed
from recon.sandbox.store import Store
from recon.sandbox.xero_auth import AccessGrant, Identity, OAuthError
from recon.sandbox.xero_books import NIL_UUID, Books, Outcome
from recon.sandbox.xero_format import iso_utc_string, msdatetime, parse_if_modified_since
from recon.sandbox.xero_ratelimit import (
    DEFAULT_LATENCY,
    Latency,
    RateLimiter,
    RateLimits,
    latency_from_env,
)
from recon.sandbox.xero_where import QueryParseError, compile_where

API = "/api.xro/2.0"
NOT_FOUND_TEXT = "The resource you're looking for cannot be found"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000  # reference §3.4 ([3p-R], CData); above it the sandbox caps (UNVERIFIED)
MAX_BODY_BYTES = 3_500_000  # reference §9: design for 3.5 MB
IDEMPOTENCY_SECONDS = 360  # reference §7: ~6 minutes
IDEMPOTENCY_KEY_MAX = 128

IDEMPOTENCY_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency(client_id TEXT NOT NULL, key TEXT NOT NULL,
    fingerprint TEXT NOT NULL, status INTEGER NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL,
    created REAL NOT NULL, PRIMARY KEY(client_id, key));
"""

# Scopes that open each collection: broad or granular (reference §11), read or write.
SCOPES = {
    "Invoices": ("accounting.transactions", "accounting.invoices"),
    "Payments": ("accounting.transactions", "accounting.payments"),
    "Contacts": ("accounting.contacts",),
    "Settings": ("accounting.settings",),
}


@dataclass
class Faults:
    """Injected failures for tests: each queued fault takes the next matching accounting call."""

    queue: deque[tuple[str, dict[str, Any]]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, n: int = 1, status: int = 503) -> None:
        """The next n calls answer ``status`` (500: Xero's error body; 503: service unavailable)."""
        with self.lock:
            self.queue.extend(("status", {"status": status}) for _ in range(n))

    def throttle_next(self, n: int = 1, retry_after: int = 1, problem: str = "minute") -> None:
        """The next n calls answer 429 with Retry-After, whatever the counters say."""
        with self.lock:
            self.queue.extend(
                ("429", {"retry_after": retry_after, "problem": problem}) for _ in range(n)
            )

    def drop_next(self, n: int = 1, after_commit: bool = True) -> None:
        """The next n writes drop the connection, after (default) or before doing the work."""
        with self.lock:
            self.queue.extend(("drop", {"after_commit": after_commit}) for _ in range(n))

    def take(self, is_write: bool) -> tuple[str, dict[str, Any]] | None:
        """Remove and return the next fault for this call, or None (a drop waits for a write)."""
        with self.lock:
            if not self.queue:
                return None
            kind, _args = self.queue[0]
            if kind == "drop" and not is_write:
                return None
            return self.queue.popleft()

    def clear(self) -> None:
        """Drop every queued fault."""
        with self.lock:
            self.queue.clear()


def _problem(status: int, title: str, detail: str) -> Response:
    body: dict[str, Any] = {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }
    return Response.json(body, status=status)


def _validation(elements: list[dict[str, Any]]) -> Response:
    return Response.json(
        {
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": elements,
        },
        status=400,
    )


def _post_data_invalid(detail: str) -> Response:
    return Response.json(
        {
            "ErrorNumber": 14,
            "Type": "PostDataInvalidException",
            "Message": f"JSON for post data was invalid,{detail}",
        },
        status=400,
    )


def _query_error(message: str) -> Response:
    return Response.json(
        {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message}, status=400
    )


def _not_found() -> Response:
    return Response.text(NOT_FOUND_TEXT, status=404)


class _Call:
    """An authorised accounting call: the app, the tenant, the grant."""

    def __init__(self, grant: AccessGrant, tenant: str, app_name: str) -> None:
        self.grant = grant
        self.tenant = tenant
        self.client_id = grant.client_id
        self.app_name = app_name


class XeroApp:
    """The Xero sandbox as a WSGI-free callable: ``(Request) -> Response``."""

    def __init__(
        self,
        db_path: str,
        *,
        clock: Clock | None = None,
        limits: RateLimits | None = None,
        latency: Latency | None = None,
    ) -> None:
        """``latency``: how long Xero takes to answer; ``RECON_SANDBOX_XERO_LATENCY`` wins over
        it, and None means the default, Xero's own (xero_ratelimit.latency_from_env)."""
        self.clock = clock or Clock()
        self.store = Store(db_path, IDEMPOTENCY_SCHEMA)
        self.books = Books(self.store, self.clock)
        self.identity = Identity(self.store, self.clock)
        self.limiter = RateLimiter(self.clock, limits)
        # How long Xero takes to answer (xero_ratelimit.Latency); settable at run time (also by
        # POST /_sandbox/settings).
        self.latency: Latency = latency_from_env(
            default=DEFAULT_LATENCY if latency is None else latency
        )
        self.faults = Faults()
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}
        self._key_locks_guard = threading.Lock()
        self.router = Router()
        self._routes()

    # ---- set-up ----------------------------------------------------------
    def load_seed(self, orgs: list[XeroOrgSeed], apps: list[XeroAppSeed]) -> dict[str, str]:
        """Load the organisations the store lacks (all of them when it is new; an organisation
        added to the demo later joins an older store without touching the others' books);
        register apps. Returns client_id -> secret."""
        known = set(self.books.tenants())
        missing = [o for o in orgs if o.organisation["OrganisationID"] not in known]
        if missing:
            self.books.load_seed(missing)
        return self.identity.register_apps(apps)

    @property
    def limits(self) -> RateLimits:
        """The rate limits the server enforces now; settable."""
        return self.limiter.limits

    @limits.setter
    def limits(self, value: RateLimits) -> None:
        self.limiter.limits = value

    def __call__(self, request: Request) -> Response:
        """Answer one request through its route; 404 for an unknown path, 405 for a wrong method."""
        handler, params, exists = self.router.resolve(request.method, request.path)
        if handler is None:
            return _not_found() if not exists else Response.text("Method not allowed", status=405)
        request.params = params
        return handler(request)

    # ---- routing ---------------------------------------------------------
    def _routes(self) -> None:
        r = self.router
        r.add("POST", "/connect/token", self._token)
        r.add("POST", "/connect/revocation", self._revocation)
        r.add("GET", "/identity/connect/authorize", self._authorize)
        r.add("GET", "/connect/authorize", self._authorize)
        r.add("GET", "/connections", self._get_connections)
        r.add("DELETE", "/connections/{id}", self._delete_connection)
        r.add("GET", "/_sandbox/info", self._info)
        r.add("POST", "/_sandbox/settings", self._settings)
        acc: list[tuple[str, str, str, bool, Callable[[Request, _Call], Response]]] = [
            ("GET", "/Organisation", "Settings", False, self._organisation),
            ("GET", "/Organisation/Actions", "Settings", False, self._organisation_actions),
            ("GET", "/Accounts", "Settings", False, self._list_simple("Account", "Accounts")),
            ("GET", "/Accounts/{id}", "Settings", False, self._get_simple("Account", "Accounts")),
            ("GET", "/TaxRates", "Settings", False, self._list_simple("TaxRate", "TaxRates")),
            ("GET", "/TaxRates/{id}", "Settings", False, self._get_simple("TaxRate", "TaxRates")),
            ("GET", "/Currencies", "Settings", False, self._list_simple("Currency", "Currencies")),
            ("GET", "/TrackingCategories", "Settings", False, self._list_tracking_categories),
            ("GET", "/TrackingCategories/{id}", "Settings", False, self._get_tracking_category),
            ("GET", "/Contacts", "Contacts", False, self._list_contacts),
            ("GET", "/Contacts/{id}", "Contacts", False, self._get_contact),
            ("PUT", "/Contacts", "Contacts", True, self._save_contacts(create_only=True)),
            ("POST", "/Contacts", "Contacts", True, self._save_contacts(create_only=False)),
            ("POST", "/Contacts/{id}", "Contacts", True, self._save_contacts(create_only=False)),
            ("GET", "/Invoices", "Invoices", False, self._list_invoices),
            ("GET", "/Invoices/{id}", "Invoices", False, self._get_invoice),
            ("PUT", "/Invoices", "Invoices", True, self._save_invoices("create")),
            ("POST", "/Invoices", "Invoices", True, self._save_invoices("upsert")),
            ("POST", "/Invoices/{id}", "Invoices", True, self._save_invoices("update")),
            ("GET", "/CreditNotes", "Invoices", False, self._list_credit_notes),
            ("GET", "/CreditNotes/{id}", "Invoices", False, self._get_credit_note),
            ("PUT", "/CreditNotes", "Invoices", True, self._save_credit_notes("create")),
            ("POST", "/CreditNotes", "Invoices", True, self._save_credit_notes("upsert")),
            ("POST", "/CreditNotes/{id}", "Invoices", True, self._save_credit_notes("update")),
            ("PUT", "/CreditNotes/{id}/Allocations", "Invoices", True, self._allocate),
            (
                "DELETE",
                "/CreditNotes/{id}/Allocations/{allocation}",
                "Invoices",
                True,
                self._delete_allocation,
            ),
            ("GET", "/Payments", "Payments", False, self._list_payments),
            ("GET", "/Payments/{id}", "Payments", False, self._get_payment),
            ("PUT", "/Payments", "Payments", True, self._create_payments),
            ("POST", "/Payments", "Payments", True, self._create_payments),
            ("POST", "/Payments/{id}", "Payments", True, self._delete_payment),
        ]
        for method, path, scope, is_write, fn in acc:
            r.add(method, API + path, self._accounting(scope, is_write, fn))

    # ---- identity --------------------------------------------------------
    @staticmethod
    def _basic(request: Request) -> tuple[str, str] | None:
        header = request.header("Authorization") or ""
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user, password

    def _token(self, request: Request) -> Response:
        if "application/x-www-form-urlencoded" not in (request.header("Content-Type") or ""):
            return Response.json({"error": "invalid_request"}, status=400)
        try:
            body = self.identity.token(request.form(), self._basic(request))
        except (OAuthError, BadRequestBody) as exc:
            err = exc if isinstance(exc, OAuthError) else OAuthError("invalid_request")
            return Response.json(
                err.body(), status=err.status, headers={"Cache-Control": "no-store"}
            )
        return Response.json(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _revocation(self, request: Request) -> Response:
        try:
            self.identity.revoke(request.form().get("token", ""), self._basic(request))
        except OAuthError as exc:
            return Response.json(exc.body(), status=exc.status)
        return Response(200)

    def _authorize(self, request: Request) -> Response:
        query = {k: v[0] for k, v in request.query.items()}
        try:
            location = self.identity.authorize(query)
        except OAuthError as exc:
            return Response.json(exc.body(), status=exc.status)
        return Response(302, headers={"Location": location})

    def _bearer(self, request: Request) -> AccessGrant | Response:
        header = request.header("Authorization") or ""
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            return self._unauthorized("AuthenticationUnsuccessful")
        grant = self.identity.check_access(header[7:].strip())
        if isinstance(grant, str):
            if grant.startswith("expired:"):
                return self._unauthorized(f"TokenExpired: token expired at {grant[8:]}")
            return self._unauthorized("AuthenticationUnsuccessful")
        return grant

    @staticmethod
    def _unauthorized(detail: str) -> Response:
        response = _problem(401, "Unauthorized", detail)
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response

    def _org_names(self) -> dict[str, str]:
        return {t: (self.books.org(t) or {}).get("Name", "") for t in self.books.tenants()}

    def _get_connections(self, request: Request) -> Response:
        grant = self._bearer(request)
        if isinstance(grant, Response):
            return grant
        event = request.arg("authEventId")
        return Response.json(self.identity.connections(grant.client_id, event, self._org_names()))

    def _delete_connection(self, request: Request) -> Response:
        grant = self._bearer(request)
        if isinstance(grant, Response):
            return grant
        if not self.identity.delete_connection(grant.client_id, request.params["id"]):
            return _not_found()
        return Response(204)

    # ---- sandbox control (not part of Xero) ---------------------------------
    def _info(self, request: Request) -> Response:
        lim = self.limits
        return Response.json(
            {
                "limits": lim.__dict__,
                "latency": self.latency.__dict__,
                "clock_offset_seconds": self.clock.time() - __import__("time").time(),
            }
        )

    def _settings(self, request: Request) -> Response:
        try:
            body = request.json() or {}
        except BadRequestBody:
            return Response.json({"error": "bad JSON"}, status=400)
        if "limits" in body:
            self.limits = self.limits.with_(
                **{k: (float(v) if "seconds" in k else int(v)) for k, v in body["limits"].items()}
            )
        if "latency" in body:
            # {"per_call": seconds, "per_element": seconds}; a key left out stays as it is.
            now = self.latency.__dict__
            self.latency = Latency(**{k: float(body["latency"].get(k, v)) for k, v in now.items()})
        if body.get("advance_clock"):
            self.clock.advance(float(body["advance_clock"]))
        if body.get("reset_counters"):
            self.limiter.reset()
        if body.get("expire_tokens"):
            self.identity.expire_all_access_tokens()
        for tenant, dates in (body.get("lock_dates") or {}).items():
            # {"<tenant id>": {"period": "YYYY-MM-DD" | null, "end_of_year": … | null}}
            self.books.set_lock_dates(
                tenant,
                period=date.fromisoformat(dates["period"]) if dates.get("period") else None,
                end_of_year=(
                    date.fromisoformat(dates["end_of_year"]) if dates.get("end_of_year") else None
                ),
            )
        for fault in body.get("faults", []):
            kind = fault.get("kind")
            if kind == "fail":
                self.faults.fail_next(int(fault.get("n", 1)), int(fault.get("status", 503)))
            elif kind == "throttle":
                self.faults.throttle_next(
                    int(fault.get("n", 1)),
                    int(fault.get("retry_after", 1)),
                    fault.get("problem", "minute"),
                )
            elif kind == "drop":
                self.faults.drop_next(int(fault.get("n", 1)), bool(fault.get("after_commit", True)))
        return Response.json({"ok": True})

    # ---- the accounting pipeline -------------------------------------------
    def _accounting(
        self, scope: str, is_write: bool, fn: Callable[[Request, _Call], Response]
    ) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            grant = self._bearer(request)
            if isinstance(grant, Response):
                return grant
            tenant = (request.header("xero-tenant-id") or "").strip().lower()
            tenants = {t.lower(): t for t in grant.tenant_ids}
            if (
                not tenant
                and len(grant.tenant_ids) == 1
                and self._is_custom_connection(grant.client_id)
            ):
                tenant = grant.tenant_ids[0].lower()  # reference §2: custom connections may omit it
            if tenant not in tenants:
                return _problem(403, "Forbidden", "AuthenticationUnsuccessful")
            wanted = SCOPES[scope]
            ok = any(
                s in grant.scopes or (not is_write and f"{s}.read" in grant.scopes) for s in wanted
            )
            if not ok:
                return _problem(403, "Forbidden", "AuthenticationUnsuccessful")
            call = _Call(grant, tenants[tenant], self._app_name(grant.client_id))
            return self._limited(request, call, is_write, fn)

        return handle

    def _is_custom_connection(self, client_id: str) -> bool:
        row = self.store.one("SELECT grant_type FROM apps WHERE client_id=?", (client_id,))
        return bool(row and row["grant_type"] == "client_credentials")

    def _app_name(self, client_id: str) -> str:
        return self.store.scalar("SELECT name FROM apps WHERE client_id=?", (client_id,)) or ""

    def _limited(
        self,
        request: Request,
        call: _Call,
        is_write: bool,
        fn: Callable[[Request, _Call], Response],
    ) -> Response:
        fault = self.faults.take(is_write)
        if fault and fault[0] == "429":
            headers = self.limiter.headers(call.tenant, call.client_id)
            headers.update(
                {
                    "Retry-After": str(fault[1]["retry_after"]),
                    "X-Rate-Limit-Problem": fault[1]["problem"],
                }
            )
            return Response.text("", status=429, headers=headers)
        admission = self.limiter.admit(call.tenant, call.client_id)
        if not admission.allowed:
            headers = dict(admission.headers)
            headers.update(
                {
                    "Retry-After": str(admission.retry_after),
                    "X-Rate-Limit-Problem": admission.problem,
                }
            )
            return Response.text("", status=429, headers=headers)
        answer_by = time.monotonic() + self.latency.seconds(
            _element_count(request) if is_write and self.latency.per_element else 0
        )
        try:
            if fault and fault[0] == "status":
                status = fault[1]["status"]
                if status == 500:
                    response = Response.json(
                        {
                            "Title": "An error occurred",
                            "Detail": (
                                "An error occurred in Xero. Check the API Status page "
                                "http://status.developer.xero.com for current service status."
                            ),
                            "Status": 500,
                            "Instance": str(uuid.uuid4()),
                        },
                        status=500,
                    )
                else:
                    response = Response.text("Service Unavailable", status=status)
            elif fault and fault[0] == "drop" and not fault[1]["after_commit"]:
                return Response(drop=True)
            else:
                response = self._idempotent(request, call, is_write, fn)
                if fault and fault[0] == "drop":
                    return Response(drop=True)
            # Answer no sooner than Xero would, still in progress (the concurrent limit counts it).
            time.sleep(max(0.0, answer_by - time.monotonic()))
        finally:
            self.limiter.release(call.tenant)
        response.headers.update(self.limiter.headers(call.tenant, call.client_id))
        response.headers.setdefault("Xero-Correlation-Id", str(uuid.uuid4()))
        return response

    def _key_lock(self, client_id: str, key: str) -> threading.Lock:
        with self._key_locks_guard:
            return self._key_locks.setdefault((client_id, key), threading.Lock())

    def _idempotent(
        self,
        request: Request,
        call: _Call,
        is_write: bool,
        fn: Callable[[Request, _Call], Response],
    ) -> Response:
        if "application/json" not in (request.header("Accept") or ""):
            return Response.text(
                "The recon sandbox answers JSON only: send 'Accept: application/json' "
                "(the real Xero would answer XML).",
                status=406,
            )
        key = request.header("Idempotency-Key") if is_write else None
        if not key:
            return self._guarded(request, call, fn)
        if len(key) > IDEMPOTENCY_KEY_MAX:
            return _validation_message(
                f"Idempotency-Key must be {IDEMPOTENCY_KEY_MAX} characters or less."
            )
        query = "&".join(f"{k}={','.join(v)}" for k, v in sorted(request.query.items()))
        fingerprint = hashlib.sha256(
            b"|".join(
                [
                    request.method.encode(),
                    request.path.lower().encode(),
                    query.encode(),
                    call.tenant.encode(),
                    request.body,
                ]
            )
        ).hexdigest()
        with self._key_lock(call.client_id, key):
            row = self.store.one(
                "SELECT * FROM idempotency WHERE client_id=? AND key=?", (call.client_id, key)
            )
            if row is not None and row["created"] + IDEMPOTENCY_SECONDS > self.clock.time():
                if row["fingerprint"] != fingerprint:
                    # UNVERIFIED full text; reference §7 gives "is used with a different request".
                    return _validation_message(
                        f"Idempotency Key {key} is used with a different request."
                    )
                return Response(row["status"], bytes(row["body"]), jsonutil.loads(row["headers"]))
            response = self._guarded(request, call, fn)
            if response.status < 500:  # a failed store would answer 500 and not cache; reference §7
                with self.store.write() as db:
                    db.execute(
                        "INSERT OR REPLACE INTO idempotency VALUES(?,?,?,?,?,?,?)",
                        (
                            call.client_id,
                            key,
                            fingerprint,
                            response.status,
                            jsonutil.dumps(response.headers),
                            response.body,
                            self.clock.time(),
                        ),
                    )
            return response

    def _guarded(
        self, request: Request, call: _Call, fn: Callable[[Request, _Call], Response]
    ) -> Response:
        if len(request.body) > MAX_BODY_BYTES:
            return Response.text("Request entity too large", status=413)
        try:
            return fn(request, call)
        except BadRequestBody as exc:
            return _post_data_invalid(f" {exc}")
        except QueryParseError as exc:
            return _query_error(str(exc))

    # ---- envelope and listing --------------------------------------------
    def _envelope(
        self,
        call: _Call,
        key: str,
        items: list[dict[str, Any]],
        pagination: dict[str, int] | None = None,
        warnings: list[str] | None = None,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Id": str(uuid.uuid4()),
            "Status": "OK",
            "ProviderName": call.app_name,
            "DateTimeUTC": msdatetime(self.books.now_ms(), offset=False),
        }
        if pagination is not None:
            out["pagination"] = pagination
        if warnings:
            out["Warnings"] = [{"Message": w} for w in warnings]
        out[key] = items
        return out

    @staticmethod
    def _csv(request: Request, name: str) -> list[str] | None:
        raw = request.arg(name)
        if raw is None:
            return None
        return [v.strip() for v in raw.split(",") if v.strip()]

    def _modified_since(self, request: Request) -> int | None:
        value = request.header("If-Modified-Since")
        if not value:
            return None
        try:
            return parse_if_modified_since(value)
        except (ValueError, TypeError):
            return None  # an unreadable header is ignored, as HTTP servers do

    @staticmethod
    def _where_view(doc: dict[str, Any]) -> dict[str, Any]:
        view = dict(doc)
        if "UpdatedMs" in doc:
            view["UpdatedDateUTC"] = iso_utc_string(doc["UpdatedMs"])
        return view

    def _filter_order(
        self,
        request: Request,
        docs: list[dict[str, Any]],
        extend: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        where = request.arg("where")
        if where:
            predicate = compile_where(where)
            docs = [
                d
                for d in docs
                if predicate(extend(self._where_view(d)) if extend else self._where_view(d))
            ]
        order = request.arg("order")
        if order:
            for part in reversed([p.strip() for p in order.split(",") if p.strip()]):
                name, _, direction = part.partition(" ")
                name = "UpdatedMs" if name.lower() == "updateddateutc" else name
                docs.sort(
                    key=partial(_sort_key, name=name),
                    reverse=direction.strip().upper() == "DESC",
                )
        return docs

    @staticmethod
    def _page(
        request: Request, docs: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
        raw_page = request.arg("page")
        if raw_page is None:
            return docs, None
        try:
            page = max(1, int(raw_page))
            size = int(request.arg("pageSize") or DEFAULT_PAGE_SIZE)
        except ValueError:
            raise QueryParseError("page and pageSize must be whole numbers") from None
        size = min(max(1, size), MAX_PAGE_SIZE)
        count = len(docs)
        chunk = docs[(page - 1) * size : page * size]
        return chunk, {
            "page": page,
            "pageSize": size,
            "pageCount": math.ceil(count / size) if count else 0,
            "itemCount": count,
        }

    # ---- settings collections ------------------------------------------------
    def _organisation(self, request: Request, call: _Call) -> Response:
        org = self.books.org(call.tenant) or {}
        return Response.json(self._envelope(call, "Organisations", [self.books.render_org(org)]))

    def _organisation_actions(self, request: Request, call: _Call) -> Response:
        multi = len(self.books.currency_codes(call.tenant)) > 1
        actions = [
            {"Name": n, "Status": "ALLOWED"}
            for n in (
                "CreateApprovedInvoice",
                "CreateApprovedBill",
                "CreateDraftInvoice",
                "AttachFilesToInvoice",
            )
        ]
        actions.append(
            {"Name": "UseMulticurrency", "Status": "ALLOWED" if multi else "NOT-ALLOWED"}
        )
        return Response.json(self._envelope(call, "Actions", actions))

    def _list_simple(self, kind: str, key: str) -> Callable[[Request, _Call], Response]:
        def handle(request: Request, call: _Call) -> Response:
            docs = self.books.records(
                call.tenant,
                kind,
                modified_since_ms=self._modified_since(request) if kind == "Account" else None,
            )
            docs = self._filter_order(request, docs)
            return Response.json(
                self._envelope(call, key, [self.books.render_record(d) for d in docs])
            )

        return handle

    def _get_simple(self, kind: str, key: str) -> Callable[[Request, _Call], Response]:
        def handle(request: Request, call: _Call) -> Response:
            doc = self.books.record(call.tenant, kind, request.params["id"])
            if doc is None:
                return _not_found()
            return Response.json(self._envelope(call, key, [self.books.render_record(doc)]))

        return handle

    # ---- tracking categories -----------------------------------------------------
    @staticmethod
    def _tracking_view(doc: dict[str, Any], include_archived: bool) -> dict[str, Any] | None:
        """A category as listed: DELETED ones never; ARCHIVED categories and options only on
        request."""
        shown = {"ACTIVE", "ARCHIVED"} if include_archived else {"ACTIVE"}
        if doc.get("Status") not in shown:
            return None
        view = dict(doc)
        view["Options"] = [o for o in doc.get("Options") or [] if o.get("Status") in shown]
        return view

    @staticmethod
    def _render_tracking(doc: dict[str, Any]) -> dict[str, Any]:
        # Xero's TrackingCategory carries no UpdatedDateUTC (spec schema and examples).
        return {k: v for k, v in doc.items() if k != "UpdatedMs"}

    def _list_tracking_categories(self, request: Request, call: _Call) -> Response:
        """``GET /TrackingCategories``: ACTIVE categories with their ACTIVE options;
        ``includeArchived=true`` adds ARCHIVED ones of both (the spec's wording); ``where`` and
        ``order`` as elsewhere."""
        include = (request.arg("includeArchived") or "").lower() == "true"
        views = [
            v
            for d in self.books.tracking_categories(call.tenant)
            if (v := self._tracking_view(d, include))
        ]
        views = self._filter_order(request, views)
        return Response.json(
            self._envelope(call, "TrackingCategories", [self._render_tracking(v) for v in views])
        )

    def _get_tracking_category(self, request: Request, call: _Call) -> Response:
        """``GET /TrackingCategories/{id}``: the category whatever its status (the spec's example
        shows a DELETED one), with its ACTIVE and ARCHIVED options. UNVERIFIED: whether Xero lists
        archived options here; the spec gives this operation no includeArchived parameter."""
        doc = self.books.record(call.tenant, "TrackingCategory", request.params["id"])
        if doc is None:
            return _not_found()
        view = dict(doc)
        view["Options"] = [o for o in doc.get("Options") or [] if o.get("Status") != "DELETED"]
        return Response.json(
            self._envelope(call, "TrackingCategories", [self._render_tracking(view)])
        )

    # ---- contacts ------------------------------------------------------------
    def _list_contacts(self, request: Request, call: _Call) -> Response:
        statuses = (
            None
            if (request.arg("includeArchived") or "").lower() == "true"
            else ["ACTIVE", "GDPRREQUEST"]
        )
        docs = self.books.records(
            call.tenant,
            "Contact",
            ids=self._csv(request, "IDs"),
            statuses=statuses,
            modified_since_ms=self._modified_since(request),
        )
        term = (request.arg("searchTerm") or "").casefold()
        if term:
            docs = [
                d
                for d in docs
                if any(
                    term in str(d.get(k) or "").casefold()
                    for k in ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
                )
            ]
        docs = self._filter_order(request, docs)
        docs, pagination = self._page(request, docs)
        return Response.json(
            self._envelope(
                call, "Contacts", [self.books.render_record(d) for d in docs], pagination
            )
        )

    def _get_contact(self, request: Request, call: _Call) -> Response:
        doc = self.books.by_id_or_number(call.tenant, "Contact", request.params["id"])
        if doc is None:
            return _not_found()
        return Response.json(self._envelope(call, "Contacts", [self.books.render_record(doc)]))

    def _elements(self, request: Request, key: str) -> list[Any]:
        body = request.json()
        if isinstance(body, dict) and isinstance(body.get(key), list):
            elements: list[Any] = body[key]
            return elements
        if isinstance(body, dict) and body and key not in body:
            return [body]  # a single object is accepted as a batch of one
        raise BadRequestBody(f" the body needs a '{key}' array")

    def _batch_response(
        self,
        request: Request,
        call: _Call,
        key: str,
        inputs: list[Any],
        outcomes: list[Outcome],
        render: Callable[[dict[str, Any]], dict[str, Any]],
        id_key: str,
    ) -> Response:
        summarize = (request.arg("summarizeErrors") or "true").lower() != "false"
        elements = []
        failed = []
        for raw, outcome in zip(inputs, outcomes, strict=True):
            if outcome.doc is not None:
                element = render(outcome.doc)
                element["StatusAttributeString"] = "WARNING" if outcome.warnings else "OK"
                if outcome.warnings:
                    element["Warnings"] = [{"Message": w} for w in outcome.warnings]
                elements.append(element)
            else:
                echo = dict(raw) if isinstance(raw, dict) else {}
                echo.setdefault(id_key, NIL_UUID)
                echo.update(
                    {
                        "HasErrors": True,
                        "StatusAttributeString": "ERROR",
                        "ValidationErrors": [{"Message": m} for m in outcome.errors],
                    }
                )
                if key == "Contacts":
                    echo["HasValidationErrors"] = True
                    echo.pop("HasErrors")
                elements.append(echo)
                failed.append(echo)
        if failed and summarize:
            # Live Xero's default: 400 naming only the failed elements; the valid ones were still
            # saved.
            return _validation(failed)
        return Response.json(self._envelope(call, key, elements))

    def _save_contacts(self, *, create_only: bool) -> Callable[[Request, _Call], Response]:
        def handle(request: Request, call: _Call) -> Response:
            inputs = self._elements(request, "Contacts")
            if request.params.get("id"):
                inputs = [dict(inputs[0], ContactID=request.params["id"])] if inputs else []
            outcomes = [
                self.books.save_contact(
                    call.tenant,
                    el if isinstance(el, dict) else {},
                    create_only=create_only,
                    created_by=call.client_id,
                )
                for el in inputs
            ]
            return self._batch_response(
                request, call, "Contacts", inputs, outcomes, self.books.render_record, "ContactID"
            )

        return handle

    # ---- invoices --------------------------------------------------------------
    def _contacts_map(self, tenant: str, outcomes: list[Outcome] | None = None) -> dict[str, Any]:
        """The tenant's contacts by ContactID: all of them, or those of ``outcomes``' documents."""
        ids = None
        if outcomes is not None:
            ids = {
                str(o.doc.get("Contact", {}).get("ContactID", ""))
                for o in outcomes
                if o.doc is not None
            }
        return {c["ContactID"]: c for c in self.books.records(tenant, "Contact", ids=ids)}

    def _list_invoices(self, request: Request, call: _Call) -> Response:
        ids = self._csv(request, "IDs")
        numbers = self._csv(request, "InvoiceNumbers")
        statuses = self._csv(request, "Statuses")
        docs = self.books.records(
            call.tenant,
            "Invoice",
            ids=ids,
            numbers=numbers,
            statuses=[s.upper() for s in statuses] if statuses else None,
            modified_since_ms=self._modified_since(request),
            created_by=call.client_id
            if (request.arg("createdByMyApp") or "").lower() == "true"
            else None,
        )
        contact_ids = self._csv(request, "ContactIDs")
        if contact_ids:
            wanted = {c.lower() for c in contact_ids}
            docs = [d for d in docs if d.get("Contact", {}).get("ContactID", "").lower() in wanted]
        if (request.arg("includeArchived") or "").lower() != "true":
            docs = [d for d in docs if d.get("Status") != "ARCHIVED"]
        contacts = self._contacts_map(call.tenant)
        term = (request.arg("searchTerm") or "").casefold()
        if term:
            docs = [
                d
                for d in docs
                if term in str(d.get("InvoiceNumber") or "").casefold()
                or term in str(d.get("Reference") or "").casefold()
            ]

        def extend(view: dict[str, Any]) -> dict[str, Any]:
            cid = view.get("Contact", {}).get("ContactID")
            view["Contact"] = contacts.get(cid, view.get("Contact"))
            return view

        docs = self._filter_order(request, docs, extend)
        page_docs, pagination = self._page(request, docs)
        # Multi-invoice GETs carry line items only when paged (reference §3.4).
        with_lines = pagination is not None
        summary = (request.arg("summaryOnly") or "").lower() == "true"
        items = [
            self.books.render_invoice(
                call.tenant, d, with_lines=with_lines, contacts=contacts, summary_only=summary
            )
            for d in page_docs
        ]
        return Response.json(self._envelope(call, "Invoices", items, pagination))

    def _get_invoice(self, request: Request, call: _Call) -> Response:
        doc = self.books.by_id_or_number(call.tenant, "Invoice", request.params["id"])
        if doc is None:
            return _not_found()
        return Response.json(
            self._envelope(
                call, "Invoices", [self.books.render_invoice(call.tenant, doc, with_lines=True)]
            )
        )

    def _save_invoices(self, mode: str) -> Callable[[Request, _Call], Response]:
        def handle(request: Request, call: _Call) -> Response:
            inputs = self._elements(request, "Invoices")
            unitdp = _unitdp(request)
            invoice_id = request.params.get("id")
            if invoice_id and not _is_uuid(invoice_id):
                found = [
                    d
                    for d in self.books.by_number(call.tenant, "Invoice", invoice_id)
                    if d["Status"] != "DELETED"
                ]
                if not found:
                    return _not_found()
                invoice_id = found[0]["InvoiceID"]
            if invoice_id and self.books.record(call.tenant, "Invoice", invoice_id) is None:
                return _not_found()
            # One read of the chart, tax rates and currencies for the whole batch.
            with self.books.lookups():
                outcomes = [
                    self.books.save_invoice(
                        call.tenant,
                        el,
                        mode=mode,
                        client_id=call.client_id,
                        invoice_id=invoice_id,
                        unitdp=unitdp,
                    )
                    for el in inputs
                ]
            contacts = self._contacts_map(call.tenant, outcomes)
            return self._batch_response(
                request,
                call,
                "Invoices",
                inputs,
                outcomes,
                lambda doc: self.books.render_invoice(
                    call.tenant, doc, with_lines=True, contacts=contacts
                ),
                "InvoiceID",
            )

        return handle

    # ---- credit notes ------------------------------------------------------------
    def _list_credit_notes(self, request: Request, call: _Call) -> Response:
        docs = self.books.records(
            call.tenant, "CreditNote", modified_since_ms=self._modified_since(request)
        )
        docs = self._filter_order(request, docs)
        docs, pagination = self._page(request, docs)
        contacts = self._contacts_map(call.tenant)
        items = [self.books.render_credit_note(call.tenant, d, contacts=contacts) for d in docs]
        if pagination is None:
            for item in items:
                item["LineItems"] = []  # as for invoices: lines only on paged or single GETs
        return Response.json(self._envelope(call, "CreditNotes", items, pagination))

    def _get_credit_note(self, request: Request, call: _Call) -> Response:
        doc = self.books.by_id_or_number(call.tenant, "CreditNote", request.params["id"])
        if doc is None:
            return _not_found()
        return Response.json(
            self._envelope(call, "CreditNotes", [self.books.render_credit_note(call.tenant, doc)])
        )

    def _save_credit_notes(self, mode: str) -> Callable[[Request, _Call], Response]:
        """PUT (``create``), POST (``upsert``) or ``POST /CreditNotes/{id}`` (``update``);
        ``unitdp=4`` as on invoices (developer.xero.com "Rounding in Xero": the parameter is
        supported on every endpoint with line items, credit notes included)."""

        def handle(request: Request, call: _Call) -> Response:
            inputs = self._elements(request, "CreditNotes")
            note_id = request.params.get("id")
            if note_id:
                found = self.books.by_id_or_number(call.tenant, "CreditNote", note_id)
                if found is None:
                    return _not_found()
                note_id = found["CreditNoteID"]
            # One read of the chart, tax rates and currencies for the whole batch.
            with self.books.lookups():
                outcomes = [
                    self.books.save_credit_note(
                        call.tenant,
                        el,
                        client_id=call.client_id,
                        unitdp=_unitdp(request),
                        mode=mode,
                        credit_note_id=note_id,
                    )
                    for el in inputs
                ]
            contacts = self._contacts_map(call.tenant, outcomes)
            return self._batch_response(
                request,
                call,
                "CreditNotes",
                inputs,
                outcomes,
                lambda doc: self.books.render_credit_note(call.tenant, doc, contacts=contacts),
                "CreditNoteID",
            )

        return handle

    # ---- allocations -------------------------------------------------------------
    def _allocate(self, request: Request, call: _Call) -> Response:
        """``PUT /CreditNotes/{CreditNoteID}/Allocations``: body ``{"Allocations":[{"Invoice":
        {"InvoiceID":…},"Amount":…,"Date":"YYYY-MM-DD"}]}``, answered ``{"Allocations":[…]}``
        (spec createCreditNoteAllocation), with ``summarizeErrors`` as for other batches."""
        note = self.books.by_id_or_number(call.tenant, "CreditNote", request.params["id"])
        if note is None:
            return _not_found()
        inputs = self._elements(request, "Allocations")
        outcomes = [
            self.books.allocate_credit_note(
                call.tenant, note["CreditNoteID"], el, client_id=call.client_id
            )
            for el in inputs
        ]
        return self._batch_response(
            request,
            call,
            "Allocations",
            inputs,
            outcomes,
            self.books.render_allocation,
            "AllocationID",
        )

    def _delete_allocation(self, request: Request, call: _Call) -> Response:
        """``DELETE /CreditNotes/{CreditNoteID}/Allocations/{AllocationID}`` (spec
        deleteCreditNoteAllocations): the bare Allocation with ``IsDeleted`` true."""
        outcome = self.books.delete_allocation(
            call.tenant, request.params["id"], request.params["allocation"]
        )
        if outcome.doc is None:
            if outcome.errors == [NOT_FOUND_TEXT]:
                return _not_found()
            return _validation_message(outcome.errors[0])
        return Response.json(self.books.render_deleted_allocation(outcome.doc))

    # ---- payments --------------------------------------------------------------
    def _list_payments(self, request: Request, call: _Call) -> Response:
        docs = self.books.records(
            call.tenant, "Payment", modified_since_ms=self._modified_since(request)
        )
        docs = self._filter_order(request, docs)
        docs, pagination = self._page(request, docs)
        return Response.json(
            self._envelope(
                call,
                "Payments",
                [self.books.render_payment(call.tenant, d) for d in docs],
                pagination,
            )
        )

    def _get_payment(self, request: Request, call: _Call) -> Response:
        doc = self.books.record(call.tenant, "Payment", request.params["id"])
        if doc is None:
            return _not_found()
        return Response.json(
            self._envelope(call, "Payments", [self.books.render_payment(call.tenant, doc)])
        )

    def _create_payments(self, request: Request, call: _Call) -> Response:
        inputs = self._elements(request, "Payments")
        outcomes = [
            self.books.create_payment(call.tenant, el, client_id=call.client_id) for el in inputs
        ]
        return self._batch_response(
            request,
            call,
            "Payments",
            inputs,
            outcomes,
            lambda doc: self.books.render_payment(call.tenant, doc),
            "PaymentID",
        )

    def _delete_payment(self, request: Request, call: _Call) -> Response:
        inputs = self._elements(request, "Payments")
        if (
            not inputs
            or not isinstance(inputs[0], dict)
            or str(inputs[0].get("Status", "")).upper() != "DELETED"
        ):
            return _validation_message(
                'Payments can only be deleted: send {"Status":"DELETED"}.'
            )  # reference §6
        outcome = self.books.delete_payment(call.tenant, request.params["id"])
        if outcome.doc is None:
            if outcome.errors == [NOT_FOUND_TEXT]:
                return _not_found()
            return _validation_message(outcome.errors[0])
        return Response.json(
            self._envelope(call, "Payments", [self.books.render_payment(call.tenant, outcome.doc)])
        )


def _validation_message(message: str) -> Response:
    return Response.json(
        {"ErrorNumber": 10, "Type": "ValidationException", "Message": message}, status=400
    )


def _unitdp(request: Request) -> int:
    """The ``unitdp`` query parameter: 4 opts in to four places on UnitAmount, else 2."""
    try:
        return 4 if int(request.arg("unitdp") or 2) == 4 else 2
    except ValueError:
        return 2


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _sort_key(doc: dict[str, Any], name: str) -> tuple[int, Any]:
    value = doc.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in doc.items() if k.lower() == lowered), None)
    if value is None:
        return (0, "")
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return (1, value)
    return (2, str(value).casefold())


def _element_count(request: Request) -> int:
    """How many elements a write's body carries (its first array), for the latency model."""
    try:
        body = request.json()
    except BadRequestBody:
        return 0
    if isinstance(body, dict):
        arrays = [v for v in body.values() if isinstance(v, list)]
        return len(arrays[0]) if arrays else 1
    return len(body) if isinstance(body, list) else 0
