"""The demo business as the Nexudus sandbox serves it over HTTP, checked against nexudus.md.

Dates and zones (§6), the location and customer records (§7.4), accounts and tax
rates (§7.2, §7.4), Nexudus' own Xero flags (§11), and the two locations far from
London with their own Xero organisations. Each test quotes the section it checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from recon.sandbox import NexudusLimits, RateLimits, Sandbox, jsonutil, start

LONDON, DUBLIN = "Hive Shoreditch", "Hive Dublin Docklands"
MANCHESTER, LEEDS = "Hive Manchester Ancoats", "Hive Leeds Wellington Place"
SINGAPORE, NEW_YORK = "Hive Singapore Raffles", "Hive New York Flatiron"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The demo sandbox, read only here; Nexudus' limits off so reads need no pacing."""
    sandbox = start(
        tmp_path_factory.mktemp("nexudus-demo"), nexudus_limits=NexudusLimits(enabled=False)
    )
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def nx(box: Sandbox) -> Iterator[httpx.Client]:
    client = httpx.Client(
        base_url=box.nexudus_api_url + "/",
        auth=(box.nexudus_username, box.nexudus_password),
        timeout=10,
    )
    yield client
    client.close()


def records(nx: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    answer = nx.get(path, params={"size": 1000, **params})
    assert answer.status_code == 200, answer.text
    body = jsonutil.loads(answer.content)
    assert not body["HasNextPage"]
    return list(body["Records"])


def invoice(nx: httpx.Client, number: str) -> dict[str, Any]:
    (found,) = records(nx, "billing/coworkerinvoices", CoworkerInvoice_InvoiceNumber=number)
    return found


def business(nx: httpx.Client, name: str) -> dict[str, Any]:
    (found,) = [b for b in records(nx, "sys/businesses") if b["Name"] == name]
    return found


# ---- §6 dates and zones


def test_a_london_period_from_1_april_reads_the_previous_evening_in_utc(
    box: Sandbox, nx: httpx.Client
) -> None:
    """§6: "Date-like fields (InvoiceFromDate, InvoiceToDate, SaleDate) hold the UTC instant of
    the location's local midnight: a London period from 1 April 2025 reads
    `2025-03-31T23:00:00Z`" — here the demo's April 2026."""
    found = invoice(nx, box.planted["april_period"][LONDON])
    assert found["InvoiceFromDate"] == "2026-03-31T23:00:00Z"
    assert found["InvoiceToDate"] == "2026-04-29T23:00:00Z"  # local 30 April
    assert found["DueDate"] == "2026-04-14T23:00:00Z"  # local 15 April
    # Created at local 01:30 on 1 April (BST): a real instant, 00:30 UTC.
    assert found["CreatedOn"] == "2026-04-01T00:30:00Z"


def test_singapore_and_new_york_periods_read_their_own_local_midnights(
    box: Sandbox, nx: httpx.Client
) -> None:
    """§6: "whenever the location is ahead of UTC (London in summer, continental Europe,
    Asia-Pacific) the UTC date is a day early"; date-like fields are local midnights in UTC."""
    singapore = invoice(nx, box.planted["april_period"][SINGAPORE])
    assert (singapore["InvoiceFromDate"], singapore["InvoiceToDate"]) == (
        "2026-03-31T16:00:00Z",
        "2026-04-29T16:00:00Z",
    )
    # Issued at local 01:30 on 1 April: in UTC still 31 March.
    assert singapore["CreatedOn"] == "2026-03-31T17:30:00Z"
    new_york = invoice(nx, box.planted["april_period"][NEW_YORK])
    assert (new_york["InvoiceFromDate"], new_york["InvoiceToDate"]) == (
        "2026-04-01T04:00:00Z",
        "2026-04-30T04:00:00Z",
    )
    assert new_york["CreatedOn"] == "2026-04-01T05:30:00Z"


def test_lines_carry_local_midnights_too(box: Sandbox, nx: httpx.Client) -> None:
    """§6: SaleDate holds the UTC instant of the local midnight; §7.2 the line echoes
    `CoworkerInvoiceDueDate` of its invoice."""
    singapore = invoice(nx, box.planted["april_period"][SINGAPORE])
    (line,) = records(
        nx, "billing/coworkerinvoicelines", CoworkerInvoiceLine_CoworkerInvoice=singapore["Id"]
    )
    assert line["SaleDate"] == "2026-03-31T16:00:00Z"
    assert line["CoworkerInvoiceDueDate"] == singapore["DueDate"] == "2026-04-14T16:00:00Z"
    assert line["CoworkerInvoiceInvoiceNumber"] == singapore["InvoiceNumber"]


def test_a_winter_london_date_reads_midnight_utc(box: Sandbox, nx: httpx.Client) -> None:
    """§6: "a November (GMT) one `2024-11-19T00:00:00Z`"."""
    london = business(nx, LONDON)
    november = records(
        nx,
        "billing/coworkerinvoices",
        CoworkerInvoice_Business=london["Id"],
        from_CoworkerInvoice_DueDate="2026-11-01T00:00Z",
    )
    assert november and all(i["DueDate"].endswith("T00:00:00Z") for i in november)
    summer = records(
        nx,
        "billing/coworkerinvoices",
        CoworkerInvoice_Business=london["Id"],
        to_CoworkerInvoice_InvoiceFromDate="2026-10-01T00:00Z",
        from_CoworkerInvoice_InvoiceFromDate="2026-08-01T00:00Z",
    )
    assert summer and all(i["InvoiceFromDate"].endswith("T23:00:00Z") for i in summer)


def test_every_location_has_a_simple_time_zone(box: Sandbox, nx: httpx.Client) -> None:
    """§6 "Location zone: Business.SimpleTimeZoneId → `sys/simpletimezones/{id}` (Windows-style
    Name such as "GMT Standard Time", TimeOffset, UsesSummerTime)"."""
    zones = {z["Id"]: z for z in records(nx, "sys/simpletimezones")}
    assert all(set(z) == {"Id", "Name", "TimeOffset", "UsesSummerTime"} for z in zones.values())
    named = {b["Name"]: zones[b["SimpleTimeZoneId"]]["Name"] for b in records(nx, "sys/businesses")}
    assert named == {
        LONDON: "GMT Standard Time",
        DUBLIN: "GMT Standard Time",
        MANCHESTER: "GMT Standard Time",
        LEEDS: "GMT Standard Time",
        SINGAPORE: "Singapore Standard Time",
        NEW_YORK: "Eastern Standard Time",
    }
    singapore = nx.get(f"sys/simpletimezones/{business(nx, SINGAPORE)['SimpleTimeZoneId']}")
    assert singapore.json()["UsesSummerTime"] is False


# ---- §7.4 records


def test_a_business_has_no_prices_include_tax_field(nx: httpx.Client) -> None:
    """§7.4 Business: Id, Name, CurrencyId, CurrencyCode, CountryId, CountryName,
    SimpleTimeZoneId, RootLocationId; "no "prices include tax" property"."""
    for found in records(nx, "sys/businesses"):
        assert "PricesIncludeTax" not in found
        assert {"Id", "Name", "CurrencyId", "CurrencyCode", "SimpleTimeZoneId"} <= found.keys()
    currencies = {b["Name"]: b["CurrencyCode"] for b in records(nx, "sys/businesses")}
    assert (currencies[SINGAPORE], currencies[NEW_YORK]) == ("SGD", "USD")
    codes = {c["Id"]: c["Code"] for c in records(nx, "sys/currencies")}
    assert codes[business(nx, SINGAPORE)["CurrencyId"]] == "SGD"


def test_a_coworker_has_an_invoicing_business_and_no_business_id(nx: httpx.Client) -> None:
    """§7.4 Coworker: "… InvoicingBusinessId, Businesses (list)"; "no BusinessId"."""
    singapore = business(nx, SINGAPORE)
    coworkers = records(nx, "spaces/coworkers", Coworker_InvoicingBusiness=singapore["Id"])
    assert coworkers
    for found in coworkers:
        assert "BusinessId" not in found
        assert found["InvoicingBusinessId"] == singapore["Id"]
        assert found["Businesses"] == [singapore["Id"]]


def test_every_location_has_payments_and_deposits_accounts(box: Sandbox, nx: httpx.Client) -> None:
    """§7.4 FinancialAccount: AccountType (0 None, 1 Sales, 2 Payments, 3 Deposits); §11 "each a
    Nexudus Payments-type account whose name and code must match Xero"."""
    for found in records(nx, "sys/businesses"):
        accounts = records(nx, "billing/financialaccounts", FinancialAccount_Business=found["Id"])
        kinds = {a["AccountType"] for a in accounts}
        assert {1, 2, 3} <= kinds, found["Name"]
    london = business(nx, LONDON)
    payments = records(
        nx,
        "billing/financialaccounts",
        FinancialAccount_Business=london["Id"],
        FinancialAccount_AccountType=2,
    )
    codes = sorted(a["Code"] for a in payments)
    assert codes == sorted(
        [box.planted["payments_account"], box.planted["missing_payments_account"]]
    )


def test_tax_rates_are_sys_records_and_some_line_rates_are_not(
    box: Sandbox, nx: httpx.Client
) -> None:
    """§2 TaxRate at `sys/taxrates`; §7.4 TaxRate: Id, BusinessId, Name, Rate, ExemptionReason;
    §7.2: "Untaxed lines read `TaxCategoryName "[No Tax]"`, TaxRate 0"; "A line's rate need not
    be a TaxRate record: the location's default rate ... and per-customer personal rates"."""
    assert nx.get("billing/taxrates").status_code == 404
    london = business(nx, LONDON)
    rates = records(nx, "sys/taxrates", TaxRate_Business=london["Id"])
    assert all({"Id", "BusinessId", "Name", "Rate", "ExemptionReason"} <= r.keys() for r in rates)
    names = {r["Name"] for r in rates}
    planted = box.planted
    for case, name, rate in (
        ("no_tax", "[No Tax]", 0),
        ("default_tax_rate", "Default tax rate", 20),
        ("personal_tax_rate", "Personal rate - charity", 0),
    ):
        assert planted[f"{case}_name"] == name and name not in names
        lines = records(
            nx, "billing/coworkerinvoicelines", CoworkerInvoiceLine_TaxCategoryName=name
        )
        assert sorted(ln["Id"] for ln in lines) == planted[f"{case}_line_ids"]
        assert all(ln["TaxRate"] == rate for ln in lines)
        numbers = sorted({ln["CoworkerInvoiceInvoiceNumber"] for ln in lines})
        assert numbers == planted[f"{case}_invoices"]


# ---- §11 Nexudus' own integration


def test_invoices_already_sent_by_nexudus_are_found_by_their_flag(
    box: Sandbox, nx: httpx.Client
) -> None:
    """§11: "State on the invoice: XeroInvoiceTransfered, XeroPaymentTransfered,
    AutoTransferToXeroOrQuickBooks"; §3 `_XeroInvoiceTransfered` is a documented filter."""
    sent = records(nx, "billing/coworkerinvoices", CoworkerInvoice_XeroInvoiceTransfered="true")
    assert sorted(i["InvoiceNumber"] for i in sent) == box.planted["already_sent_by_nexudus"]
    assert all(i["BusinessName"] == LONDON for i in sent)
    assert len(sent) == 3


def test_the_automatic_transfer_is_on_for_leeds_only(box: Sandbox, nx: httpx.Client) -> None:
    """§11: "If Nexudus' automatic mode is on for a location, Nexudus and recon would both push:
    recon must skip invoices already flagged and warn when the mode is on"."""
    leeds = business(nx, LEEDS)
    assert box.planted["auto_transfer_location"] == leeds["Id"]
    everything = records(nx, "billing/coworkerinvoices")
    for found in everything:
        assert found["AutoTransferToXeroOrQuickBooks"] is (found["BusinessId"] == leeds["Id"])


# ---- the far locations' books


def test_singapore_and_new_york_each_reach_their_own_xero_organisation(
    box: Sandbox, nx: httpx.Client
) -> None:
    """§11 Locations: "each location connects its own Xero organisation" (the demo's first
    set-up). The location's Custom Connection reaches it and holds its base currency."""
    expected = {
        SINGAPORE: ("Hive Coworking Singapore Pte Ltd", "SGD", "clean_invoices_singapore"),
        NEW_YORK: ("Hive Coworking US Inc", "USD", "clean_invoices_new_york"),
    }
    for name, (organisation, currency, clean_key) in expected.items():
        location = business(nx, name)
        tenant = box.locations[location["Id"]]
        assert box.location_tracking[location["Id"]] is None
        app = next(
            a
            for a in box.xero_apps.values()
            if a["grant"] == "client_credentials" and tenant in a["tenant_ids"]
        )
        token = httpx.post(
            box.xero_token_url,
            data={"grant_type": "client_credentials"},
            auth=(app["client_id"], app["client_secret"]),
        )
        assert token.status_code == 200, token.text
        answer = httpx.get(
            box.xero_api_url + "/Organisation",
            headers={
                "Authorization": f"Bearer {token.json()['access_token']}",
                "xero-tenant-id": tenant,
                "Accept": "application/json",
            },
        )
        assert answer.status_code == 200, answer.text
        (org,) = answer.json()["Organisations"]
        assert (org["Name"], org["BaseCurrency"]) == (organisation, currency)
        assert 20 <= len(box.planted[clean_key]) <= 40


# ---- §5 limits through start()


def test_start_enforces_the_real_limits_and_a_scaled_minute_follows_xeros(tmp_path: Path) -> None:
    """§5 "Current limits" are the default; a test's one-second "minute" (``RateLimits``) scales
    Nexudus' windows too, and ``nexudus_limits`` sets them outright."""
    real = start(tmp_path / "a")
    try:
        assert real.nexudus.limits == NexudusLimits()
    finally:
        real.stop()
    scaled = start(tmp_path / "a", limits=RateLimits(minute_seconds=1.0))
    try:
        assert scaled.nexudus.limits == NexudusLimits(minute_seconds=1.0)
    finally:
        scaled.stop()
    chosen = start(
        tmp_path / "a",
        limits=RateLimits(minute_seconds=1.0),
        nexudus_limits=NexudusLimits(status=429),
    )
    try:
        assert chosen.nexudus.limits == NexudusLimits(status=429)
    finally:
        chosen.stop()
