"""Exports that cannot be turned against their reader (OWASP "CSV Injection").

A customer or account named like a formula must reach the audit workbook and
the report's CSVs as text: a string cell in the workbook (never a formula),
behind a ``'`` in the CSV. Money, negative amounts included, stays a number.
The step CSVs are written by hand here, as the steps write them (every column
of a step CSV is copied into its sheet).
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from recon.params import load_params
from recon.report import build_report, csv_safe, csv_text, is_formula_like, unescape
from recon.report.workbook import heading

ROOT = Path(__file__).resolve().parent.parent

# Names a customer can give themselves at sign-up, each a formula or the start of one in Excel,
# LibreOffice or Google Sheets.
HOSTILE = [
    '=HYPERLINK("http://x","y")',
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
]


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def outcome(number: str, name: str, total: str, result: str = "created", **extra: str) -> dict:
    return {
        "invoice_number": number,
        "contact_name": name,
        "nexudus_invoice_id": "1",
        "kind": "invoice",
        "outcome": result,
        "xero_id": "",
        "currency": "GBP",
        "nexudus_total": total,
        "xero_total": total if result == "created" else "",
        "difference": "",
        "messages": "",
        "meaning": "",
        "fix": "",
    } | extra


@pytest.fixture
def hostile_report(tmp_path: Path):
    """A run folder whose transfers and mapping carry every hostile name, and its report."""
    run_dir = tmp_path / "run"
    rows = [outcome(f"SHO-{i}", name, f"{i + 1}0.00") for i, name in enumerate(HOSTILE)]
    rows.append(outcome("SHO-90", "Credit Co", "-12.50", kind="credit_note"))
    rows.append(
        outcome(
            "=SHO-91",
            "Ada",
            "-0.01",
            "failed",
            messages='=HYPERLINK("http://evil","Xero said")',
            fix="+fix it",
        )
    )
    write_csv(run_dir / "transfer_outcomes.csv", rows)
    write_csv(
        run_dir / "mapping_accounts.csv",
        [{"account_code": "4000", "account_name": "@SUM(A1)", "invoices": "3", "total": "-7.25"}],
    )
    report = build_report(run_dir, load_params(ROOT / "params" / "demo.yaml"), steps=[])
    return report, rows


def test_csv_text_puts_a_quote_before_every_formula_start_and_leaves_numbers_alone() -> None:
    for name in HOSTILE:
        assert is_formula_like(name)
        assert csv_text(name) == "'" + name
        assert unescape(csv_text(name)) == name
    for plain in ("Ada Lovelace", "Hive Shoreditch", "SHO-1", "O'Brien & Co", ""):
        assert csv_text(plain) == plain
    for number in ("-12.50", "+3", "-0.01", "1E+3", Decimal("-12.50"), -5):
        assert csv_text(number) == str(number)
    # A name that already starts with quotes before a formula start keeps them: read back exactly.
    for quoted in ("'=1+1", "''-2+3"):
        assert csv_text(quoted) == "'" + quoted and unescape(csv_text(quoted)) == quoted


def test_a_formula_like_name_is_a_text_cell_in_the_workbook_never_a_formula(
    hostile_report,
) -> None:
    report, rows = hostile_report
    ws = openpyxl.load_workbook(report.workbook)["Transfers"]
    header = [c.value for c in ws[1]]
    names = [r[header.index(heading("contact_name"))] for r in ws.iter_rows(min_row=2)]
    numbers = [r[header.index(heading("invoice_number"))] for r in ws.iter_rows(min_row=2)]
    for cell, row in zip(names, rows, strict=True):
        assert cell.data_type == "s", (cell.value, cell.data_type)
        # the name itself, not a changed one (an XML reader reads a carriage return as a newline)
        assert cell.value == row["contact_name"].replace("\r", "\n")
        if is_formula_like(row["contact_name"]):
            assert cell.quotePrefix, f"{row['contact_name']!r} would turn into a formula on edit"
    hostile_number = next(c for c in numbers if c.value == "=SHO-91")
    assert hostile_number.data_type == "s" and hostile_number.quotePrefix
    # openpyxl reads any formula back with data_type "f": none but the Summary's own tie-out check
    wb = openpyxl.load_workbook(report.workbook)
    formulas = [
        (ws.title, c.row, c.value)
        for ws in wb
        for row in ws.iter_rows()
        for c in row
        if c.data_type == "f"
    ]
    assert all(
        title == "Summary" and wb["Summary"].cell(row=r, column=1).value.startswith("Ties out")
        for title, r, _ in formulas
    ), formulas


def test_a_formula_like_name_is_behind_a_quote_in_the_report_csv(hostile_report) -> None:
    report, rows = hostile_report
    written = read_rows(report.csv_dir / "transfers.csv")
    assert [r["contact_name"] for r in written] == [csv_text(r["contact_name"]) for r in rows]
    for r in written:
        if r["contact_name"] not in ("Credit Co", "Ada"):
            assert r["contact_name"].startswith("'"), r["contact_name"]
    assert written[-1]["invoice_number"] == "'=SHO-91"
    accounts = read_rows(report.csv_dir / "account_mapping.csv")
    assert accounts[0]["account_name"] == "'@SUM(A1)"
    # what Xero said about the failed invoice reaches the Errors sheet, as text too
    errors = read_rows(report.csv_dir / "errors.csv")
    assert errors[0]["what"] == '\'=HYPERLINK("http://evil","Xero said")'
    assert errors[0]["fix"] == "'+fix it"


def test_negative_money_stays_a_number_in_the_workbook_and_unquoted_in_the_csv(
    hostile_report,
) -> None:
    report, _ = hostile_report
    wb = openpyxl.load_workbook(report.workbook)
    ws = wb["Transfers"]
    header = [c.value for c in ws[1]]
    totals = {
        r[header.index(heading("invoice_number"))].value: r[header.index(heading("nexudus_total"))]
        for r in ws.iter_rows(min_row=2)
    }
    assert totals["SHO-90"].data_type == "n" and totals["SHO-90"].value == -12.5
    assert totals["=SHO-91"].data_type == "n" and totals["=SHO-91"].value == -0.01
    account = wb["Account mapping"]
    header = [c.value for c in account[1]]
    assert account.cell(row=2, column=header.index(heading("total")) + 1).value == -7.25
    written = {r["invoice_number"]: r for r in read_rows(report.csv_dir / "transfers.csv")}
    assert written["SHO-90"]["nexudus_total"] == "-12.50"
    assert written["'=SHO-91"]["nexudus_total"] == "-0.01"


def test_the_report_reads_its_own_csv_back_as_the_names_themselves(hostile_report) -> None:
    report, rows = hostile_report
    table = report.table("transfers")
    assert list(table["contact_name"]) == [r["contact_name"] for r in rows]
    assert table["nexudus_total"].iloc[-2] == Decimal("-12.50")


def test_a_step_frame_made_csv_safe_keeps_blanks_and_money_and_reads_back_exactly(
    tmp_path: Path,
) -> None:
    """What a step's ``save`` would write with ``csv_safe(frame).to_csv(...)``."""
    frame = pd.DataFrame(
        {
            "contact_name": [HOSTILE[0], "Ada", None],
            "nexudus_total": [Decimal("-12.50"), Decimal("3.00"), Decimal("0.01")],
            "lines": [1, 2, 3],
        }
    )
    csv_safe(frame).to_csv(tmp_path / "transfer_plan_eligible.csv", index=False)
    rows = read_rows(tmp_path / "transfer_plan_eligible.csv")
    assert [r["contact_name"] for r in rows] == ["'" + HOSTILE[0], "Ada", ""]
    assert [r["nexudus_total"] for r in rows] == ["-12.50", "3.00", "0.01"]
    assert unescape(rows[0]["contact_name"]) == HOSTILE[0]
    assert frame["contact_name"].iloc[0] == HOSTILE[0], "the step's own frame is unchanged"


def test_a_name_with_control_characters_does_not_cost_the_workbook(tmp_path: Path) -> None:
    """openpyxl refuses a whole workbook over one control character in one cell."""
    run_dir = tmp_path / "run"
    write_csv(run_dir / "transfer_outcomes.csv", [outcome("SHO-1", "Bell\x07 Ltd\x00", "1.00")])
    report = build_report(run_dir, load_params(ROOT / "params" / "demo.yaml"), steps=[])
    ws = openpyxl.load_workbook(report.workbook)["Transfers"]
    header = [c.value for c in ws[1]]
    assert (
        ws.cell(row=2, column=header.index(heading("contact_name")) + 1).value
        == "Bell\ufffd Ltd\ufffd"
    )
