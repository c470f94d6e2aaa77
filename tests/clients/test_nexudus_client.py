"""NexudusClient against the Nexudus sandbox over real HTTP, checked against nexudus.md.

Each test builds a small Nexudus world (``NexudusApp`` + ``NexudusSeed``) behind one
loopback server per module; ``Dispatch`` records every request the sandbox saw (method,
path, query, body, status, arrival time), so a test can check what went over the wire.
The sandbox's rate limiter is on, with a short "minute", and each client paces to the
same minute. Tests added for the revised reference quote the section they check (§N).
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import httpx
import pandas as pd
import pytest

from recon.clients.nexudus import GATEWAY_XERO, NexudusClient
from recon.clients.nexudus_limits import NexudusLimits as ClientLimits
from recon.clients.retry import RetryPolicy
from recon.clients.tokens import TokenStore
from recon.errors import (
    ApiRejected,
    AuthError,
    ClientError,
    NotFound,
    RateLimited,
    ServiceUnavailable,
)
from recon.sandbox import NexudusLimits as SandboxLimits
from recon.sandbox import jsonutil
from recon.sandbox.clock import Clock
from recon.sandbox.http import Request, Response, Server
from recon.sandbox.nexudus_app import NexudusApp
from recon.sandbox.seed import NexudusSeed

USERNAME = "admin@hive-coworking.example"
# A Nexudus "minute" of half a second, for the sandbox and the client alike.
FAST_MINUTE = 0.5

CENTRAL, DOCKS = 1001, 1002  # London
LONDON, SINGAPORE, NEW_YORK = 2001, 2002, 2003  # the zones test's locations
ADA, GRACE, LEE, WALT, KIT = 501, 502, 503, 504, 505
GBP, SGD, USD = 9001, 9002, 9003
GB, SG, US = 9101, 9102, 9103
UTC_TZ, GMT_TZ, EASTERN_TZ, SINGAPORE_TZ = 1, 2, 3, 4

TIME_ZONES = {  # sys/simpletimezones: Windows-style names (§6)
    UTC_TZ: ("UTC", 0, False, "UTC"),
    GMT_TZ: ("GMT Standard Time", 0, True, "Europe/London"),
    EASTERN_TZ: ("Eastern Standard Time", -5, True, "America/New_York"),
    SINGAPORE_TZ: ("Singapore Standard Time", 8, False, "Asia/Singapore"),
}
CURRENCIES = {GBP: "GBP", SGD: "SGD", USD: "USD"}
# Id -> name, time zone, currency, country
LOCATIONS = {
    CENTRAL: ("Hive Central", GMT_TZ, GBP, GB),
    DOCKS: ("Hive Docks", GMT_TZ, GBP, GB),
    LONDON: ("Hive London", GMT_TZ, GBP, GB),
    SINGAPORE: ("Hive Singapore", SINGAPORE_TZ, SGD, SG),
    NEW_YORK: ("Hive New York", EASTERN_TZ, USD, US),
}
PEOPLE = {  # Id -> full name, invoicing location
    ADA: ("Ada Lovelace", CENTRAL),
    GRACE: ("Grace Hopper", DOCKS),
    KIT: ("Kit Marlowe", LONDON),
    LEE: ("Lee Mei Ling", SINGAPORE),
    WALT: ("Walt Whitman", NEW_YORK),
}
LEDGER_ENTRY_FIELDS = {
    "BusinessId",
    "CoworkerId",
    "CoworkerInvoiceId",
    "Description",
    "Code",
    "Debit",
    "Credit",
    "Balance",
    "PaymentGatewayName",
    "TransactionDate",
}


# --------------------------------------------------------------------------- a small Nexudus


def local_midnight(day: date, zone_id: int) -> str:
    """The UTC instant of ``day``'s local midnight, as Nexudus stores a date (§6)."""
    zone = ZoneInfo(TIME_ZONES[zone_id][3])
    moment = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def business(business_id: int, zone_id: int | None = None) -> dict[str, Any]:
    name, zone, currency, country = LOCATIONS[business_id]
    return {
        "Id": business_id,
        "Name": name,
        "CurrencyId": currency,
        "CurrencyCode": CURRENCIES[currency],
        "CountryId": country,
        "SimpleTimeZoneId": zone if zone_id is None else zone_id,
    }


def coworker(coworker_id: int) -> dict[str, Any]:
    name, location = PEOPLE[coworker_id]
    email = name.lower().replace(" ", ".") + "@example.com"
    return {
        "Id": coworker_id,
        "FullName": name,
        "CompanyName": None,
        "BillingName": name,
        "BillingEmail": email,
        "Email": email,
        "InvoicingBusinessId": location,
        "Businesses": [location],
    }


def invoice(
    invoice_id: int,
    number: str | None,
    business_id: int,
    coworker_id: int,
    total: str,
    created: str,
    **fields: Any,
) -> dict[str, Any]:
    """A finalised, unpaid invoice with every field a PUT requires (§7.1); ``created`` is a
    day (09:00 UTC) or a UTC instant. Date-like fields are local midnights (§6)."""
    name, zone, currency, country = LOCATIONS[business_id]
    created_on = created if "T" in created else f"{created}T09:00:00Z"
    day = date.fromisoformat(created[:10])
    amount = Decimal(total)
    doc = {
        "Id": invoice_id,
        "UniqueId": str(uuid.UUID(int=invoice_id)),
        "InvoiceNumber": number,
        "BusinessId": business_id,
        "BusinessName": name,
        "CoworkerId": coworker_id,
        "CoworkerFullName": PEOPLE[coworker_id][0],
        "BillToName": PEOPLE[coworker_id][0],
        "BillToAddress": "12 Curtain Road",
        "BillToCity": "London",
        "BillToPostCode": "EC2A 3AY",
        "BillToCountryId": country,
        "PurchaseOrder": None,
        "PaymentReference": number,
        "Description": f"Membership {number}",
        "DiscountAmount": Decimal("0.00"),
        "DueDate": local_midnight(day, zone),
        "InvoiceFromDate": local_midnight(day, zone),
        "InvoiceToDate": local_midnight(day, zone),
        "TotalAmount": amount,
        "TaxAmount": (amount / 6).quantize(Decimal("0.01")),
        "PaidAmount": Decimal("0.00"),
        "CurrencyId": currency,
        "CurrencyCode": CURRENCIES[currency],
        "Draft": False,
        "Void": False,
        "Paid": False,
        "PaidOn": None,
        "Sent": True,
        "Refunded": False,
        "CreditNote": False,
        "XeroInvoiceTransfered": False,
        "XeroPaymentTransfered": False,
        "SystemId": None,
        "CreatedOn": created_on,
        "UpdatedOn": created_on,
    }
    doc.update(fields)
    return doc


def line(
    line_id: int,
    parent: dict[str, Any],
    subtotal: str,
    code: str = "200",
    created: str | None = None,
) -> dict[str, Any]:
    """A line with its invoice's echoes (§7.2); created with its invoice unless told."""
    net = Decimal(subtotal)
    return {
        "Id": line_id,
        "CoworkerInvoiceId": parent["Id"],
        "CoworkerInvoiceInvoiceNumber": parent["InvoiceNumber"],
        "CoworkerInvoicePaid": parent["Paid"],
        "CoworkerInvoicePaidOn": parent["PaidOn"],
        "CoworkerInvoiceCreditNote": parent["CreditNote"],
        "CoworkerInvoiceCurrencyCode": parent["CurrencyCode"],
        "CoworkerInvoiceDueDate": parent["DueDate"],
        "Description": "Hot desk",
        "Quantity": 1,
        "UnitPrice": net,
        "SubTotal": net,
        "TaxAmount": (net / 5).quantize(Decimal("0.01")),
        "TaxRate": Decimal("20.00"),
        "TaxCategoryName": "20% (VAT on Income)",
        "FinancialAccountCode": code,
        "FinancialAccountName": "Desk Rental" if code == "200" else "Meeting Rooms",
        "Position": 1,
        "SaleDate": parent["InvoiceFromDate"],
        "CreatedOn": created or parent["CreatedOn"],
        "UpdatedOn": created or parent["CreatedOn"],
    }


def world(
    businesses: list[int],
    invoices: list[dict[str, Any]],
    lines: list[dict[str, Any]],
    zones: dict[int, int | None] | None = None,
) -> NexudusSeed:
    """A seed with the given locations (zone overrides in ``zones``), their people, a chart,
    tax rates, and the invoices and lines."""
    zones = zones or {}
    return NexudusSeed(
        businesses=[business(b, zones.get(b)) for b in businesses],
        coworkers=[coworker(c) for c, (_, b) in PEOPLE.items() if b in businesses],
        financial_accounts=[  # §7.4 AccountType: 1 Sales, 2 Payments
            {
                "Id": 31,
                "Name": "Desk Rental",
                "Code": "200",
                "BusinessId": CENTRAL,
                "AccountType": 1,
            },
            {
                "Id": 32,
                "Name": "Meeting Rooms",
                "Code": "210",
                "BusinessId": CENTRAL,
                "AccountType": 1,
            },
            {"Id": 33, "Name": "Bank", "Code": "090", "BusinessId": CENTRAL, "AccountType": 2},
            {"Id": 34, "Name": "Desk Rental", "Code": "200", "BusinessId": DOCKS, "AccountType": 1},
        ],
        tax_rates=[
            {"Id": 41 + i, "Name": "20% (VAT on Income)", "Rate": Decimal("20.00"), "BusinessId": b}
            for i, b in enumerate(businesses)
        ],
        invoices=invoices,
        invoice_lines=lines,
        username=USERNAME,
        currencies=[{"Id": i, "Code": code, "Name": code} for i, code in CURRENCIES.items()],
        simple_time_zones=[
            {"Id": i, "Name": name, "TimeOffset": offset, "UsesSummerTime": summer}
            for i, (name, offset, summer, _) in TIME_ZONES.items()
        ],
    )


def small_seed(bulk: int = 0) -> NexudusSeed:
    """Hive Central and Hive Docks (London).

    Central: 1 (120.00, Aug 3, PO-77), 2 (240.00, Aug 15), 3 (void), 6 (credit note),
    7 (60.00, Aug 28, its lines created on 5 October), 8 (no BillToPostCode);
    Docks: 4 (99.99, Aug 10), 5 (draft, Sep 2).
    """
    invoices = [
        invoice(1, "HC-0001", CENTRAL, ADA, "120.00", "2026-08-03", PurchaseOrder="PO-77"),
        invoice(2, "HC-0002", CENTRAL, ADA, "240.00", "2026-08-15"),
        invoice(3, "HC-0003", CENTRAL, ADA, "30.00", "2026-08-20", Void=True),
        invoice(4, "HD-0001", DOCKS, GRACE, "99.99", "2026-08-10"),
        invoice(5, "D-0001", DOCKS, GRACE, "50.00", "2026-09-02", Draft=True, Sent=False),
        invoice(6, "HC-0004", CENTRAL, ADA, "-120.00", "2026-08-25", CreditNote=True),
        invoice(7, "HC-0005", CENTRAL, ADA, "60.00", "2026-08-28"),
        invoice(8, "HC-0006", CENTRAL, ADA, "45.00", "2026-08-29", BillToPostCode=None),
    ]
    invoices += [
        invoice(1000 + i, f"BULK-{i:05d}", CENTRAL, ADA, "10.00", "2026-07-01") for i in range(bulk)
    ]
    by_id = {i["Id"]: i for i in invoices}
    lines = [
        line(11, by_id[1], "100.00"),
        line(21, by_id[2], "150.00"),
        line(22, by_id[2], "50.00", "210"),
        line(31, by_id[3], "25.00"),
        line(41, by_id[4], "83.33"),
        line(51, by_id[5], "41.67"),
        line(61, by_id[6], "-100.00"),
        line(71, by_id[7], "30.00", created="2026-10-05T10:00:00Z"),
        line(72, by_id[7], "20.00", created="2026-10-05T10:00:00Z"),
        line(81, by_id[8], "37.50"),
    ]
    return world([CENTRAL, DOCKS], invoices, lines)


def zones_seed() -> NexudusSeed:
    """London, Singapore and New York, each with a period starting 1 April 2026 (§6), and two
    Singapore invoices created either side of local midnight on 1 April."""
    invoices = [
        invoice(
            101,
            "LON-1",
            LONDON,
            KIT,
            "100.00",
            "2026-04-01T08:00:00Z",
            InvoiceFromDate="2026-03-31T23:00:00Z",
            InvoiceToDate="2026-04-29T23:00:00Z",
        ),
        invoice(
            102,
            "SIN-1",
            SINGAPORE,
            LEE,
            "200.00",
            "2026-03-31T17:30:00Z",  # 01:30 on 1 April in Singapore
            InvoiceFromDate="2026-03-31T16:00:00Z",
            InvoiceToDate="2026-04-29T16:00:00Z",
        ),
        invoice(
            103,
            "SIN-0",
            SINGAPORE,
            LEE,
            "200.00",
            "2026-03-31T15:30:00Z",  # 23:30 on 31 March in Singapore
            InvoiceFromDate="2026-02-28T16:00:00Z",
            InvoiceToDate="2026-03-30T16:00:00Z",
        ),
        invoice(
            104,
            "NYC-1",
            NEW_YORK,
            WALT,
            "300.00",
            "2026-04-01T14:00:00Z",
            InvoiceFromDate="2026-04-01T04:00:00Z",
            InvoiceToDate="2026-04-30T04:00:00Z",
        ),
    ]
    return world([LONDON, SINGAPORE, NEW_YORK], invoices, [])


@dataclass(frozen=True)
class Seen:
    """One request as the sandbox received it, and the status it answered."""

    method: str
    path: str
    query: dict[str, str]
    body: bytes
    status: int
    at: float  # time.monotonic() on arrival

    def json(self) -> Any:
        return jsonutil.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


class Dispatch:
    """One server for the module (stopping http.server waits for its poll); a fresh app per test.

    Records every request. ``renamed`` renames query names on the way in (a filter Nexudus
    would not know, so the answer widens); ``processed_then_500`` lets one (method, path) be
    processed by the sandbox and then answered with §4's 500, as a failure after the work.
    """

    def __init__(self) -> None:
        self.app: NexudusApp | None = None
        self.seen: list[Seen] = []
        self.renamed: dict[str, str] = {}
        self.processed_then_500: set[tuple[str, str]] = set()

    def reset(self, app: NexudusApp | None) -> None:
        self.app = app
        self.seen = []
        self.renamed = {}
        self.processed_then_500 = set()

    def __call__(self, request: Request) -> Response:
        assert self.app is not None
        at = time.monotonic()
        if self.renamed:
            request.query = {self.renamed.get(k, k): v for k, v in request.query.items()}
        response = self.app(request)
        key = (request.method, request.path)
        if key in self.processed_then_500 and response.status == 200:
            self.processed_then_500.discard(key)
            response = Response.json({"Message": "An error has occurred."}, status=500)
        query = {k: v[0] for k, v in request.query.items()}
        self.seen.append(
            Seen(request.method, request.path, query, request.body, response.status, at)
        )
        return response


@dataclass
class Nexudus:
    """The sandbox a test talks to, and a way to build clients for it."""

    app: NexudusApp
    api: str
    password: str
    clock: Clock
    tokens: TokenStore
    dispatch: Dispatch
    minute_seconds: float
    sleeps: list[float] = field(default_factory=list)
    clients: list[NexudusClient] = field(default_factory=list)

    def client(
        self, password: str | None = None, *, real_sleep: bool = False, **kw: Any
    ) -> NexudusClient:
        """A client paced to the sandbox's minute, with four attempts.

        Retry waits are recorded, not slept (jitter pinned: 0.5 s, 1 s, 2 s), unless
        ``real_sleep``; pacing always sleeps for real (the pacer gets the retry policy's
        sleep at construction, so it is given ``time.sleep`` back here).
        """
        kw.setdefault("token_store", self.tokens)
        kw.setdefault("limits", ClientLimits(minute_seconds=self.minute_seconds))
        kw.setdefault(
            "retry",
            RetryPolicy(
                attempts=4,
                base_delay=0.5,
                max_delay=4.0,
                sleep=time.sleep if real_sleep else self.sleeps.append,
                jitter=lambda: 1.0,
            ),
        )
        client = NexudusClient(self.api, USERNAME, password or self.password, **kw)
        client.pacer.sleep = time.sleep
        self.clients.append(client)
        return client

    def requests(self, method: str | None = None, path: str = "") -> list[Seen]:
        """What the sandbox received, optionally of one method and under one path."""
        return [
            s
            for s in self.dispatch.seen
            if (method is None or s.method == method) and s.path.startswith("/api/" + path)
        ]

    def raw(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """A call outside the client, with HTTP Basic (§1), paced well apart."""
        time.sleep(0.01)
        content = None if body is None else jsonutil.dumps(body).encode()
        return httpx.request(
            method,
            f"{self.api}/{path}",
            content=content,
            headers={"Accept": "application/json", "Content-Type": "application/json"},
            auth=(USERNAME, self.password),
        )


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Server, Dispatch]]:
    dispatch = Dispatch()
    server = Server(dispatch).start()
    yield server, dispatch
    server.stop()


@pytest.fixture
def open_nexudus(
    served: tuple[Server, Dispatch], tmp_path: Path
) -> Iterator[Callable[..., Nexudus]]:
    server, dispatch = served
    opened: list[Nexudus] = []

    def open_(seed: NexudusSeed | None = None, minute_seconds: float = FAST_MINUTE) -> Nexudus:
        password, clock = secrets.token_urlsafe(16), Clock()
        app = NexudusApp(
            tmp_path / f"nexudus{len(opened)}.sqlite",
            username=USERNAME,
            password=password,
            clock=clock,
            limits=SandboxLimits(minute_seconds=minute_seconds),
        )
        app.load_seed(seed or small_seed())
        dispatch.reset(app)
        box = Nexudus(
            app,
            server.url + "/api",
            password,
            clock,
            TokenStore(tmp_path / "tokens"),
            dispatch,
            minute_seconds,
        )
        opened.append(box)
        return box

    yield open_
    dispatch.reset(None)
    for box in opened:
        for client in box.clients:
            client.close()
        box.app.store.close()


@pytest.fixture
def nexudus(open_nexudus: Callable[..., Nexudus]) -> Nexudus:
    return open_nexudus()


def signed_in(nexudus: Nexudus, **kw: Any) -> NexudusClient:
    """A client that has signed in and read once, so faults queued next meet the call tested."""
    client = nexudus.client(**kw)
    client.fetch_businesses()
    return client


def location(client: NexudusClient, business_id: int) -> dict[str, Any]:
    return next(b for b in client.iter_records("sys/businesses") if b["Id"] == business_id)


# --------------------------------------------------------------------------- sign-in and tokens


def test_the_client_signs_in_once_and_reads_locations(nexudus: Nexudus) -> None:
    client = nexudus.client()
    businesses = client.fetch_businesses()
    assert list(businesses["Name"]) == ["Hive Central", "Hive Docks"]
    assert client.calls == 2  # the password grant, then one page
    client.fetch_coworkers()
    assert client.calls == 3
    token_call = nexudus.requests("POST", "token")[0]
    assert token_call.form()["grant_type"] == "password"
    assert token_call.form()["username"] == USERNAME


def test_the_client_signs_in_with_its_own_guid_client_id_kept_with_the_token(
    nexudus: Nexudus,
) -> None:
    """§1 "Shared login": "give recon its own client_id (a GUID kept with the token)";
    "Password grant": "optional client_id"."""
    client = signed_in(nexudus)
    assert str(uuid.UUID(client.client_id)) == client.client_id != USERNAME
    assert nexudus.requests("POST", "token")[0].form()["client_id"] == client.client_id
    issued = {row["client_id"] for row in nexudus.app.store.query("SELECT client_id FROM tokens")}
    assert issued == {client.client_id}
    (saved,) = nexudus.tokens.folder.glob("*.json")
    assert json.loads(saved.read_text())["client_id"] == client.client_id

    second = nexudus.client()
    assert second.client_id == client.client_id
    assert len(second.fetch_businesses()) == 2
    assert second.calls == 1  # the saved token: no sign-in


def test_tokens_are_saved_under_a_hashed_name_without_the_password_and_reused(
    nexudus: Nexudus,
) -> None:
    nexudus.client().fetch_businesses()
    files = list(nexudus.tokens.folder.glob("*.json"))
    assert len(files) == 1
    name, text = files[0].name, files[0].read_text()
    assert "admin" not in name and "hive" not in name
    assert nexudus.password not in text and USERNAME not in text
    assert set(json.loads(text)) >= {"access_token", "refresh_token", "expires_at", "client_id"}
    second = nexudus.client()
    second.fetch_businesses()
    assert second.calls == 1  # the saved token, no sign-in


def test_the_password_never_appears_in_repr_or_attributes(nexudus: Nexudus) -> None:
    client = signed_in(nexudus)
    assert nexudus.password not in repr(client)
    assert all(nexudus.password not in repr(value) for value in vars(client).values())
    assert repr(client).startswith("NexudusClient(base_url=")


def test_an_expired_token_is_refreshed_with_the_same_client_id_after_a_401(
    nexudus: Nexudus,
) -> None:
    """§1 "Refresh": ``grant_type=refresh_token``, ``refresh_token``, same ``client_id``."""
    client = signed_in(nexudus)
    nexudus.clock.advance(604800)  # the access token's 604799 s pass; the client's clock knows not
    before = client.calls
    assert len(client.fetch_businesses()) == 2
    assert client.calls - before == 3  # 401, refresh grant, retried page
    refresh = nexudus.requests("POST", "token")[-1].form()
    assert refresh["grant_type"] == "refresh_token"
    assert refresh["client_id"] == client.client_id


def test_a_refused_refresh_falls_back_to_the_password_grant(nexudus: Nexudus) -> None:
    client = signed_in(nexudus)
    nexudus.clock.advance(15 * 86400 + 1)  # access and refresh tokens both expired
    before = client.calls
    assert len(client.fetch_businesses()) == 2
    assert client.calls - before == 4  # 401, refused refresh, password grant, retried page
    grants = [s.form()["grant_type"] for s in nexudus.requests("POST", "token")]
    assert grants == ["password", "refresh_token", "password"]


def test_clients_with_their_own_client_ids_do_not_void_each_others_refresh_tokens(
    nexudus: Nexudus, tmp_path: Path
) -> None:
    """§1 "Refresh": "a new password grant for a client_id also voids its existing refresh
    tokens"; "Shared login": without distinct client_ids two programs "void each other's"."""
    first = signed_in(nexudus, token_store=TokenStore(tmp_path / "first"))
    second = signed_in(nexudus, token_store=TokenStore(tmp_path / "second"))
    assert first.client_id != second.client_id
    nexudus.clock.advance(604800)  # both access tokens expire; both refresh tokens live
    for client in (first, second):
        before = client.calls
        client.fetch_businesses()
        assert client.calls - before == 3  # 401, refresh, page: the refresh token still worked

    # The control: a third store holding the first client's client_id. Its sign-in voids the
    # first client's refresh token, so the first client must sign in with its password again.
    (saved,) = (tmp_path / "first").glob("*.json")
    shared = TokenStore(tmp_path / "third")
    shared.save(saved.stem, {"client_id": first.client_id})
    third = signed_in(nexudus, token_store=shared)
    assert third.client_id == first.client_id and third.calls == 2
    nexudus.clock.advance(604800)
    before = first.calls
    first.fetch_businesses()
    assert first.calls - before == 4  # 401, refused refresh, password grant, page


def test_a_token_another_process_refreshed_is_adopted_not_refreshed_again(
    nexudus: Nexudus,
) -> None:
    """§1 "Refresh": the refresh token rotates. Two processes share one token store (a scheduled
    run beside a notebook): the second, still holding the old set, adopts the set the first
    saved instead of spending the old refresh token or signing in again (a password grant
    would void the first one's refresh token, §1)."""
    first = signed_in(nexudus)
    second = nexudus.client()  # loads the same saved set
    nexudus.clock.advance(604800)  # the access token expires on the server
    first.fetch_businesses()  # 401, refresh grant (saved), page
    before = second.calls
    assert len(second.fetch_businesses()) == 2
    assert second.calls - before == 2  # 401, retried page with the adopted token: no token call
    grants = [s.form()["grant_type"] for s in nexudus.requests("POST", "token")]
    assert grants == ["password", "refresh_token"]


def test_a_403_is_handled_like_a_401_one_renewal_then_auth_error(nexudus: Nexudus) -> None:
    """§1 "Refused": "the CLI also reports 'Forbidden' → treat 403 as 401"."""
    client = signed_in(nexudus)
    nexudus.app.faults.fail_next(1, status=403, method="GET")
    before = client.calls
    assert len(client.fetch_businesses()) == 2
    assert client.calls - before == 3  # 403, refresh grant, retried page
    nexudus.app.faults.fail_next(2, status=403, method="GET")
    before = client.calls
    with pytest.raises(AuthError) as caught:
        client.fetch_businesses()
    assert caught.value.status == 403
    assert client.calls - before == 3  # 403, one renewal, 403: no second renewal


def test_a_wrong_password_raises_auth_error_with_nexudus_words(nexudus: Nexudus) -> None:
    """§1 "Wrong password": HTTP 400 ``{"error":"invalid_grant","error_description":"The user
    name or password is incorrect."}``."""
    client = nexudus.client(password="not-the-password")
    with pytest.raises(AuthError) as caught:
        client.fetch_businesses()
    assert "The user name or password is incorrect." in str(caught.value)
    assert "not-the-password" not in str(caught.value)
    assert client.calls == 1  # no retry of a refused password


# --------------------------------------------------------------------------- lists


def test_2500_invoices_take_exactly_three_calls_of_1000_and_come_back_once(
    open_nexudus: Callable[..., Nexudus],
) -> None:
    """§3 "size: default 25, maximum 1000"; "stop rule: until HasNextPage is false"."""
    nexudus = open_nexudus(small_seed(bulk=2492))
    client = signed_in(nexudus)
    before = client.calls
    invoices = client.fetch_invoices()
    assert client.calls - before == 3
    assert len(invoices) == 2500 and invoices["Id"].is_unique
    pages = nexudus.requests("GET", "billing/coworkerinvoices")
    assert [(p.query["page"], p.query["size"], p.query["orderBy"]) for p in pages] == [
        ("1", "1000", "Id"),
        ("2", "1000", "Id"),
        ("3", "1000", "Id"),
    ]
    assert all("dir" not in p.query for p in pages)  # §3 "recon's rule": never `dir`


def test_iter_records_is_lazy_and_pages_as_asked(nexudus: Nexudus) -> None:
    client = nexudus.client()
    pages = client.iter_records(
        "billing/coworkerinvoices", {"CoworkerInvoice_Business": CENTRAL}, page_size=2
    )
    assert client.calls == 0
    assert [r["Id"] for r in pages] == [1, 2, 3, 6, 7, 8]
    assert client.calls == 4  # sign-in and three pages of two


def test_invoice_frames_hold_decimal_money_int64_ids_and_tz_aware_dates(
    nexudus: Nexudus,
) -> None:
    client = nexudus.client()
    invoices = client.fetch_invoices()
    for column in ("TotalAmount", "TaxAmount", "PaidAmount"):
        assert invoices[column].dtype == object
        assert all(isinstance(v, Decimal) for v in invoices[column])
    assert invoices.loc[invoices["Id"] == 4, "TotalAmount"].item() == Decimal("99.99")
    assert str(invoices.loc[invoices["Id"] == 1, "PaidAmount"].item()) == "0.00"
    assert invoices["Id"].dtype == "int64" and invoices["BusinessId"].dtype == "int64"
    assert isinstance(invoices["CreatedOn"].dtype, pd.DatetimeTZDtype)
    assert str(invoices["CreatedOn"].dt.tz) == "UTC"  # no location chosen yet
    assert invoices["Paid"].dtype == bool
    client.use_location(location(client, CENTRAL))
    assert str(client.fetch_invoices(CENTRAL)["CreatedOn"].dt.tz) == "Europe/London"


def test_fetch_invoices_filters_by_location_period_and_extra_fields(nexudus: Nexudus) -> None:
    client = nexudus.client()
    central_august = client.fetch_invoices(CENTRAL, date(2026, 8, 1), date(2026, 8, 15))
    assert list(central_august["Id"]) == [1, 2]
    finalised = client.fetch_invoices(start=date(2026, 8, 1), Draft=False, CreditNote=False)
    assert list(finalised["Id"]) == [1, 2, 3, 4, 7, 8]
    assert client.fetch_invoices(DOCKS, date(2026, 10, 1)).empty


def test_a_page_answered_as_another_page_is_not_yielded_again(nexudus: Nexudus) -> None:
    """§3 "stop rule": "until `HasNextPage` is false; also stop on an empty page and check
    `CurrentPage` is the page asked"; "wrong names": "silently ignored (you get page 1 ...)"."""
    client = signed_in(nexudus)
    nexudus.dispatch.renamed = {"page": "PageNumber"}  # the page asked is ignored
    ids = [r["Id"] for r in client.iter_records("billing/coworkerinvoices", page_size=3)]
    assert len(nexudus.requests("GET", "billing/coworkerinvoices")) == 2  # no loop on page 1
    assert sorted(ids) == sorted(set(ids))


def test_an_empty_result_still_has_the_invoice_columns(nexudus: Nexudus) -> None:
    empty = nexudus.client().fetch_invoices(start=date(2030, 1, 1))
    assert empty.empty and {"Id", "TotalAmount", "CreatedOn", "Paid"} <= set(empty.columns)
    assert empty["Id"].dtype == "int64"


def test_an_unknown_invoice_raises_not_found(nexudus: Nexudus) -> None:
    with pytest.raises(NotFound) as caught:
        nexudus.client().get_invoice(999)
    assert caught.value.status == 404


def test_tax_rates_are_read_from_sys_taxrates(nexudus: Nexudus) -> None:
    """§2: "TaxRate | **`sys/taxrates`** (not billing)"; §3 filter ``TaxRate_Business``."""
    client = signed_in(nexudus)
    rates = client.fetch_tax_rates(CENTRAL)
    assert rates["Rate"].tolist() == [Decimal("20.00")]
    assert rates["BusinessId"].tolist() == [CENTRAL]
    (call,) = nexudus.requests("GET", "sys/taxrates")
    assert call.query["TaxRate_Business"] == str(CENTRAL)
    assert not nexudus.requests("GET", "billing/taxrates")


def test_billing_taxrates_answers_404_not_found_raised_as_not_found(nexudus: Nexudus) -> None:
    """§2: TaxRate is in sys, not billing; §4 "Not found": "404, body the JSON string
    "Not found""."""
    client = signed_in(nexudus)
    with pytest.raises(NotFound) as caught:
        list(client.iter_records("billing/taxrates"))
    assert caught.value.status == 404
    assert caught.value.detail == "Not found"


def test_accounts_are_read_per_location(nexudus: Nexudus) -> None:
    accounts = nexudus.client().fetch_financial_accounts(CENTRAL)
    assert list(accounts["Code"]) == ["200", "210", "090"]
    assert accounts["AccountType"].tolist()[2] == 2  # §7.4: 2 Payments


def test_a_made_up_filter_widens_the_answer_yet_fetch_invoices_keeps_only_the_location(
    nexudus: Nexudus,
) -> None:
    """§3: "Unknown filter names: **ASSUMPTION** silently ignored ...: a misspelt or
    unsupported filter widens the answer, so re-check every returned record client-side"
    (§13 "unknown filter names | ignored (widen results)")."""
    raw = nexudus.raw("GET", f"billing/coworkerinvoices?CoworkerInvoice_Locatoin={CENTRAL}")
    assert raw.status_code == 200 and raw.json()["TotalItems"] == 8  # ignored: all of them

    client = signed_in(nexudus)
    # On the way in, the location filter becomes a name Nexudus does not know.
    nexudus.dispatch.renamed = {"CoworkerInvoice_Business": "CoworkerInvoice_Locatoin"}
    docks = client.fetch_invoices(business_id=DOCKS)
    call = nexudus.requests("GET", "billing/coworkerinvoices")[-1]
    assert call.query.get("CoworkerInvoice_Locatoin") == str(DOCKS)
    assert jsonutil.loads(call.body or b"{}") == {} and "CoworkerInvoice_Business" not in call.query
    assert sorted(docks["Id"]) == [4, 5]  # the answer held all eight
    assert set(docks["BusinessId"]) == {DOCKS}


def test_void_is_filtered_on_this_side_because_nexudus_documents_no_void_filter(
    nexudus: Nexudus,
) -> None:
    """§3 "Filters recon relies on": CoworkerInvoice "`_Void` (filter Void client-side)"."""
    client = signed_in(nexudus)
    raw = nexudus.raw("GET", "billing/coworkerinvoices?CoworkerInvoice_Void=false&size=100")
    assert 3 in [r["Id"] for r in raw.json()["Records"]]  # the sandbox ignores it
    live = client.fetch_invoices(CENTRAL, Void=False)
    assert 3 not in set(live["Id"]) and list(live["Id"]) == [1, 2, 6, 7, 8]


def test_lines_come_from_their_own_created_on_window_with_a_fallback_per_invoice(
    nexudus: Nexudus,
) -> None:
    """§3: "Lines of a location and period: page the line's own CreatedOn range (widened a
    day each side) and keep lines whose `CoworkerInvoiceId` is in the invoice set; fall back
    to `CoworkerInvoiceLine_CoworkerInvoice=<id>` per invoice"."""
    client = signed_in(nexudus)
    client.use_location(location(client, CENTRAL))
    before = client.calls
    lines = client.fetch_invoice_lines([1, 2, 7], date(2026, 8, 1), date(2026, 8, 31))
    assert client.calls - before == 2  # the window, then invoice 7 (lines made in October)
    assert sorted(lines["Id"]) == [11, 21, 22, 71, 72]
    window, fallback = nexudus.requests("GET", "billing/coworkerinvoicelines")
    # 1 August London (BST) begins 2026-07-31T23:00Z; a day wider each side.
    assert window.query["from_CoworkerInvoiceLine_CreatedOn"] == "2026-07-30T23:00:00Z"
    assert window.query["to_CoworkerInvoiceLine_CreatedOn"] == "2026-09-01T22:59:59Z"
    assert not any("CoworkerInvoice_" in name for name in window.query)  # no parent filters
    assert fallback.query["CoworkerInvoiceLine_CoworkerInvoice"] == "7"
    assert all(isinstance(v, Decimal) for v in lines["SubTotal"])
    assert lines["Quantity"].dtype == "int64"
    assert str(lines.loc[lines["Id"] == 22, "SubTotal"].item()) == "50.00"


def test_lines_of_chosen_invoices_without_a_period_are_asked_for_per_invoice(
    nexudus: Nexudus,
) -> None:
    client = signed_in(nexudus)
    before = client.calls
    lines = client.fetch_invoice_lines(invoice_ids=[4, 2])
    assert sorted(lines["CoworkerInvoiceId"].unique()) == [2, 4]
    assert sorted(lines["Id"]) == [21, 22, 41]
    assert client.calls - before == 2
    assert client.fetch_invoice_lines([]).empty


# --------------------------------------------------------------------------- dates and zones


def test_use_location_reads_the_simple_time_zone_and_maps_the_windows_name_to_iana(
    open_nexudus: Callable[..., Nexudus],
) -> None:
    """§6 "Location zone": "Business.SimpleTimeZoneId → `sys/simpletimezones/{id}`
    (Windows-style Name ...). Mapping Windows names to IANA is recon's job"."""
    nexudus = open_nexudus(zones_seed())
    client = signed_in(nexudus)
    businesses = client.fetch_businesses().set_index("Id")
    for business_id, zone_id, iana in (
        (LONDON, GMT_TZ, "Europe/London"),
        (SINGAPORE, SINGAPORE_TZ, "Asia/Singapore"),
        (NEW_YORK, EASTERN_TZ, "America/New_York"),
    ):
        before = client.calls
        row = businesses.loc[business_id].to_dict()
        zone = client.use_location(row)
        assert str(zone) == iana and client.zone == zone
        assert client.calls - before == 1
        assert nexudus.requests("GET")[-1].path == f"/api/sys/simpletimezones/{zone_id}"


def test_period_starts_stored_as_utc_midnights_read_as_1_april_in_each_zone(
    open_nexudus: Callable[..., Nexudus],
) -> None:
    """§6: "Date-like fields (InvoiceFromDate, InvoiceToDate, SaleDate) hold the UTC instant
    of the location's local midnight ... Convert to the location's zone before taking a
    calendar date: whenever the location is ahead of UTC ... the UTC date is a day early"."""
    nexudus = open_nexudus(zones_seed())
    client = signed_in(nexudus)
    for business_id, invoice_id, stored in (
        (LONDON, 101, "2026-03-31T23:00:00Z"),
        (SINGAPORE, 102, "2026-03-31T16:00:00Z"),
        (NEW_YORK, 104, "2026-04-01T04:00:00Z"),
    ):
        assert client.get_invoice(invoice_id)["InvoiceFromDate"] == stored
        client.use_location(location(client, business_id))
        invoices = client.fetch_invoices(business_id).set_index("Id")
        start = invoices.loc[invoice_id, "InvoiceFromDate"]
        assert start.date() == date(2026, 4, 1), business_id
        assert start.tz_convert("UTC") == pd.Timestamp(stored)
        assert invoices.loc[invoice_id, "InvoiceToDate"].date() == date(2026, 4, 30)


def test_a_period_of_local_days_in_singapore_is_queried_with_utc_instants_of_its_bounds(
    open_nexudus: Callable[..., Nexudus],
) -> None:
    """§6 "Period queries": "send explicit UTC instants for the location's local day bounds
    (`from` = local 00:00, `to` = local 23:59:59)"."""
    nexudus = open_nexudus(zones_seed())
    client = signed_in(nexudus)
    client.use_location(location(client, SINGAPORE))
    april = client.fetch_invoices(SINGAPORE, start=date(2026, 4, 1), end=date(2026, 4, 30))
    assert list(april["Id"]) == [102]  # created 01:30 on 1 April, not 23:30 on 31 March
    call = nexudus.requests("GET", "billing/coworkerinvoices")[-1]
    assert call.query["from_CoworkerInvoice_CreatedOn"] == "2026-03-31T16:00:00Z"
    assert call.query["to_CoworkerInvoice_CreatedOn"] == "2026-04-30T15:59:59Z"
    created = april.loc[0, "CreatedOn"]
    assert (created.hour, created.minute, created.date()) == (1, 30, date(2026, 4, 1))


def test_a_location_without_a_time_zone_is_refused_before_any_call(
    open_nexudus: Callable[..., Nexudus],
) -> None:
    nexudus = open_nexudus(world([CENTRAL], [], [], zones={CENTRAL: 0}))
    client = signed_in(nexudus)
    before = client.calls
    with pytest.raises(ClientError, match="has no time zone"):
        client.use_location(location(client, CENTRAL))
    assert client.calls - before == 1  # the location list only
    assert str(client.zone) == "UTC"


def test_a_date_written_by_update_invoice_is_the_location_local_midnight(
    open_nexudus: Callable[..., Nexudus],
) -> None:
    """§6: "Date-like fields ... hold the UTC instant of the location's local midnight"."""
    nexudus = open_nexudus(zones_seed())
    client = signed_in(nexudus)
    client.use_location(location(client, NEW_YORK))
    after = client.update_invoice(104, DueDate=date(2026, 5, 1))
    assert after["DueDate"] == "2026-05-01T04:00:00Z"
    assert client.fetch_invoices(NEW_YORK).loc[0, "DueDate"].date() == date(2026, 5, 1)


# --------------------------------------------------------------------------- full-record writes


def test_update_invoice_puts_the_whole_record_read_by_id_and_the_value_survives(
    nexudus: Nexudus,
) -> None:
    """§4 "PUT replaces": "Build it from a fresh GET by id, change the fields, send it all";
    §7.1 "SystemId ... **ASSUMPTION** it round-trips: read it back"."""
    client = signed_in(nexudus)
    before = nexudus.raw("GET", "billing/coworkerinvoices/1")
    record = jsonutil.loads(before.content)
    after = client.update_invoice(1, SystemId="xero:abc")
    (put,) = nexudus.requests("PUT", "billing/coworkerinvoices")
    assert put.path == "/api/billing/coworkerinvoices"  # the collection, Id in the body
    assert put.json() == {**record, "SystemId": "xero:abc"}
    assert after["SystemId"] == "xero:abc" and after["PurchaseOrder"] == "PO-77"
    again = client.get_invoice(1)
    for name in ("SystemId", "PurchaseOrder", "DueDate", "InvoiceFromDate", "BillToCity"):
        assert again[name] == {**record, "SystemId": "xero:abc"}[name], name
    assert again["TotalAmount"] == Decimal("120.00")


def test_a_put_lacking_a_field_is_refused_or_clears_it_as_nexudus_does(nexudus: Nexudus) -> None:
    """§4 "PUT replaces": "missing ones are cleared or set false (GB) ... a partial body
    fails 400 "X is a required field" (FW, live)"."""
    record = jsonutil.loads(nexudus.raw("GET", "billing/coworkerinvoices/1").content)
    lacking = {k: v for k, v in record.items() if k != "BillToCity"}
    refused = nexudus.raw("PUT", "billing/coworkerinvoices", lacking)
    assert refused.status_code == 400
    body = refused.json()
    assert body["WasSuccessful"] is False
    assert {(e["PropertyName"], e["Message"]) for e in body["Errors"]} == {
        ("BillToCity", "BillToCity is a required field")
    }
    no_po = {k: v for k, v in record.items() if k != "PurchaseOrder"}
    assert nexudus.raw("PUT", "billing/coworkerinvoices", no_po).status_code == 200
    reread = nexudus.raw("GET", "billing/coworkerinvoices/1").json()
    assert reread["PurchaseOrder"] is None and reread["BillToCity"] == "London"


@pytest.mark.parametrize("blank", [None, ""], ids=["null", "empty"])
def test_the_client_refuses_to_put_an_invoice_with_a_blank_required_field_naming_it(
    nexudus: Nexudus, blank: str | None
) -> None:
    """§7.1 "Required on PUT": Id, CoworkerId, BusinessId, InvoiceNumber, BillToName,
    BillToAddress, BillToCity, BillToPostCode, BillToCountryId, CurrencyId."""
    client = signed_in(nexudus)
    if blank is not None:
        record = jsonutil.loads(nexudus.raw("GET", "billing/coworkerinvoices/8").content)
        put = nexudus.raw("PUT", "billing/coworkerinvoices", {**record, "BillToPostCode": blank})
        assert put.status_code == 200
        nexudus.dispatch.seen.clear()
    before = client.calls
    with pytest.raises(ApiRejected, match="BillToPostCode") as caught:
        client.update_invoice(8, SystemId="xero:8")
    assert caught.value.messages == ["BillToPostCode is a required field"]
    assert client.calls - before == 1  # the GET by id; nothing sent
    assert not nexudus.requests("PUT")


def test_a_read_only_field_nexudus_does_not_keep_is_reported_by_name(nexudus: Nexudus) -> None:
    """§7.1 "Read-only": Paid, PaidAmount, Void ...; §8 "PUT `Paid:true` | impossible"."""
    client = signed_in(nexudus)
    with pytest.raises(ApiRejected, match="did not keep Paid") as caught:
        client.update_invoice(1, Paid=True)
    assert caught.value.messages == ["Paid: not kept"]
    assert client.get_invoice(1)["Paid"] is False


def test_a_put_answered_200_with_was_successful_false_is_api_rejected(nexudus: Nexudus) -> None:
    """§4 "200 yet failed": "always read WasSuccessful"."""
    client = signed_in(nexudus)
    nexudus.app.faults.unsuccessful_next(1, method="PUT")
    with pytest.raises(ApiRejected, match="There was a problem while running this action"):
        client.update_invoice(2, SystemId="xero:2")
    assert client.get_invoice(2)["SystemId"] is None


# --------------------------------------------------------------------------- marking paid


def test_record_payment_posts_every_documented_ledger_entry_field(nexudus: Nexudus) -> None:
    """§8: "`POST billing/coworkerledgerentries` `{BusinessId, CoworkerId, CoworkerInvoiceId,
    Description, Code, Debit:0, Credit:<amount>, Balance:0, PaymentGatewayName,
    TransactionDate}`"; PaymentGatewayName "**ASSUMPTION** 500 (Xero)"."""
    client = signed_in(nexudus)
    client.use_location(location(client, CENTRAL))
    result = client.record_payment(1, Decimal("120.00"), date(2026, 8, 20), "Paid in Xero")
    (post,) = nexudus.requests("POST", "billing/coworkerledgerentries")
    sent = post.json()
    assert set(sent) == LEDGER_ENTRY_FIELDS
    assert b'"Credit":120.00' in post.body  # the exact Decimal, no float on the way
    expected = {
        "BusinessId": CENTRAL,
        "CoworkerId": ADA,
        "CoworkerInvoiceId": 1,
        "Description": "Paid in Xero",
        "Code": "XERO",
        "Debit": 0,
        "Credit": Decimal("120.00"),
        "Balance": 0,
        "PaymentGatewayName": GATEWAY_XERO,
        "TransactionDate": "2026-08-19T23:00:00Z",  # 20 August, London midnight (BST)
    }
    assert sent == expected and GATEWAY_XERO == 500
    (stored,) = client.iter_records(
        "billing/coworkerledgerentries", {"CoworkerLedgerEntry_CoworkerInvoice": 1}
    )
    assert {k: stored[k] for k in LEDGER_ENTRY_FIELDS} == expected
    assert result.entry_id == stored["Id"]


def test_record_payment_leaves_the_invoice_paid_on_the_local_midnight_of_the_payment_date(
    nexudus: Nexudus,
) -> None:
    """§8: the entry makes "PaidOn ... the server's now, not TransactionDate", then "a
    full-record PUT of the invoice with PaidOn = the real payment date | moves PaidOn";
    §6: a date is the UTC instant of the location's local midnight."""
    client = signed_in(nexudus)
    client.use_location(location(client, CENTRAL))
    result = client.record_payment(1, Decimal("120.00"), date(2026, 8, 20), "Paid in Xero")
    assert result.paid_on_moved and result.problem is None
    paid = client.get_invoice(1)
    assert paid["Paid"] is True and paid["PaidAmount"] == Decimal("120.00")
    assert paid["PaidOn"] == "2026-08-19T23:00:00Z"
    assert result.invoice["PaidOn"] == paid["PaidOn"]
    (entry,) = client.iter_records(
        "billing/coworkerledgerentries", {"CoworkerLedgerEntry_CoworkerInvoice": 1}
    )
    assert entry["CreatedOn"] != paid["PaidOn"]  # not the moment of the call
    (put,) = nexudus.requests("PUT", "billing/coworkerinvoices")
    assert put.json()["PaidOn"] == "2026-08-19T23:00:00Z"
    frame = client.fetch_invoices(CENTRAL).set_index("Id")
    assert frame.loc[1, "PaidOn"].date() == date(2026, 8, 20)


@pytest.mark.parametrize(
    ("invoice_id", "amount", "words"),
    [
        (3, "30.00", "is void, a draft or a credit note"),
        (5, "50.00", "is void, a draft or a credit note"),
        (6, "120.00", "is void, a draft or a credit note"),
        (2, "240.01", "240.01 is more than the 240.00 still due"),
        (1, "0.00", "must be above zero"),
    ],
    ids=["void", "draft", "credit note", "over-paid", "zero"],
)
def test_invoices_nexudus_would_wrongly_mark_paid_are_refused_before_any_write(
    nexudus: Nexudus, invoice_id: int, amount: str, words: str
) -> None:
    """§8: "Nexudus documents no refusal for void, draft, credit-note or over-paid invoices
    ...: recon must refuse these itself before posting"."""
    client = signed_in(nexudus)
    before = client.calls
    with pytest.raises(ApiRejected, match=re.escape(words)):
        client.record_payment(invoice_id, Decimal(amount), date(2026, 8, 20), "Paid in Xero")
    assert client.calls - before == 1  # the invoice read, nothing else
    assert not nexudus.requests("POST", "billing") and not nexudus.requests("PUT")


def test_a_part_payment_then_the_rest_marks_the_invoice_paid_once(nexudus: Nexudus) -> None:
    """§7.1 "Partial payment: PaidAmount < TotalAmount"; §13 "PaidAmount after two payments
    | accumulates"."""
    client = signed_in(nexudus)
    client.use_location(location(client, CENTRAL))
    part = client.record_payment(2, Decimal("200.00"), date(2026, 8, 20), "Part")
    assert part.invoice["PaidAmount"] == Decimal("200.00") and part.invoice["Paid"] is False
    with pytest.raises(ApiRejected, match=r"40\.00 still due"):
        client.record_payment(2, Decimal("40.01"), date(2026, 8, 21), "Too much")
    rest = client.record_payment(2, Decimal("40.00"), date(2026, 8, 22), "Rest")
    assert rest.invoice["Paid"] is True and rest.invoice["PaidAmount"] == Decimal("240.00")
    assert rest.invoice["PaidOn"] == "2026-08-21T23:00:00Z"
    assert len(nexudus.requests("POST", "billing/coworkerledgerentries")) == 2


def test_a_part_payment_leaves_paid_on_as_nexudus_left_it(nexudus: Nexudus) -> None:
    """§8: the full-record PUT "with PaidOn = the real payment date | moves PaidOn" that the
    entry set; §7.1 "Partial payment: PaidAmount < TotalAmount"; §13 "PUT PaidOn alone flips
    Paid | no | untested in public"."""
    client = signed_in(nexudus)
    client.use_location(location(client, CENTRAL))
    client.record_payment(2, Decimal("200.00"), date(2026, 8, 20), "Part")
    part = client.get_invoice(2)
    assert part["Paid"] is False and part["PaidAmount"] == Decimal("200.00")
    assert part["PaidOn"] is None
    assert not nexudus.requests("PUT")


def test_a_payment_is_kept_when_paid_on_cannot_be_moved_and_the_problem_is_said(
    nexudus: Nexudus,
) -> None:
    """§8: the entry marks the invoice paid, the PUT only moves PaidOn; §7.1 "Required on
    PUT": an invoice without BillToPostCode cannot be PUT."""
    client = signed_in(nexudus)
    result = client.record_payment(8, Decimal("45.00"), date(2026, 8, 30), "Paid in Xero")
    assert result.paid_on_moved is False
    assert result.problem is not None and "BillToPostCode" in result.problem
    assert result.invoice["Paid"] is True and result.invoice["PaidAmount"] == Decimal("45.00")
    assert len(nexudus.requests("POST", "billing/coworkerledgerentries")) == 1
    assert not nexudus.requests("PUT")


def test_a_payment_answered_200_with_was_successful_false_is_api_rejected(
    nexudus: Nexudus,
) -> None:
    """§4 "200 yet failed": "some deletes and semantic refusals: always read WasSuccessful"."""
    client = signed_in(nexudus)
    nexudus.app.faults.unsuccessful_next(1, method="POST")
    with pytest.raises(ApiRejected, match="There was a problem while running this action"):
        client.record_payment(1, Decimal("120.00"), date(2026, 8, 20), "Paid in Xero")
    assert len(nexudus.requests("POST", "billing/coworkerledgerentries")) == 1
    assert client.get_invoice(1)["PaidAmount"] == Decimal("0.00")


# --------------------------------------------------------------------------- retries and limits


def test_a_503_is_retried_with_backoff_and_then_succeeds(nexudus: Nexudus) -> None:
    client = signed_in(nexudus)
    nexudus.app.faults.fail_next(2, status=503)
    before = client.calls
    assert len(client.fetch_businesses()) == 2
    assert client.calls - before == 3
    assert nexudus.sleeps == [0.5, 1.0]


def test_the_client_gives_up_with_service_unavailable_after_the_cap(nexudus: Nexudus) -> None:
    client = signed_in(nexudus)
    nexudus.app.faults.fail_next(10, status=503)
    with pytest.raises(ServiceUnavailable) as caught:
        client.fetch_businesses()
    assert caught.value.status == 503
    assert nexudus.app.faults.pending == 6  # four attempts made
    assert nexudus.sleeps == [0.5, 1.0, 2.0]


def test_a_409_with_retry_after_holds_the_next_call_back_that_long_then_reads(
    nexudus: Nexudus,
) -> None:
    """§5 "Throttled answer": "**409 Conflict** ..., `Retry-After` in seconds, empty body"."""
    client = signed_in(nexudus, real_sleep=True)
    nexudus.app.faults.throttle_next(1, retry_after=2)
    started = time.monotonic()
    assert len(client.fetch_businesses()) == 2
    assert time.monotonic() - started >= 2.0
    throttled, retried = nexudus.requests("GET", "sys/businesses")[-2:]
    assert (throttled.status, retried.status) == (409, 200)
    assert retried.at - throttled.at >= 2.0


def test_a_429_saying_wait_n_seconds_in_its_body_is_honoured_too(nexudus: Nexudus) -> None:
    """§5 "Also seen": "429 with the wait in the body text ("Wait N seconds"): undocumented,
    handle too"; §13 "Retry-After first, then "Wait N seconds", then backoff"."""
    client = signed_in(nexudus, real_sleep=True)
    nexudus.app.limits = nexudus.app.limits.with_(status=429)
    nexudus.app.faults.throttle_next(1, retry_after=2)
    assert len(client.fetch_businesses()) == 2
    throttled, retried = nexudus.requests("GET", "sys/businesses")[-2:]
    assert (throttled.status, retried.status) == (429, 200)
    assert retried.at - throttled.at >= 2.0


def test_the_sandbox_own_throttling_is_waited_out(nexudus: Nexudus) -> None:
    """§5 "Scope": "rely on the status codes, not these numbers": a limit lower than the
    client paces to still ends in a successful read."""
    client = nexudus.client(real_sleep=True, limits=ClientLimits(minute_seconds=1.0))
    nexudus.app.limits = SandboxLimits(calls_per_minute=3, minute_seconds=1.0)
    for _ in range(3):  # the sign-in and two pages fill the sandbox's minute
        client.fetch_businesses()
    statuses = [s.status for s in nexudus.dispatch.seen]
    assert statuses == [200, 200, 200, 409, 200]
    throttled, retried = nexudus.dispatch.seen[-2:]
    assert retried.at - throttled.at >= 1.0  # Retry-After: 1 (whole seconds)


def test_a_burst_of_500_an_error_has_occurred_is_retried_for_a_read(nexudus: Nexudus) -> None:
    """§4 "Server error": "500 `{"Message":"An error has occurred."}` ... sometimes transient
    and bursty (retry a few times)"."""
    client = signed_in(nexudus)
    nexudus.app.faults.error_burst(3, method="GET")
    assert client.get_invoice(4)["TotalAmount"] == Decimal("99.99")
    assert [s.status for s in nexudus.requests("GET", "billing")] == [500, 500, 500, 200]
    assert nexudus.sleeps == [0.5, 1.0, 2.0]


def test_a_burst_of_500_is_retried_for_a_whole_record_put(nexudus: Nexudus) -> None:
    """§4 "Server error" bursts; §4 "PUT replaces": the same whole record sets the same
    values, so resending it is safe."""
    client = signed_in(nexudus)
    nexudus.app.faults.error_burst(2, method="PUT")
    assert client.update_invoice(2, SystemId="xero:2")["SystemId"] == "xero:2"
    assert [s.status for s in nexudus.requests("PUT")] == [500, 500, 200]
    assert nexudus.sleeps == [0.5, 1.0]


def test_a_500_on_the_payment_post_is_not_resent(nexudus: Nexudus) -> None:
    """§8: "Not idempotent: a second POST records a second payment ... after an unknown
    outcome re-read the invoice (Paid, PaidAmount) before sending again"."""
    client = signed_in(nexudus)
    nexudus.app.faults.error_burst(3, method="POST")
    with pytest.raises(ServiceUnavailable, match="may have been processed") as caught:
        client.record_payment(1, Decimal("120.00"), date(2026, 8, 20), "Paid in Xero")
    assert caught.value.status == 500
    assert len(nexudus.requests("POST", "billing/coworkerledgerentries")) == 1
    assert nexudus.app.faults.pending == 2
    assert client.get_invoice(1)["PaidAmount"] == Decimal("0.00")


def test_a_payment_processed_but_answered_500_is_recorded_once(nexudus: Nexudus) -> None:
    """§8 "Not idempotent"; §4 "Server error": a 500 may come after the work was done."""
    client = signed_in(nexudus)
    nexudus.dispatch.processed_then_500 = {("POST", "/api/billing/coworkerledgerentries")}
    with pytest.raises(ServiceUnavailable, match="check before sending it again"):
        client.record_payment(1, Decimal("120.00"), date(2026, 8, 20), "Paid in Xero")
    assert len(nexudus.requests("POST", "billing/coworkerledgerentries")) == 1
    invoice_now = client.get_invoice(1)
    assert invoice_now["Paid"] is True and invoice_now["PaidAmount"] == Decimal("120.00")
    entries = list(
        client.iter_records(
            "billing/coworkerledgerentries", {"CoworkerLedgerEntry_CoworkerInvoice": 1}
        )
    )
    assert len(entries) == 1


def test_a_503_on_a_payment_is_retried_because_it_was_not_processed(nexudus: Nexudus) -> None:
    client = signed_in(nexudus)
    nexudus.app.faults.fail_next(1, status=503, method="POST")
    client.record_payment(1, Decimal("120.00"), date(2026, 8, 20), "Bank transfer")
    assert client.get_invoice(1)["PaidAmount"] == Decimal("120.00")  # once, not twice
    assert [s.status for s in nexudus.requests("POST", "billing")] == [503, 200]
    assert nexudus.sleeps == [0.5]


def test_a_throttled_payment_is_resent_because_it_was_not_processed(nexudus: Nexudus) -> None:
    """§5 "For recon": "a throttled request was not processed, so a throttled POST may be
    resent"."""
    client = signed_in(nexudus, real_sleep=True)
    nexudus.app.faults.throttle_next(1, retry_after=1, method="POST")
    client.record_payment(1, Decimal("120.00"), date(2026, 8, 20), "Bank transfer")
    assert [s.status for s in nexudus.requests("POST", "billing")] == [409, 200]
    assert client.get_invoice(1)["PaidAmount"] == Decimal("120.00")


def test_a_throttled_sign_in_is_retried_after_the_wait(nexudus: Nexudus) -> None:
    """§5: throttling applies to every call, the token endpoint's too."""
    client = nexudus.client(real_sleep=True)
    nexudus.app.faults.throttle_next(1, retry_after=1, method="POST")
    assert len(client.fetch_businesses()) == 2
    assert [(s.method, s.status) for s in nexudus.dispatch.seen] == [
        ("POST", 409),
        ("POST", 200),
        ("GET", 200),
    ]
    throttled, retried = nexudus.dispatch.seen[:2]
    assert retried.at - throttled.at >= 1.0


def test_a_dropped_connection_is_retried_for_a_read(nexudus: Nexudus) -> None:
    client = signed_in(nexudus)
    nexudus.app.faults.drop_next(1)
    assert len(client.fetch_businesses()) == 2
    assert nexudus.sleeps == [0.5]


def test_a_payment_whose_connection_drops_is_not_sent_twice(nexudus: Nexudus) -> None:
    client = signed_in(nexudus)
    before = client.calls
    nexudus.app.faults.drop_next(1, method="POST")
    with pytest.raises(ServiceUnavailable, match="check before sending it again"):
        client.record_payment(1, Decimal("120.00"), date(2026, 8, 20), "Bank transfer")
    assert client.calls - before == 2  # the invoice read, the dropped POST: not sent again
    assert client.get_invoice(1)["PaidAmount"] == Decimal("0.00")


def test_a_429_waits_for_retry_after_and_gives_up_with_rate_limited(nexudus: Nexudus) -> None:
    """§13 "409 vs 429 today | handle both, Retry-After first"."""
    client = signed_in(nexudus, retry=RetryPolicy(attempts=2, sleep=time.sleep))
    nexudus.app.faults.fail_next(3, status=429, retry_after=1, method="GET")
    with pytest.raises(RateLimited) as caught:
        client.fetch_businesses()
    assert caught.value.retry_after == 1.0 and caught.value.status == 429
    assert nexudus.app.faults.pending == 1  # two attempts


def test_the_pacer_keeps_200_reads_under_120_a_minute_without_a_409(
    open_nexudus: Callable[..., Nexudus],
) -> None:
    """§5 "Current limits": "every call 1 per 100 ms, 120/min"; "For recon": pace so that a
    throttled answer is the exception."""
    nexudus = open_nexudus(minute_seconds=1.0)
    client = signed_in(nexudus)
    for _ in range(199):
        client.get_invoice(1)
    statuses = [s.status for s in nexudus.dispatch.seen]
    assert len(statuses) == 201 and set(statuses) == {200}  # no 409, no retry
    assert client.calls == 201
    arrivals = [s.at for s in nexudus.dispatch.seen]
    # Never more than 120 arrivals within one sandbox minute. (Unpaced, the same loop meets
    # 409s on loopback: the 100 ms spacing alone, scaled, is under 2 ms.)
    assert all(arrivals[i + 120] - arrivals[i] >= 0.99 for i in range(len(arrivals) - 120))
