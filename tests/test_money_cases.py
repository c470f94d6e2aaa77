"""Money to the cent, case by case: hand-written Nexudus invoices, the way each goes to Xero, and
Xero's own figures after the push.

Every case is raised at the sandbox's Nexudus desk (the admin UI's controls), then ONE mapping
check, plan and push per location runs over all of them, over real HTTP. Each case states the
Xero SubTotal, TotalTax and Total worked out by hand with Xero's rules (xero-api.md §3.3):
UnitAmount kept to 4 places (``unitdp=4``); LineAmount = round2(Qty x Unit - Discount); tax per
line rounded half away from zero, exclusive tax = line x rate / 100, inclusive tax = line x
rate / (100 + rate); Total = sum of lines (+ sum of tax when exclusive), SubTotal = Total - tax.
Credit notes go over with positive amounts; a negative quantity becomes a positive quantity at a
negative price; a discount on a credit-note line or a negative line is folded into the line
amount. Held-back cases give fragments their reason must contain.

Shoreditch (GBP, prices exclusive of VAT; Xero UK): "20% (VAT on Income)" -> OUTPUT2 20 %,
"5% (VAT on Income)" -> RROUTPUT 5 %, "[No Tax]" -> NONE; accounts 4000, 4100 map; EUR is
enabled. Dublin (EUR, prices including VAT, params/demo-all-locations.yaml; Xero IE):
"23% Standard" -> OUTPUT 23 %, "No VAT" -> NONE; GBP is enabled.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from support import ROOT, fast_retry

from recon.ledger import Ledger
from recon.mapping import check_location
from recon.params import load_params
from recon.sandbox import RateLimits, Sandbox, start
from recon.session import Connection, connect, register_sandbox
from recon.transfer import TransferOptions, TransferPlan, plan_transfer, push

SHO = "Hive Shoreditch"
DUB = "Hive Dublin Docklands"
CREATED_ON = "2026-10-15T10:00:00Z"  # inside the params' period (2026-08-01 .. 2026-10-31)
VAT20 = "20% (VAT on Income)"
VAT5 = "5% (VAT on Income)"
NO_TAX = "[No Tax]"
IE23 = "23% Standard"
IE_NO_VAT = "No VAT"
AS_LINES, TAX_OVERRIDE, LINE_AMOUNT = "as lines", "tax override", "line amount"


def line(qty: Any, unit: Any, tax: str = VAT20, account: str | None = "4100", **more: Any) -> Any:
    """One line as typed at the desk (Description from the price, so every line has one)."""
    return {
        "Description": f"Item at {unit}",
        "Quantity": qty,
        "UnitPrice": unit,
        "TaxCategoryName": tax,
        "FinancialAccountCode": account,
        **more,
    }


def D(text: str) -> Decimal:
    return Decimal(text)


@dataclass(frozen=True)
class Case:
    """One hand-written invoice and what must become of it.

    ``xero``: (SubTotal, TotalTax, Total) Xero books; ``way``: how it goes over, None when held
    back, then ``held`` lists fragments of the reason ({number} is the invoice number).
    ``credit``: raise this case as Nexudus' own cancel (§9) of another case, for ``amount`` or all.
    """

    id: str
    location: str
    lines: tuple[dict[str, Any], ...] = ()
    way: str | None = AS_LINES
    xero: tuple[str, str, str] | None = None
    currency_rate: str | None = None  # CurrencyRate sent and read back; None: none sent
    held: tuple[str, ...] = ()
    held_without_line_amounts: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    credit: tuple[str, str | None] | None = None


CASES: tuple[Case, ...] = (
    # ---- unit prices with 3 to 6 places (Shoreditch, exclusive, 20 %)
    # Nexudus 3 x 33.333 = 99.999 -> 100.00. Xero 3 x 33.3330 = 99.999 -> 100.00; tax 20.00;
    # total 120.00.
    Case("unit_price_3_places", SHO, (line(3, "33.333"),), xero=("100.00", "20.00", "120.00")),
    # 7 x 12.3456 = 86.4192 -> 86.42; tax 17.284 -> 17.28; total 103.70.
    Case("unit_price_4_places", SHO, (line(7, "12.3456"),), xero=("86.42", "17.28", "103.70")),
    # Nexudus 30 x 0.33333 = 9.9999 -> 10.00. Xero 30 x 0.3333 = 9.999 -> 10.00; tax 2.00;
    # total 12.00.
    Case("unit_price_5_places", SHO, (line(30, "0.33333"),), xero=("10.00", "2.00", "12.00")),
    # Nexudus 10 x 1.234567 = 12.34567 -> 12.35. Xero 10 x 1.2346 = 12.346 -> 12.35; tax 2.47;
    # total 14.82.
    Case("unit_price_6_places", SHO, (line(10, "1.234567"),), xero=("12.35", "2.47", "14.82")),
    # Nexudus 1000 x 0.123456 = 123.456 -> 123.46, tax 24.69. Xero 1000 x 0.1235 = 123.50:
    # no per-line tax can fix the line, so only "line amount": 1 x 123.46, tax 24.692 -> 24.69;
    # total 148.15. Without send_line_amounts it is held back, naming line 1's SubTotal.
    Case(
        "unit_price_6_places_beyond_xero",
        SHO,
        (line(1000, "0.123456"),),
        way=LINE_AMOUNT,
        xero=("123.46", "24.69", "148.15"),
        held_without_line_amounts=("{number}", "line 1", "SubTotal"),
    ),
    # A pro-rated line: 3 x 33.33 = 99.99 in Xero, but Nexudus' SubTotal is 95.00 (tax 19.00,
    # total 114.00). "line amount": 1 x 95.00, tax 19.00, total 114.00; else held back.
    Case(
        "line_amount_not_quantity_times_price",
        SHO,
        (line(3, "33.33", SubTotal="95.00"),),
        way=LINE_AMOUNT,
        xero=("95.00", "19.00", "114.00"),
        held_without_line_amounts=("{number}", "line 1", "SubTotal"),
    ),
    # ---- discounts (amount)
    # 2 x 50.00 - 10.00 = 90.00; tax 18.00; total 108.00.
    Case(
        "discount_amount",
        SHO,
        (line(2, "50.00", DiscountAmount="10.00"),),
        xero=("90.00", "18.00", "108.00"),
    ),
    # Nexudus 3 x 33.333 - 10.00 = 89.999 -> 90.00. Xero 3 x 33.3330 - 10.00 = 89.999 -> 90.00;
    # tax 18.00; total 108.00.
    Case(
        "discount_on_a_3_place_price",
        SHO,
        (line(3, "33.333", DiscountAmount="10.00"),),
        xero=("90.00", "18.00", "108.00"),
    ),
    # ---- credit notes (negative in Nexudus, positive in Xero)
    # Nexudus 2 x -40.00 = -80.00, tax -16.00, total -96.00. Xero: 80.00, 16.00, 96.00.
    Case(
        "credit_note",
        SHO,
        (line(2, "-40.00"),),
        xero=("80.00", "16.00", "96.00"),
        options={"credit_note": True},
    ),
    # Nexudus 2 x -50.00 - (-10.00) = -90.00, tax -18.00, total -108.00. Xero: the discount is
    # folded, 1 x 90.00; tax 18.00; total 108.00.
    Case(
        "credit_note_with_discount",
        SHO,
        (line(2, "-50.00", DiscountAmount="-10.00"),),
        xero=("90.00", "18.00", "108.00"),
        options={"credit_note": True},
    ),
    # An invoice cancelled in Nexudus (§9 COWORKER_INVOICE_CANCEL) goes over as the original
    # plus its credit note (nexudus.md §11). 1 x 250.00; tax 50.00; total 300.00.
    Case(
        "cancelled_original",
        SHO,
        (line(1, "250.00", account="4000"),),
        xero=("250.00", "50.00", "300.00"),
    ),
    # The note mirrors the lines: 1 x -250.00, tax -50.00, total -300.00. Xero: 250.00, 50.00,
    # 300.00.
    Case(
        "cancel_credit_note",
        SHO,
        xero=("250.00", "50.00", "300.00"),
        credit=("cancelled_original", None),
    ),
    # 1 x 100.00; tax 20.00; total 120.00, of which 50.00 is credited below.
    Case("part_credited_original", SHO, (line(1, "100.00"),), xero=("100.00", "20.00", "120.00")),
    # A part credit of 50.00 (tax included): 50 x 20/120 = 8.333 -> 8.33, line -41.67,
    # total -50.00. Xero: 41.67, tax 41.67 x 20 % = 8.334 -> 8.33, total 50.00.
    Case(
        "part_credit_note",
        SHO,
        xero=("41.67", "8.33", "50.00"),
        credit=("part_credited_original", "50.00"),
    ),
    # ---- foreign currency (EUR in a GBP organisation)
    # 2 x 45.50 = 91.00; tax 18.20; total 109.20; Nexudus' rate 1.1634 EUR per GBP is sent.
    Case(
        "foreign_currency_with_rate",
        SHO,
        (line(2, "45.50"),),
        xero=("91.00", "18.20", "109.20"),
        currency_rate="1.1634",
        options={"currency": "EUR", "exchange_rate": "1.1634"},
    ),
    # A EUR credit note at 1.15: 1 x -60.00, tax -12.00, total -72.00. Xero: 60.00, 12.00, 72.00.
    Case(
        "foreign_currency_credit_note",
        SHO,
        (line(1, "-60.00"),),
        xero=("60.00", "12.00", "72.00"),
        currency_rate="1.15",
        options={"currency": "EUR", "exchange_rate": "1.15", "credit_note": True},
    ),
    # TransactionExchangeRate 1.0000 between EUR and GBP is Nexudus' "no rate": none is sent
    # (Xero's day rate applies). 1 x 80.00; tax 16.00; total 96.00.
    Case(
        "foreign_currency_without_rate",
        SHO,
        (line(1, "80.00"),),
        xero=("80.00", "16.00", "96.00"),
        options={"currency": "EUR"},
    ),
    # ---- negative lines and quantities on positive invoices
    # A refund line: 100.00 - 20.00 = 80.00; tax 20.00 - 4.00 = 16.00; total 96.00.
    Case(
        "refund_line",
        SHO,
        (line(1, "100.00"), line(1, "-20.00")),
        xero=("80.00", "16.00", "96.00"),
    ),
    # A negative line with a discount: 1 x -30.00 - (-5.00) = -25.00 (folded in Xero), tax
    # -5.00. With 1 x 100.00 (tax 20.00): subtotal 75.00; tax 15.00; total 90.00.
    Case(
        "negative_line_with_discount",
        SHO,
        (line(1, "100.00"), line(1, "-30.00", DiscountAmount="-5.00")),
        xero=("75.00", "15.00", "90.00"),
    ),
    # -2 x 15.00 = -30.00 (Xero: 2 x -15.00), tax -6.00; with 1 x 100.00 (tax 20.00): subtotal
    # 70.00; tax 14.00; total 84.00.
    Case(
        "negative_quantity",
        SHO,
        (line(1, "100.00"), line(-2, "15.00")),
        xero=("70.00", "14.00", "84.00"),
    ),
    # ---- tax rates
    # "[No Tax]" -> NONE: 10.00 untaxed + 50.00 at 20 % (10.00): subtotal 60.00; tax 10.00;
    # total 70.00.
    Case(
        "no_tax_line",
        SHO,
        (line(1, "10.00", tax=NO_TAX), line(1, "50.00")),
        xero=("60.00", "10.00", "70.00"),
    ),
    # 12.50 x 5 % = 0.625 -> 0.63 (half away from zero); 10.00 x 20 % = 2.00. Subtotal 22.50;
    # tax 2.63; total 25.13.
    Case(
        "half_cent_tax_rounds_up",
        SHO,
        (line(1, "12.50", tax=VAT5), line(1, "10.00")),
        xero=("22.50", "2.63", "25.13"),
    ),
    # 100.00 x 5 % = 5.00; -12.50 x 5 % = -0.625 -> -0.63 (away from zero). Subtotal 87.50;
    # tax 4.37; total 91.87.
    Case(
        "half_cent_tax_on_a_negative_line_rounds_away_from_zero",
        SHO,
        (line(1, "100.00", tax=VAT5), line(1, "-12.50", tax=VAT5)),
        xero=("87.50", "4.37", "91.87"),
    ),
    # A tax rate no Xero rate matches (not a Nexudus TaxRate record either): held back by the
    # mapping, naming line 2 and its TaxCategoryName.
    Case(
        "tax_rate_that_maps_to_nothing",
        SHO,
        (line(1, "10.00"), line(1, "20.00", tax="Visitor VAT 7%", TaxRate="7.00")),
        way=None,
        held=("line 2", "TaxCategoryName 'Visitor VAT 7%'"),
    ),
    # A line with no account: held back by the mapping, naming line 2.
    Case(
        "line_without_account",
        SHO,
        (line(1, "10.00"), line(1, "5.00", account=None)),
        way=None,
        held=("no account", "line 2"),
    ),
    # ---- figures that are no amounts (raw): held back, naming the line and field
    Case(
        "null_unit_price",
        SHO,
        (line(1, None),),
        way=None,
        held=("{number}", "line 1", "UnitPrice"),
        options={"raw": True},
    ),
    Case(
        "nan_unit_price",
        SHO,
        (line(1, D("10.00")), line(2, float("nan"))),
        way=None,
        held=("{number}", "line 2", "UnitPrice", "NaN"),
        options={"raw": True},
    ),
    Case(
        "infinite_subtotal",
        SHO,
        (line(1, D("10.00")), line(1, D("10.00"), SubTotal=D("Infinity"))),
        way=None,
        held=("{number}", "line 2", "SubTotal", "Infinity"),
        options={"raw": True},
    ),
    Case(
        "non_numeric_quantity",
        SHO,
        (line("abc", D("10.00")),),
        way=None,
        held=("{number}", "line 1", "Quantity", "abc"),
        options={"raw": True},
    ),
    # ---- fractional quantities (raw: Nexudus' Quantity is an integer): 1.5 x 10.00 = 15.00
    # (tax 3.00) and 0.25 x 120.00 = 30.00 (tax 6.00). Subtotal 45.00; tax 9.00; total 54.00.
    Case(
        "fractional_quantities",
        SHO,
        (line(D("1.5"), D("10.00")), line(D("0.25"), D("120.00"))),
        xero=("45.00", "9.00", "54.00"),
        options={"raw": True},
    ),
    # ---- a non-credit invoice with a negative total: 20.00 - 50.00 = -30.00, tax -6.00,
    # total -36.00: Xero refuses to approve it, so it is held back.
    Case(
        "negative_total_invoice",
        SHO,
        (line(1, "20.00"), line(1, "-50.00")),
        way=None,
        held=("{number}", "below zero", "-36.00"),
    ),
    # ---- tax Nexudus rounded on the invoice total
    # 3 x 3.33: per line 0.666 -> 0.67, 2.01 in all; on the total 9.99 x 20 % = 1.998 -> 2.00.
    # Nexudus: tax 2.00, total 11.99. Xero per line would book 2.01 -> "tax override": 9.99,
    # 2.00, 11.99.
    Case(
        "tax_rounded_on_the_total",
        SHO,
        (line(1, "3.33"), line(1, "3.33"), line(1, "3.33")),
        way=TAX_OVERRIDE,
        xero=("9.99", "2.00", "11.99"),
        options={"header": {"TaxAmount": D("2.00"), "TotalAmount": D("11.99")}},
    ),
    # The same, with the lines' own tax adding up to the header (0.67 + 0.67 + 0.66 = 2.00).
    Case(
        "tax_rounded_on_the_total_lines_agree",
        SHO,
        (
            line(1, "3.33", TaxAmount="0.67"),
            line(1, "3.33", TaxAmount="0.67"),
            line(1, "3.33", TaxAmount="0.66"),
        ),
        way=TAX_OVERRIDE,
        xero=("9.99", "2.00", "11.99"),
    ),
    # ---- huge amounts, to the cent
    # 10^12: tax 2 x 10^11; total 1.2 x 10^12.
    Case(
        "huge_10_12",
        SHO,
        (line(1, "1000000000000.00"),),
        xero=("1000000000000.00", "200000000000.00", "1200000000000.00"),
    ),
    # 10^14 + 0.01: tax 20000000000000.002 -> 20000000000000.00; total 120000000000000.01.
    Case(
        "huge_10_14_to_the_cent",
        SHO,
        (line(1, "100000000000000.01"),),
        xero=("100000000000000.01", "20000000000000.00", "120000000000000.01"),
    ),
    # ---- Dublin: prices including 23 % VAT (Xero LineAmountTypes Inclusive)
    # 30.00 x 23/123 = 5.6097 -> 5.61; subtotal 24.39; total 30.00.
    Case(
        "inclusive",
        DUB,
        (line(1, "30.00", tax=IE23, account="4000"),),
        xero=("24.39", "5.61", "30.00"),
        options={"prices_include_tax": True},
    ),
    # 3 x 33.333 = 99.999 -> 100.00; tax 100 x 23/123 = 18.699 -> 18.70; subtotal 81.30.
    Case(
        "inclusive_3_places",
        DUB,
        (line(3, "33.333", tax=IE23, account="4000"),),
        xero=("81.30", "18.70", "100.00"),
        options={"prices_include_tax": True},
    ),
    # 2 x 49.99 - 10.00 = 89.98; tax 89.98 x 23/123 = 16.8255 -> 16.83; subtotal 73.15.
    Case(
        "inclusive_discount",
        DUB,
        (line(2, "49.99", tax=IE23, account="4000", DiscountAmount="10.00"),),
        xero=("73.15", "16.83", "89.98"),
        options={"prices_include_tax": True},
    ),
    # Nexudus -45.00, tax -45 x 23/123 = -8.4146 -> -8.41. Xero: 45.00, 8.41, subtotal 36.59.
    Case(
        "inclusive_credit_note",
        DUB,
        (line(1, "-45.00", tax=IE23, account="4000"),),
        xero=("36.59", "8.41", "45.00"),
        options={"prices_include_tax": True, "credit_note": True},
    ),
    # 3 x 9.99: per line 9.99 x 23/123 = 1.868 -> 1.87, 5.61 in all; on the total 29.97 x 23/123
    # = 5.604 -> 5.60. Nexudus: tax 5.60, total 29.97. "tax override": 24.37, 5.60, 29.97.
    Case(
        "inclusive_tax_rounded_on_the_total",
        DUB,
        tuple(line(1, "9.99", tax=IE23, account="4000") for _ in range(3)),
        way=TAX_OVERRIDE,
        xero=("24.37", "5.60", "29.97"),
        options={"prices_include_tax": True, "header": {"TaxAmount": D("5.60")}},
    ),
    # GBP in a EUR organisation at 0.86 GBP per EUR: 100.00 incl.; tax 18.699 -> 18.70;
    # subtotal 81.30; total 100.00.
    Case(
        "inclusive_foreign_currency",
        DUB,
        (line(1, "100.00", tax=IE23, account="4000"),),
        xero=("81.30", "18.70", "100.00"),
        currency_rate="0.86",
        options={"prices_include_tax": True, "currency": "GBP", "exchange_rate": "0.8600"},
    ),
    # "No VAT" -> NONE: 25.00 untaxed + 50.00 incl. (50 x 23/123 = 9.3496 -> 9.35): subtotal
    # 65.65; tax 9.35; total 75.00.
    Case(
        "inclusive_with_an_untaxed_line",
        DUB,
        (
            line(1, "25.00", tax=IE_NO_VAT, account="4000"),
            line(1, "50.00", tax=IE23, account="4000"),
        ),
        xero=("65.65", "9.35", "75.00"),
        options={"prices_include_tax": True},
    ),
)
BY_ID = {case.id: case for case in CASES}


# ---- the harness: raise every case, then one check, plan and push per location


@dataclass
class LocationRun:
    plan: TransferPlan | None = None
    plan_without_line_amounts: TransferPlan | None = None
    outcomes: pd.DataFrame | None = None
    xero: dict[str, dict[str, Any]] = field(default_factory=dict)  # number -> invoice/credit note
    error: BaseException | None = None
    trace: str = ""


@dataclass
class Run:
    numbers: dict[str, str] = field(default_factory=dict)  # case id -> Nexudus invoice number
    locations: dict[str, LocationRun] = field(default_factory=dict)

    def of(self, case: Case) -> tuple[str, LocationRun]:
        run = self.locations[case.location]
        if run.error is not None:
            pytest.fail(f"the run for {case.location} failed: {run.error!r}\n{run.trace}")
        return self.numbers[case.id], run


def _connect(box: Sandbox, folder: Path, location: str) -> Connection:
    params = load_params(ROOT / "params" / "demo-all-locations.yaml").with_overrides(
        sandbox_dir=str(box.state_dir),
        output_dir=str(folder / "out"),
        ledger_file=str(folder / "ledger.sqlite"),
        location=location,
    )
    conn = connect(params)
    conn.xero.retry = fast_retry()
    conn.nexudus.retry = fast_retry()
    return conn


def _customer(conn: Connection, planted_invoice: str) -> int:
    """The customer of a clean demo invoice (a name Xero takes as it is)."""
    found = conn.nexudus.fetch_invoices(
        business_id=int(conn.business["Id"]), InvoiceNumber=planted_invoice
    )
    return int(found["CoworkerId"].iloc[0])


def _raise_cases(box: Sandbox, conns: dict[str, Connection]) -> dict[str, str]:
    desk = box.nexudus.desk
    clean = {SHO: box.planted["clean_invoices"][0], DUB: box.planted["clean_invoices_dublin"][0]}
    numbers: dict[str, str] = {}
    ids: dict[str, int] = {}
    for case in CASES:
        conn = conns[case.location]
        if case.credit is not None:
            original, amount = case.credit
            note = desk.credit(ids[original], amount, created_on=CREATED_ON)
            ids[case.id], numbers[case.id] = int(note["Id"]), str(note["InvoiceNumber"])
            continue
        invoice = desk.raise_invoice(
            int(conn.business["Id"]),
            _customer(conn, clean[case.location]),
            list(case.lines),
            created_on=CREATED_ON,
            **case.options,
        )
        ids[case.id], numbers[case.id] = int(invoice["Id"]), str(invoice["InvoiceNumber"])
    return numbers


def _run_location(conn: Connection, ledger: Ledger, numbers: list[str]) -> LocationRun:
    run = LocationRun()
    try:
        mapping = check_location(conn)
        run.plan = plan_transfer(conn, mapping, TransferOptions(line_amounts=True), ledger)
        run.plan_without_line_amounts = plan_transfer(conn, mapping, TransferOptions(), ledger)
        result = push(conn, run.plan.only(numbers), ledger)
        run.outcomes = result.outcomes
        for invoice in conn.xero.iter_invoices(invoice_numbers=numbers):
            run.xero[str(invoice["InvoiceNumber"])] = invoice
        for note in conn.xero.iter_credit_notes(numbers=numbers):
            run.xero[str(note["CreditNoteNumber"])] = note
    except Exception as exc:  # reported by every case of the location, not as a module error
        run.error = exc
        run.trace = traceback.format_exc()
    return run


@pytest.fixture(scope="module")
def money_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("money")
    box = start(folder / "sandbox", limits=RateLimits(minute_seconds=1.0))
    register_sandbox(box)
    conns = {location: _connect(box, folder, location) for location in (SHO, DUB)}
    try:
        run = Run(numbers=_raise_cases(box, conns))
        with Ledger(folder / "ledger.sqlite") as ledger:
            for location, conn in conns.items():
                mine = [run.numbers[c.id] for c in CASES if c.location == location]
                run.locations[location] = _run_location(conn, ledger, mine)
        yield run
    finally:
        for conn in conns.values():
            conn.close()
        box.stop()


def _row(frame: pd.DataFrame, number: str) -> dict[str, Any] | None:
    rows = frame[frame["invoice_number"] == number]
    return None if rows.empty else dict(rows.iloc[0])


def _fragments(fragments: tuple[str, ...], number: str) -> list[str]:
    return [f.replace("{number}", number) for f in fragments]


def _money(value: Any) -> Decimal:
    return Decimal(str(value))


# ---- the cases


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_case_goes_over_its_way_with_xeros_totals_or_is_held_back_with_why(
    money_run: Run, case: Case
) -> None:
    number, run = money_run.of(case)
    assert run.plan is not None
    if case.way is None:
        row = _row(run.plan.excluded, number)
        assert row is not None, f"{number} should be held back"
        for fragment in _fragments(case.held, number):
            assert fragment in str(row["reason"]), (fragment, row["reason"])
        assert number not in run.xero, "a held-back invoice was sent"
        return
    row = _row(run.plan.eligible, number)
    excluded = _row(run.plan.excluded, number)
    assert row is not None, f"{number} held back: {excluded and excluded['reason']}"
    assert case.xero is not None
    subtotal, tax, total = (D(v) for v in case.xero)
    assert row["way"] == case.way
    assert (row["xero_subtotal"], row["xero_tax"], row["xero_total"]) == (subtotal, tax, total)
    if case.currency_rate is None:
        assert row["currency_rate"] is None or pd.isna(row["currency_rate"])
    else:
        assert row["currency_rate"] == D(case.currency_rate)
    # What Xero booked, read back after the push.
    booked = run.xero.get(number)
    assert booked is not None, f"{number} is not in Xero"
    assert booked["Status"] not in ("DELETED", "VOIDED")
    assert (_money(booked["SubTotal"]), _money(booked["TotalTax"]), _money(booked["Total"])) == (
        subtotal,
        tax,
        total,
    )
    if case.currency_rate is not None:
        assert _money(booked["CurrencyRate"]) == D(case.currency_rate)
    kind = "CreditNoteNumber" if "CreditNoteNumber" in booked else "InvoiceNumber"
    is_credit = bool(case.options.get("credit_note")) or case.credit is not None
    assert kind == ("CreditNoteNumber" if is_credit else "InvoiceNumber")


LINE_AMOUNT_CASES = [c for c in CASES if c.held_without_line_amounts]


@pytest.mark.parametrize("case", LINE_AMOUNT_CASES, ids=[c.id for c in LINE_AMOUNT_CASES])
def test_a_line_amount_case_is_held_back_when_line_amounts_are_not_asked_for(
    money_run: Run, case: Case
) -> None:
    number, run = money_run.of(case)
    assert run.plan_without_line_amounts is not None
    row = _row(run.plan_without_line_amounts.excluded, number)
    assert row is not None, f"{number} should be held back without send_line_amounts"
    for fragment in _fragments(case.held_without_line_amounts, number):
        assert fragment in str(row["reason"]), (fragment, row["reason"])


@pytest.mark.parametrize("location", [SHO, DUB])
def test_every_case_is_accounted_for_and_none_stops_the_others(
    money_run: Run, location: str
) -> None:
    mine = [c for c in CASES if c.location == location]
    _, run = money_run.of(mine[0])
    assert run.plan is not None and run.outcomes is not None
    numbers = {money_run.numbers[c.id] for c in mine}
    assert len(numbers) == len(mine)  # one Nexudus invoice per case
    eligible = set(run.plan.eligible["invoice_number"]) & numbers
    excluded = set(run.plan.excluded["invoice_number"]) & numbers
    assert eligible | excluded == numbers and not eligible & excluded
    held = {money_run.numbers[c.id] for c in mine if c.way is None}
    assert excluded == held
    outcomes = run.outcomes.set_index("invoice_number")["outcome"]
    assert {n: outcomes.get(n) for n in eligible} == dict.fromkeys(eligible, "created")
    assert set(run.xero) == eligible


def test_the_table_has_the_cases_the_brief_asks_for() -> None:
    """At least 30 hand-written invoices, each with its expected outcome."""
    assert len(CASES) >= 30 and len(BY_ID) == len(CASES)
    for case in CASES:
        assert (case.way is None) == (case.xero is None) == bool(case.held), case.id
