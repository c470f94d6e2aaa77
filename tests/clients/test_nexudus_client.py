"""NexudusClient against the Nexudus sandbox over real HTTP: sign-in, paging, frames, writes, retries."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recon.clients.nexudus import NexudusClient
from recon.clients.retry import RetryPolicy
from recon.clients.tokens import TokenStore
from recon.errors import ApiRejected, AuthError, NotFound, RateLimited, ServiceUnavailable
from recon.sandbox.clock import Clock
from recon.sandbox.http import Request, Response, Server
from recon.sandbox.nexudus_app import NexudusApp
from recon.sandbox.seed import NexudusSeed

USERNAME = "admin@hive-coworking.example"
CENTRAL, DOCKS = 1001, 1002
ADA, GRACE = 501, 502


# --------------------------------------------------------------------------- a small Nexudus


def invoice(invoice_id: int, number: str, business: int, coworker: int, total: str, created: str, **fields: Any) -> dict[str, Any]:
    amount = Decimal(total)
    doc = {
        "Id": invoice_id, "InvoiceNumber": number, "BusinessId": business, "CoworkerId": coworker,
        "BusinessName": "Hive Central" if business == CENTRAL else "Hive Docks", "CurrencyCode": "GBP",
        "TotalAmount": amount, "TaxAmount": (amount / 6).quantize(Decimal("0.01")), "PaidAmount": Decimal("0.00"),
        "Draft": False, "Void": False, "Paid": False, "PaidOn": None, "CreditNote": False, "SystemId": None,
        "DueDate": f"{created}T00:00:00Z", "CreatedOn": f"{created}T09:00:00Z", "UpdatedOn": f"{created}T09:00:00Z",
    }
    doc.update(fields)
    return doc


def line(line_id: int, invoice_id: int, subtotal: str, code: str = "200") -> dict[str, Any]:
    net = Decimal(subtotal)
    return {
        "Id": line_id, "CoworkerInvoiceId": invoice_id, "Description": "Hot desk", "Quantity": 1, "SubTotal": net,
        "TaxAmount": (net / 5).quantize(Decimal("0.01")), "TaxRate": Decimal("20.00"),
        "TaxCategoryName": "20% (VAT on Income)", "FinancialAccountCode": code, "FinancialAccountName": "Desk Rental",
    }


def small_seed(bulk: int = 0) -> NexudusSeed:
    """Central: 1 (120.00, Aug 3), 2 (240.00, Aug 15), 3 (void); Docks: 4 (99.99, Aug 10), 5 (draft, Sep 2)."""
    invoices = [
        invoice(1, "HC-0001", CENTRAL, ADA, "120.00", "2026-08-03"),
        invoice(2, "HC-0002", CENTRAL, ADA, "240.00", "2026-08-15"),
        invoice(3, "HC-0003", CENTRAL, ADA, "30.00", "2026-08-20", Void=True),
        invoice(4, "HD-0001", DOCKS, GRACE, "99.99", "2026-08-10"),
        invoice(5, "", DOCKS, GRACE, "50.00", "2026-09-02", Draft=True),
    ]
    invoices += [invoice(1000 + i, f"BULK-{i:05d}", CENTRAL, ADA, "10.00", "2026-07-01") for i in range(bulk)]
    lines = [line(11, 1, "100.00"), line(21, 2, "150.00"), line(22, 2, "50.00", "210"), line(31, 3, "25.00"),
             line(41, 4, "83.33"), line(51, 5, "41.67")]
    return NexudusSeed(
        businesses=[{"Id": CENTRAL, "Name": "Hive Central", "CurrencyCode": "GBP"},
                    {"Id": DOCKS, "Name": "Hive Docks", "CurrencyCode": "GBP"}],
        coworkers=[{"Id": ADA, "FullName": "Ada Lovelace", "BusinessId": CENTRAL},
                   {"Id": GRACE, "FullName": "Grace Hopper", "BusinessId": DOCKS}],
        financial_accounts=[{"Id": 31, "Name": "Desk Rental", "Code": "200", "BusinessId": CENTRAL},
                            {"Id": 32, "Name": "Meeting Rooms", "Code": "210", "BusinessId": CENTRAL},
                            {"Id": 33, "Name": "Desk Rental", "Code": "200", "BusinessId": DOCKS}],
        tax_rates=[{"Id": 41, "Name": "20% (VAT on Income)", "Rate": Decimal("20.00"), "BusinessId": CENTRAL}],
        invoices=invoices,
        invoice_lines=lines,
    )


class Dispatch:
    """One server for the module (stopping http.server waits for its poll); a fresh app per test."""

    def __init__(self) -> None:
        self.app: NexudusApp | None = None

    def __call__(self, request: Request) -> Response:
        assert self.app is not None
        return self.app(request)


@dataclass
class Nexudus:
    """The sandbox a test talks to, and a way to build clients for it."""

    app: NexudusApp
    api: str
    password: str
    clock: Clock
    tokens: TokenStore
    sleeps: list[float] = field(default_factory=list)

    def client(self, password: str | None = None, **kw: Any) -> NexudusClient:
        """A client with four attempts and waits recorded, not slept (jitter pinned: 0.5 s, 1 s, 2 s)."""
        kw.setdefault("token_store", self.tokens)
        kw.setdefault("retry", RetryPolicy(attempts=4, base_delay=0.5, max_delay=4.0, sleep=self.sleeps.append,
                                           jitter=lambda: 1.0))
        return NexudusClient(self.api, USERNAME, password or self.password, **kw)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Server, Dispatch]]:
    dispatch = Dispatch()
    server = Server(dispatch).start()
    yield server, dispatch
    server.stop()


@pytest.fixture
def open_nexudus(served: tuple[Server, Dispatch], tmp_path: Path) -> Iterator[Callable[..., Nexudus]]:
    server, dispatch = served
    apps: list[NexudusApp] = []

    def open_(seed: NexudusSeed | None = None) -> Nexudus:
        password, clock = secrets.token_urlsafe(16), Clock()
        app = NexudusApp(tmp_path / f"nexudus{len(apps)}.sqlite", username=USERNAME, password=password, clock=clock)
        app.load_seed(seed or small_seed())
        apps.append(app)
        dispatch.app = app
        return Nexudus(app, server.url + "/api", password, clock, TokenStore(tmp_path / "tokens"))

    yield open_
    dispatch.app = None
    for app in apps:
        app.store.close()


@pytest.fixture
def nexudus(open_nexudus: Callable[..., Nexudus]) -> Nexudus:
    return open_nexudus()


# --------------------------------------------------------------------------- sign-in and tokens


def test_the_client_signs_in_once_and_reads_locations(nexudus: Nexudus) -> None:
    client = nexudus.client()
    businesses = client.fetch_businesses()
    assert list(businesses["Name"]) == ["Hive Central", "Hive Docks"]
    assert client.calls == 2  # the password grant, then one page
    client.fetch_coworkers()
    assert client.calls == 3


def test_a_wrong_password_raises_auth_error(nexudus: Nexudus) -> None:
    with pytest.raises(AuthError, match="invalid_grant"):
        nexudus.client(password="not-the-password").fetch_businesses()


def test_tokens_are_saved_under_a_hashed_name_without_the_password_and_reused(nexudus: Nexudus) -> None:
    nexudus.client().fetch_businesses()
    files = list(nexudus.tokens.folder.glob("*.json"))
    assert len(files) == 1
    name, text = files[0].name, files[0].read_text()
    assert "admin" not in name and "hive" not in name
    assert nexudus.password not in text and USERNAME not in text
    assert set(json.loads(text)) >= {"access_token", "refresh_token", "expires_at"}
    second = nexudus.client()
    second.fetch_businesses()
    assert second.calls == 1  # the saved token, no sign-in


def test_the_password_never_appears_in_repr_or_attributes(nexudus: Nexudus) -> None:
    client = nexudus.client()
    client.fetch_businesses()
    assert nexudus.password not in repr(client)
    assert all(nexudus.password not in repr(value) for value in vars(client).values())
    assert repr(client).startswith("NexudusClient(base_url=")


def test_an_expired_token_is_refreshed_after_a_401(nexudus: Nexudus) -> None:
    client = nexudus.client()
    client.fetch_businesses()
    nexudus.clock.advance(3601)  # the server's hour passes; the client's clock does not know
    before = client.calls
    assert len(client.fetch_businesses()) == 2
    assert client.calls - before == 3  # 401, refresh grant, retried page


def test_a_refused_refresh_falls_back_to_the_password_grant(nexudus: Nexudus) -> None:
    client = nexudus.client()
    client.fetch_businesses()
    nexudus.clock.advance(15 * 86400)  # access and refresh tokens both expired
    before = client.calls
    assert len(client.fetch_businesses()) == 2
    assert client.calls - before == 4  # 401, refused refresh, password grant, retried page


# --------------------------------------------------------------------------- reading


def test_2500_invoices_take_exactly_three_calls_of_1000_and_come_back_once(open_nexudus: Callable[..., Nexudus]) -> None:
    nexudus = open_nexudus(small_seed(bulk=2495))
    client = nexudus.client()
    client.fetch_businesses()  # sign in first so only pages are counted
    before = client.calls
    invoices = client.fetch_invoices()
    assert client.calls - before == 3
    assert len(invoices) == 2500 and invoices["Id"].is_unique


def test_iter_records_is_lazy_and_pages_as_asked(nexudus: Nexudus) -> None:
    client = nexudus.client()
    pages = client.iter_records("billing/coworkerinvoices", {"CoworkerInvoice_Business": CENTRAL}, page_size=2)
    assert client.calls == 0
    assert [r["Id"] for r in pages] == [1, 2, 3]
    assert client.calls == 3  # sign-in and two pages of two


def test_invoice_frames_hold_decimal_money_int64_ids_and_utc_dates(nexudus: Nexudus) -> None:
    invoices = nexudus.client().fetch_invoices()
    for column in ("TotalAmount", "TaxAmount", "PaidAmount"):
        assert invoices[column].dtype == object
        assert all(isinstance(v, Decimal) for v in invoices[column])
    assert invoices.loc[invoices["Id"] == 4, "TotalAmount"].item() == Decimal("99.99")
    assert str(invoices.loc[invoices["Id"] == 1, "PaidAmount"].item()) == "0.00"
    assert invoices["Id"].dtype == "int64" and invoices["BusinessId"].dtype == "int64"
    assert isinstance(invoices["CreatedOn"].dtype, pd.DatetimeTZDtype) and str(invoices["CreatedOn"].dt.tz) == "UTC"
    assert invoices["Paid"].dtype == bool


def test_fetch_invoices_filters_by_location_period_and_extra_fields(nexudus: Nexudus) -> None:
    client = nexudus.client()
    central_august = client.fetch_invoices(CENTRAL, date(2026, 8, 1), date(2026, 8, 15))
    assert list(central_august["Id"]) == [1, 2]
    assert list(client.fetch_invoices(start="2026-08-01", Void=False, Draft=False)["Id"]) == [1, 2, 4]
    assert client.fetch_invoices(DOCKS, date(2026, 10, 1)).empty


def test_an_empty_result_still_has_the_invoice_columns(nexudus: Nexudus) -> None:
    empty = nexudus.client().fetch_invoices(start=date(2030, 1, 1))
    assert empty.empty and {"Id", "TotalAmount", "CreatedOn", "Paid"} <= set(empty.columns)
    assert empty["Id"].dtype == "int64"


def test_lines_of_a_location_and_period_come_in_one_call(nexudus: Nexudus) -> None:
    client = nexudus.client()
    client.fetch_businesses()
    before = client.calls
    lines = client.fetch_invoice_lines(CENTRAL, date(2026, 8, 1), date(2026, 8, 31))
    assert client.calls - before == 1
    assert list(lines["Id"]) == [11, 21, 22, 31]
    assert all(isinstance(v, Decimal) for v in lines["SubTotal"]) and lines["Quantity"].dtype == "int64"
    assert str(lines.loc[lines["Id"] == 22, "SubTotal"].item()) == "50.00"


def test_lines_of_chosen_invoices_are_exactly_theirs(nexudus: Nexudus) -> None:
    client = nexudus.client()
    client.fetch_businesses()
    before = client.calls
    lines = client.fetch_invoice_lines(invoice_ids=[4, 2])
    assert sorted(lines["CoworkerInvoiceId"].unique()) == [2, 4]
    assert sorted(lines["Id"]) == [21, 22, 41]
    assert client.calls - before == 1  # one id range, trimmed here


def test_accounts_and_tax_rates_are_read_per_location(nexudus: Nexudus) -> None:
    client = nexudus.client()
    accounts = client.fetch_financial_accounts(CENTRAL)
    assert list(accounts["Code"]) == ["200", "210"]
    rates = client.fetch_tax_rates()
    assert rates["Rate"].tolist() == [Decimal("20.00")]


def test_an_unknown_invoice_raises_not_found(nexudus: Nexudus) -> None:
    with pytest.raises(NotFound) as caught:
        nexudus.client().get_invoice(999)
    assert caught.value.status == 404


# --------------------------------------------------------------------------- writing


def test_update_invoice_sets_a_writable_field(nexudus: Nexudus) -> None:
    client = nexudus.client()
    result = client.update_invoice(2, SystemId="xero:abc", PurchaseOrder="PO-9")
    assert result["WasSuccessful"] is True and result["Value"] == {"Id": 2}
    assert client.get_invoice(2)["SystemId"] == "xero:abc"


def test_update_invoice_of_a_status_field_is_rejected_with_the_field_named(nexudus: Nexudus) -> None:
    with pytest.raises(ApiRejected) as caught:
        nexudus.client().update_invoice(1, Paid=True)
    assert caught.value.status == 400
    assert caught.value.messages == ["Paid: Paid is read-only through the API."]


def test_record_payment_marks_the_invoice_paid_on_the_payment_date(nexudus: Nexudus) -> None:
    client = nexudus.client()
    result = client.record_payment(1, Decimal("120.00"), date(2026, 8, 20), "Bank transfer", code="BACS")
    assert result["WasSuccessful"] is True and result["Value"]["Id"] >= 1
    paid = client.get_invoice(1)
    assert paid["Paid"] is True and paid["PaidAmount"] == Decimal("120.00")
    assert paid["PaidOn"].startswith("2026-08-20")
    assert list(client.fetch_invoices(updated_since="2026-10-01T00:00:00Z")["Id"]) == [1]


def test_paying_more_than_is_due_is_refused_before_anything_is_sent(nexudus: Nexudus) -> None:
    client = nexudus.client()
    client.record_payment(2, Decimal("200.00"), "2026-08-20", "Part payment")
    before = client.calls
    with pytest.raises(ApiRejected, match="40.00 still due"):
        client.record_payment(2, Decimal("40.01"), "2026-08-21", "Too much")
    assert client.calls - before == 1  # only the invoice was read
    with pytest.raises(ApiRejected, match="void"):
        client.record_payment(3, Decimal("1.00"), None, "Void invoice")


# --------------------------------------------------------------------------- retries


def test_a_503_is_retried_with_backoff_and_then_succeeds(nexudus: Nexudus) -> None:
    client = nexudus.client()
    client.fetch_businesses()
    nexudus.app.faults.fail_next(2, status=503)
    before = client.calls
    assert len(client.fetch_businesses()) == 2
    assert client.calls - before == 3
    assert nexudus.sleeps == [0.5, 1.0]


def test_the_client_gives_up_with_service_unavailable_after_the_cap(nexudus: Nexudus) -> None:
    client = nexudus.client()
    client.fetch_businesses()
    nexudus.app.faults.fail_next(10, status=503)
    with pytest.raises(ServiceUnavailable) as caught:
        client.fetch_businesses()
    assert caught.value.status == 503
    assert nexudus.app.faults.pending == 6  # four attempts made
    assert nexudus.sleeps == [0.5, 1.0, 2.0]


def test_a_429_waits_for_retry_after_and_gives_up_with_rate_limited(nexudus: Nexudus) -> None:
    client = nexudus.client()
    client.fetch_businesses()
    nexudus.app.faults.fail_next(1, status=429, retry_after=3)
    client.fetch_businesses()
    assert nexudus.sleeps == [3.0]
    nexudus.app.faults.fail_next(10, status=429, retry_after=2)
    with pytest.raises(RateLimited) as caught:
        client.fetch_businesses()
    assert caught.value.retry_after == 2.0


def test_the_sandbox_rate_limit_is_waited_out(nexudus: Nexudus) -> None:
    def sleep(seconds: float) -> None:  # waiting moves the sandbox's minute on
        nexudus.sleeps.append(seconds)
        nexudus.clock.advance(seconds)

    client = nexudus.client(retry=RetryPolicy(sleep=sleep))
    nexudus.app.rate_limit_per_minute = 2
    client.fetch_businesses()  # sign-in and one page use the minute's two calls
    assert len(client.fetch_businesses()) == 2
    assert len(nexudus.sleeps) == 1 and 1 <= nexudus.sleeps[0] <= 60


def test_a_dropped_connection_is_retried_for_a_read(nexudus: Nexudus) -> None:
    client = nexudus.client()
    client.fetch_businesses()
    nexudus.app.faults.drop_next(1)
    assert len(client.fetch_businesses()) == 2
    assert nexudus.sleeps == [0.5]


def test_a_503_on_a_payment_is_retried_because_it_was_not_processed(nexudus: Nexudus) -> None:
    client = nexudus.client()
    client.fetch_businesses()  # signed in, so the next POST is the payment's
    nexudus.app.faults.fail_next(1, status=503, method="POST")
    client.record_payment(1, Decimal("120.00"), None, "Bank transfer")
    assert client.get_invoice(1)["PaidAmount"] == Decimal("120.00")  # once, not twice
    assert nexudus.sleeps == [0.5]


def test_a_payment_whose_connection_drops_is_not_sent_twice(nexudus: Nexudus) -> None:
    client = nexudus.client()
    client.get_invoice(1)
    before = client.calls
    nexudus.app.faults.drop_next(1, method="POST")
    with pytest.raises(ServiceUnavailable, match="check before sending it again"):
        client.record_payment(1, Decimal("120.00"), None, "Bank transfer")
    assert client.calls - before == 2  # the invoice read, the dropped POST: not sent again
    assert client.get_invoice(1)["PaidAmount"] == Decimal("0.00")
