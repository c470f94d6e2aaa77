"""The fake Nexudus API over real HTTP on loopback: auth, lists, filters, writes, faults, persistence."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from recon.sandbox import jsonutil
from recon.sandbox.clock import Clock
from recon.sandbox.http import Request, Response, Server
from recon.sandbox.nexudus_app import NexudusApp
from recon.sandbox.seed import NexudusSeed

USERNAME = "admin@hive-coworking.example"
CENTRAL, DOCKS = 1001, 1002
ADA, GRACE = 501, 502

ENVELOPE_KEYS = [
    "Records", "CurrentPage", "CurrentPageSize", "CurrentOrderField", "CurrentSortDirection", "FirstItem",
    "LastItem", "TotalItems", "TotalPages", "HasNextPage", "HasPreviousPage",
]


# --------------------------------------------------------------------------- builders


def when(day: str, hour: int = 9) -> str:
    return f"{day}T{hour:02d}:00:00Z"


def invoice(
    invoice_id: int, number: str, *, business: int = CENTRAL, coworker: int = ADA, total: str = "120.00",
    created: str = "2026-08-03", **fields: Any,
) -> dict[str, Any]:
    """A finalised, unpaid GBP invoice as Nexudus lists it."""
    amount = Decimal(total)
    doc = {
        "Id": invoice_id, "UniqueId": f"00000000-0000-0000-0000-{invoice_id:012d}", "InvoiceNumber": number,
        "BusinessId": business, "BusinessName": "Hive Central" if business == CENTRAL else "Hive Docks",
        "CoworkerId": coworker, "CoworkerFullName": "Ada Lovelace" if coworker == ADA else "Grace Hopper",
        "TotalAmount": amount, "TaxAmount": (amount / 6).quantize(Decimal("0.01")), "PaidAmount": Decimal("0.00"),
        "CurrencyCode": "GBP", "Draft": False, "Void": False, "Paid": False, "PaidOn": None, "CreditNote": False,
        "XeroInvoiceTransfered": False, "XeroPaymentTransfered": False, "SystemId": None, "PurchaseOrder": None,
        "Description": f"Membership {number}", "DueDate": when(created), "CreatedOn": when(created),
        "UpdatedOn": when(created),
    }
    doc.update(fields)
    return doc


def line(line_id: int, invoice_id: int, subtotal: str, code: str = "200", name: str = "Desk Rental") -> dict[str, Any]:
    net = Decimal(subtotal)
    return {
        "Id": line_id, "CoworkerInvoiceId": invoice_id, "Description": "Hot desk", "Quantity": 1, "SubTotal": net,
        "TaxAmount": (net * Decimal("0.2")).quantize(Decimal("0.01")), "TaxRate": Decimal("20.00"),
        "TaxCategoryName": "20% (VAT on Income)", "FinancialAccountCode": code, "FinancialAccountName": name,
        "Position": 1,
    }


def small_seed(extra_invoices: int = 0) -> NexudusSeed:
    """Two locations; invoices 1-7 cover paid, partly paid, draft, void, credit note and September."""
    invoices = [
        invoice(1, "HC-0001", total="120.00"),
        invoice(2, "HC-0002", total="240.00", created="2026-08-15"),
        invoice(3, "HC-0003", total="60.00", created="2026-08-31", Paid=True, PaidAmount=Decimal("60.00"),
                PaidOn=when("2026-09-01")),
        invoice(4, "HD-0001", business=DOCKS, coworker=GRACE, total="99.99", created="2026-08-10"),
        invoice(5, "", business=DOCKS, coworker=GRACE, total="50.00", created="2026-08-12", Draft=True),
        invoice(6, "HC-0004", total="30.00", created="2026-08-20", Void=True),
        invoice(7, "HC-0005", total="500.00", created="2026-09-02", CreditNote=True),
    ]
    invoices += [invoice(100 + i, f"BULK-{i:05d}", created="2026-07-01", total="10.00") for i in range(extra_invoices)]
    lines = [
        line(11, 1, "100.00"), line(21, 2, "150.00"), line(22, 2, "50.00", code="210", name="Meeting Rooms"),
        line(31, 3, "50.00"), line(41, 4, "83.33"), line(51, 5, "41.67"), line(61, 6, "25.00"),
        line(71, 7, "416.67"),
    ]
    return NexudusSeed(
        businesses=[
            {"Id": CENTRAL, "Name": "Hive Central", "CurrencyCode": "GBP"},
            {"Id": DOCKS, "Name": "Hive Docks", "CurrencyCode": "GBP"},
        ],
        coworkers=[
            {"Id": ADA, "FullName": "Ada Lovelace", "CompanyName": "Analytical Ltd", "BillingEmail": "ada@example.com",
             "BusinessId": CENTRAL},
            {"Id": GRACE, "FullName": "Grace Hopper", "CompanyName": None, "BillingEmail": "grace@example.com",
             "BusinessId": DOCKS},
        ],
        financial_accounts=[
            {"Id": 31, "Name": "Desk Rental", "Code": "200", "BusinessId": CENTRAL},
            {"Id": 32, "Name": "Meeting Rooms", "Code": "210", "BusinessId": CENTRAL},
            {"Id": 33, "Name": "Desk Rental", "Code": "200", "BusinessId": DOCKS},
        ],
        tax_rates=[
            {"Id": 41, "Name": "20% (VAT on Income)", "Rate": Decimal("20.00"), "BusinessId": CENTRAL},
            {"Id": 42, "Name": "20% (VAT on Income)", "Rate": Decimal("20.00"), "BusinessId": DOCKS},
        ],
        invoices=invoices,
        invoice_lines=lines,
        username=USERNAME,
    )


class Dispatch:
    """The module's one server answers with whichever app the running test opened.

    One server for the module because stopping a ``http.server`` waits for its
    half-second poll; a fresh app (and SQLite file) per test keeps tests apart.
    """

    def __init__(self) -> None:
        self.app: NexudusApp | None = None

    def __call__(self, request: Request) -> Response:
        assert self.app is not None, "no app opened for this test"
        return self.app(request)


@dataclass
class Sandbox:
    app: NexudusApp
    server: Server
    http: httpx.Client
    password: str
    clock: Clock
    path: Path

    @property
    def api(self) -> str:
        return self.server.url + "/api"

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(f"{self.api}/{path}", params=params, auth=(USERNAME, self.password))

    def records(self, path: str, **params: Any) -> list[dict[str, Any]]:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return jsonutil.loads(response.content)["Records"]

    def send(self, method: str, path: str, body: Any) -> httpx.Response:
        return self.http.request(
            method, f"{self.api}/{path}", content=jsonutil.dumps(body), auth=(USERNAME, self.password),
            headers={"Content-Type": "application/json"},
        )


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Server, Dispatch]]:
    dispatch = Dispatch()
    server = Server(dispatch).start()
    yield server, dispatch
    server.stop()


@pytest.fixture
def open_sandbox(served: tuple[Server, Dispatch], tmp_path: Path) -> Iterator[Callable[..., Sandbox]]:
    """Open (or reopen) an app on a SQLite file, seed it if empty and serve it."""
    server, dispatch = served
    opened: list[NexudusApp] = []
    password, clock = secrets.token_urlsafe(16), Clock()
    http = httpx.Client(timeout=10)

    def open_(seed: NexudusSeed | None = None, path: Path | None = None) -> Sandbox:
        path = path or tmp_path / "nexudus.sqlite"
        app = NexudusApp(path, username=USERNAME, password=password, clock=clock)
        app.load_seed(seed or small_seed())
        opened.append(app)
        dispatch.app = app
        return Sandbox(app, server, http, password, clock, path)

    yield open_
    http.close()
    dispatch.app = None
    for app in opened:
        app.store.close()


@pytest.fixture
def sandbox(open_sandbox: Callable[..., Sandbox]) -> Sandbox:
    return open_sandbox()


def token(sb: Sandbox, **form: str) -> httpx.Response:
    data = {"grant_type": "password", "username": USERNAME, "password": sb.password, **form}
    return sb.http.post(f"{sb.api}/token", data=data)


def ids(records: list[dict[str, Any]]) -> list[int]:
    return [r["Id"] for r in records]


# --------------------------------------------------------------------------- auth


def test_password_grant_gives_a_bearer_token_that_reads_the_api(sandbox: Sandbox) -> None:
    answer = token(sandbox)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600 and body["refresh_token"]
    listed = sandbox.http.get(f"{sandbox.api}/sys/businesses", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert listed.status_code == 200
    assert [b["Name"] for b in listed.json()["Records"]] == ["Hive Central", "Hive Docks"]


def test_refresh_grant_rotates_the_refresh_token(sandbox: Sandbox) -> None:
    first = token(sandbox, client_id="recon").json()
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "recon"}
    second = sandbox.http.post(f"{sandbox.api}/token", data=refresh)
    assert second.status_code == 200
    assert second.json()["access_token"] != first["access_token"]
    reused = sandbox.http.post(f"{sandbox.api}/token", data=refresh)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_refresh_with_another_client_id_is_refused(sandbox: Sandbox) -> None:
    first = token(sandbox, client_id="recon").json()
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "someone-else"}
    answer = sandbox.http.post(f"{sandbox.api}/token", data=refresh)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_a_json_token_request_gives_unsupported_grant_type(sandbox: Sandbox) -> None:
    answer = sandbox.http.post(
        f"{sandbox.api}/token", json={"grant_type": "password", "username": USERNAME, "password": sandbox.password}
    )
    assert answer.status_code == 400
    assert answer.json() == {"error": "unsupported_grant_type"}


def test_a_wrong_password_gives_invalid_grant_and_basic_auth_401(sandbox: Sandbox) -> None:
    answer = token(sandbox, password="not-the-password")
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant" and answer.json()["error_description"]
    listed = sandbox.http.get(f"{sandbox.api}/sys/businesses", auth=(USERNAME, "not-the-password"))
    assert listed.status_code == 401


def test_basic_auth_with_the_username_and_password_reads_the_api(sandbox: Sandbox) -> None:
    assert sandbox.get("sys/businesses").status_code == 200
    assert sandbox.http.get(f"{sandbox.api}/sys/businesses").status_code == 401


def test_an_access_token_expires_after_an_hour_on_the_sandbox_clock(sandbox: Sandbox) -> None:
    access = token(sandbox).json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    sandbox.clock.advance(3599)
    assert sandbox.http.get(f"{sandbox.api}/sys/businesses", headers=headers).status_code == 200
    sandbox.clock.advance(2)
    assert sandbox.http.get(f"{sandbox.api}/sys/businesses", headers=headers).status_code == 401


# --------------------------------------------------------------------------- lists


def test_every_list_answers_with_the_documented_envelope(sandbox: Sandbox) -> None:
    for path in (
        "billing/coworkerinvoices", "billing/coworkerinvoicelines", "billing/financialaccounts", "billing/taxrates",
        "sys/businesses", "spaces/coworkers", "billing/coworkerledgerentries",
    ):
        body = sandbox.get(path).json()
        assert list(body) == ENVELOPE_KEYS, path
    body = sandbox.get("billing/coworkerinvoices", size=3, page=2).json()
    assert {k: body[k] for k in ENVELOPE_KEYS[1:]} == {
        "CurrentPage": 2, "CurrentPageSize": 3, "CurrentOrderField": "Id", "CurrentSortDirection": 1,
        "FirstItem": 4, "LastItem": 6, "TotalItems": 7, "TotalPages": 3, "HasNextPage": True, "HasPreviousPage": True,
    }


def test_the_default_page_is_25_records(open_sandbox: Callable[..., Sandbox]) -> None:
    body = open_sandbox(small_seed(extra_invoices=30)).get("billing/coworkerinvoices").json()
    assert body["CurrentPageSize"] == 25 and len(body["Records"]) == 25 and body["TotalPages"] == 2


def test_2500_invoices_page_in_three_pages_of_1000_each_record_once(open_sandbox: Callable[..., Sandbox]) -> None:
    sb = open_sandbox(small_seed(extra_invoices=2493))
    seen: list[int] = []
    pages = 0
    while True:
        pages += 1
        body = jsonutil.loads(sb.get("billing/coworkerinvoices", size=1000, page=pages).content)
        seen += ids(body["Records"])
        if not body["HasNextPage"]:
            break
    assert pages == 3 and body["TotalItems"] == 2500 and body["LastItem"] == 2500
    assert len(seen) == len(set(seen)) == 2500


def test_a_page_size_above_1000_is_capped_at_1000(sandbox: Sandbox) -> None:
    assert sandbox.get("billing/coworkerinvoices", size=5000).json()["CurrentPageSize"] == 1000


def test_filters_match_booleans_ints_and_strings_with_any_property_case(sandbox: Sandbox) -> None:
    assert ids(sandbox.records("billing/coworkerinvoices", CoworkerInvoice_Paid="true")) == [3]
    assert ids(sandbox.records("billing/coworkerinvoices", coworkerinvoice_businessid=DOCKS)) == [4, 5]
    assert ids(sandbox.records("billing/coworkerinvoices", CoworkerInvoice_Business=DOCKS)) == [4, 5]
    assert ids(sandbox.records("billing/coworkerinvoices", CoworkerInvoice_InvoiceNumber="HC-0002")) == [2]
    assert ids(sandbox.records("billing/coworkerinvoices", CoworkerInvoice_CurrencyCode="GBP")) == [1, 2, 3, 4, 5, 6, 7]
    unpaid_final = sandbox.records(
        "billing/coworkerinvoices", CoworkerInvoice_Paid="false", CoworkerInvoice_Draft="false",
        CoworkerInvoice_Void="false", CoworkerInvoice_CreditNote="false",
    )
    assert ids(unpaid_final) == [1, 2, 4]
    assert ids(sandbox.records("billing/financialaccounts", FinancialAccount_BusinessId=CENTRAL)) == [31, 32]


def test_a_filter_value_of_the_wrong_type_is_refused_with_the_error_shape(sandbox: Sandbox) -> None:
    answer = sandbox.get("billing/coworkerinvoices", CoworkerInvoice_Paid="maybe")
    assert answer.status_code == 400
    body = answer.json()
    assert body["WasSuccessful"] is False and body["Errors"][0]["PropertyName"] == "CoworkerInvoice_Paid"


def test_from_and_to_ranges_include_both_ends_on_dates_and_numbers(sandbox: Sandbox) -> None:
    august = sandbox.records(
        "billing/coworkerinvoices", from_CoworkerInvoice_CreatedOn="2026-08-10", to_CoworkerInvoice_CreatedOn="2026-08-31"
    )
    assert ids(august) == [2, 3, 4, 5, 6]
    by_time = sandbox.records("billing/coworkerinvoices", to_CoworkerInvoice_CreatedOn="2026-08-10T08:59:59Z")
    assert ids(by_time) == [1]
    amounts = sandbox.records(
        "billing/coworkerinvoices", from_CoworkerInvoice_TotalAmount="60", to_CoworkerInvoice_TotalAmount="120.00"
    )
    assert ids(amounts) == [1, 3, 4]
    paid_in_september = sandbox.records("billing/coworkerinvoices", from_CoworkerInvoice_PaidOn="2026-09-01")
    assert ids(paid_in_september) == [3]


def test_lines_are_filtered_by_their_invoice_business_and_dates(sandbox: Sandbox) -> None:
    central_august = sandbox.records(
        "billing/coworkerinvoicelines",
        CoworkerInvoiceLine_CoworkerInvoice_BusinessId=CENTRAL,
        from_CoworkerInvoiceLine_CoworkerInvoice_CreatedOn="2026-08-01",
        to_CoworkerInvoiceLine_CoworkerInvoice_CreatedOn="2026-08-31",
    )
    assert ids(central_august) == [11, 21, 22, 31, 61]
    assert ids(sandbox.records("billing/coworkerinvoicelines", CoworkerInvoiceLine_CoworkerInvoice=2)) == [21, 22]
    by_number = sandbox.records("billing/coworkerinvoicelines", CoworkerInvoiceLine_CoworkerInvoice_InvoiceNumber="HD-0001")
    assert ids(by_number) == [41]
    credit_notes = sandbox.records("billing/coworkerinvoicelines", CoworkerInvoiceLine_CoworkerInvoice_CreditNote="true")
    assert ids(credit_notes) == [71]
    assert sandbox.records("billing/coworkerinvoicelines", CoworkerInvoiceLine_FinancialAccountCode="210")[0]["Id"] == 22


def test_order_by_and_dir_accept_both_documented_conventions(sandbox: Sandbox) -> None:
    ascending = ids(sandbox.records("billing/coworkerinvoices", orderBy="TotalAmount", dir=1))
    assert ascending == [6, 5, 3, 4, 1, 2, 7]
    assert ids(sandbox.records("billing/coworkerinvoices", orderBy="TotalAmount", dir=0)) == ascending
    assert ids(sandbox.records("billing/coworkerinvoices", orderBy="TotalAmount", dir=-1)) == ascending[::-1]
    body = sandbox.get("billing/coworkerinvoices", orderBy="totalamount", dir="desc").json()
    assert body["CurrentOrderField"] == "TotalAmount" and body["CurrentSortDirection"] == -1


def test_money_goes_out_with_its_exact_digits(sandbox: Sandbox) -> None:
    record = sandbox.records("billing/coworkerinvoices", CoworkerInvoice_InvoiceNumber="HD-0001")[0]
    assert record["TotalAmount"] == Decimal("99.99") and record["TaxAmount"] == Decimal("16.66")


def test_an_invoice_is_read_by_id_and_an_unknown_id_is_404(sandbox: Sandbox) -> None:
    answer = sandbox.get("billing/coworkerinvoices/4")
    assert answer.status_code == 200 and answer.json()["InvoiceNumber"] == "HD-0001"
    assert sandbox.get("billing/coworkerinvoices/999").status_code == 404
    assert sandbox.get("billing/coworkerinvoices/abc").status_code == 404


def test_an_unknown_path_is_404_and_a_wrong_method_405(sandbox: Sandbox) -> None:
    assert sandbox.get("billing/nothing").status_code == 404
    assert sandbox.send("DELETE", "billing/coworkerinvoices", {}).status_code == 405


# --------------------------------------------------------------------------- writes


def test_put_changes_writable_fields_and_from_updated_on_finds_the_change(sandbox: Sandbox) -> None:
    before = _iso_now(sandbox.clock)
    answer = sandbox.send("PUT", "billing/coworkerinvoices", {"Id": 2, "SystemId": "xero:INV-0042", "PurchaseOrder": "PO-7"})
    assert answer.status_code == 200
    result = answer.json()
    assert result["WasSuccessful"] is True and result["Value"] == {"Id": 2} and result["Status"] == 200
    assert set(result) == {
        "Status", "Message", "Value", "OpenInDialog", "OpenInWindow", "RedirectURL", "JavaScript", "UpdatedOn",
        "UpdatedBy", "Errors", "WasSuccessful",
    }
    changed = sandbox.records("billing/coworkerinvoices", from_CoworkerInvoice_UpdatedOn=before)
    assert ids(changed) == [2]
    assert changed[0]["SystemId"] == "xero:INV-0042" and changed[0]["PurchaseOrder"] == "PO-7"


def test_put_refuses_a_changed_status_field_but_accepts_it_unchanged(sandbox: Sandbox) -> None:
    refused = sandbox.send("PUT", "billing/coworkerinvoices", {"Id": 1, "Paid": True, "SystemId": "x"})
    assert refused.status_code == 400
    body = refused.json()
    assert body["WasSuccessful"] is False and body["Status"] == 400
    assert [e["PropertyName"] for e in body["Errors"]] == ["Paid"]
    assert sandbox.records("billing/coworkerinvoices", CoworkerInvoice_Id=1)[0]["SystemId"] is None  # nothing applied
    whole = jsonutil.loads(sandbox.get("billing/coworkerinvoices/1").content)
    whole["Description"] = "Hot desk, August"
    assert sandbox.send("PUT", "billing/coworkerinvoices", whole).status_code == 200
    assert sandbox.send("PUT", "billing/coworkerinvoices", {"Id": 999, "SystemId": "x"}).status_code == 404


def test_put_refuses_a_paid_on_that_is_not_a_date(sandbox: Sandbox) -> None:
    answer = sandbox.send("PUT", "billing/coworkerinvoices", {"Id": 1, "PaidOn": "last tuesday"})
    assert answer.status_code == 400 and answer.json()["Errors"][0]["PropertyName"] == "PaidOn"


def payment(invoice_id: int, credit: str, **fields: Any) -> dict[str, Any]:
    body = {
        "BusinessId": CENTRAL, "CoworkerId": ADA, "CoworkerInvoiceId": invoice_id, "Description": "Bank transfer",
        "Code": "BACS", "Credit": Decimal(credit),
    }
    body.update(fields)
    return body


def test_a_ledger_entry_for_the_full_amount_marks_the_invoice_paid(sandbox: Sandbox) -> None:
    answer = sandbox.send("POST", "billing/coworkerledgerentries", payment(1, "120.00", Date="2026-08-20"))
    assert answer.status_code == 200 and answer.json()["WasSuccessful"] is True
    entry_id = answer.json()["Value"]["Id"]
    paid = jsonutil.loads(sandbox.get("billing/coworkerinvoices/1").content)
    assert paid["Paid"] is True and paid["PaidAmount"] == Decimal("120.00") and paid["PaidOn"] == "2026-08-20T00:00:00Z"
    entries = sandbox.records("billing/coworkerledgerentries", CoworkerLedgerEntry_CoworkerInvoiceId=1)
    assert ids(entries) == [entry_id] and entries[0]["Credit"] == Decimal("120.00")


def test_a_part_payment_leaves_the_invoice_unpaid_and_paying_beyond_due_is_refused(sandbox: Sandbox) -> None:
    first = sandbox.send("POST", "billing/coworkerledgerentries", payment(2, "100.00"))
    assert first.status_code == 200
    part = jsonutil.loads(sandbox.get("billing/coworkerinvoices/2").content)
    assert part["Paid"] is False and part["PaidAmount"] == Decimal("100.00") and part["PaidOn"] is None
    beyond = sandbox.send("POST", "billing/coworkerledgerentries", payment(2, "140.01"))
    assert beyond.status_code == 400
    errors = beyond.json()["Errors"]
    assert [e["PropertyName"] for e in errors] == ["Credit"] and "140.00" in errors[0]["Message"]
    rest = sandbox.send("POST", "billing/coworkerledgerentries", payment(2, "140.00"))
    assert rest.status_code == 200
    assert jsonutil.loads(sandbox.get("billing/coworkerinvoices/2").content)["Paid"] is True
    again = sandbox.send("POST", "billing/coworkerledgerentries", payment(2, "1.00"))
    assert again.status_code == 400 and again.json()["Errors"][0]["PropertyName"] == "CoworkerInvoiceId"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (payment(6, "30.00"), "CoworkerInvoiceId"),  # void
        (payment(5, "10.00", BusinessId=DOCKS, CoworkerId=GRACE), "CoworkerInvoiceId"),  # draft
        (payment(7, "10.00"), "CoworkerInvoiceId"),  # credit note
        (payment(999, "10.00"), "CoworkerInvoiceId"),  # unknown
        (payment(1, "10.00", CoworkerId=GRACE), "CoworkerId"),  # not hers
        (payment(1, "10.00", BusinessId=DOCKS), "BusinessId"),  # another location
        (payment(1, "0"), "Credit"),
        (payment(1, "10.00", Description=""), "Description"),
    ],
)
def test_a_ledger_entry_is_refused_naming_the_field(sandbox: Sandbox, body: dict[str, Any], field: str) -> None:
    answer = sandbox.send("POST", "billing/coworkerledgerentries", body)
    assert answer.status_code == 400
    assert field in [e["PropertyName"] for e in answer.json()["Errors"]]
    assert sandbox.records("billing/coworkerledgerentries") == []


def test_state_and_tokens_survive_reopening_the_app_on_the_same_file(open_sandbox: Callable[..., Sandbox]) -> None:
    first = open_sandbox()
    access = token(first).json()["access_token"]
    assert first.send("POST", "billing/coworkerledgerentries", payment(1, "120.00")).status_code == 200
    first.app.store.close()

    reopened = open_sandbox(path=first.path)  # load_seed is a no-op on a file that has data
    assert reopened.app.load_seed(small_seed()) is False
    answer = reopened.http.get(
        f"{reopened.api}/billing/coworkerinvoices/1", headers={"Authorization": f"Bearer {access}"}
    )
    assert answer.status_code == 200 and answer.json()["Paid"] is True
    assert len(reopened.records("billing/coworkerledgerentries")) == 1


# --------------------------------------------------------------------------- faults and limits


def test_fail_next_answers_the_next_requests_with_the_status_then_recovers(sandbox: Sandbox) -> None:
    sandbox.app.faults.fail_next(2, status=503)
    assert [sandbox.get("sys/businesses").status_code for _ in range(3)] == [503, 503, 200]
    sandbox.app.faults.fail_next(1, status=429, retry_after=7)
    limited = sandbox.get("sys/businesses")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"


def test_drop_next_closes_the_connection_without_an_answer(sandbox: Sandbox) -> None:
    sandbox.app.faults.drop_next(1)
    with pytest.raises(httpx.RemoteProtocolError):
        sandbox.get("sys/businesses")
    assert sandbox.get("sys/businesses").status_code == 200


def test_the_optional_rate_limit_answers_429_with_retry_after(sandbox: Sandbox) -> None:
    sandbox.app.rate_limit_per_minute = 3
    codes = [sandbox.get("sys/businesses").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert int(sandbox.get("sys/businesses").headers["Retry-After"]) >= 1
    sandbox.clock.advance(61)
    assert sandbox.get("sys/businesses").status_code == 200


def test_the_demo_seed_loads_and_pages(open_sandbox: Callable[..., Sandbox]) -> None:
    from recon.sandbox.seed import generate

    try:
        demo = generate()
    except NotImplementedError:
        pytest.skip("recon.sandbox.seed.generate is not written yet")
    sb = open_sandbox(demo.nexudus)
    invoices = sb.get("billing/coworkerinvoices", size=1000)
    assert invoices.status_code == 200, "the demo username is not the sandbox's: " + demo.nexudus.username
    assert invoices.json()["TotalItems"] == len(demo.nexudus.invoices) > 0
    lines = sb.get("billing/coworkerinvoicelines", size=1).json()
    assert lines["TotalItems"] == len(demo.nexudus.invoice_lines)


def _iso_now(clock: Clock) -> str:
    """Sandbox time now, after moving the clock past every seeded date (real time may be earlier)."""
    clock.advance(max(0.0, (datetime(2027, 1, 1, tzinfo=UTC) - clock.now()).total_seconds()))
    return clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
