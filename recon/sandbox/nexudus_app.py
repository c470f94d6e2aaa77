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

The pieces: ``nexudus_records`` (schema, entities, value conversion, field
errors), ``nexudus_auth`` (tokens), ``nexudus_query`` (list queries to SQL),
``nexudus_billing`` (invoice update and payment rules); this module holds the
routes, faults, rate limit and error answers.

Where the public material is silent, the choice made is marked ASSUMPTION.

Floor 0: imports only ``recon.sandbox.*`` and the leaves ``recon.money`` and
``recon.errors``.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recon.money import ZERO
from recon.sandbox.clock import Clock
from recon.sandbox.http import BadRequestBody, Request, Response, Router
from recon.sandbox.nexudus_auth import DEFAULT_REFRESH_SECONDS, DEFAULT_TOKEN_SECONDS, NexudusAuth
from recon.sandbox.nexudus_billing import (
    _apply_invoice_changes,
    _apply_payment,
    _check_payment,
    _get_ci,
    _json_object,
    _load_invoice,
    _not_found,
)
from recon.sandbox.nexudus_query import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, _Lister
from recon.sandbox.nexudus_records import (
    BUSINESS,
    COWORKER,
    CREATE_INDEXES,
    ENTITIES,
    FINANCIAL_ACCOUNT,
    INDEXES,
    INVOICE,
    LEDGER_ENTRY,
    LINE,
    SCHEMA,
    TAX_RATE,
    FieldError,
    Rejected,
    _insert_sql,
    _iso,
    _row,
)
from recon.sandbox.seed import NexudusSeed
from recon.sandbox.store import Store

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "Faults", "NexudusApp"]

RATE_WINDOW_SECONDS = 60.0

# --------------------------------------------------------------------------- errors as answers


def _rejection(message: str, errors: list[FieldError], status: int = 400) -> Response:
    """The reference's ASSUMPTION error shape: Status, Message, Errors, WasSuccessful."""
    return Response.json(
        {"Status": status, "Message": message, "Errors": [e.to_json() for e in errors], "WasSuccessful": False},
        status=status,
    )


def _message(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    # ASSUMPTION: non-validation errors answer like ASP.NET Web API: {"Message": ...}.
    return Response.json({"Message": message}, status=status, headers=headers)


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
# --------------------------------------------------------------------------- the app


class NexudusApp(NexudusAuth):
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

    # ---- auth: _token, _is_authorised and the rest come from NexudusAuth

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
