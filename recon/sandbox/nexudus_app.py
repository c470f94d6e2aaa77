"""A fake Nexudus admin REST API: tokens, paged lists with filters, invoice updates, payments.

``NexudusApp`` is a WSGI-like callable ``(Request) -> Response`` for
``recon.sandbox.http.Server``. Everything lives under ``/api/`` as on
``https://spaces.nexudus.com/api/``; every rule follows
``shared/reference/nexudus.md`` (cited §N), never recon's client. State is one
SQLite file (``recon.sandbox.store.Store``): documents kept as JSON in the API's
own shape, with real indexed columns for what clients filter and sort on, so
100,000 invoices page as fast as ten. A reopened app sees every earlier write,
issued tokens included.

Endpoints (all but the first take ``Authorization: Bearer <token>`` or HTTP Basic, §1)::

    POST /api/token                                   form: grant_type=password|refresh_token (§1)
    GET  /api/billing/coworkerinvoices[/{id}]         §2, §3, §7.1
    PUT  /api/billing/coworkerinvoices                full record, Id in the body (§4, §7.1)
    POST /api/billing/coworkerinvoices/runcommand     VOID_INVOICE, COWORKER_INVOICE_CANCEL,
                                                      COWORKER_INVOICE_DELETE (§4, §9)
    GET  /api/billing/coworkerinvoicelines[/{id}]     §7.2
    GET  /api/billing/coworkerledgerentries[/{id}]    §7.3
    POST /api/billing/coworkerledgerentries           a payment: marks an invoice paid (§8)
    GET  /api/billing/financialaccounts[/{id}]        §7.4
    GET  /api/sys/taxrates[/{id}]                     §2: TaxRate lives in sys, not billing
    GET  /api/sys/businesses[/{id}], /api/spaces/coworkers[/{id}]
    GET  /api/sys/currencies[/{id}], /api/sys/simpletimezones[/{id}]   §2, §6

Answers: lists in the §3 envelope; writes answer §4's success shape; refusals
§4's validation shape (400); a missing record or path 404 with the JSON string
``"Not found"`` (§4); a server error 500 ``{"Message":"An error has occurred."}``
(§4); over a limit 409 with ``Retry-After`` and no body, or 429 ``Wait N
seconds`` (§5, ``nexudus_ratelimit``).

The pieces: ``nexudus_records`` (schema, entities, values, field errors),
``nexudus_auth`` (tokens), ``nexudus_query`` (lists and filters),
``nexudus_billing`` (invoice update and payment rules), ``nexudus_desk`` (§9
commands and the admin UI's controls, ``NexudusApp.desk``), ``nexudus_ratelimit``
(§5 limits); this module holds the routes, faults and error answers.

Imports nothing of recon outside ``recon.sandbox``.
"""

from __future__ import annotations

import threading
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from recon.sandbox.clock import Clock
from recon.sandbox.http import BadRequestBody, Request, Response, Router
from recon.sandbox.nexudus_auth import DEFAULT_REFRESH_SECONDS, DEFAULT_TOKEN_SECONDS, NexudusAuth
from recon.sandbox.nexudus_billing import (
    answer_value,
    get_ci,
    json_object,
    new_ledger_entry,
    rejection_message,
    replace_invoice,
)
from recon.sandbox.nexudus_desk import CommandRefused, NexudusDesk
from recon.sandbox.nexudus_query import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Lister,
    not_found,
)
from recon.sandbox.nexudus_ratelimit import WRITE_METHODS, NexudusLimiter, NexudusLimits
from recon.sandbox.nexudus_records import (
    BUSINESS,
    COWORKER,
    CREATE_INDEXES,
    CURRENCY,
    ENTITIES,
    FINANCIAL_ACCOUNT,
    INDEXES,
    INVOICE,
    LEDGER_ENTRY,
    LINE,
    SCHEMA,
    SIMPLE_TIME_ZONE,
    TAX_RATE,
    FieldError,
    Rejected,
    insert_sql,
    iso,
    sql_row,
)
from recon.sandbox.seed import NexudusSeed
from recon.sandbox.store import Store

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "Faults", "NexudusApp", "NexudusLimits"]

# --------------------------------------------------------------------------- answers, in one place

# §2 (and §7.4 for TaxRate's module): collection path -> entity. Each also answers GET {path}/{id}.
COLLECTIONS: Final = {
    "/api/billing/coworkerinvoices": INVOICE,
    "/api/billing/coworkerinvoicelines": LINE,
    "/api/billing/coworkerledgerentries": LEDGER_ENTRY,
    "/api/billing/financialaccounts": FINANCIAL_ACCOUNT,
    "/api/sys/taxrates": TAX_RATE,
    "/api/sys/businesses": BUSINESS,
    "/api/spaces/coworkers": COWORKER,
    "/api/sys/currencies": CURRENCY,
    "/api/sys/simpletimezones": SIMPLE_TIME_ZONE,
}
SERVER_ERROR: Final = {"Message": "An error has occurred."}  # §4 "Server error"
# ASSUMPTION (§1 gives 401, no body): ASP.NET Web API's [Authorize] answer. Also the 403 faults'.
DENIED: Final = {"Message": "Authorization has been denied for this request."}
# ASSUMPTION: ASP.NET Web API's answer to a method a path does not take. §2: a plain DELETE on
# coworkerinvoices answers 405; §4: "no documented PUT …/{id}", so it answers 405 too (the path
# exists for GET).
METHOD_NOT_ALLOWED: Final = "The requested resource does not support http method '{}'."
# ASSUMPTION: the text of an injected 503 (a gateway's, not Nexudus').
UNAVAILABLE: Final = {"Message": "The service is temporarily unavailable."}
# ASSUMPTION: the Message of an injected "200 yet failed" write (§4); no source quotes one.
UNSUCCESSFUL: Final = "There was a problem while running this action."


def _is_id(value: Any) -> bool:
    """A record id as JSON sends it: a whole number, or its text."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response.json(body, status=status, headers=headers)


def _validation(exc: Rejected) -> Response:
    """§4 "Validation error": 400 with Status, Message, Value null, Errors, WasSuccessful false.

    §4 notes the body's Status may differ from the HTTP status (GB's example has
    500 inside a 400); the sandbox writes 400 in both.
    """
    return _json(
        {
            "Status": 400,
            "Message": exc.message,
            "Value": None,
            "Errors": [e.to_json() for e in exc.errors],
            "WasSuccessful": False,
        },
        400,
    )


def _throttled(wait: int, status: int) -> Response:
    """§5: 409 with ``Retry-After`` (seconds) and an empty body; or 429 with the wait as text."""
    if status == 429:  # §5 "Also seen": "Wait N seconds" in the body, no Retry-After
        return Response.text(f"Wait {wait} seconds", status=429)
    return Response(status, b"", {"Retry-After": str(wait)})


def _status_answer(status: int, retry_after: int | None) -> Response:
    """What an injected failure of ``status`` looks like, each in its documented shape."""
    if status in (409, 429):
        return _throttled(retry_after or 1, status)
    if status == 500:
        return _json(SERVER_ERROR, 500)
    if status == 401:
        return _json(DENIED, 401, {"WWW-Authenticate": "Bearer"})
    if status == 403:
        return _json(DENIED, 403)
    if status == 404:
        return not_found()
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return _json(UNAVAILABLE, status, headers)


# --------------------------------------------------------------------------- faults


@dataclass
class _Fault:
    kind: str  # "fail", "throttle", "unsuccessful" or "drop"
    status: int = 503
    retry_after: int | None = None
    method: str | None = None  # only requests with this method; None: any
    message: str = UNSUCCESSFUL
    # Answer with this body instead of the documented shape: a dict or list as JSON, text as
    # an HTML page (what a proxy or a broken deployment sends), to test a client's edges.
    body: Any = None

    def matches(self, request: Request) -> bool:
        if self.kind == "unsuccessful" and request.method not in WRITE_METHODS:
            return False
        return self.method is None or self.method.upper() == request.method


class Faults:
    """Failures queued for the next API requests (tests only).

    Each fault hits the next request it matches (any request, or only
    ``method``), in the order queued. Faults apply before the rate limit and
    authentication, as a gateway's would, and to the token endpoint too. An
    injected failure is not processed.

    * ``fail_next(n, status)``: answer ``status`` in its documented shape: 500
      §4's server error, 409 and 429 §5's throttled answers, 401/403 a refusal,
      404 ``"Not found"``, anything else a bare ``{"Message": ...}``.
    * ``error_burst(n)``: n 500s in a row (§4 "transient and bursty").
    * ``throttle_next(n, retry_after)``: n throttled answers, 409 or 429 as the
      app's ``limits.status`` says (§5).
    * ``unsuccessful_next(n)``: the next n writes (POST/PUT/DELETE) answer 200
      with ``WasSuccessful: false`` (§4 "200 yet failed").
    * ``drop_next(n)``: close the connection without answering.
    """

    def __init__(self) -> None:
        self._queue: list[_Fault] = []
        self._lock = threading.Lock()

    def _add(self, n: int, fault: _Fault) -> None:
        with self._lock:
            self._queue.extend(_Fault(**fault.__dict__) for _ in range(n))

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        retry_after: int | None = None,
        method: str | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next ``n`` matching requests with ``status``, in its documented shape
        (or with ``body``: JSON for a dict or list, an HTML page for text). Not processed."""
        self._add(n, _Fault("fail", status, retry_after, method, UNSUCCESSFUL, body))

    def error_burst(self, n: int = 3, method: str | None = None) -> None:
        """Answer the next ``n`` matching requests with 500s in a row."""
        self._add(n, _Fault("fail", 500, None, method))

    def throttle_next(self, n: int = 1, retry_after: int = 1, method: str | None = None) -> None:
        """Throttle the next ``n`` matching requests (409 or 429, as ``limits.status`` says)."""
        self._add(n, _Fault("throttle", 409, retry_after, method))

    def unsuccessful_next(
        self, n: int = 1, message: str = UNSUCCESSFUL, method: str | None = None
    ) -> None:
        """Answer the next ``n`` matching writes 200, ``WasSuccessful: false``, with ``message``."""
        self._add(n, _Fault("unsuccessful", 200, None, method, message))

    def drop_next(self, n: int = 1, method: str | None = None) -> None:
        """Close the connection of the next ``n`` matching requests without answering."""
        self._add(n, _Fault("drop", method=method))

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._queue.clear()

    @property
    def pending(self) -> int:
        """How many faults are still queued."""
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

    def items(self) -> Any:
        raise TimeoutError("sandbox fault: connection dropped")


def _dropped_connection() -> Response:
    return Response(500, b"", _DroppingHeaders())


# --------------------------------------------------------------------------- the app


class NexudusApp(NexudusAuth):
    """The fake Nexudus admin API for one administrator account.

    ``NexudusApp(db_path, *, username, password, clock=None, limits=None)``;
    then ``load_seed(seed)`` once (a no-op on a file that already holds data).
    Controls: ``desk`` (the admin UI's invoice controls, ``NexudusDesk``: raise,
    re-price, void, credit, delete, part-pay), ``faults`` (see ``Faults``),
    ``limits`` (a ``NexudusLimits``; the real §5 numbers unless given, e.g.
    ``NexudusLimits(minute_seconds=1)`` for a one-second minute or
    ``NexudusLimits(enabled=False)``), ``limiter.reset()``, ``token_seconds``,
    ``refresh_seconds``.
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
        limits: NexudusLimits | None = None,
    ) -> None:
        self.store = Store(db_path, SCHEMA)
        self.username = username
        self._password = password
        self.clock = clock or Clock()
        self.token_seconds = token_seconds
        self.refresh_seconds = refresh_seconds
        self.faults = Faults()
        self.desk = NexudusDesk(self.store, self.clock)
        self.limiter = NexudusLimiter(self.clock, limits)
        self._listers = {e: Lister(self.store, e) for e in ENTITIES}
        self.router = Router()
        self._add_routes()

    @property
    def limits(self) -> NexudusLimits:
        """The limits the server enforces now; settable."""
        return self.limiter.limits

    @limits.setter
    def limits(self, value: NexudusLimits) -> None:
        self.limiter.limits = value

    def __repr__(self) -> str:
        return f"NexudusApp({str(self.store.path)!r}, username={self.username!r})"

    # ---- data

    def load_seed(self, seed: NexudusSeed) -> bool:
        """Load the seed into an empty store; return whether it loaded (False: data was there)."""
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
                (CURRENCY, seed.currencies),
                (SIMPLE_TIME_ZONE, seed.simple_time_zones),
                (INVOICE, seed.invoices),
                (LINE, seed.invoice_lines),
            ):
                db.executemany(insert_sql(entity), (sql_row(entity, d) for d in docs))
            for sql in CREATE_INDEXES:
                db.execute(sql)
            db.execute(
                "INSERT INTO meta(key, value) VALUES ('seeded', ?)", (iso(self.clock.now()),)
            )
        for lister in self._listers.values():
            lister.forget_fields()
        return True

    # ---- dispatch

    def _add_routes(self) -> None:
        r = self.router
        r.add("POST", "/api/token", self._token)
        for path, entity in COLLECTIONS.items():
            r.add("GET", path, self._listers[entity].page)
            r.add("GET", path + "/{id}", self._listers[entity].one)
        r.add("PUT", "/api/billing/coworkerinvoices", self._put_invoice)
        r.add("POST", "/api/billing/coworkerinvoices/runcommand", self._run_command)
        r.add("POST", "/api/billing/coworkerledgerentries", self._post_ledger_entry)

    def __call__(self, request: Request) -> Response:
        """Answer one HTTP request: faults, rate limit, route, auth, then the handler."""
        if not request.path.lower().startswith("/api/"):
            return not_found()
        fault = self.faults.take(request)
        if fault is not None:
            return self._fault_answer(fault)
        wait = self.limiter.admit(self._client_key(request), request.method)
        if wait:
            return _throttled(wait, self.limits.status)  # not processed (§5)
        handler, params, path_exists = self.router.resolve(request.method, request.path)
        if handler is None:
            if path_exists:
                return _json({"Message": METHOD_NOT_ALLOWED.format(request.method)}, 405)
            return not_found()
        request.params = params
        if handler != self._token and not self._is_authorised(request):
            # §1: 401 for bad credentials or a missing role (403 only through faults).
            return _json(DENIED, 401, {"WWW-Authenticate": "Bearer"})
        try:
            return handler(request)
        except Rejected as exc:
            return _validation(exc)
        except BadRequestBody as exc:
            error = FieldError("", str(exc))
            return _validation(Rejected(rejection_message([error]), [error]))
        except Exception:  # a sandbox bug still answers as Nexudus does (§4 "Server error")
            traceback.print_exc()
            return _json(SERVER_ERROR, 500)

    def _fault_answer(self, fault: _Fault) -> Response:
        if fault.kind == "drop":
            return _dropped_connection()
        if fault.kind == "throttle":
            return _throttled(fault.retry_after or 1, self.limits.status)
        if fault.kind == "unsuccessful":
            return _json(self._action_result(fault.message, None, successful=False), 200)
        if isinstance(fault.body, str):
            html = {"Content-Type": "text/html; charset=utf-8"}
            return Response(fault.status, fault.body.encode("utf-8"), html)
        if fault.body is not None:
            return _json(fault.body, fault.status)
        return _status_answer(fault.status, fault.retry_after)

    # ---- auth: _token, _is_authorised and _client_key come from NexudusAuth

    # ---- writes

    def _put_invoice(self, request: Request) -> Response:
        """Replace an invoice: PUT to the collection, the whole record with its Id (§4, §7.1)."""
        body = json_object(request)
        now = iso(self.clock.now())
        with self.store.write() as db:
            doc = replace_invoice(db, body, now)
        if doc is None:
            return not_found()
        return _json(self._action_result("The invoice was updated.", doc), 200)

    def _run_command(self, request: Request) -> Response:
        """§9 commands: body ``{Key, Ids:[…], Parameters:[{Name, Type, Value}]}`` (§4 runcommand).

        A malformed body is refused with §4's validation answer (400); a refused
        command (unknown key or invoice, a paid invoice voided, …) answers 200 with
        ``WasSuccessful: false`` (§4 "run-command failures answer 200"), nothing done.
        """
        body = json_object(request)
        key, ids, parameters = get_ci(body, "Key"), get_ci(body, "Ids"), get_ci(body, "Parameters")
        errors = []
        if not isinstance(key, str) or not key.strip():
            errors.append(FieldError("Key", "Key is a required field", key))
        if not isinstance(ids, list) or not ids or not all(_is_id(i) for i in ids):
            errors.append(FieldError("Ids", f"The value '{ids}' is not valid for Ids.", ids))
        if parameters is None:
            parameters = []
        if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
            errors.append(
                FieldError("Parameters", f"The value '{parameters}' is not valid for Parameters.")
            )
        if errors:
            raise Rejected(rejection_message(errors), errors)
        assert isinstance(key, str) and isinstance(ids, list) and isinstance(parameters, list)
        try:
            result = self.desk.run_command(key, [int(i) for i in ids], parameters)
        except CommandRefused as exc:
            answer = self._action_result("\n".join(exc.messages), None, successful=False)
            answer["Errors"] = [
                FieldError("Ids", message, invoice_id).to_json()
                for message, invoice_id in zip(exc.messages, exc.ids or ids, strict=False)
            ]
            return _json(answer, 200)
        return _json(self._action_result(result.message, result.value), 200)

    def _post_ledger_entry(self, request: Request) -> Response:
        """Create a ledger entry; with a CoworkerInvoiceId, its Credit pays it (§7.3, §8)."""
        body = json_object(request)
        now = iso(self.clock.now())
        with self.store.write() as db:
            entry_id = int(
                db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM ledger_entries").fetchone()[0]
            )
            entry = new_ledger_entry(db, body, entry_id, str(uuid.uuid4()), now)
        return _json(self._action_result("The ledger entry was added.", answer_value(entry)), 200)

    def _action_result(
        self, message: str, value: dict[str, Any] | None, *, successful: bool = True
    ) -> dict[str, Any]:
        """§4 "Success": HTTP 200 with this shape; ``successful=False`` is §4's "200 yet failed"."""
        return {
            "Status": 200,
            "Message": message,
            "Value": value,
            "OpenInDialog": False,
            "OpenInWindow": False,
            "RedirectURL": None,
            "JavaScript": None,
            "UpdatedOn": iso(self.clock.now()),
            "UpdatedBy": self.username,
            "Errors": None if successful else [],
            "WasSuccessful": successful,
        }
