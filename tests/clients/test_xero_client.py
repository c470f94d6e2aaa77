"""The XeroClient against the embedded sandbox: tenants, DataFrames, chunked ids, call counting,
errors.

Over real HTTP on loopback; the same client code talks to the real Xero.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from support import fast_retry, xero_config

from recon.clients.tokens import TokenStore
from recon.clients.xero import (
    IDS_PER_CALL,
    XeroClient,
    json_text,
    parse_xero_date,
    xero_day_texts,
    xero_time_texts,
)
from recon.errors import ApiRejected, AuthError, ClientError, NotFound, WrongOrganisation
from recon.sandbox import Sandbox


def invoice(number: str, amount: str = "100.00", **fields: Any) -> dict[str, Any]:
    return {
        "Type": "ACCREC",
        "Contact": {"Name": "Client Test Member"},
        "Date": "2026-08-03",
        "DueDate": "2026-08-17",
        "InvoiceNumber": number,
        "Status": "AUTHORISED",
        "LineItems": [
            {
                "Description": "Hot desk",
                "Quantity": Decimal("1"),
                "UnitAmount": Decimal(amount),
                "AccountCode": "4000",
            }
        ],
        **fields,
    }


class Recording(httpx.BaseTransport):
    """Real HTTP to the sandbox, keeping every request sent; with ``strip_pagination`` the answers
    lose their ``pagination`` object, as an answer from an API version without one would."""

    def __init__(self, *, strip_pagination: bool = False) -> None:
        self.inner = httpx.HTTPTransport()
        self.strip_pagination = strip_pagination
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.inner.handle_request(request)
        if not self.strip_pagination or "/api.xro/" not in str(request.url):
            return response
        body = XeroClient.parse(httpx.Response(200, content=response.read()))
        if isinstance(body, dict):
            body.pop("pagination", None)
        headers = {
            k: v for k, v in response.headers.items() if k.lower() not in ("content-length",)
        }
        return httpx.Response(
            response.status_code, headers=headers, content=json_text(body).encode()
        )

    def close(self) -> None:
        self.inner.close()

    def writes(self) -> list[httpx.Request]:
        """The requests that were not GETs, token requests left out."""
        return [r for r in self.requests if r.method != "GET" and "/api.xro/" in str(r.url)]


def recording_client(box: Sandbox, folder: Path, transport: Recording) -> XeroClient:
    return XeroClient(
        xero_config(box),
        token_store=TokenStore(folder),
        retry=fast_retry(),
        transport=transport,
    )


def web_app(box: Sandbox) -> str:
    return next(name for name, app in box.xero_apps.items() if app["grant"] == "authorization_code")


def no_floats(frame: pd.DataFrame) -> None:
    """No float column and no float value, except pandas' own missing marker in a text column."""
    for column in frame.columns:
        series = frame[column]
        assert series.dtype.kind != "f", f"{column} is {series.dtype}"
        if isinstance(series.dtype, pd.StringDtype):
            continue  # a missing text value is the dtype's NA marker, not an amount
        for value in series:
            assert not isinstance(value, float), f"{column} holds the float {value!r}"


# ---- tenants --------------------------------------------------------------------------------
def test_the_organisation_is_chosen_by_name(sandbox: Sandbox, tmp_path: Path) -> None:
    name = sandbox.xero.books.org(sandbox.xero_tenant_id)["Name"]
    config = xero_config(sandbox, tenant_id=None, tenant_name=name.upper())
    with XeroClient(config, token_store=TokenStore(tmp_path / "t"), retry=fast_retry()) as client:
        assert client.tenant_id is None
        org = client.fetch_organisation()
        assert client.tenant_id == sandbox.xero_tenant_id
        assert org["Name"] == name
        assert client.calls == 2, "one GET /connections to find the tenant, one GET /Organisation"


def test_the_web_app_picks_each_of_its_organisations_by_name(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    app = sandbox.xero_apps[web_app(sandbox)]
    with XeroClient(
        xero_config(sandbox, web_app(sandbox), tenant_id=None),
        token_store=TokenStore(tmp_path / "t"),
        retry=fast_retry(),
    ) as client:
        client.finish_login(
            httpx.get(client.authorization_url(), follow_redirects=False).headers["Location"]
        )
        with pytest.raises(WrongOrganisation, match="several"):
            client.select_tenant()
        for tenant in app["tenant_ids"]:
            name = sandbox.xero.books.org(tenant)["Name"]
            assert client.select_tenant(name=name) == tenant
            assert client.fetch_organisation()["OrganisationID"] == tenant


def test_an_unknown_organisation_name_is_a_wrong_organisation_naming_the_connected_ones(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config = xero_config(sandbox, tenant_id=None, tenant_name="No Such Coworking Ltd")
    with (
        XeroClient(config, token_store=TokenStore(tmp_path / "t"), retry=fast_retry()) as client,
        pytest.raises(WrongOrganisation) as err,
    ):
        client.fetch_accounts()
    assert "No Such Coworking Ltd" in str(err.value)
    assert sandbox.xero_tenant_id in str(err.value)


# ---- DataFrames ------------------------------------------------------------------------------
def test_accounts_come_as_a_frame_with_text_codes_and_no_floats(xero: XeroClient) -> None:
    accounts = xero.fetch_accounts()
    assert {"AccountID", "Code", "Name", "Type", "Class", "Status", "TaxType"} <= set(
        accounts.columns
    )
    assert len(accounts) > 0
    by_code = accounts.set_index("Code")
    assert by_code.loc["4000", "TaxType"] == "OUTPUT2"
    assert by_code.loc["4000", "Class"] == "REVENUE"
    assert by_code.loc["090", "Type"] == "BANK"
    assert all(isinstance(c, str) for c in accounts["Code"]), "codes such as 090 stay text"
    no_floats(accounts)
    active = xero.fetch_accounts(where='Status=="ACTIVE" AND Type=="BANK"')
    assert set(active["Type"]) == {"BANK"} and "090" in set(active["Code"])


def test_tax_rates_come_as_a_frame_with_decimal_rates(xero: XeroClient) -> None:
    rates = xero.fetch_tax_rates()
    assert len(rates) > 0
    for value in list(rates["EffectiveRate"]) + list(rates["DisplayTaxRate"].dropna()):
        assert isinstance(value, Decimal), repr(value)
    assert rates.set_index("TaxType").loc["OUTPUT2", "EffectiveRate"] == Decimal("20")
    no_floats(rates)


def test_invoices_come_as_a_frame_with_decimal_money_and_utc_dates(xero: XeroClient) -> None:
    pfx = "C" + uuid.uuid4().hex[:8]
    made = xero.create_invoices(
        [invoice(f"{pfx}-1", "3.33"), invoice(f"{pfx}-2", "0.10", CurrencyCode=None)]
    )
    assert [m["StatusAttributeString"] for m in made] == ["OK", "OK"]
    xero.create_payments(
        [
            {
                "Invoice": {"InvoiceID": made[1]["InvoiceID"]},
                "Account": {"Code": "090"},
                "Date": "2026-08-20",
                "Amount": Decimal("0.12"),
            }
        ]
    )
    frame = xero.fetch_invoices(invoice_numbers=[f"{pfx}-1", f"{pfx}-2"], order="InvoiceNumber")
    assert list(frame["InvoiceNumber"]) == [f"{pfx}-1", f"{pfx}-2"]
    for column in (
        "SubTotal",
        "TotalTax",
        "Total",
        "AmountDue",
        "AmountPaid",
        "AmountCredited",
        "CurrencyRate",
    ):
        assert all(isinstance(v, Decimal) for v in frame[column]), column
    assert list(frame["Total"]) == [Decimal("4.00"), Decimal("0.12")]
    assert list(frame["TotalTax"]) == [Decimal("0.67"), Decimal("0.02")]
    assert sum(frame["Total"]) == Decimal("4.12"), "exact sums, no float drift"
    assert list(frame["Status"]) == ["AUTHORISED", "PAID"]
    for column in ("Date", "DueDate", "FullyPaidOnDate", "UpdatedDateUTC"):
        assert isinstance(frame[column].dtype, pd.DatetimeTZDtype), column
        assert str(frame[column].dt.tz) == "UTC"
    assert frame["Date"].iloc[0] == pd.Timestamp("2026-08-03", tz="UTC")
    assert frame["DueDate"].iloc[0] == pd.Timestamp("2026-08-17", tz="UTC")
    assert pd.isna(frame["FullyPaidOnDate"].iloc[0])
    assert frame["FullyPaidOnDate"].iloc[1] == pd.Timestamp("2026-08-20", tz="UTC")
    assert (frame["ContactName"] == "Client Test Member").all()
    no_floats(frame.drop(columns=["Date", "DueDate", "FullyPaidOnDate", "UpdatedDateUTC"]))


def test_parse_xero_date_reads_ms_json_and_iso_as_utc() -> None:
    assert (
        parse_xero_date("/Date(1539993600000+0000)/")
        == pd.Timestamp("2018-10-20", tz="UTC").to_pydatetime()
    )
    assert parse_xero_date("/Date(1552326816230)/").tzinfo is not None
    assert (
        parse_xero_date("2019-11-14T18:10:38Z")
        == pd.Timestamp("2019-11-14 18:10:38", tz="UTC").to_pydatetime()
    )
    assert parse_xero_date("2018-10-20T00:00:00").tzinfo is not None
    assert parse_xero_date(None) is None and parse_xero_date("") is None


@pytest.mark.parametrize(
    "value",
    [
        "/Date(1793613637037+0000)/",  # milliseconds: written as microseconds
        "/Date(1793613637000)/",  # whole seconds: no fraction, as isoformat() writes them
        "/Date(-1500+1300)/",  # before 1970, with an offset Xero's ms ignore
        "/Date(0)/",
        "2026-11-02T10:00:00+13:00",  # ISO text keeps its offset
        "2026-11-02T10:00:00.5Z",
        "2026-11-02",
        None,
        "",
    ],
)
def test_xero_time_and_day_texts_are_the_iso_texts_of_parse_xero_date(value: str | None) -> None:
    """The column-wise reading gives, text for text, what the ledger wrote from
    ``parse_xero_date`` one date at a time."""
    when = parse_xero_date(value)
    expected = (when.isoformat(), when.date().isoformat()) if when else (None, None)
    values = [value, "/Date(1539993600000+0000)/"]
    stamps, days = xero_time_texts(values), xero_day_texts(values)
    assert (stamps[0], days[0]) == expected
    assert (stamps[1], days[1]) == ("2018-10-20T00:00:00+00:00", "2018-10-20")


@pytest.mark.parametrize("texts", [xero_time_texts, xero_day_texts])
def test_xero_date_texts_refuse_a_text_that_is_no_date_as_parse_xero_date_does(
    texts: Callable[[list[str]], list[str | None]],
) -> None:
    with pytest.raises(ValueError):
        parse_xero_date("/Date(1539993600000+0000)/ ")
    with pytest.raises(ValueError):
        texts(["/Date(1539993600000+0000)/", "/Date(1539993600000+0000)/ "])


# ---- ids in chunks, calls ------------------------------------------------------------------------
def test_iter_invoices_with_120_ids_uses_three_calls(xero: XeroClient) -> None:
    pfx = "C" + uuid.uuid4().hex[:8]
    ids: list[str] = []
    for start in range(0, 120, 50):
        made = xero.create_invoices(
            [invoice(f"{pfx}-{i:03d}") for i in range(start, min(start + 50, 120))]
        )
        assert all(m["StatusAttributeString"] == "OK" for m in made)
        ids.extend(m["InvoiceID"] for m in made)
    before = xero.calls
    got = list(xero.iter_invoices(ids=ids))
    assert xero.calls - before == math.ceil(120 / IDS_PER_CALL) == 3
    assert sorted(i["InvoiceID"] for i in got) == sorted(ids)
    assert all(i["LineItems"] for i in got), "id lookups are paged, so they carry line items"


def test_calls_counts_every_attempt_including_retries(sandbox: Sandbox, xero: XeroClient) -> None:
    assert xero.calls == 0
    xero.fetch_organisation()
    assert xero.calls == 1
    xero.fetch_currencies()
    xero.fetch_tax_rates()
    assert xero.calls == 3
    list(xero.iter_contacts())
    assert xero.calls >= 4


# ---- errors --------------------------------------------------------------------------------------
def test_a_refused_request_is_api_rejected_with_xeros_messages(xero: XeroClient) -> None:
    with pytest.raises(ApiRejected) as err:
        xero.fetch_invoices(where='Status=="DRAFT" AND')
    assert err.value.messages == ["Expression expected"]
    assert err.value.status == 400
    assert err.value.service == "xero"
    assert err.value.detail["Type"] == "QueryParseException"

    (made,) = xero.create_invoices([invoice("C" + uuid.uuid4().hex[:8])])
    xero.update_invoice(made["InvoiceID"], {"Status": "VOIDED"})
    with pytest.raises(ApiRejected) as err:
        xero.update_invoice(made["InvoiceID"], {"Status": "AUTHORISED"})
    assert err.value.messages == ["Invoice not of valid status for modification"]
    assert "Invoice not of valid status for modification" in str(err.value)


def test_an_unknown_record_is_not_found(xero: XeroClient) -> None:
    with pytest.raises(NotFound) as err:
        xero.get_invoice(str(uuid.uuid4()))
    assert err.value.status == 404
    assert err.value.detail == "The resource you're looking for cannot be found"


def test_an_organisation_the_app_is_not_connected_to_is_wrong_organisation(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    connected = {t for app in sandbox.xero_apps.values() for t in app["tenant_ids"]}
    unconnected = [t for t in sandbox.xero.books.tenants() if t not in connected]
    sibling = [
        t for t in sandbox.xero.books.tenants() if t in connected and t != sandbox.xero_tenant_id
    ]
    for tenant in [*unconnected, *sibling, str(uuid.uuid4())]:
        with (
            XeroClient(
                xero_config(sandbox, tenant_id=tenant),
                token_store=TokenStore(tmp_path / "t"),
                retry=fast_retry(),
            ) as client,
            pytest.raises(WrongOrganisation) as err,
        ):
            client.fetch_invoices()
        assert err.value.status == 403
        assert isinstance(err.value, AuthError), "WrongOrganisation is an AuthError"
        assert tenant in str(err.value)


def test_bad_credentials_are_an_auth_error(sandbox: Sandbox, tmp_path: Path) -> None:
    bad_id = xero_config(sandbox, client_id="NO-SUCH-APP")
    bad_secret = xero_config(sandbox, client_secret="wrong")
    for config in (bad_id, bad_secret):
        with (
            XeroClient(
                config, token_store=TokenStore(tmp_path / "t"), retry=fast_retry()
            ) as client,
            pytest.raises(AuthError) as err,
        ):
            client.fetch_organisation()
        assert not isinstance(err.value, WrongOrganisation)
        assert isinstance(err.value, ClientError)
        assert "wrong" not in str(err.value), "the secret is never echoed"


def test_a_web_app_without_a_sign_in_says_so(sandbox: Sandbox, tmp_path: Path) -> None:
    with (
        XeroClient(
            xero_config(sandbox, web_app(sandbox)),
            token_store=TokenStore(tmp_path / "t"),
            retry=fast_retry(),
        ) as client,
        pytest.raises(AuthError, match="sign-in"),
    ):
        client.fetch_organisation()


def test_a_refresh_token_used_elsewhere_is_an_auth_error_and_the_stale_token_is_dropped(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = tmp_path / "t"
    name = web_app(sandbox)
    app = sandbox.xero_apps[name]
    with XeroClient(
        xero_config(sandbox, name), token_store=TokenStore(folder), retry=fast_retry()
    ) as client:
        client.finish_login(
            httpx.get(client.authorization_url(), follow_redirects=False).headers["Location"]
        )
        (saved,) = [TokenStore(folder).load(f.stem) for f in folder.glob("*.json")]
        stolen = saved["refresh_token"]
        # Another process refreshes first: our refresh token is now spent.
        r = httpx.post(
            sandbox.xero_token_url,
            data={"grant_type": "refresh_token", "refresh_token": stolen},
            auth=(app["client_id"], app["client_secret"]),
        )
        assert r.status_code == 200
        with pytest.raises(AuthError, match="invalid_grant"):
            client.refresh()
    assert list(folder.glob("*.json")) == [], (
        "a dead token set is removed so the next run asks to sign in"
    )


# ---- exact money on the wire, four-place unit amounts, page counts ------------------------------
def test_json_text_writes_decimals_digit_for_digit_and_refuses_what_is_no_json_number() -> None:
    assert json_text({"a": Decimal("0.1") + Decimal("0.2")}) == '{"a":0.3}'
    assert json_text([Decimal("100000000000000.01"), Decimal("-0.50"), Decimal("1E+2")]) == (
        "[100000000000000.01,-0.50,100]"
    )
    assert json_text({"n": None, "b": True, "q": 3, "s": "Café"}) == (
        '{"n":null,"b":true,"q":3,"s":"Caf\\u00e9"}'
    )
    for bad in (Decimal("NaN"), Decimal("Infinity"), object()):
        with pytest.raises(TypeError):
            json_text({"x": bad})


def test_amounts_reach_xero_digit_for_digit_with_no_float_on_the_way(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """0.1 + 0.2 goes out as 0.3 and a 10^14 amount keeps its cents (a float would send
    100000000000000.02 for 100000000000000.01); Xero's totals are then exact (reference §10)."""
    wire = Recording()
    number = "C" + uuid.uuid4().hex[:8]
    big = Decimal("100000000000000.01")
    body = invoice(number, "0", LineAmountTypes="NoTax")
    body["LineItems"] = [
        {**body["LineItems"][0], "UnitAmount": Decimal("0.1") + Decimal("0.2")},
        {**body["LineItems"][0], "UnitAmount": big},
    ]
    with recording_client(sandbox, tmp_path / "t", wire) as client:
        (made,) = client.create_invoices([body])
        assert made["StatusAttributeString"] == "OK", made
        assert made["Total"] == Decimal("100000000000000.31")
        assert [line["UnitAmount"] for line in client.get_invoice(number)["LineItems"]] == [
            Decimal("0.3"),
            big,
        ]
    (sent,) = wire.writes()
    assert b'"UnitAmount":0.3,' in sent.content
    assert b'"UnitAmount":100000000000000.01,' in sent.content


def test_every_invoice_and_credit_note_write_and_invoice_read_sends_unitdp_4(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Reference §3.1/§3.3: UnitAmount has two places unless the call sends unitdp=4."""
    wire = Recording()
    number = "C" + uuid.uuid4().hex[:8]
    with recording_client(sandbox, tmp_path / "t", wire) as client:
        (made,) = client.create_invoices([invoice(number)], idempotency_key=f"k-{number}")
        client.save_invoices([invoice(f"{number}-2")])
        client.update_invoice(made["InvoiceID"], {"Reference": "edited"})
        client.create_credit_notes(
            [
                {
                    "Type": "ACCRECCREDIT",
                    "Contact": {"Name": "Client Test Member"},
                    "Date": "2026-08-03",
                    "CreditNoteNumber": f"{number}-CN",
                    "Status": "AUTHORISED",
                    "LineItems": invoice(number)["LineItems"],
                }
            ]
        )
        client.create_contacts([{"Name": f"No unitdp {number}"}])
        list(client.iter_invoices(invoice_numbers=[number]))
        client.get_invoice(made["InvoiceID"])
        list(client.iter_credit_notes(numbers=[f"{number}-CN"]))
    writes = {(r.method, r.url.path.rsplit("/api.xro/2.0", 1)[1]): r for r in wire.writes()}
    invoice_path = f"/Invoices/{made['InvoiceID']}"
    assert set(writes) == {
        ("PUT", "/Invoices"),
        ("POST", "/Invoices"),
        ("POST", invoice_path),
        ("PUT", "/CreditNotes"),
        ("PUT", "/Contacts"),
    }
    for (method, path), request in writes.items():
        expected = None if path == "/Contacts" else "4"
        assert request.url.params.get("unitdp") == expected, (method, path)
    reads = [r for r in wire.requests if r.method == "GET" and "/api.xro/" in str(r.url)]
    assert reads and all(r.url.params.get("unitdp") == "4" for r in reads)


def test_a_four_place_unit_amount_is_booked_and_read_back_to_four_places(xero: XeroClient) -> None:
    """3 x 3.3333 is 10.00 with unitdp=4 (9.99 if Xero rounded the unit amount to 3.33 first)."""
    number = "C" + uuid.uuid4().hex[:8]
    body = invoice(number)
    body["LineItems"][0].update(Quantity=Decimal("3"), UnitAmount=Decimal("3.3333"))
    (made,) = xero.create_invoices([body])
    assert made["StatusAttributeString"] == "OK", made
    assert (made["SubTotal"], made["TotalTax"], made["Total"]) == (
        Decimal("10.00"),
        Decimal("2.00"),
        Decimal("12.00"),
    )
    (line,) = xero.get_invoice(made["InvoiceID"])["LineItems"]
    assert line["UnitAmount"] == Decimal("3.3333")
    (listed,) = xero.iter_invoices(invoice_numbers=[number])
    assert listed["LineItems"][0]["UnitAmount"] == Decimal("3.3333")


def _four_invoices(client: XeroClient) -> list[str]:
    numbers = [f"P{uuid.uuid4().hex[:8]}-{i}" for i in range(4)]
    made = client.create_invoices([invoice(n) for n in numbers])
    assert all(m["StatusAttributeString"] == "OK" for m in made)
    return numbers


def test_paged_reads_stop_on_the_answers_page_count_not_on_an_empty_page(
    xero: XeroClient,
) -> None:
    """Reference §3.4: the page object says how many pages there are; 4 invoices by 2 are 2 calls,
    where stopping only on a short page would ask for an empty third."""
    numbers = _four_invoices(xero)
    before = xero.calls
    got = list(xero.iter_invoices(invoice_numbers=numbers, page_size=2))
    assert xero.calls - before == 2
    assert sorted(i["InvoiceNumber"] for i in got) == sorted(numbers)
    before = xero.calls
    assert list(xero.iter_invoices(invoice_numbers=["NO-SUCH-NUMBER"], page_size=2)) == []
    assert xero.calls - before == 1


def test_the_first_answer_tells_how_many_records_all_pages_hold_and_a_reader_may_stop_there(
    xero: XeroClient,
) -> None:
    """Reference §1: ``pagination.itemCount``. The count comes with the first page, before it is
    read; a reader that stops after it costs one call, whatever the count."""
    numbers = _four_invoices(xero)
    where = " OR ".join(f'InvoiceNumber=="{n}"' for n in numbers)
    counts: list[int] = []
    before = xero.calls
    pages = xero.iter_invoices(where=where, page_size=2, item_count=counts.append)
    first = [next(pages), next(pages)]
    pages.close()
    assert counts == [4] and xero.calls - before == 1
    assert {i["InvoiceNumber"] for i in first} <= set(numbers)
    notes: list[int] = []
    listed = list(xero.iter_credit_notes(where='Type=="ACCRECCREDIT"', item_count=notes.append))
    assert notes == [len(listed)]


def test_without_a_page_object_paging_stops_on_the_first_short_page(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    wire = Recording(strip_pagination=True)
    with recording_client(sandbox, tmp_path / "t", wire) as client:
        numbers = _four_invoices(client)
        before = client.calls
        got = list(client.iter_invoices(invoice_numbers=numbers, page_size=2))
        assert client.calls - before == 3  # two full pages, then an empty one
        assert sorted(i["InvoiceNumber"] for i in got) == sorted(numbers)
        before = client.calls
        assert len(list(client.iter_invoices(invoice_numbers=numbers, page_size=3))) == 4
        assert client.calls - before == 2
    answers = [r for r in wire.requests if r.method == "GET" and "/Invoices" in r.url.path]
    assert answers, "the reads went through the stripping transport"


class _CountingTransport(httpx.HTTPTransport):
    """Real HTTP, counting the calls to each path (thread-safe)."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.paths.append(request.url.path)
        return super().handle_request(request)


def test_threads_sharing_a_client_whose_token_expired_refresh_it_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The push's worker threads share one client. A refresh token works once (xero-api.md §11),
    so when the access token expires under them exactly one refresh must be sent; the others
    use its result (a second refresh with the spent token would be refused, §13)."""
    folder = tmp_path / "t"
    config = xero_config(sandbox, web_app(sandbox))
    with XeroClient(config, token_store=TokenStore(folder), retry=fast_retry()) as first:
        first.finish_login(
            httpx.get(first.authorization_url(), follow_redirects=False).headers["Location"]
        )
    store = TokenStore(folder)
    (path,) = folder.glob("*.json")
    saved = store.load(path.stem)
    assert saved is not None
    store.save(path.stem, {**saved, "expires_at": int(time.time()) - 5})  # expired, seen locally
    transport = _CountingTransport()
    with XeroClient(config, token_store=store, retry=fast_retry(), transport=transport) as client:
        with ThreadPoolExecutor(5) as pool:
            answers = list(pool.map(lambda _: client.connections(), range(5)))
        assert all(answers), "every thread's call went through"
    token_calls = [p for p in transport.paths if p == httpx.URL(config.token_url).path]
    assert len(token_calls) == 1, transport.paths
    assert json.loads(path.read_text("utf-8"))["refresh_token"] != saved["refresh_token"]
