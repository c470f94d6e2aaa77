"""Tests for recon.sandbox.seed: deterministic, exact to the cent, every planted case present."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from recon.sandbox import Sandbox, jsonutil
from recon.sandbox.seed import MIN_INVOICES, DemoData, XeroOrgSeed, generate

CENT = Decimal("0.01")
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
# nexudus.md §6: a SimpleTimeZone's Windows-style name; mapping it to IANA is the reader's job.
IANA = {
    "UTC": "UTC",
    "GMT Standard Time": "Europe/London",
    "Singapore Standard Time": "Asia/Singapore",
    "Eastern Standard Time": "America/New_York",
}
# nexudus.md §7.2: rates that reach lines without being TaxRate records (planted at Shoreditch).
LINE_ONLY_RATES = {
    "[No Tax]": Decimal("0.00"),
    "Default tax rate": Decimal("20.00"),
    "Personal rate - charity": Decimal("0.00"),
}
# Shoreditch invoices added on top of ``invoices``: 2 [No Tax], 1 default rate, 1 personal rate,
# 3 already sent by Nexudus, 1 April period, 1 credit note cancelling a paid invoice.
SHOREDITCH_ADDITIONS = 9

# nexudus.md §7.1 CoworkerInvoice and §7.2 CoworkerInvoiceLine.
INVOICE_FIELDS = [
    "Id",
    "UniqueId",
    "InvoiceNumber",
    "BusinessId",
    "BusinessName",
    "CoworkerId",
    "CoworkerFullName",
    "CoworkerCompanyName",
    "CoworkerBillingEmail",
    "BillToName",
    "BillToAddress",
    "BillToCity",
    "BillToPostCode",
    "BillToState",
    "BillToCountryId",
    "BillToTaxIDNumber",
    "PurchaseOrder",
    "PaymentReference",
    "Description",
    "DiscountAmount",
    "DueDate",
    "InvoiceFromDate",
    "InvoiceToDate",
    "TotalAmount",
    "TaxAmount",
    "PaidAmount",
    "DueAmount",
    "IsDue",
    "CreditedAmount",
    "ReceivedAmount",
    "CurrencyId",
    "CurrencyCode",
    "TransactionCurrencyId",
    "TransactionCurrencyCode",
    "TransactionExchangeRate",
    "Draft",
    "Void",
    "WaitingForInvoiceNumber",
    "Paid",
    "PaidOn",
    "Sent",
    "SentOn",
    "Refunded",
    "RefundedOn",
    "RefundedAmount",
    "CreditNote",
    "OriginalInvoiceGuid",
    "CustomData",
    "XeroInvoiceTransfered",
    "XeroPaymentTransfered",
    "QuickbooksInvoiceTransfered",
    "QuickbooksPaymentTransfered",
    "AutoTransferToXeroOrQuickBooks",
    "StorecoveInvoiceStatus",
    "DoNotApplyCreditAutomatically",
    "CreatedOn",
    "UpdatedOn",
    "SystemId",
]
LINE_FIELDS = [
    "Id",
    "UniqueId",
    "CoworkerInvoiceId",
    "Description",
    "Quantity",
    "SubTotal",
    "TaxAmount",
    "TaxRate",
    "TaxCategoryName",
    "FinancialAccountCode",
    "FinancialAccountName",
    "DiscountAmount",
    "DiscountCode",
    "Position",
    "Refunded",
    "RefundedAmount",
    "SaleDate",
    "TariffName",
    "CoworkerContractUniqueId",
    "BookingUniqueId",
    "ContractDepositUniqueId",
    "CoworkerTimePassUniqueId",
    "CoworkerChargeUniqueId",
    "CoworkerProductUniqueId",
    "CoworkerExtraServiceUniqueId",
    "EventAttendeeUniqueId",
    "UnitPrice",
    "CoworkerInvoiceInvoiceNumber",
    "CoworkerInvoicePaid",
    "CoworkerInvoicePaidOn",
    "CoworkerInvoiceCreditNote",
    "CoworkerInvoiceCurrencyCode",
    "CoworkerInvoiceDueDate",
    "CreatedOn",
    "UpdatedOn",
]
INVOICE_MONEY = (
    "DiscountAmount",
    "TotalAmount",
    "TaxAmount",
    "PaidAmount",
    "DueAmount",
    "CreditedAmount",
    "ReceivedAmount",
    "RefundedAmount",
)
LINE_MONEY = ("UnitPrice", "SubTotal", "TaxAmount", "DiscountAmount", "RefundedAmount", "TaxRate")
ORGANISATION_FIELDS = [
    "OrganisationID",
    "Name",
    "LegalName",
    "PaysTax",
    "Version",
    "OrganisationType",
    "BaseCurrency",
    "CountryCode",
    "IsDemoCompany",
    "OrganisationStatus",
    "Timezone",
    "ShortCode",
    "Class",
    "Edition",
    "FinancialYearEndDay",
    "FinancialYearEndMonth",
    "SalesTaxBasis",
    "SalesTaxPeriod",
    "DefaultSalesTax",
    "DefaultPurchasesTax",
    "CreatedDateUTC",
    "LineOfBusiness",
    "PeriodLockDate",
]
ACCOUNT_FIELDS = [
    "AccountID",
    "Code",
    "Name",
    "Type",
    "Status",
    "TaxType",
    "Class",
    "EnablePaymentsToAccount",
    "ShowInExpenseClaims",
    "BankAccountType",
    "SystemAccount",
    "ReportingCode",
    "ReportingCodeName",
    "HasAttachments",
    "AddToWatchlist",
    "Description",
    "UpdatedDateUTC",
]
TAX_RATE_FIELDS = [
    "Name",
    "TaxType",
    "ReportTaxType",
    "CanApplyToAssets",
    "CanApplyToEquity",
    "CanApplyToExpenses",
    "CanApplyToLiabilities",
    "CanApplyToRevenue",
    "DisplayTaxRate",
    "EffectiveRate",
    "Status",
    "TaxComponents",
]
CLASS_OF_TYPE = {
    **dict.fromkeys(("REVENUE", "SALES", "OTHERINCOME"), "REVENUE"),
    **dict.fromkeys(("EXPENSE", "OVERHEADS", "DIRECTCOSTS"), "EXPENSE"),
    **dict.fromkeys(("BANK", "CURRENT", "FIXED", "INVENTORY", "NONCURRENT", "PREPAYMENT"), "ASSET"),
    **dict.fromkeys(("CURRLIAB", "LIABILITY", "TERMLIAB"), "LIABILITY"),
    "EQUITY": "EQUITY",
}
ACCOUNT_CASES = (
    "missing_account",
    "archived_account",
    "name_differs_account",
    "not_revenue_account",
)
TAX_CASES = (
    "percentage_differs_tax",
    "ambiguous_tax",
    "archived_tax",
    "tax_not_allowed_on_account",
    "missing_tax",
)
PROBLEM_CASES = ACCOUNT_CASES + TAX_CASES


# ---- fixtures and small builders ------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate()


@pytest.fixture(scope="module")
def scaled() -> DemoData:
    return generate(invoices=20_000)


class View:
    """Indexes over one DemoData, so each test states only what it checks."""

    def __init__(self, data: DemoData) -> None:
        nx = data.nexudus
        self.data, self.planted = data, data.planted
        self.invoices = nx.invoices
        self.by_number = {i["InvoiceNumber"]: i for i in nx.invoices if i["InvoiceNumber"]}
        self.by_id = {i["Id"]: i for i in nx.invoices}
        self.lines: dict[int, list[dict[str, Any]]] = {}
        for line in nx.invoice_lines:
            self.lines.setdefault(line["CoworkerInvoiceId"], []).append(line)
        self.business = {b["Name"]: b for b in nx.businesses}
        self.business_by_id = {b["Id"]: b for b in nx.businesses}
        self.coworker = {c["Id"]: c for c in nx.coworkers}
        self.orgs = {o.organisation["Name"]: o for o in data.xero_orgs}
        self.uk = self.orgs["Hive Coworking UK Ltd"]
        self.ie = self.orgs["Hive Coworking Ireland Ltd"]
        self.sho = self.business["Hive Shoreditch"]
        self.dub = self.business["Hive Dublin Docklands"]
        self.north = self.orgs["Hive Coworking North Ltd"]
        self.man = self.business["Hive Manchester Ancoats"]
        self.lee = self.business["Hive Leeds Wellington Place"]
        self.sin = self.business["Hive Singapore Raffles"]
        self.nyc = self.business["Hive New York Flatiron"]
        self.sg = self.orgs["Hive Coworking Singapore Pte Ltd"]
        self.us = self.orgs["Hive Coworking US Inc"]
        self.own_org_ids = {self.sho["Id"], self.dub["Id"]}  # the first two with their own
        self.shared_org_ids = {self.man["Id"], self.lee["Id"]}
        self.overseas_ids = {self.sin["Id"], self.nyc["Id"]}
        zones = {z["Id"]: ZoneInfo(IANA[z["Name"]]) for z in nx.simple_time_zones}
        self.zone = {b["Id"]: zones[b["SimpleTimeZoneId"]] for b in nx.businesses}

    def local(self, business_id: int, stamp: str) -> datetime:
        """A Nexudus UTC stamp as the location's wall-clock time (nexudus.md §6)."""
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(
            self.zone[business_id]
        )

    def local_day(self, business_id: int, stamp: str) -> date:
        return self.local(business_id, stamp).date()

    def lines_of(self, number: str) -> list[dict[str, Any]]:
        return self.lines[self.by_number[number]["Id"]]

    @staticmethod
    def accounts(org: XeroOrgSeed) -> dict[str, dict[str, Any]]:
        return {a["Code"]: a for a in org.accounts}

    @staticmethod
    def taxes(org: XeroOrgSeed) -> dict[str, dict[str, Any]]:
        return {t["TaxType"]: t for t in org.tax_rates}

    @staticmethod
    def tax_names(org: XeroOrgSeed) -> dict[str, dict[str, Any]]:
        return {t["Name"]: t for t in org.tax_rates}


@pytest.fixture(scope="module")
def v(demo: DemoData) -> View:
    return View(demo)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def walk(value: Any) -> Any:
    """Yield every scalar inside dicts, lists, tuples and dataclasses."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from walk(getattr(value, f.name))
    elif isinstance(value, dict):
        for k, item in value.items():
            yield k
            yield from walk(item)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from walk(item)
    else:
        yield value


# ---- determinism and size ---------------------------------------------------------------


def test_same_arguments_give_identical_data(demo: DemoData) -> None:
    again = generate()
    assert again == demo
    assert repr(again) == repr(demo)


def test_a_different_seed_gives_different_data(demo: DemoData) -> None:
    other = generate(seed=7)
    assert other.nexudus.invoices != demo.nexudus.invoices
    assert (
        other.xero_orgs[0].organisation["OrganisationID"]
        != demo.xero_orgs[0].organisation["OrganisationID"]
    )
    assert {a.client_id for a in other.xero_apps}.isdisjoint(a.client_id for a in demo.xero_apps)


def test_demo_size_is_about_400_invoices_split_between_the_locations(v: View) -> None:
    per_business = Counter(i["BusinessId"] for i in v.invoices)
    # 400 at the first two own-organisation locations, plus Shoreditch's fixed additions; the
    # shared organisation's two add 15% and 10% on top, Singapore and New York 7.5% each plus
    # their April invoice.
    assert per_business[v.sho["Id"]] + per_business[v.dub["Id"]] == 400 + SHOREDITCH_ADDITIONS
    assert 300 <= per_business[v.sho["Id"]] <= 350
    assert 50 <= per_business[v.dub["Id"]] <= 100
    assert (per_business[v.man["Id"]], per_business[v.lee["Id"]]) == (60, 40)
    assert (per_business[v.sin["Id"]], per_business[v.nyc["Id"]]) == (31, 31)
    assert len(v.invoices) == 571
    assert all(1 <= len(v.lines[i["Id"]]) <= 6 for i in v.invoices)


def test_too_few_invoices_or_months_are_refused() -> None:
    with pytest.raises(ValueError):
        generate(invoices=MIN_INVOICES - 1)
    with pytest.raises(ValueError):
        generate(months=0)


def test_all_invoices_fall_in_the_requested_period() -> None:
    data = generate(invoices=MIN_INVOICES, start=date(2026, 11, 15), months=4)
    sv = View(data)
    assert sum(i["BusinessId"] in sv.own_org_ids for i in data.nexudus.invoices) == (
        MIN_INVOICES + SHOREDITCH_ADDITIONS
    )
    # Manchester and Leeds on top, Singapore and New York too (each with its April invoice).
    assert len(data.nexudus.invoices) == MIN_INVOICES + SHOREDITCH_ADDITIONS + 15 + 10 + 9 + 9
    april = set(data.planted["april_period"].values())
    # Local days (nexudus.md §6): in Singapore a morning invoice is still the day before in UTC.
    days = {
        sv.local_day(i["BusinessId"], i["CreatedOn"]).isoformat()
        for i in data.nexudus.invoices
        if i["InvoiceNumber"] not in april
    }
    assert min(days) == "2026-11-15" and max(days) <= "2027-03-14"
    assert data.planted["period_end"] == "2027-03-14"
    # numbering restarts per year and per location
    assert any(
        i["InvoiceNumber"] and i["InvoiceNumber"].startswith("SHO-2027-")
        for i in data.nexudus.invoices
    )


# ---- shapes, types, ids ----------------------------------------------------------


def test_no_float_anywhere_in_the_data(demo: DemoData) -> None:
    assert not [x for x in walk(demo) if isinstance(x, float)]


def test_every_invoice_and_line_has_the_documented_fields(v: View) -> None:
    for inv in v.invoices:
        assert set(INVOICE_FIELDS) <= inv.keys()
    for line in v.data.nexudus.invoice_lines:
        assert set(LINE_FIELDS) <= line.keys()
        # exactly one source link per line
        links = [f for f in LINE_FIELDS if f.endswith("UniqueId") and f != "UniqueId" and line[f]]
        assert len(links) == 1


def test_money_is_decimal_with_two_places(v: View) -> None:
    for inv in v.invoices:
        for f in INVOICE_MONEY:
            assert isinstance(inv[f], Decimal) and inv[f].as_tuple().exponent == -2, (
                inv["Id"],
                f,
                inv[f],
            )
    for line in v.data.nexudus.invoice_lines:
        for f in LINE_MONEY:
            assert isinstance(line[f], Decimal) and line[f].as_tuple().exponent == -2, (
                line["Id"],
                f,
                line[f],
            )
        assert isinstance(line["Quantity"], int)
    for rate in v.data.nexudus.tax_rates:
        assert isinstance(rate["Rate"], Decimal) and rate["Rate"].as_tuple().exponent == -2


def test_xero_rates_have_four_places(v: View) -> None:
    for org in v.data.xero_orgs:
        for t in org.tax_rates:
            for value in (t["EffectiveRate"], t["DisplayTaxRate"], t["TaxComponents"][0]["Rate"]):
                assert isinstance(value, Decimal) and value.as_tuple().exponent == -4


def test_ids_are_unique_across_the_dataset(demo: DemoData) -> None:
    nx = demo.nexudus
    records = (
        nx.businesses
        + nx.coworkers
        + nx.financial_accounts
        + nx.tax_rates
        + nx.invoices
        + nx.invoice_lines
    )
    ids = [r["Id"] for r in records]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids))
    uids = [r["UniqueId"] for r in records]
    assert len(uids) == len(set(uids))
    assert all(
        re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", u)
        for u in uids
    )


def test_invoice_numbers_are_unique_and_prefixed_per_location(v: View) -> None:
    numbers = [i["InvoiceNumber"] for i in v.invoices if i["InvoiceNumber"]]
    assert len(numbers) == len(set(numbers))
    for inv in v.invoices:
        if inv["InvoiceNumber"]:
            prefix = {
                v.sho["Id"]: "SHO",
                v.dub["Id"]: "DUB",
                v.man["Id"]: "MAN",
                v.lee["Id"]: "LEE",
                v.sin["Id"]: "SIN",
                v.nyc["Id"]: "NYC",
            }[inv["BusinessId"]]
            assert re.fullmatch(rf"{prefix}-\d{{4}}-\d{{5}}", inv["InvoiceNumber"])


def test_every_line_belongs_to_an_invoice(v: View) -> None:
    assert {ln["CoworkerInvoiceId"] for ln in v.data.nexudus.invoice_lines} == set(v.by_id)
    for lines in v.lines.values():
        assert [ln["Position"] for ln in lines] == list(range(1, len(lines) + 1))


def test_every_invoice_points_at_its_coworker_and_business(v: View) -> None:
    for inv in v.invoices:
        coworker = v.coworker[inv["CoworkerId"]]
        # nexudus.md §7.4 Coworker: no BusinessId; InvoicingBusinessId and Businesses.
        assert "BusinessId" not in coworker
        assert coworker["InvoicingBusinessId"] == inv["BusinessId"]
        assert coworker["Businesses"] == [inv["BusinessId"]]
        assert inv["CoworkerFullName"] == coworker["FullName"]
        assert inv["BusinessName"] == v.business_by_id[inv["BusinessId"]]["Name"]


def test_dates_are_iso_and_due_fourteen_days_after_issue(v: View) -> None:
    """nexudus.md §6: UTC ISO strings with Z; date-like fields (InvoiceFromDate, InvoiceToDate,
    DueDate, SaleDate) hold the UTC instant of the location's local midnight."""
    for inv in v.invoices:
        where = inv["BusinessId"]
        for f in ("DueDate", "InvoiceFromDate", "InvoiceToDate", "CreatedOn", "UpdatedOn"):
            assert STAMP.match(inv[f]), (f, inv[f])
        for f in ("DueDate", "InvoiceFromDate", "InvoiceToDate"):
            assert v.local(where, inv[f]).time().isoformat() == "00:00:00", (f, inv[f])
        issued = v.local_day(where, inv["CreatedOn"])
        assert v.local_day(where, inv["DueDate"]) == issued + timedelta(days=14)
        assert inv["InvoiceFromDate"] <= inv["InvoiceToDate"]
        assert inv["UpdatedOn"] >= inv["CreatedOn"]
        for ln in v.lines[inv["Id"]]:
            assert v.local(where, ln["SaleDate"]).time().isoformat() == "00:00:00"
            assert ln["CreatedOn"] == inv["CreatedOn"]
    for c in v.data.nexudus.coworkers:
        assert STAMP.match(c["CreatedOn"]) and STAMP.match(c["UpdatedOn"])


def test_london_dates_in_summer_read_the_evening_before_in_utc(v: View) -> None:
    """nexudus.md §6: "a London period from 1 April 2025 reads `2025-03-31T23:00:00Z`, a November
    (GMT) one `2024-11-19T00:00:00Z`"."""
    august = [
        i
        for i in v.invoices
        if i["BusinessId"] == v.sho["Id"]
        and v.local_day(v.sho["Id"], i["InvoiceFromDate"]).month == 8
    ]
    assert august and all(i["InvoiceFromDate"].endswith("T23:00:00Z") for i in august)
    november = [
        i for i in v.invoices if i["BusinessId"] == v.sho["Id"] and i["DueDate"] >= "2026-11"
    ]
    assert november and all(i["DueDate"].endswith("T00:00:00Z") for i in november)


def test_the_april_period_invoices_show_each_zone(v: View) -> None:
    """nexudus.md §6: local midnights in UTC; "whenever the location is ahead of UTC ... the UTC
    date is a day early"."""
    april = v.planted["april_period"]
    assert set(april) == {"Hive Shoreditch", "Hive Singapore Raffles", "Hive New York Flatiron"}
    expected = {
        "Hive Shoreditch": ("2026-03-31T23:00:00Z", "2026-04-29T23:00:00Z", "2026-04-01T00:30:00Z"),
        "Hive Singapore Raffles": (
            "2026-03-31T16:00:00Z",
            "2026-04-29T16:00:00Z",
            "2026-03-31T17:30:00Z",
        ),
        "Hive New York Flatiron": (
            "2026-04-01T04:00:00Z",
            "2026-04-30T04:00:00Z",
            "2026-04-01T05:30:00Z",
        ),
    }
    for name, number in april.items():
        inv = v.by_number[number]
        assert inv["BusinessId"] == v.business[name]["Id"]
        assert (inv["InvoiceFromDate"], inv["InvoiceToDate"], inv["CreatedOn"]) == expected[name]
        assert not (inv["Draft"] or inv["Void"] or inv["CreditNote"] or inv["Paid"])
        assert number.split("-")[0] in {"SHO", "SIN", "NYC"}
    # Outside the demo period, so in no clean list; mapped cleanly all the same.
    assert april["Hive Shoreditch"] not in v.planted["clean_invoices"]
    singapore = v.by_number[april["Hive Singapore Raffles"]]
    assert v.local_day(v.sin["Id"], singapore["CreatedOn"]) == date(2026, 4, 1)
    assert singapore["CreatedOn"][:10] == "2026-03-31"


def test_lines_use_their_own_location_chart_and_tax_rates(v: View) -> None:
    nx = v.data.nexudus
    accounts = {(a["BusinessId"], a["Code"]): a["Name"] for a in nx.financial_accounts}
    rates = {(t["BusinessId"], t["Name"]): t["Rate"] for t in nx.tax_rates}
    line_only = {
        ln
        for case in ("no_tax", "default_tax_rate", "personal_tax_rate")
        for ln in v.planted[f"{case}_line_ids"]
    }
    for inv in v.invoices:
        for line in v.lines[inv["Id"]]:
            if line["FinancialAccountCode"]:
                assert (
                    accounts[inv["BusinessId"], line["FinancialAccountCode"]]
                    == line["FinancialAccountName"]
                )
            if line["Id"] in line_only:
                # nexudus.md §7.2: "A line's rate need not be a TaxRate record".
                assert (inv["BusinessId"], line["TaxCategoryName"]) not in rates
                assert LINE_ONLY_RATES[line["TaxCategoryName"]] == line["TaxRate"]
            else:
                assert rates[inv["BusinessId"], line["TaxCategoryName"]] == line["TaxRate"]
    lines = nx.invoice_lines
    assert {ln["Id"] for ln in lines if ln["TaxCategoryName"] in LINE_ONLY_RATES} == line_only


# ---- amounts -------------------------------------------------------------------------


def check_amounts(v: View) -> None:
    """Every line and invoice follows the rules to the cent (the planted rounding invoice aside)."""
    rounding = v.planted["rounding_difference_invoice"]
    for inv in v.invoices:
        # Dublin's prices include tax: a location setting, not a Business field (nexudus.md §7.4).
        inclusive = inv["BusinessId"] == v.dub["Id"]
        lines = v.lines[inv["Id"]]
        for ln in lines:
            assert ln["SubTotal"] == ln["Quantity"] * ln["UnitPrice"] - ln["DiscountAmount"]
            divisor = 100 + ln["TaxRate"] if inclusive else Decimal(100)
            assert ln["TaxAmount"] == cents(ln["SubTotal"] * ln["TaxRate"] / divisor)
        tax = sum((ln["TaxAmount"] for ln in lines), Decimal("0.00"))
        net = sum((ln["SubTotal"] for ln in lines), Decimal("0.00"))
        total = net if inclusive else net + tax
        assert inv["DiscountAmount"] == sum((ln["DiscountAmount"] for ln in lines), Decimal("0.00"))
        assert inv["PaidAmount"] == (inv["TotalAmount"] if inv["Paid"] else 0)
        assert inv["DueAmount"] == max(inv["TotalAmount"] - inv["PaidAmount"], Decimal(0))
        assert inv["IsDue"] is (inv["DueAmount"] > 0)
        if inv["InvoiceNumber"] == rounding:
            assert inv["TotalAmount"] - total == v.planted["rounding_difference"]
            assert inv["TaxAmount"] - tax == v.planted["rounding_difference"]
        else:
            assert (inv["TaxAmount"], inv["TotalAmount"]) == (tax, total), inv["InvoiceNumber"]


def test_amounts_add_up_to_the_cent(v: View) -> None:
    check_amounts(v)


def test_some_lines_have_quantities_and_discounts(v: View) -> None:
    lines = v.data.nexudus.invoice_lines
    assert sum(ln["Quantity"] > 1 for ln in lines) >= 20
    discounted = [ln for ln in lines if ln["DiscountAmount"] > 0]
    assert len(discounted) >= 5
    assert all(ln["DiscountCode"] for ln in discounted)


def test_the_catalogue_sells_what_a_coworking_space_sells(v: View) -> None:
    links = Counter(
        f
        for ln in v.data.nexudus.invoice_lines
        for f in LINE_FIELDS
        if f.endswith("UniqueId") and f != "UniqueId" and ln[f]
    )
    for link in (
        "CoworkerContractUniqueId",
        "BookingUniqueId",
        "ContractDepositUniqueId",
        "CoworkerTimePassUniqueId",
        "CoworkerProductUniqueId",
        "EventAttendeeUniqueId",
    ):
        assert links[link] > 0, link
    deposits = [ln for ln in v.data.nexudus.invoice_lines if ln["FinancialAccountCode"] == "2300"]
    # Untaxed in each country's words: No VAT, No GST, Tax Exempt.
    assert deposits and all(
        ln["TaxCategoryName"] in ("No VAT", "No GST", "Tax Exempt") and ln["TaxAmount"] == 0
        for ln in deposits
    )


# ---- invoice flags -----------------------------------------------------------------


def test_invoice_flags_are_mostly_final_and_unpaid(v: View) -> None:
    final = [i for i in v.invoices if not i["Draft"]]
    assert all(i["InvoiceNumber"] and not i["WaitingForInvoiceNumber"] for i in final)
    paid = [i for i in final if i["Paid"]]
    assert 0.2 <= len(paid) / len(final) <= 0.4
    assert all(i["PaidOn"] and i["PaidAmount"] == i["TotalAmount"] for i in paid)
    # nexudus.md §11: only the planted invoices were already sent by Nexudus' own integration.
    sent = sorted(i["InvoiceNumber"] for i in v.invoices if i["XeroInvoiceTransfered"])
    assert sent == v.planted["already_sent_by_nexudus"] and len(sent) == 3
    assert not any(i["XeroPaymentTransfered"] for i in v.invoices)
    # The planted list names Shoreditch's and Dublin's (as before the shared organisation); its
    # own list the rest.
    assert sorted(v.planted["paid_in_nexudus_invoices"]) == sorted(
        i["InvoiceNumber"] for i in paid if i["BusinessId"] in v.own_org_ids
    )
    assert sorted(v.planted["shared_org_paid_in_nexudus_invoices"]) == sorted(
        i["InvoiceNumber"] for i in paid if i["BusinessId"] in v.shared_org_ids
    )


def test_drafts_wait_for_a_number(v: View) -> None:
    drafts = [i for i in v.invoices if i["Draft"]]
    assert 2 <= len(drafts) <= 10
    assert sorted(v.planted["draft_invoices"]) == sorted(
        i["Id"] for i in drafts if i["BusinessId"] in v.own_org_ids
    )
    assert sorted(v.planted["shared_org_draft_invoices"]) == sorted(
        i["Id"] for i in drafts if i["BusinessId"] in v.shared_org_ids
    )
    assert all(
        i["WaitingForInvoiceNumber"] and i["InvoiceNumber"] is None and not i["Paid"]
        for i in drafts
    )


# ---- Xero side ------------------------------------------------------------------------


def test_organisations_have_the_fields_xero_fills(v: View) -> None:
    for org in v.data.xero_orgs:
        assert set(ORGANISATION_FIELDS) <= org.organisation.keys()
        # xero-api.md §6: lock dates are "shown if set"; only the US books are locked (planted).
        locked = org.organisation["Name"] == v.planted["period_lock_org"]
        assert (org.organisation["PeriodLockDate"] is not None) is locked
        assert org.organisation["EndOfYearLockDate"] is None
        assert org.organisation["BaseCurrency"] in {c["Code"] for c in org.currencies}
    uk = v.uk.organisation
    assert (uk["Version"], uk["BaseCurrency"], uk["CountryCode"], uk["Timezone"]) == (
        "UK",
        "GBP",
        "GB",
        "GMTSTANDARDTIME",
    )
    assert (uk["FinancialYearEndDay"], uk["FinancialYearEndMonth"], uk["DefaultSalesTax"]) == (
        31,
        3,
        "Tax Exclusive",
    )
    assert {c["Code"] for c in v.uk.currencies} == {"GBP", "EUR"}
    ie = v.ie.organisation
    assert (ie["Version"], ie["BaseCurrency"], ie["CountryCode"]) == ("GLOBAL", "EUR", "IE")
    other = v.orgs["Other Company Ltd"].organisation
    assert (other["CountryCode"], other["BaseCurrency"]) == ("NZ", "NZD")


def test_accounts_have_the_xero_shape_and_derived_class(v: View) -> None:
    for org in v.data.xero_orgs:
        codes = [a["Code"] for a in org.accounts]
        assert len(codes) == len(set(codes))
        for a in org.accounts:
            assert set(ACCOUNT_FIELDS) <= a.keys()
            assert a["Class"] == CLASS_OF_TYPE[a["Type"]]
            assert isinstance(a["Code"], str)
            if a["Type"] == "BANK":
                assert (
                    a["BankAccountType"] == "BANK" and a["BankAccountNumber"] and a["CurrencyCode"]
                )
            else:
                assert a["BankAccountType"] == "" and "CurrencyCode" not in a
    uk = v.accounts(v.uk)
    assert uk["090"]["Name"] == "Business Bank Account" and uk["090"]["CurrencyCode"] == "GBP"
    assert any(a["Type"] == "BANK" and a["CurrencyCode"] == "EUR" for a in uk.values())
    assert (uk["610"]["Type"], uk["610"]["SystemAccount"]) == ("CURRENT", "DEBTORS")
    assert (uk["820"]["Type"], uk["820"]["SystemAccount"]) == ("CURRLIAB", "GST")
    assert any(a["Class"] == "EXPENSE" for a in uk.values())


def test_tax_rates_have_the_xero_shape(v: View) -> None:
    for org in v.data.xero_orgs:
        for t in org.tax_rates:
            assert set(TAX_RATE_FIELDS) <= t.keys()
            assert t["TaxComponents"][0]["IsCompound"] is False
    uk = v.taxes(v.uk)
    expected = {
        "OUTPUT2": ("20% (VAT on Income)", "20"),
        "RROUTPUT": ("5% (VAT on Income)", "5"),
        "ZERORATEDOUTPUT": ("Zero Rated Income", "0"),
        "EXEMPTOUTPUT": ("Exempt Income", "0"),
        "NONE": ("No VAT", "0"),
        "INPUT2": ("20% (VAT on Expenses)", "20"),
    }
    for tax_type, (name, rate) in expected.items():
        assert (uk[tax_type]["Name"], uk[tax_type]["EffectiveRate"]) == (name, Decimal(rate))
    assert uk["INPUT2"]["CanApplyToRevenue"] is False and uk["INPUT2"]["CanApplyToExpenses"] is True


def test_apps_and_locations_are_wired_to_the_right_tenants(v: View) -> None:
    uk, ie = v.uk.organisation["OrganisationID"], v.ie.organisation["OrganisationID"]
    other = v.orgs["Other Company Ltd"].organisation["OrganisationID"]
    apps = {a.name: a for a in v.data.xero_apps}
    assert apps["recon demo (Custom Connection UK)"].tenant_ids == [uk]
    assert apps["recon demo (Custom Connection IE)"].tenant_ids == [ie]
    north = v.north.organisation["OrganisationID"]
    assert apps["recon demo (Custom Connection North)"].tenant_ids == [north]
    assert apps["recon demo (Custom Connection North)"].grant == "client_credentials"
    sg, us = v.sg.organisation["OrganisationID"], v.us.organisation["OrganisationID"]
    assert apps["recon demo (Custom Connection SG)"].tenant_ids == [sg]
    assert apps["recon demo (Custom Connection US)"].tenant_ids == [us]
    web = apps["recon demo (web app)"]
    assert (web.grant, web.tenant_ids, web.redirect_uris) == (
        "authorization_code",
        [uk, ie, north, sg, us],
        ["http://localhost:8765/callback"],
    )
    assert v.data.xero_apps[0].grant == "client_credentials" and v.data.xero_apps[0].tenant_ids == [
        uk
    ]
    assert all(re.fullmatch(r"[0-9A-F]{32}", a.client_id) for a in v.data.xero_apps)
    assert all(other not in a.tenant_ids for a in v.data.xero_apps)
    assert {k: t for k, t in v.data.locations.items() if k in v.own_org_ids} == {
        v.sho["Id"]: uk,
        v.dub["Id"]: ie,
    }
    assert v.data.locations == {
        v.sho["Id"]: uk,
        v.dub["Id"]: ie,
        v.man["Id"]: north,
        v.lee["Id"]: north,
        v.sin["Id"]: sg,
        v.nyc["Id"]: us,
    }


def test_pre_existing_contacts_include_suppliers(v: View) -> None:
    contacts = v.uk.contacts
    assert any(c["IsSupplier"] for c in contacts) and any(c["IsCustomer"] for c in contacts)
    assert all(c["ContactStatus"] == "ACTIVE" and c["ContactID"] for c in contacts)


# ---- planted cases: accounts -------------------------------------------------------


# FinancialAccount.AccountType (nexudus.md §7.4): 0 None, 1 Sales, 2 Payments, 3 Deposits.
SALES, PAYMENTS, DEPOSITS = 1, 2, 3


def nexudus_accounts(v: View, business: dict[str, Any], *types: int) -> dict[str, str]:
    """A location's chart, code -> name: all of it, or only the given AccountTypes."""
    return {
        a["Code"]: a["Name"]
        for a in v.data.nexudus.financial_accounts
        if a["BusinessId"] == business["Id"] and (not types or a["AccountType"] in types)
    }


def nexudus_rates(v: View, business: dict[str, Any]) -> dict[str, Decimal]:
    return {
        t["Name"]: t["Rate"] for t in v.data.nexudus.tax_rates if t["BusinessId"] == business["Id"]
    }


def test_matching_accounts_are_identical_on_both_sides(v: View) -> None:
    nx, xero = nexudus_accounts(v, v.sho), v.accounts(v.uk)
    for code in v.planted["matching_accounts"]:
        assert nx[code] == xero[code]["Name"]
        assert (xero[code]["Type"], xero[code]["Status"]) == ("REVENUE", "ACTIVE")


def test_missing_account_is_absent_in_xero_with_suggestions_nearby(v: View) -> None:
    code = v.planted["missing_account"]
    assert nexudus_accounts(v, v.sho)[code] == "Event Tickets"
    xero = v.accounts(v.uk)
    assert code not in xero
    by_name, by_code = v.planted["missing_account_suggestions"]
    assert xero[by_name]["Name"] == "Events Income" and xero[by_name]["Type"] == "REVENUE"
    assert by_code in xero


def test_archived_account_is_archived_in_xero(v: View) -> None:
    code = v.planted["archived_account"]
    xero = v.accounts(v.uk)[code]
    assert (
        xero["Status"] == "ARCHIVED"
        and xero["Name"] == nexudus_accounts(v, v.sho)[code] == "Day Passes"
    )


def test_name_differs_account_has_one_code_and_two_names(v: View) -> None:
    code = v.planted["name_differs_account"]
    assert nexudus_accounts(v, v.sho)[code] == "Meeting Rooms"
    assert v.accounts(v.uk)[code]["Name"] == "Meeting Room Bookings"


def test_not_revenue_account_is_an_expense_in_xero(v: View) -> None:
    code = v.planted["not_revenue_account"]
    xero = v.accounts(v.uk)[code]
    assert (xero["Name"], xero["Type"], xero["Class"]) == ("Printing", "EXPENSE", "EXPENSE")


def test_deposits_map_to_a_liability_with_no_vat(v: View) -> None:
    code = v.planted["deposit_account"]
    for org, business in ((v.uk, v.sho), (v.ie, v.dub)):
        xero = v.accounts(org)[code]
        assert (xero["Name"], xero["Type"], xero["TaxType"]) == (
            "Member Deposits",
            "CURRLIAB",
            "NONE",
        )
        assert nexudus_accounts(v, business)[code] == "Member Deposits"


def test_no_account_line_has_no_account(v: View) -> None:
    number = v.planted["no_account_line"]
    bare = [ln for ln in v.lines_of(number) if not ln["FinancialAccountCode"]]
    assert [ln["Id"] for ln in bare] == [v.planted["no_account_line_id"]]
    assert bare[0]["FinancialAccountName"] is None
    assert sum(not ln["FinancialAccountCode"] for ln in v.data.nexudus.invoice_lines) == 1


# ---- planted cases: tax rates -------------------------------------------------------


def test_matching_tax_rates_have_the_same_name_and_rate(v: View) -> None:
    rates, xero = nexudus_rates(v, v.sho), v.taxes(v.uk)
    for name, tax_type in v.planted["matching_tax_rates"].items():
        assert xero[tax_type]["Name"] == name
        assert xero[tax_type]["EffectiveRate"] == rates[name]


def test_percentage_differs_tax_has_one_name_and_two_rates(v: View) -> None:
    name = v.planted["percentage_differs_tax"]
    xero = v.taxes(v.uk)[v.planted["percentage_differs_tax_type"]]
    assert xero["Name"] == name and xero["Status"] == "ACTIVE"
    assert (nexudus_rates(v, v.sho)[name], xero["EffectiveRate"]) == (
        Decimal("12.50"),
        Decimal("13.5"),
    )


def test_ambiguous_tax_has_no_name_match_and_several_rates_at_zero(v: View) -> None:
    name = v.planted["ambiguous_tax"]
    assert nexudus_rates(v, v.sho)[name] == 0
    assert name not in v.tax_names(v.uk)
    at_zero = {
        t["TaxType"]
        for t in v.uk.tax_rates
        if t["EffectiveRate"] == 0 and t["Status"] == "ACTIVE" and t["CanApplyToRevenue"]
    }
    assert {"ZERORATEDOUTPUT", "EXEMPTOUTPUT", "NONE"} <= at_zero


def test_archived_tax_is_deleted_in_xero(v: View) -> None:
    name = v.planted["archived_tax"]
    xero = v.taxes(v.uk)[v.planted["archived_tax_type"]]
    assert (xero["Name"], xero["Status"], xero["EffectiveRate"]) == (
        name,
        "DELETED",
        nexudus_rates(v, v.sho)[name],
    )


def test_tax_not_allowed_on_account_is_an_expense_rate_on_revenue(v: View) -> None:
    name = v.planted["tax_not_allowed_on_account"]
    xero = v.tax_names(v.uk)[name]
    assert xero["TaxType"] == "INPUT2" and xero["CanApplyToRevenue"] is False
    for number in v.planted["tax_not_allowed_on_account_invoices"]:
        lines = [ln for ln in v.lines_of(number) if ln["TaxCategoryName"] == name]
        assert lines and all(
            v.accounts(v.uk)[ln["FinancialAccountCode"]]["Class"] == "REVENUE" for ln in lines
        )


def test_missing_tax_has_no_xero_rate_by_name_or_percentage(v: View) -> None:
    name = v.planted["missing_tax"]
    rate = nexudus_rates(v, v.sho)[name]
    assert name not in v.tax_names(v.uk)
    assert all(t["EffectiveRate"] != rate for t in v.uk.tax_rates)


@pytest.mark.parametrize("case", PROBLEM_CASES)
def test_each_problem_case_is_on_at_least_two_shoreditch_invoices(v: View, case: str) -> None:
    numbers = v.planted[f"{case}_invoices"]
    assert len(numbers) >= 2
    for number in numbers:
        inv = v.by_number[number]
        assert inv["BusinessId"] == v.sho["Id"] and inv["CurrencyCode"] == "GBP"
        assert number not in v.planted["clean_invoices"]
    key = v.planted[case]
    field = "FinancialAccountCode" if case in ACCOUNT_CASES else "TaxCategoryName"
    carriers = sorted(
        n for n, inv in v.by_number.items() if any(ln[field] == key for ln in v.lines[inv["Id"]])
    )
    assert carriers == sorted(numbers)


# ---- planted cases: invoices and customers --------------------------------------------


def test_void_invoice_is_void(v: View) -> None:
    inv = v.by_number[v.planted["void_invoice"]]
    assert inv["Void"] and not inv["Paid"] and not inv["Draft"]
    assert sum(i["Void"] for i in v.invoices) == 1


def test_credit_note_reverses_a_clean_invoice(v: View) -> None:
    note = v.by_number[v.planted["credit_note"]]
    original = v.by_number[v.planted["credit_note_original"]]
    assert note["CreditNote"] and note["OriginalInvoiceGuid"] == original["UniqueId"]
    assert note["TotalAmount"] == -original["TotalAmount"] < 0
    assert note["TaxAmount"] == -original["TaxAmount"]
    assert all(ln["SubTotal"] <= 0 for ln in v.lines[note["Id"]])
    assert original["CreditedAmount"] == original["TotalAmount"] and not original["Paid"]
    assert v.planted["credit_note_original"] in v.planted["clean_invoices"]
    assert v.planted["credit_note"] not in v.planted["clean_invoices"]


def test_dublin_prices_include_tax_and_map_cleanly(v: View) -> None:
    # nexudus.md §7.4: no "prices include tax" property on Business; §7.2: detect it from totals
    # (Σ SubTotal = TotalAmount ⇒ gross, Σ SubTotal + Σ TaxAmount = TotalAmount ⇒ net).
    assert not any("PricesIncludeTax" in b for b in v.data.nexudus.businesses)
    for business, gross in ((v.dub, True), (v.sho, False)):
        number = next(
            n
            for n in v.planted["clean_invoices" if not gross else "clean_invoices_dublin"]
            if v.by_number[n]["TaxAmount"] > 0
        )
        inv, lines = v.by_number[number], v.lines_of(number)
        net = sum((ln["SubTotal"] for ln in lines), Decimal(0))
        tax = sum((ln["TaxAmount"] for ln in lines), Decimal(0))
        assert inv["TotalAmount"] == (net if gross else net + tax), business["Name"]
    numbers = v.planted["tax_inclusive_invoices"]
    assert numbers and all(v.by_number[n]["BusinessId"] == v.dub["Id"] for n in numbers)
    assert v.planted["clean_invoices_dublin"] == numbers
    xero = v.tax_names(v.ie)
    for name, rate in nexudus_rates(v, v.dub).items():
        assert xero[name]["EffectiveRate"] == rate and xero[name]["Status"] == "ACTIVE"
    assert xero["23% Standard"]["TaxType"] == "OUTPUT"
    ie_accounts = v.accounts(v.ie)
    for code, name in nexudus_accounts(v, v.dub).items():
        assert ie_accounts[code]["Name"] == name and ie_accounts[code]["Status"] == "ACTIVE"


def test_second_currency_invoices_are_eur_and_clean(v: View) -> None:
    numbers = v.planted["second_currency_invoices"]
    assert len(numbers) >= 3
    for number in numbers:
        inv = v.by_number[number]
        assert (inv["CurrencyCode"], inv["TransactionCurrencyCode"], inv["BusinessId"]) == (
            "EUR",
            "EUR",
            v.sho["Id"],
        )
        assert number in v.planted["clean_invoices"]


def test_unsupported_currency_invoice_is_in_a_currency_xero_uk_lacks(v: View) -> None:
    inv = v.by_number[v.planted["unsupported_currency_invoice"]]
    assert inv["CurrencyCode"] == "USD"
    assert "USD" not in {c["Code"] for c in v.uk.currencies}
    shoreditch_usd = [
        i["InvoiceNumber"]
        for i in v.invoices
        if i["CurrencyCode"] == "USD" and i["BusinessId"] == v.sho["Id"]
    ]
    assert shoreditch_usd == [inv["InvoiceNumber"]]


def test_unicode_and_long_name_customers(v: View) -> None:
    unicode_inv = v.by_number[v.planted["unicode_invoice"]]
    person = v.coworker[v.planted["unicode_coworker"]]
    assert unicode_inv["CoworkerId"] == person["Id"]
    assert not person["FullName"].isascii() and not person["CompanyName"].isascii()
    long_inv = v.by_number[v.planted["long_name_invoice"]]
    company = v.coworker[v.planted["long_name_coworker"]]
    assert long_inv["CoworkerId"] == company["Id"] and company["CoworkerType"] == "Company"
    assert len(company["CompanyName"]) > 255 and long_inv["BillToName"] == company["BillingName"]
    assert v.planted["unicode_invoice"] in v.planted["clean_invoices"]
    assert v.planted["long_name_invoice"] not in v.planted["clean_invoices"]


def test_blank_billing_name_customer(v: View) -> None:
    person = v.coworker[v.planted["blank_billing_name_coworker"]]
    assert (person["BillingName"], person["CompanyName"], person["CoworkerType"]) == (
        "",
        "",
        "Individual",
    )
    assert person["FullName"]
    assert v.by_number[v.planted["blank_billing_name_invoice"]]["CoworkerId"] == person["Id"]


def test_two_coworkers_share_one_name(v: View) -> None:
    first, second = (v.coworker[i] for i in v.planted["same_name_coworkers"])
    assert first["Id"] != second["Id"] and first["FullName"] == second["FullName"]
    assert first["Email"] != second["Email"]
    assert {v.by_number[n]["CoworkerId"] for n in v.planted["same_name_invoices"]} == {
        first["Id"],
        second["Id"],
    }
    names = Counter(c["FullName"] for c in v.data.nexudus.coworkers)
    assert [n for n, k in names.items() if k > 1] == [first["FullName"]]


def test_name_clash_contact_shares_a_name_but_no_key(v: View) -> None:
    name = v.planted["name_clash_contact"]
    (contact,) = (c for c in v.uk.contacts if c["Name"] == name)
    coworker = v.coworker[v.planted["name_clash_coworker"]]
    assert coworker["BillingName"] == name and coworker["CoworkerType"] == "Company"
    # xero-api.md §6: one ACTIVE contact made in Xero's UI, so no ContactNumber (API-only key).
    assert not contact.get("ContactNumber") and contact["IsCustomer"]
    assert contact["ContactStatus"] == "ACTIVE"
    assert contact["ContactID"] == v.planted["same_name_contact_id"]
    assert contact["EmailAddress"] != coworker["BillingEmail"]
    assert len(v.planted["name_clash_invoices"]) >= 2


def test_zero_amount_line_is_free_on_a_clean_invoice(v: View) -> None:
    number = v.planted["zero_amount_line"]
    line = next(ln for ln in v.lines_of(number) if ln["Id"] == v.planted["zero_amount_line_id"])
    assert (line["UnitPrice"], line["SubTotal"], line["TaxAmount"]) == (Decimal("0.00"),) * 3
    assert number in v.planted["clean_invoices"]


def test_rounding_difference_invoice_rounds_on_the_total(v: View) -> None:
    number = v.planted["rounding_difference_invoice"]
    inv, lines = v.by_number[number], v.lines_of(number)
    assert [ln["UnitPrice"] for ln in lines] == [Decimal("3.33")] * 3
    assert [ln["TaxAmount"] for ln in lines] == [Decimal("0.67")] * 3
    assert (inv["TaxAmount"], inv["TotalAmount"]) == (Decimal("2.00"), Decimal("11.99"))
    assert v.planted["rounding_difference"] == Decimal("-0.01")
    assert number not in v.planted["clean_invoices"]


# ---- clean invoices ----------------------------------------------------------------


def test_clean_invoices_are_final_shoreditch_invoices_that_map_exactly(v: View) -> None:
    accounts, taxes = v.accounts(v.uk), v.tax_names(v.uk)
    for number in v.planted["clean_invoices"]:
        inv = v.by_number[number]
        assert inv["BusinessId"] == v.sho["Id"]
        assert not (inv["Draft"] or inv["Void"] or inv["CreditNote"])
        assert v.planted["period_start"] <= inv["CreatedOn"][:10] <= v.planted["period_end"]
        for ln in v.lines[inv["Id"]]:
            account = accounts[ln["FinancialAccountCode"]]
            assert account["Name"] == ln["FinancialAccountName"] and account["Status"] == "ACTIVE"
            assert taxes[ln["TaxCategoryName"]]["EffectiveRate"] == ln["TaxRate"]


def test_planted_problems_stay_a_small_fraction_of_shoreditch(v: View) -> None:
    shoreditch = [i for i in v.invoices if i["BusinessId"] == v.sho["Id"]]
    not_clean = len(shoreditch) - len(v.planted["clean_invoices"])
    assert 0.08 <= not_clean / len(shoreditch) <= 0.15


# ---- scaled generation -------------------------------------------------------------


def test_scaled_generation_keeps_every_planted_case(scaled: DemoData) -> None:
    sv = View(scaled)
    assert sum(i["BusinessId"] in sv.own_org_ids for i in scaled.nexudus.invoices) == (
        20_000 + SHOREDITCH_ADDITIONS
    )
    # Manchester 3,000 and Leeds 2,000 on top; Singapore and New York 1,500 each and April's.
    assert len(scaled.nexudus.invoices) == 20_000 + SHOREDITCH_ADDITIONS + 5_000 + 3_002
    for case in PROBLEM_CASES:
        numbers = scaled.planted[f"{case}_invoices"]
        assert len(numbers) >= 50  # scaled with the data (the demo has 2 per case)
        assert all(n in sv.by_number for n in numbers)
    for key in (
        "void_invoice",
        "credit_note",
        "unsupported_currency_invoice",
        "rounding_difference_invoice",
        "no_account_line",
        "zero_amount_line",
        "unicode_invoice",
        "long_name_invoice",
        "blank_billing_name_invoice",
        "number_clash_invoice",
    ):
        assert scaled.planted[key] in sv.by_number, key
    for key in ("credit_note_with_original", "credit_note_larger_than_due"):
        assert all(n in sv.by_number for n in scaled.planted[key]), key
    assert scaled.planted["ambiguous_contact_invoices"] and scaled.planted["locked_invoices"]
    assert len(scaled.planted["second_currency_invoices"]) > 3
    shoreditch = sum(i["BusinessId"] == sv.sho["Id"] for i in scaled.nexudus.invoices)
    assert len(scaled.planted["clean_invoices"]) / shoreditch >= 0.85
    check_amounts(sv)


# ---- the shared organisation: Manchester and Leeds through a Location tracking category ----

ORIGINAL_LOCATIONS = ("Hive Shoreditch", "Hive Dublin Docklands")
ORIGINAL_ORGS = ("Hive Coworking UK Ltd", "Hive Coworking Ireland Ltd", "Other Company Ltd")
ORIGINAL_APPS = (
    "recon demo (Custom Connection UK)",
    "recon demo (Custom Connection IE)",
    "recon demo (web app)",
)
SHARED_ORG_KEYS = (
    "shared_org_locations",
    "tracking_category",
    "archived_tracking_option",
    "archived_tracking_category",
    "shared_org_draft_invoices",
    "shared_org_paid_in_nexudus_invoices",
    "clean_invoices_manchester",
    "clean_invoices_leeds",
    "auto_transfer_location",
)
OVERSEAS_KEYS = (
    "overseas_locations",
    "overseas_paid_in_nexudus_invoices",
    "clean_invoices_singapore",
    "clean_invoices_new_york",
    "april_period",  # names one invoice per zone: Shoreditch's, Singapore's and New York's
    # The lock date is New York's organisation's (SEED_VERSION 4).
    "period_lock_date",
    "period_lock_org",
    "period_lock_location",
    "locked_invoices",
)
# Nexudus' own list of names for the category (help.nexudus.com, setting up tracking categories
# in Xero).
CATEGORY_NAMES = {"Location", "Space", "Site", "Center", "Centre", "Building"}


def original_digest(data: DemoData) -> str:
    """SHA-256 of the first two locations' data: Shoreditch's and Dublin's businesses, coworkers,
    charts, tax rates, invoices and lines; the UK, IE and OTHER organisations' settings; the UK, IE
    and web apps (web: all but its tenants); their locations; every planted key but the later
    locations'. ``repr`` keeps order, types and Decimal exponents."""
    nx = data.nexudus
    ids = {b["Id"] for b in nx.businesses if b["Name"] in ORIGINAL_LOCATIONS}
    invoices = [i for i in nx.invoices if i["BusinessId"] in ids]
    invoice_ids = {i["Id"] for i in invoices}
    later = SHARED_ORG_KEYS + OVERSEAS_KEYS
    parts = (
        [b for b in nx.businesses if b["Id"] in ids],
        [c for c in nx.coworkers if c["InvoicingBusinessId"] in ids],
        [a for a in nx.financial_accounts if a["BusinessId"] in ids],
        [t for t in nx.tax_rates if t["BusinessId"] in ids],
        invoices,
        [ln for ln in nx.invoice_lines if ln["CoworkerInvoiceId"] in invoice_ids],
        [
            (o.organisation, o.accounts, o.tax_rates, o.currencies, o.contacts, o.invoices)
            for o in data.xero_orgs
            if o.organisation["Name"] in ORIGINAL_ORGS
        ],
        [
            (a.name, a.client_id, a.grant, a.redirect_uris)
            for a in data.xero_apps
            if a.name in ORIGINAL_APPS
        ],
        {k: t for k, t in data.locations.items() if k in ids},
        {k: p for k, p in data.planted.items() if k not in later},
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()


# Computed with this same function at SEED_VERSION 4: the SEED_VERSION 3 data (the revised
# nexudus.md: dates as UTC instants of local midnights, SimpleTimeZoneId, InvoicingBusinessId,
# AccountType and Payments accounts, the line echoes, Nexudus' Xero flags, Shoreditch's eight added
# invoices; digests 538619f2…, 023c9d0a…) plus, deliberately, the month-end situations: a ninth
# Shoreditch addition (a credit note, last of all, cancelling a paid invoice, whose CreditedAmount
# and UpdatedOn follow), Xero UK's two contacts of one customer's name and its hand-keyed invoice,
# their invoices out of the clean list, and the new planted keys. Undoing exactly those gives the
# SEED_VERSION 3 digests again. Later locations must not change them.
ORIGINAL_DIGESTS = {
    "demo": "dd6247500ba38349e9e4949099881e902bd94fb2b136e8c238f98d02c2291df4",
    # MIN_INVOICES (100) from 2026-11-15 over 4 months
    "small": "a51104888dbd2eb89b92807f1641c480bd475cc7d190c43bbbaf428fbbeda338",
    "scaled": "a9f49f47d4f9f4d602c5636a948f9a52820502e2c5c06108a1bb52ec037dc3f3",  # 20,000 invoices
}


def test_shoreditch_and_dublin_are_byte_identical_whatever_comes_after(
    demo: DemoData, scaled: DemoData
) -> None:
    assert original_digest(demo) == ORIGINAL_DIGESTS["demo"]
    small = generate(invoices=MIN_INVOICES, start=date(2026, 11, 15), months=4)
    assert original_digest(small) == ORIGINAL_DIGESTS["small"]
    assert original_digest(scaled) == ORIGINAL_DIGESTS["scaled"]


def test_the_far_locations_change_nothing_of_the_first_two(
    demo: DemoData, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recon.sandbox import seed_catalogue

    monkeypatch.setattr(seed_catalogue, "OVERSEAS_BUSINESSES", ())
    without = generate()
    assert [b["Name"] for b in without.nexudus.businesses][-1] == "Hive Leeds Wellington Place"
    assert original_digest(without) == original_digest(demo)


def test_later_locations_come_after_the_original_records(v: View) -> None:
    """The shared organisation's records follow the first two locations', the far locations'
    follow those, and the one id counter runs on: no id can collide."""
    nx = v.data.nexudus

    def group(business_id: int) -> int:
        return 2 if business_id in v.overseas_ids else 1 if business_id in v.shared_org_ids else 0

    for records, key in (
        (nx.businesses, "Id"),
        (nx.coworkers, "InvoicingBusinessId"),
        (nx.financial_accounts, "BusinessId"),
        (nx.tax_rates, "BusinessId"),
        (nx.invoices, "BusinessId"),
    ):
        groups = [group(r[key]) for r in records]
        assert groups == sorted(groups) and set(groups) == {0, 1, 2}, key
    line_groups = [group(v.by_id[ln["CoworkerInvoiceId"]]["BusinessId"]) for ln in nx.invoice_lines]
    assert line_groups == sorted(line_groups)
    ids_by_group: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for r in nx.businesses + nx.financial_accounts + nx.tax_rates + nx.invoices:
        ids_by_group[group(int(r.get("BusinessId", r["Id"])))].append(r["Id"])
    for c in nx.coworkers:
        ids_by_group[group(c["InvoicingBusinessId"])].append(c["Id"])
    for ln in nx.invoice_lines:
        ids_by_group[group(v.by_id[ln["CoworkerInvoiceId"]]["BusinessId"])].append(ln["Id"])
    assert max(ids_by_group[0]) < min(ids_by_group[1])
    assert max(ids_by_group[1]) < min(ids_by_group[2])


def test_four_locations_two_sharing_one_organisation_through_a_location_category(v: View) -> None:
    north = v.north.organisation["OrganisationID"]
    assert (v.north.organisation["BaseCurrency"], v.north.organisation["CountryCode"]) == (
        "GBP",
        "GB",
    )
    assert [b["Name"] for b in v.data.nexudus.businesses] == [
        "Hive Shoreditch",
        "Hive Dublin Docklands",
        "Hive Manchester Ancoats",
        "Hive Leeds Wellington Place",
        "Hive Singapore Raffles",
        "Hive New York Flatiron",
    ]
    assert v.planted["shared_org_locations"] == [v.man["Id"], v.lee["Id"]]
    assert v.planted["tracking_category"] == "Location" in CATEGORY_NAMES
    assert v.data.location_tracking == {
        v.sho["Id"]: None,
        v.dub["Id"]: None,
        v.man["Id"]: ("Location", "Manchester"),
        v.lee["Id"]: ("Location", "Leeds"),
        v.sin["Id"]: None,
        v.nyc["Id"]: None,
    }
    assert [k for k, t in v.data.locations.items() if t == north] == v.planted[
        "shared_org_locations"
    ]
    # Every shared-organisation location has its own ACTIVE option of the ACTIVE category, none
    # shared.
    category = next(
        c for c in v.north.tracking_categories if c["Name"] == v.planted["tracking_category"]
    )
    options = {o["Name"]: o for o in category["Options"]}
    assert category["Status"] == "ACTIVE"
    chosen = [v.data.location_tracking[b] for b in v.planted["shared_org_locations"]]
    assert len({option for _, option in chosen}) == len(chosen)
    for name, option in chosen:
        assert (
            name == category["Name"]
            and options[option]["Status"] == "ACTIVE"
            and options[option]["IsActive"]
        )
    assert options[v.planted["archived_tracking_option"]]["Status"] == "ARCHIVED"
    archived = next(
        c
        for c in v.north.tracking_categories
        if c["Name"] == v.planted["archived_tracking_category"]
    )
    assert archived["Status"] == "ARCHIVED"
    assert all(not o.tracking_categories for o in v.data.xero_orgs if o is not v.north)
    ids = [c["TrackingCategoryID"] for c in v.north.tracking_categories]
    ids += [o["TrackingOptionID"] for c in v.north.tracking_categories for o in c["Options"]]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[0-9a-f-]{36}", i) for i in ids)


def test_the_north_custom_connection_is_the_one_for_both_shared_locations(v: View) -> None:
    # recon.session picks the first client-credentials app connected to a location's tenant.
    for business in (v.man, v.lee):
        tenant = v.data.locations[business["Id"]]
        app = next(
            a
            for a in v.data.xero_apps
            if a.grant == "client_credentials" and tenant in a.tenant_ids
        )
        assert app.name == "recon demo (Custom Connection North)"
    for business, name in ((v.sho, "UK"), (v.dub, "IE"), (v.sin, "SG"), (v.nyc, "US")):
        tenant = v.data.locations[business["Id"]]
        app = next(
            a
            for a in v.data.xero_apps
            if a.grant == "client_credentials" and tenant in a.tenant_ids
        )
        assert app.name == f"recon demo (Custom Connection {name})"


def test_manchester_and_leeds_map_cleanly_onto_the_north_chart(v: View) -> None:
    accounts, taxes = v.accounts(v.north), v.tax_names(v.north)
    for business in (v.man, v.lee):
        assert (business["CurrencyCode"], business["CountryName"]) == ("GBP", "United Kingdom")
        for code, name in nexudus_accounts(v, business, PAYMENTS).items():
            assert (accounts[code]["Name"], accounts[code]["Type"]) == (name, "BANK")
        for code, name in nexudus_accounts(v, business, SALES, DEPOSITS).items():
            xero = accounts[code]
            assert (xero["Name"], xero["Status"]) == (name, "ACTIVE")
            assert xero["Class"] == "REVENUE" or code == v.planted["deposit_account"]
        for name, rate in nexudus_rates(v, business).items():
            xero = taxes[name]
            assert (xero["EffectiveRate"], xero["Status"]) == (rate, "ACTIVE")
            assert xero["CanApplyToRevenue"] and xero["CanApplyToLiabilities"]
        final = [i for i in v.invoices if i["BusinessId"] == business["Id"] and not i["Draft"]]
        assert final and all(
            i["CurrencyCode"] == "GBP" and not i["Void"] and not i["CreditNote"] for i in final
        )
        for inv in final:
            for ln in v.lines[inv["Id"]]:
                assert accounts[ln["FinancialAccountCode"]]["Name"] == ln["FinancialAccountName"]
                assert taxes[ln["TaxCategoryName"]]["EffectiveRate"] == ln["TaxRate"]
        # Judged from the data like Shoreditch's: every final invoice of a shared location is clean.
        key = f"clean_invoices_{business['Name'].split()[1].lower()}"
        assert v.planted[key] == [i["InvoiceNumber"] for i in final]


def test_the_shared_organisation_never_sees_one_customer_name_twice(v: View) -> None:
    names = Counter(
        c["BillingName"].casefold()
        for c in v.data.nexudus.coworkers
        if c["InvoicingBusinessId"] in v.shared_org_ids
    )
    names.update(c["Name"].casefold() for c in v.north.contacts)
    assert names.most_common(1)[0][1] == 1
    # and no customer anywhere in the demo shares a name with one of another location
    everywhere = Counter(c["FullName"] for c in v.data.nexudus.coworkers)
    assert [n for n, k in everywhere.items() if k > 1] == [
        v.coworker[v.planted["same_name_coworkers"][0]]["FullName"]
    ]


def test_shared_locations_number_their_invoices_apart(v: View) -> None:
    # Xero refuses one reference twice in an organisation (nexudus.md §3): one prefix per location.
    north_numbers = [
        i["InvoiceNumber"]
        for i in v.invoices
        if i["BusinessId"] in v.shared_org_ids and i["InvoiceNumber"]
    ]
    assert len(north_numbers) == len(set(north_numbers))
    assert {n[:4] for n in north_numbers} == {"MAN-", "LEE-"}
    drafts = v.planted["shared_org_draft_invoices"]
    assert drafts and all(
        v.by_id[d]["Draft"] and v.by_id[d]["BusinessId"] in v.shared_org_ids for d in drafts
    )


def test_the_shared_organisation_scales_with_the_rest(scaled: DemoData) -> None:
    sv = View(scaled)
    per_business = Counter(i["BusinessId"] for i in scaled.nexudus.invoices)
    assert (per_business[sv.man["Id"]], per_business[sv.lee["Id"]]) == (3_000, 2_000)
    final = sum(not i["Draft"] for i in scaled.nexudus.invoices if i["BusinessId"] == sv.man["Id"])
    assert len(scaled.planted["clean_invoices_manchester"]) == final
    assert 10 <= len(scaled.planted["shared_org_draft_invoices"]) <= 100


# ---- the revised reference: zones, records, accounts, Nexudus' own Xero flags -----------------


def test_every_location_has_a_simple_time_zone_and_no_prices_include_tax(v: View) -> None:
    """nexudus.md §6: Business.SimpleTimeZoneId → a SimpleTimeZone (Windows-style Name,
    TimeOffset, UsesSummerTime); §7.4 Business has no "prices include tax" property."""
    zones = {z["Id"]: z for z in v.data.nexudus.simple_time_zones}
    assert all(set(z) == {"Id", "Name", "TimeOffset", "UsesSummerTime"} for z in zones.values())
    named = {b["Name"]: zones[b["SimpleTimeZoneId"]]["Name"] for b in v.data.nexudus.businesses}
    assert set(named.values()) == {
        "GMT Standard Time",
        "Singapore Standard Time",
        "Eastern Standard Time",
    }
    assert named["Hive Singapore Raffles"] == "Singapore Standard Time"
    assert named["Hive New York Flatiron"] == "Eastern Standard Time"
    currencies = {c["Id"]: c["Code"] for c in v.data.nexudus.currencies}
    for b in v.data.nexudus.businesses:
        assert "PricesIncludeTax" not in b and "TimeZone" not in b
        assert currencies[b["CurrencyId"]] == b["CurrencyCode"]
    assert (v.sin["CurrencyCode"], v.nyc["CurrencyCode"]) == ("SGD", "USD")


def test_accounts_carry_their_type_and_every_location_has_payments_and_deposits(v: View) -> None:
    """nexudus.md §7.4 FinancialAccount: AccountType (0 None, 1 Sales, 2 Payments, 3 Deposits);
    §11: payment accounts are Payments-type accounts whose name and code must match Xero."""
    for b in v.data.nexudus.businesses:
        assert nexudus_accounts(v, b, PAYMENTS) and nexudus_accounts(v, b, DEPOSITS), b["Name"]
    for a in v.data.nexudus.financial_accounts:
        assert a["AccountType"] in (SALES, PAYMENTS, DEPOSITS)
        assert (a["AccountType"] == DEPOSITS) is (a["Code"] == v.planted["deposit_account"])
    orgs = {
        v.sho["Id"]: v.uk,
        v.dub["Id"]: v.ie,
        v.man["Id"]: v.north,
        v.lee["Id"]: v.north,
        v.sin["Id"]: v.sg,
        v.nyc["Id"]: v.us,
    }
    missing = v.planted["missing_payments_account"]
    for b in v.data.nexudus.businesses:
        xero = v.accounts(orgs[b["Id"]])
        for code, name in nexudus_accounts(v, b, PAYMENTS).items():
            if b is v.sho and code == missing:
                continue
            assert (xero[code]["Name"], xero[code]["Type"]) == (name, "BANK")
    # PLANTED: one Shoreditch Payments account has no code in Xero UK.
    assert missing in nexudus_accounts(v, v.sho, PAYMENTS) and missing not in v.accounts(v.uk)
    assert (
        nexudus_accounts(v, v.sho, PAYMENTS)[missing] == v.planted["missing_payments_account_name"]
    )
    assert v.planted["payments_account"] in v.accounts(v.uk)


def test_tax_rates_carry_their_exemption_reason(v: View) -> None:
    """nexudus.md §7.4 TaxRate: Id, BusinessId, Name, Rate (percent), ExemptionReason (1 None)."""
    for t in v.data.nexudus.tax_rates:
        assert {"Id", "BusinessId", "Name", "Rate", "ExemptionReason"} <= t.keys()
        assert t["ExemptionReason"] == 1


def test_line_only_tax_rates_are_planted_on_otherwise_clean_shoreditch_invoices(v: View) -> None:
    """nexudus.md §7.2: untaxed lines read "[No Tax]", TaxRate 0; the location's default rate
    and per-customer personal rates also reach lines without being TaxRate records."""
    for case, name, count in (
        ("no_tax", "[No Tax]", 2),
        ("default_tax_rate", "Default tax rate", 1),
        ("personal_tax_rate", "Personal rate - charity", 1),
    ):
        assert v.planted[f"{case}_name"] == name
        numbers = v.planted[f"{case}_invoices"]
        assert len(numbers) == count
        for number in numbers:
            inv = v.by_number[number]
            assert inv["BusinessId"] == v.sho["Id"] and number not in v.planted["clean_invoices"]
            odd = [ln for ln in v.lines[inv["Id"]] if ln["TaxCategoryName"] == name]
            assert len(odd) == 1 and odd[0]["TaxRate"] == LINE_ONLY_RATES[name]
        assert len(v.planted[f"{case}_line_ids"]) == count


def test_nexudus_own_integration_flags(v: View) -> None:
    """nexudus.md §11: XeroInvoiceTransfered, XeroPaymentTransfered, AutoTransferToXeroOrQuickBooks
    on the invoice; "recon must skip invoices already flagged and warn when the mode is on"."""
    sent = v.planted["already_sent_by_nexudus"]
    accounts, taxes = v.accounts(v.uk), v.tax_names(v.uk)
    for number in sent:
        inv = v.by_number[number]
        assert inv["BusinessId"] == v.sho["Id"] and inv["XeroInvoiceTransfered"]
        assert not (inv["Draft"] or inv["Void"] or inv["CreditNote"])
        for ln in v.lines[inv["Id"]]:  # it maps cleanly: only the flag keeps it out
            assert accounts[ln["FinancialAccountCode"]]["Name"] == ln["FinancialAccountName"]
            assert taxes[ln["TaxCategoryName"]]["EffectiveRate"] == ln["TaxRate"]
        assert number not in v.planted["clean_invoices"]
    assert v.planted["auto_transfer_location"] == v.lee["Id"]
    for inv in v.invoices:
        assert inv["AutoTransferToXeroOrQuickBooks"] is (inv["BusinessId"] == v.lee["Id"])
    assert v.planted["clean_invoices_leeds"]  # the mode is a warning, not a mapping problem


def test_lines_echo_their_invoice(v: View) -> None:
    """nexudus.md §7.2: CoworkerInvoiceInvoiceNumber, CoworkerInvoicePaid, CoworkerInvoicePaidOn,
    CoworkerInvoiceCreditNote, CoworkerInvoiceCurrencyCode, CoworkerInvoiceDueDate."""
    for inv in v.invoices:
        for ln in v.lines[inv["Id"]]:
            assert (
                ln["CoworkerInvoiceInvoiceNumber"],
                ln["CoworkerInvoicePaid"],
                ln["CoworkerInvoicePaidOn"],
                ln["CoworkerInvoiceCreditNote"],
                ln["CoworkerInvoiceCurrencyCode"],
                ln["CoworkerInvoiceDueDate"],
            ) == (
                inv["InvoiceNumber"],
                inv["Paid"],
                inv["PaidOn"],
                inv["CreditNote"],
                inv["CurrencyCode"],
                inv["DueDate"],
            )


def test_invoices_carry_what_a_full_record_put_requires(v: View) -> None:
    """nexudus.md §7.1 "Required on PUT": Id, CoworkerId, BusinessId, InvoiceNumber, BillToName,
    BillToAddress, BillToCity, BillToPostCode, BillToCountryId, CurrencyId."""
    required = (
        "CoworkerId",
        "BusinessId",
        "BillToAddress",
        "BillToCity",
        "BillToPostCode",
        "BillToCountryId",
        "CurrencyId",
    )
    for inv in v.invoices:
        assert all(inv[f] is not None for f in required), inv["Id"]
        assert inv["BillToName"] is not None  # blank for the planted blank billing name
        assert inv["TransactionCurrencyId"] == inv["CurrencyId"]


# ---- Singapore and New York: their own organisations, cleanly mapped ----------------------------


def test_singapore_and_new_york_have_their_own_organisations(v: View) -> None:
    sg, us = v.sg.organisation, v.us.organisation
    assert (sg["BaseCurrency"], sg["CountryCode"], sg["Timezone"]) == (
        "SGD",
        "SG",
        "SINGAPORESTANDARDTIME",
    )
    assert (us["BaseCurrency"], us["CountryCode"], us["Timezone"]) == (
        "USD",
        "US",
        "EASTERNSTANDARDTIME",
    )
    assert [c["Code"] for c in v.sg.currencies] == ["SGD"]
    assert [c["Code"] for c in v.us.currencies] == ["USD"]
    assert v.planted["overseas_locations"] == [v.sin["Id"], v.nyc["Id"]]


@pytest.mark.parametrize(
    ("location", "org", "clean_key"),
    [("sin", "sg", "clean_invoices_singapore"), ("nyc", "us", "clean_invoices_new_york")],
)
def test_the_far_locations_map_exactly_onto_their_organisations(
    v: View, location: str, org: str, clean_key: str
) -> None:
    business, books = getattr(v, location), getattr(v, org)
    accounts, taxes = v.accounts(books), v.tax_names(books)
    for code, name in nexudus_accounts(v, business).items():
        assert (accounts[code]["Name"], accounts[code]["Status"]) == (name, "ACTIVE")
    for name, rate in nexudus_rates(v, business).items():
        assert (taxes[name]["EffectiveRate"], taxes[name]["Status"]) == (rate, "ACTIVE")
    april = v.planted["april_period"][business["Name"]]
    final = [
        i["InvoiceNumber"]
        for i in v.invoices
        if i["BusinessId"] == business["Id"] and not i["Draft"] and i["InvoiceNumber"] != april
    ]
    # New York's books are locked through the period's first day (planted): Xero refuses those.
    locked = v.planted["locked_invoices"] if business["Name"] == "Hive New York Flatiron" else []
    clean = [n for n in final if n not in locked]
    assert v.planted[clean_key] == clean and 20 <= len(clean) <= 40
    for number in [*final, april]:
        assert v.by_number[number]["CurrencyCode"] == business["CurrencyCode"]
        for ln in v.lines_of(number):
            assert accounts[ln["FinancialAccountCode"]]["Name"] == ln["FinancialAccountName"]
            assert taxes[ln["TaxCategoryName"]]["EffectiveRate"] == ln["TaxRate"]
    paid = sorted(
        i["InvoiceNumber"] for i in v.invoices if i["BusinessId"] in v.overseas_ids and i["Paid"]
    )
    assert paid == sorted(v.planted["overseas_paid_in_nexudus_invoices"])


# ---- month-end situations: what Xero already holds, lock dates, credit notes --------------


def xero_get(box: Sandbox, organisation: str, path: str, **params: str) -> dict[str, Any]:
    """GET an accounting path of one organisation through the Custom Connection reaching it."""
    (tenant,) = (t for t, name in box.organisations.items() if name == organisation)
    (app,) = (
        a
        for a in box.xero_apps.values()
        if a["grant"] == "client_credentials" and a["tenant_ids"] == [tenant]
    )
    token = httpx.post(
        box.xero_token_url,
        data={"grant_type": "client_credentials"},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert token.status_code == 200, token.text
    answer = httpx.get(
        box.xero_api_url + path,
        params=params,
        headers={
            "Authorization": f"Bearer {token.json()['access_token']}",
            "xero-tenant-id": tenant,
            "Accept": "application/json",
        },
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = jsonutil.loads(answer.content)
    return body


def msdate(day: date) -> str:
    """xero-api.md §6, §10: a date as Xero's JSON shows it, ``/Date(ms+0000)/`` at UTC midnight."""
    stamp = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo("UTC")).timestamp()
    return f"/Date({int(stamp * 1000)}+0000)/"


def maps_exactly(v: View, org: XeroOrgSeed, number: str) -> bool:
    """Every line's account code and name and tax rate name and percentage are the same, ACTIVE,
    in the organisation's books."""
    accounts, taxes = v.accounts(org), v.tax_names(org)
    return all(
        (account := accounts.get(ln["FinancialAccountCode"])) is not None
        and (account["Name"], account["Status"]) == (ln["FinancialAccountName"], "ACTIVE")
        and (tax := taxes.get(ln["TaxCategoryName"])) is not None
        and (tax["EffectiveRate"], tax["Status"]) == (ln["TaxRate"], "ACTIVE")
        for ln in v.lines_of(number)
    )


def test_the_us_books_are_locked_through_the_first_day_of_the_period(v: View) -> None:
    """xero-api.md §6 PeriodLockDate, §13: Xero refuses approved documents dated on or before
    it, so New York's invoices of that first day cannot be approved there."""
    lock = date.fromisoformat(v.planted["period_lock_date"])
    assert v.planted["period_lock_date"] == v.planted["period_start"]
    assert v.planted["period_lock_org"] == v.us.organisation["Name"] == "Hive Coworking US Inc"
    assert v.us.organisation["PeriodLockDate"] == v.planted["period_lock_date"]
    # The one location booking into the US organisation is New York.
    us_tenant = v.us.organisation["OrganisationID"]
    assert [b for b, t in v.data.locations.items() if t == us_tenant] == [v.nyc["Id"]]
    assert v.planted["period_lock_location"] == v.nyc["Name"]
    start, end = (date.fromisoformat(v.planted[k]) for k in ("period_start", "period_end"))
    april = v.planted["april_period"][v.nyc["Name"]]
    in_period = [
        i
        for i in v.invoices
        if i["BusinessId"] == v.nyc["Id"]
        and not i["Draft"]
        and start <= v.local_day(v.nyc["Id"], i["CreatedOn"]) <= end
    ]
    # Xero's Date is the local issue date or the period's first day (nexudus.md §6).
    locked = sorted(
        i["InvoiceNumber"]
        for i in in_period
        if min(
            v.local_day(v.nyc["Id"], i["CreatedOn"]),
            v.local_day(v.nyc["Id"], i["InvoiceFromDate"]),
        )
        <= lock
    )
    assert v.planted["locked_invoices"] == locked and 3 <= len(locked) <= 10
    assert april not in locked  # outside the period, though dated before the lock too
    assert set(locked).isdisjoint(v.planted["clean_invoices_new_york"])
    after = [i for i in in_period if i["InvoiceNumber"] not in locked]
    assert after and all(v.local_day(v.nyc["Id"], i["CreatedOn"]) > lock for i in after)


def test_get_organisation_shows_the_period_lock_date_of_the_us_books_only(
    sandbox: Sandbox,
) -> None:
    """xero-api.md §6: GET /Organisation gives PeriodLockDate as an MS-JSON date, only when set."""
    lock = date.fromisoformat(sandbox.planted["period_lock_date"])
    (us,) = xero_get(sandbox, sandbox.planted["period_lock_org"], "/Organisation")["Organisations"]
    assert us["PeriodLockDate"] == msdate(lock)
    assert "EndOfYearLockDate" not in us
    (uk,) = xero_get(sandbox, "Hive Coworking UK Ltd", "/Organisation")["Organisations"]
    assert "PeriodLockDate" not in uk


def test_a_hand_keyed_xero_invoice_already_has_a_shoreditch_number(v: View) -> None:
    """xero-api.md §3.1: ACCREC numbers are unique in an organisation, so this Shoreditch
    invoice cannot go to Xero UK under its number; the Xero one is another customer's."""
    number = v.planted["number_clash_invoice"]
    nexudus = v.by_number[number]
    assert nexudus["BusinessId"] == v.sho["Id"] and not (nexudus["Draft"] or nexudus["Void"])
    assert v.planted["period_start"] <= nexudus["CreatedOn"][:10] <= v.planted["period_end"]
    (xero,) = v.uk.invoices
    assert (xero["InvoiceNumber"], xero["Type"], xero["Status"]) == (number, "ACCREC", "AUTHORISED")
    (contact,) = (c for c in v.uk.contacts if c["ContactID"] == xero["Contact"]["ContactID"])
    assert contact["Name"] == v.planted["number_clash_xero_contact"] != nexudus["BillToName"]
    assert xero["Total"] == v.planted["number_clash_xero_total"] != nexudus["TotalAmount"]
    # Xero's arithmetic (§3.3): line amounts and tax per line, Total = SubTotal + TotalTax.
    (line,) = xero["LineItems"]
    rate = v.taxes(v.uk)[line["TaxType"]]["EffectiveRate"]
    assert line["LineAmount"] == cents(line["Quantity"] * line["UnitAmount"]) == xero["SubTotal"]
    assert line["TaxAmount"] == cents(line["LineAmount"] * rate / 100) == xero["TotalTax"]
    assert xero["Total"] == xero["SubTotal"] + xero["TotalTax"] == xero["AmountDue"]
    assert v.accounts(v.uk)[line["AccountCode"]]["AccountID"] == line["AccountID"]
    assert v.planted["period_start"] <= xero["Date"] <= nexudus["CreatedOn"][:10]
    # Clean but for the number: held out of the clean list.
    assert number not in v.planted["clean_invoices"] and maps_exactly(v, v.uk, number)
    assert not v.ie.invoices and not v.north.invoices


def test_get_invoices_by_number_shows_the_clash(sandbox: Sandbox) -> None:
    """xero-api.md §3.4 InvoiceNumbers: the number answers with the hand-keyed invoice."""
    number = sandbox.planted["number_clash_invoice"]
    found = xero_get(sandbox, "Hive Coworking UK Ltd", "/Invoices", InvoiceNumbers=number)
    (invoice,) = found["Invoices"]
    assert (invoice["InvoiceNumber"], invoice["Status"]) == (number, "AUTHORISED")
    assert invoice["Contact"]["Name"] == sandbox.planted["number_clash_xero_contact"]
    assert invoice["Total"] == sandbox.planted["number_clash_xero_total"]


def test_one_shoreditch_customer_has_two_active_xero_contacts_of_its_name(v: View) -> None:
    """xero-api.md §6: Name "may no longer be a unique field"; neither contact has a
    ContactNumber or the customer's billing e-mail, so nothing tells them apart."""
    name = v.planted["ambiguous_contact_name"]
    twins = [c for c in v.uk.contacts if c["Name"] == name]
    assert sorted(c["ContactID"] for c in twins) == v.planted["ambiguous_contact_ids"]
    assert len(set(v.planted["ambiguous_contact_ids"])) == 2
    numbers = v.planted["ambiguous_contact_invoices"]
    (coworker_id,) = {v.by_number[n]["CoworkerId"] for n in numbers}
    coworker = v.coworker[coworker_id]
    assert coworker["InvoicingBusinessId"] == v.sho["Id"] and coworker["BillingName"] == name
    assert [i["InvoiceNumber"] for i in v.invoices if i["CoworkerId"] == coworker_id] == numbers
    for contact in twins:
        assert contact["ContactStatus"] == "ACTIVE" and not contact.get("ContactNumber")
        assert contact["EmailAddress"].lower() != coworker["BillingEmail"].lower()
    # One customer only: no other Nexudus customer of any location has that name.
    assert sum(c["BillingName"] == name for c in v.data.nexudus.coworkers) == 1
    # Clean but for the contacts: held out of the clean list.
    assert numbers and all(maps_exactly(v, v.uk, n) for n in numbers)
    assert set(numbers).isdisjoint(v.planted["clean_invoices"])


@pytest.mark.parametrize("key", ["name_clash_contact", "ambiguous_contact_name"])
def test_get_contacts_by_name_shows_the_contacts_without_a_number(
    sandbox: Sandbox, key: str
) -> None:
    """xero-api.md §6: GET /Contacts?where=Name=="…" answers with every ACTIVE contact of that
    name; here one (the name clash) or two (the ambiguous customer), none with ContactNumber."""
    name = sandbox.planted[key]
    found = xero_get(sandbox, "Hive Coworking UK Ltd", "/Contacts", where=f'Name=="{name}"')
    contacts = found["Contacts"]
    expected = (
        [sandbox.planted["same_name_contact_id"]]
        if key == "name_clash_contact"
        else sandbox.planted["ambiguous_contact_ids"]
    )
    assert sorted(c["ContactID"] for c in contacts) == sorted(expected)
    for contact in contacts:
        assert (contact["Name"], contact["ContactStatus"]) == (name, "ACTIVE")
        assert not contact.get("ContactNumber")


def test_a_credit_note_names_a_transferable_original(v: View) -> None:
    """nexudus.md §7.1: OriginalInvoiceGuid is the original's UniqueId; the original is clean
    (final, not void, every line mapped), so recon can transfer it and allocate the note."""
    note_number, original_number = v.planted["credit_note_with_original"]
    assert (note_number, original_number) == (
        v.planted["credit_note"],
        v.planted["credit_note_original"],
    )
    note, original = v.by_number[note_number], v.by_number[original_number]
    assert note["CreditNote"] and note["OriginalInvoiceGuid"] == original["UniqueId"]
    assert original["BusinessId"] == note["BusinessId"] == v.sho["Id"]
    assert not (original["Void"] or original["Draft"] or original["CreditNote"])
    assert original_number in v.planted["clean_invoices"]
    assert -note["TotalAmount"] == original["TotalAmount"] - original["PaidAmount"]


def test_a_credit_note_cancels_a_paid_invoice_for_more_than_it_has_left_due(v: View) -> None:
    """nexudus.md §7.1: a credit note is "raised when an invoice is cancelled or refunded";
    this one cancels in full a one-off invoice paid in Nexudus three days before."""
    note_number, original_number = v.planted["credit_note_larger_than_due"]
    note, original = v.by_number[note_number], v.by_number[original_number]
    assert note["CreditNote"] and note["OriginalInvoiceGuid"] == original["UniqueId"]
    assert note["BusinessId"] == original["BusinessId"] == v.sho["Id"]
    assert original["Paid"] and original["PaidAmount"] == original["TotalAmount"] > 0
    assert original["CreditedAmount"] == -note["TotalAmount"] == original["TotalAmount"]
    assert original["DueAmount"] == Decimal("0.00") < -note["TotalAmount"]
    assert original["PaidOn"] < note["CreatedOn"] <= original["UpdatedOn"] < v.planted["period_end"]
    assert [ln["SubTotal"] for ln in v.lines[note["Id"]]] == [
        -ln["SubTotal"] for ln in v.lines[original["Id"]]
    ]
    assert original_number in v.planted["clean_invoices"]
    assert note_number not in v.planted["clean_invoices"]
    # The last Shoreditch number: added after every other record.
    shoreditch = [i["InvoiceNumber"] for i in v.invoices if i["BusinessId"] == v.sho["Id"]]
    assert max(n for n in shoreditch if n) == note_number == shoreditch[-1]
