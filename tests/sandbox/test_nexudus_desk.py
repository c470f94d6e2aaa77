"""The Nexudus desk (the admin UI's invoice controls) and the §9 runcommand route, over real HTTP.

What the desk does is read back through the API as any client would; each test
quotes the section of shared/reference/nexudus.md it checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from recon.sandbox import NexudusLimits, Sandbox, jsonutil
from recon.sandbox.nexudus_desk import CommandRefused

SHOREDITCH = "Hive Shoreditch"
DUBLIN = "Hive Dublin Docklands"
VAT20 = "20% (VAT on Income)"
IE_VAT23 = "23% Standard"
IN_PERIOD = "2026-10-15T10:00:00Z"
RUNCOMMAND = "/billing/coworkerinvoices/runcommand"


@dataclass
class Api:
    """A Basic-auth client of the sandbox's Nexudus API (§1) and the ids a test needs."""

    box: Sandbox
    http: httpx.Client

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(self.box.nexudus_api_url + path, params=params)

    def json(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return jsonutil.loads(response.content)

    def run(self, key: str, ids: list[Any], parameters: list[dict[str, Any]] | None = None) -> Any:
        body: dict[str, Any] = {"Key": key, "Ids": ids}
        if parameters is not None:
            body["Parameters"] = parameters
        response = self.http.post(self.box.nexudus_api_url + RUNCOMMAND, json=body)
        assert response.status_code == 200, response.text
        return jsonutil.loads(response.content)

    def invoice(self, invoice_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self.json(f"/billing/coworkerinvoices/{invoice_id}")
        return found

    def lines(self, invoice_id: int) -> list[dict[str, Any]]:
        page = self.json(
            "/billing/coworkerinvoicelines", CoworkerInvoiceLine_CoworkerInvoice=invoice_id
        )
        return sorted(page["Records"], key=lambda line: line["Position"])

    def business(self, name: str) -> int:
        records = self.json("/sys/businesses", size=100)["Records"]
        return int(next(b["Id"] for b in records if b["Name"] == name))

    def coworker(self, business_id: int) -> int:
        records = self.json("/spaces/coworkers", Coworker_InvoicingBusiness=business_id)["Records"]
        return int(records[0]["Id"])


@pytest.fixture
def api(fresh_sandbox: Sandbox) -> Iterator[Api]:
    fresh_sandbox.nexudus.limits = NexudusLimits(enabled=False)
    auth = (fresh_sandbox.nexudus_username, fresh_sandbox.nexudus_password)
    with httpx.Client(auth=auth, headers={"Accept": "application/json"}, timeout=30) as http:
        yield Api(fresh_sandbox, http)


def raise_at(api: Api, lines: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    """An invoice raised at Shoreditch (or ``location``) for one of its customers."""
    business = api.business(options.pop("location", SHOREDITCH))
    options.setdefault("created_on", IN_PERIOD)
    invoice: dict[str, Any] = api.box.nexudus.desk.raise_invoice(
        business, api.coworker(business), lines, **options
    )
    return invoice


def printing(qty: Any = 3, unit: Any = "33.333", **more: Any) -> dict[str, Any]:
    return {
        "Description": "Printing credits",
        "Quantity": qty,
        "UnitPrice": unit,
        "TaxCategoryName": VAT20,
        "FinancialAccountCode": "4100",
        **more,
    }


# ---- raising invoices (§7.1 "billing runs raise them", §7.2 lines)


def test_a_raised_invoice_reads_back_with_its_lines_and_derived_amounts(api: Api) -> None:
    """§7.2: SubTotal = Quantity × UnitPrice − DiscountAmount, tax per line; §7.1 totals."""
    raised = raise_at(
        api, [printing(), {**printing(2, "50.00"), "DiscountAmount": "10.00", "Position": 2}]
    )
    invoice = api.invoice(raised["Id"])
    lines = api.lines(raised["Id"])
    assert [(ln["Quantity"], ln["UnitPrice"], ln["SubTotal"], ln["TaxAmount"]) for ln in lines] == [
        (3, Decimal("33.333"), Decimal("100.00"), Decimal("20.00")),
        (2, Decimal("50.00"), Decimal("90.00"), Decimal("18.00")),
    ]
    assert lines[0]["TaxRate"] == Decimal("20.00")  # the location's TaxRate record of that name
    assert lines[0]["FinancialAccountName"] == "Services Income"
    assert {ln["CoworkerInvoiceInvoiceNumber"] for ln in lines} == {invoice["InvoiceNumber"]}
    assert (invoice["TaxAmount"], invoice["TotalAmount"], invoice["DiscountAmount"]) == (
        Decimal("38.00"),
        Decimal("228.00"),
        Decimal("10.00"),
    )
    assert (invoice["DueAmount"], invoice["IsDue"]) == (Decimal("228.00"), True)
    assert invoice["CreatedOn"] == IN_PERIOD and invoice["UpdatedOn"] >= IN_PERIOD
    assert invoice["InvoiceNumber"].startswith("SHO-2026-")
    assert (invoice["CreditNote"], invoice["Void"], invoice["Draft"]) == (False, False, False)


def test_raised_invoices_take_the_next_numbers_of_the_location(api: Api) -> None:
    """§7.1: "finalising assigns the number"; Xero refuses a number twice (§11)."""
    first = raise_at(api, [printing()])
    second = raise_at(api, [printing()])
    head, _, n = first["InvoiceNumber"].rpartition("-")
    assert second["InvoiceNumber"] == f"{head}-{int(n) + 1:0{len(n)}d}"
    found = api.json(
        "/billing/coworkerinvoices", CoworkerInvoice_InvoiceNumber=first["InvoiceNumber"]
    )
    assert found["TotalItems"] == 1


def test_prices_including_tax_make_the_total_the_sum_of_the_lines(api: Api) -> None:
    """§7.2: with prices including tax, Σ SubTotal = TotalAmount and tax is the included part."""
    raised = raise_at(
        api,
        [{"Description": "Day pass", "Quantity": 1, "UnitPrice": "30.00",
          "TaxCategoryName": IE_VAT23, "FinancialAccountCode": "4000"}],
        location=DUBLIN,
        prices_include_tax=True,
    )  # fmt: skip
    invoice = api.invoice(raised["Id"])
    (line,) = api.lines(raised["Id"])
    assert (line["SubTotal"], line["TaxAmount"]) == (Decimal("30.00"), Decimal("5.61"))
    assert (invoice["TotalAmount"], invoice["TaxAmount"], invoice["CurrencyCode"]) == (
        Decimal("30.00"),
        Decimal("5.61"),
        "EUR",
    )


def test_raw_lines_are_served_exactly_as_given_even_when_nonsensical(api: Api) -> None:
    """§7.2 fields as stored: null, NaN (Json.NET writes "NaN"), text, fractions, huge numbers."""
    raised = raise_at(
        api,
        [
            printing(Decimal("1.5"), "10.00"),
            printing(1, float("nan")),
            printing("abc", None),
            printing(1, Decimal("Infinity")),
            printing(-2, "12.50", SubTotal=Decimal("100000000000000.00")),
        ],
        raw=True,
    )
    lines = api.lines(raised["Id"])
    assert [(ln["Quantity"], ln["UnitPrice"], ln["SubTotal"]) for ln in lines] == [
        (Decimal("1.5"), "10.00", Decimal("15.00")),
        (1, "NaN", None),
        ("abc", None, None),
        (1, "Infinity", None),
        (-2, "12.50", Decimal("100000000000000.00")),
    ]
    invoice = api.invoice(raised["Id"])
    # Only the amounts that are numbers add up: 15.00 and 10^14, each with 20 % tax on top.
    assert invoice["TotalAmount"] == Decimal("120000000000018.00")


def test_a_line_that_is_no_number_needs_raw(api: Api) -> None:
    """Only ``raw`` stores nonsense: a typo in a test's table should not pass silently."""
    with pytest.raises(ValueError, match="raw=True"):
        raise_at(api, [printing(1, "abc")])


def test_header_fields_and_foreign_currency_are_stored_as_given(api: Api) -> None:
    """§7.1: CurrencyCode, TransactionExchangeRate; header totals as Nexudus rounded them."""
    raised = raise_at(
        api,
        [printing(1, "3.33"), printing(1, "3.33"), printing(1, "3.33")],
        currency="EUR",
        exchange_rate="1.1634",
        header={"TaxAmount": Decimal("2.00"), "TotalAmount": Decimal("11.99")},
    )
    invoice = api.invoice(raised["Id"])
    assert (invoice["CurrencyCode"], invoice["TransactionCurrencyCode"]) == ("EUR", "EUR")
    assert invoice["TransactionExchangeRate"] == Decimal("1.1634")
    assert (invoice["TaxAmount"], invoice["TotalAmount"]) == (Decimal("2.00"), Decimal("11.99"))
    assert [ln["TaxAmount"] for ln in api.lines(raised["Id"])] == [Decimal("0.67")] * 3


def test_retotal_reprices_the_lines_and_bumps_updated_on(api: Api) -> None:
    """§7.1 a draft can change; every change moves UpdatedOn (§3 UpdatedOn range reads see it)."""
    raised = raise_at(api, [printing(), printing(1, "5.00")])
    before = api.invoice(raised["Id"])["UpdatedOn"]
    api.box.clock.advance(5)
    api.box.nexudus.desk.retotal(raised["Id"], [{"UnitPrice": "40.00"}])
    invoice = api.invoice(raised["Id"])
    (line,) = api.lines(raised["Id"])
    assert (line["Quantity"], line["UnitPrice"], line["SubTotal"]) == (
        3,
        Decimal("40.00"),
        Decimal("120.00"),
    )
    assert invoice["TotalAmount"] == Decimal("144.00")
    assert invoice["UpdatedOn"] > before and line["UpdatedOn"] == invoice["UpdatedOn"]
    changed = api.json(
        "/billing/coworkerinvoices", from_CoworkerInvoice_UpdatedOn=invoice["UpdatedOn"]
    )
    assert raised["Id"] in {r["Id"] for r in changed["Records"]}


# ---- §9 commands over POST billing/coworkerinvoices/runcommand


def test_void_invoice_sets_void_on_the_same_invoice_and_bumps_updated_on(api: Api) -> None:
    """§9 VOID_INVOICE: Void = true on the same invoice; §4 success shape."""
    raised = raise_at(api, [printing()])
    api.box.clock.advance(5)
    answer = api.run("VOID_INVOICE", [raised["Id"]])
    assert answer["WasSuccessful"] is True and answer["Errors"] is None
    assert answer["Value"]["Id"] == raised["Id"]
    invoice = api.invoice(raised["Id"])
    assert invoice["Void"] is True and invoice["UpdatedOn"] > raised["UpdatedOn"]
    assert invoice["TotalAmount"] == Decimal("120.00")  # voiding keeps the amounts


def test_void_invoice_is_refused_on_a_paid_invoice_and_nothing_changes(api: Api) -> None:
    """§9: VOID_INVOICE refused on paid invoices; §4: run-command failures answer 200 with
    WasSuccessful false."""
    raised = raise_at(api, [printing()])
    api.box.nexudus.desk.part_pay(raised["Id"], "120.00")
    paid = api.invoice(raised["Id"])
    answer = api.run("VOID_INVOICE", [raised["Id"]])
    assert answer["WasSuccessful"] is False and answer["Value"] is None
    assert "paid and cannot be voided" in answer["Message"]
    assert answer["Errors"][0]["AttemptedValue"] == raised["Id"]
    assert api.invoice(raised["Id"]) == paid
    with pytest.raises(CommandRefused, match="cannot be voided"):
        api.box.nexudus.desk.void(raised["Id"])


def test_cancel_raises_a_credit_note_for_the_whole_invoice(api: Api) -> None:
    """§9 COWORKER_INVOICE_CANCEL, §7.1: a new invoice, CreditNote true, negative amounts,
    OriginalInvoiceGuid the original's UniqueId; the original is credited (ASSUMPTION)."""
    raised = raise_at(api, [printing(), {**printing(2, "50.00"), "DiscountAmount": "10.00"}])
    answer = api.run("COWORKER_INVOICE_CANCEL", [raised["Id"]], [])
    assert answer["WasSuccessful"] is True
    note = api.invoice(answer["Value"]["Id"])
    assert note["Id"] != raised["Id"]
    assert (note["CreditNote"], note["OriginalInvoiceGuid"]) == (True, raised["UniqueId"])
    assert (note["TotalAmount"], note["TaxAmount"]) == (Decimal("-228.00"), Decimal("-38.00"))
    assert [
        (ln["Quantity"], ln["UnitPrice"], ln["DiscountAmount"], ln["SubTotal"], ln["TaxAmount"])
        for ln in api.lines(note["Id"])
    ] == [
        (3, Decimal("-33.333"), Decimal("0.00"), Decimal("-100.00"), Decimal("-20.00")),
        (2, Decimal("-50.00"), Decimal("-10.00"), Decimal("-90.00"), Decimal("-18.00")),
    ]
    original = api.invoice(raised["Id"])
    assert (original["CreditedAmount"], original["DueAmount"], original["IsDue"]) == (
        Decimal("228.00"),
        Decimal("0.00"),
        False,
    )
    assert original["UpdatedOn"] >= raised["UpdatedOn"]


def test_cancel_with_an_amount_credits_part_of_the_invoice(api: Api) -> None:
    """§9: parameter Amount{invoiceId} credits part; the original's DueAmount falls by it."""
    raised = raise_at(api, [printing()])
    parameters = [{"Name": f"Amount{raised['Id']}", "Type": "decimal", "Value": 50}]
    answer = api.run("COWORKER_INVOICE_CANCEL", [raised["Id"]], parameters)
    note = api.invoice(answer["Value"]["Id"])
    (line,) = api.lines(note["Id"])
    assert note["TotalAmount"] == Decimal("-50.00")
    assert (line["SubTotal"], line["TaxAmount"]) == (Decimal("-41.67"), Decimal("-8.33"))
    original = api.invoice(raised["Id"])
    assert (original["CreditedAmount"], original["DueAmount"]) == (
        Decimal("50.00"),
        Decimal("70.00"),
    )
    # What is left can be credited, no more.
    too_much = api.run(
        "COWORKER_INVOICE_CANCEL",
        [raised["Id"]],
        [{"Name": f"Amount{raised['Id']}", "Type": "decimal", "Value": "70.01"}],
    )
    assert too_much["WasSuccessful"] is False and "at most 70.00" in too_much["Message"]
    rest = api.box.nexudus.desk.credit(raised["Id"])
    assert rest["TotalAmount"] == Decimal("-70.00")
    assert api.invoice(raised["Id"])["DueAmount"] == Decimal("0.00")


def test_cancel_preview_writes_nothing_and_a_credit_kept_on_account_leaves_the_invoice_due(
    api: Api,
) -> None:
    """§9 COWORKER_INVOICE_CANCEL parameters Preview and DoNotApplyCreditAutomatically
    (ASSUMPTION: a preview answers the note it would raise; a credit kept on the customer's
    account is not applied to the invoice)."""
    raised = raise_at(api, [printing()])
    count = api.json("/billing/coworkerinvoices", size=1)["TotalItems"]
    preview = api.run(
        "COWORKER_INVOICE_CANCEL",
        [raised["Id"]],
        [{"Name": "Preview", "Type": "bool", "Value": True}],
    )
    assert preview["WasSuccessful"] is True and preview["Value"]["TotalAmount"] == Decimal(
        "-120.00"
    )
    assert api.json("/billing/coworkerinvoices", size=1)["TotalItems"] == count
    assert api.invoice(raised["Id"])["CreditedAmount"] == Decimal("0.00")
    note = api.box.nexudus.desk.credit(raised["Id"], keep_on_account=True)
    assert api.invoice(note["Id"])["DoNotApplyCreditAutomatically"] is True
    original = api.invoice(raised["Id"])
    assert (original["CreditedAmount"], original["DueAmount"]) == (
        Decimal("0.00"),
        Decimal("120.00"),
    )


def test_cancel_is_refused_on_void_invoices_and_credit_notes(api: Api) -> None:
    """§9 COWORKER_INVOICE_CANCEL: nothing to cancel on a void invoice or a credit note
    (ASSUMPTION)."""
    voided = raise_at(api, [printing()])
    api.box.nexudus.desk.void(voided["Id"])
    note = api.box.nexudus.desk.credit(raise_at(api, [printing()])["Id"])
    for invoice_id, words in ((voided["Id"], "is void"), (note["Id"], "is a credit note")):
        answer = api.run("COWORKER_INVOICE_CANCEL", [invoice_id])
        assert answer["WasSuccessful"] is False and words in answer["Message"]


def test_delete_removes_the_invoice_and_its_lines(api: Api) -> None:
    """§9 COWORKER_INVOICE_DELETE: real deletion; §4: a missing record is 404 "Not found"."""
    raised = raise_at(api, [printing(), printing()])
    line_ids = [ln["Id"] for ln in api.lines(raised["Id"])]
    answer = api.run("COWORKER_INVOICE_DELETE", [raised["Id"]])
    assert answer["WasSuccessful"] is True
    gone = api.get(f"/billing/coworkerinvoices/{raised['Id']}")
    assert (gone.status_code, gone.json()) == (404, "Not found")
    for line_id in line_ids:
        assert api.get(f"/billing/coworkerinvoicelines/{line_id}").status_code == 404
    again = api.run("COWORKER_INVOICE_DELETE", [raised["Id"]])
    assert again["WasSuccessful"] is False and "does not exist" in again["Message"]


def test_one_refused_invoice_refuses_the_whole_command(api: Api) -> None:
    """§4 "200 yet failed" (ASSUMPTION: all or nothing for several Ids)."""
    unpaid = raise_at(api, [printing()])
    paid = raise_at(api, [printing()])
    api.box.nexudus.desk.part_pay(paid["Id"], "120.00")
    answer = api.run("VOID_INVOICE", [unpaid["Id"], paid["Id"]])
    assert answer["WasSuccessful"] is False
    assert api.invoice(unpaid["Id"])["Void"] is False


def test_an_unknown_command_answers_200_unsuccessful(api: Api) -> None:
    """§4: run-command failures answer 200 with WasSuccessful false."""
    raised = raise_at(api, [printing()])
    answer = api.run("MAKE_IT_FREE", [raised["Id"]])
    assert answer["WasSuccessful"] is False and "MAKE_IT_FREE" in answer["Message"]


@pytest.mark.parametrize(
    ("body", "property_name"),
    [
        ({"Ids": [1]}, "Key"),
        ({"Key": "VOID_INVOICE"}, "Ids"),
        ({"Key": "VOID_INVOICE", "Ids": "1"}, "Ids"),
        ({"Key": "VOID_INVOICE", "Ids": [1], "Parameters": {"Name": "x"}}, "Parameters"),
    ],
)
def test_a_malformed_runcommand_body_gets_the_validation_answer(
    api: Api, body: dict[str, Any], property_name: str
) -> None:
    """§4 runcommand body {Key, Ids, Parameters}; §4 validation error shape (400)."""
    response = api.http.post(api.box.nexudus_api_url + RUNCOMMAND, json=body)
    assert response.status_code == 400
    answer = response.json()
    assert answer["WasSuccessful"] is False and answer["Value"] is None
    assert [e["PropertyName"] for e in answer["Errors"]] == [property_name]


def test_part_pay_goes_through_the_ledger_entry_rules(api: Api) -> None:
    """§8: a ledger entry's Credit raises PaidAmount; Paid once it covers the total."""
    raised = raise_at(api, [printing()])
    api.box.nexudus.desk.part_pay(raised["Id"], "20.00")
    part = api.invoice(raised["Id"])
    assert (part["PaidAmount"], part["DueAmount"], part["Paid"]) == (
        Decimal("20.00"),
        Decimal("100.00"),
        False,
    )
    entries = api.json(
        "/billing/coworkerledgerentries", CoworkerLedgerEntry_CoworkerInvoice=raised["Id"]
    )
    assert entries["TotalItems"] == 1
    api.box.nexudus.desk.part_pay(raised["Id"], "100.00")
    assert api.invoice(raised["Id"])["Paid"] is True
