"""Outcomes are types: every outcome a push, an apply, an allocation or a Xero change writes is a
member of an enum, keeps the string the CSVs and the ledger hold, and has one row of
``recon.outcomes.TABLE`` that the report, the panels and the HTML read its label and meaning
from."""

from __future__ import annotations

import ast
import csv
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from openpyxl.utils import get_column_letter
from support import machine, sheet_records

from recon import display, report
from recon.outcomes import (
    REASONS,
    TABLE,
    AllocationOutcome,
    Outcome,
    PaymentOutcome,
    ReconReason,
    TransferOutcome,
    Verdict,
    XeroChangeOutcome,
    about,
    counts_text,
    reason_of,
)
from recon.params import load_params
from recon.report import build_report
from recon.status import APPLY_COLUMNS
from recon.transfer.allocate import OUTCOME_SEVERITY as ALLOCATION_SEVERITY
from recon.transfer.allocate import AllocationResult
from recon.transfer.push import TransferResult, outcome_row

ROOT = Path(__file__).resolve().parent.parent
# the push and the modules it is cut into
PUSH = [
    ROOT / "recon" / "transfer" / f"{name}.py"
    for name in ("push", "result", "send", "recovery", "writeback")
]
STATUS = ROOT / "recon" / "status_paid.py"
STATUS_XERO = ROOT / "recon" / "status_xero.py"

# The strings transfer_outcomes.csv, status_applied.csv and the ledger hold: never to change.
TRANSFER_VALUES = ["created", "adopted", "skipped", "deferred", "failed", "refused", "unknown"]
PAYMENT_VALUES = ["applied", "already paid", "skipped", "failed", "unknown"]
ALLOCATION_VALUES = ["allocated", "not allocated", "skipped", "failed", "unknown", "refused"]
XERO_CHANGE_VALUES = [
    "voided",
    "allocated",
    "already done",
    "refused",
    "waiting",
    "failed",
    "unknown",
]
KINDS: tuple[type[Outcome], ...] = (
    TransferOutcome,
    PaymentOutcome,
    AllocationOutcome,
    XeroChangeOutcome,
)
EVERY_OUTCOME = [o for kind in KINDS for o in kind]
FAILED_FILL = "00F8D7DA"


def members_used(path: Path, kind: type[Outcome]) -> set[Outcome]:
    """Every ``Kind.MEMBER`` the module names (a typo would fail here: no such member)."""
    tree = ast.parse(path.read_text("utf-8"))
    return {
        kind[node.attr]
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == kind.__name__
        and node.attr.isupper()
    }


def test_the_values_are_the_strings_the_csvs_and_the_ledger_hold() -> None:
    assert [o.value for o in TransferOutcome] == TRANSFER_VALUES
    assert [o.value for o in PaymentOutcome] == PAYMENT_VALUES
    assert [o.value for o in AllocationOutcome] == ALLOCATION_VALUES
    assert [o.value for o in XeroChangeOutcome] == XERO_CHANGE_VALUES
    for outcome in EVERY_OUTCOME:
        assert outcome == outcome.value and str(outcome) == outcome.value
        assert f"{outcome}" == outcome.value and hash(outcome) == hash(outcome.value)
        assert type(outcome).of(outcome.value) is outcome
    assert TransferOutcome.of("not an outcome") is None and PaymentOutcome.of(None) is None


def test_every_outcome_has_exactly_one_row_with_a_label_and_a_meaning() -> None:
    keys = [(type(row.outcome), row.outcome.value) for row in TABLE]
    assert len(keys) == len(set(keys)), "one row per outcome"
    assert set(keys) == {(type(o), o.value) for o in EVERY_OUTCOME}
    for outcome in EVERY_OUTCOME:
        row = about(outcome)
        assert row.outcome is outcome and outcome.about is row
        assert row.label and row.meaning and outcome.label == row.label
        assert isinstance(row.verdict, Verdict)
        if row.verdict is Verdict.FAILURE:
            assert row.fix, f"{outcome!r}: a failure says what to do"
    # failed, unknown and skipped are in both enums and equal as strings, yet have rows of their own
    assert about(TransferOutcome.FAILED) is not about(PaymentOutcome.FAILED)
    assert about(TransferOutcome.FAILED).heading == "transfer failed"
    assert about(PaymentOutcome.FAILED).heading == "payment failed"
    assert about(AllocationOutcome.FAILED).heading == "allocation failed"
    assert about(XeroChangeOutcome.FAILED).heading == "Xero change failed"
    assert about(AllocationOutcome.ALLOCATED) is not about(XeroChangeOutcome.ALLOCATED)


def test_every_outcome_push_and_apply_paid_can_write_is_a_member_with_a_label() -> None:
    pushed = set().union(*(members_used(path, TransferOutcome) for path in PUSH))
    assert pushed == set(TransferOutcome)
    assert members_used(STATUS, PaymentOutcome) == set(PaymentOutcome)
    assert members_used(STATUS_XERO, XeroChangeOutcome) == set(XeroChangeOutcome)
    for outcome in pushed | members_used(STATUS, PaymentOutcome):
        assert about(outcome).label
    # push gives every outcome through outcome_row(row, TransferOutcome.X): never a bare string
    calls = [
        node
        for path in PUSH
        for node in ast.walk(ast.parse(path.read_text("utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "outcome_row"
    ]
    assert calls
    for call in calls:
        given = call.args[1]
        assert (
            isinstance(given, ast.Attribute)
            and isinstance(given.value, ast.Name)
            and given.value.id == "TransferOutcome"
        ), f"push.py line {call.lineno}: an outcome is a TransferOutcome"
    # apply_paid's rows: no outcome string is written as a literal
    tree = ast.parse(STATUS.read_text("utf-8"))
    apply_functions = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name in ("apply_paid", "_apply_one")
    ]
    assert len(apply_functions) == 2
    literals = [
        node.value
        for function in apply_functions
        for node in ast.walk(function)
        if isinstance(node, ast.Constant) and node.value in PAYMENT_VALUES
    ]
    assert literals == []


def test_the_verdicts_count_as_the_report_counts() -> None:
    assert TransferOutcome.judged(Verdict.SUCCESS) == ("created", "adopted")
    assert TransferOutcome.judged(Verdict.FAILURE) == ("failed", "refused", "unknown")
    assert TransferOutcome.judged(Verdict.WAITING) == ("deferred",)
    assert PaymentOutcome.judged(Verdict.SUCCESS) == ("applied", "already paid")
    assert PaymentOutcome.judged(Verdict.FAILURE) == ("failed", "unknown")
    assert AllocationOutcome.judged(Verdict.SUCCESS) == ("allocated",)
    assert AllocationOutcome.judged(Verdict.FAILURE) == ("failed", "unknown", "refused")
    assert XeroChangeOutcome.judged(Verdict.SUCCESS) == ("voided", "allocated", "already done")
    assert XeroChangeOutcome.judged(Verdict.WAITING) == ("waiting",)
    assert XeroChangeOutcome.judged(Verdict.FAILURE) == ("refused", "failed", "unknown")
    assert TransferOutcome.judged(Verdict.SUCCESS) == report.TRANSFERRED
    assert TransferOutcome.judged(Verdict.FAILURE) == report.NOT_TRANSFERRED


def _row(number: str, total: str = "10.00") -> dict[str, object]:
    return {
        "invoice_number": number,
        "nexudus_invoice_id": int(number.rsplit("-", 1)[1]),
        "kind": "invoice",
        "currency": "GBP",
        "nexudus_total": Decimal(total),
    }


@pytest.fixture
def every_transfer() -> TransferResult:
    """A push result with one invoice of every outcome (no meaning or fix of Xero's own)."""
    rows = [outcome_row(_row(f"SHO-{i}"), o) for i, o in enumerate(TransferOutcome, start=1)]
    return TransferResult(pd.DataFrame(rows), {"xero": 0}, 0.0, {"organisation": "Demo"})


def test_a_results_html_and_text_use_the_labels_and_colour_every_outcome(
    every_transfer: TransferResult,
) -> None:
    page = display.transfer_result_html(every_transfer)
    for outcome in TransferOutcome:
        assert f"1 {outcome.label}" in page and f"1 {outcome.label}" in str(every_transfer)
        assert display.OUTCOME_COLOURS[outcome] in display.SEVERITY_COLOURS
    assert every_transfer.counts() == dict.fromkeys(TRANSFER_VALUES, 1)
    assert counts_text(PaymentOutcome, ["applied", PaymentOutcome.APPLIED, "odd"]) == (
        "2 marked paid in Nexudus, 1 odd"
    )


def test_an_allocation_results_text_uses_the_labels_and_its_rows_are_coloured_by_verdict() -> None:
    rows = [
        {
            "credit_note_number": f"CN-{i}",
            "original_number": f"SHO-{i}",
            "currency": "GBP",
            "amount": Decimal("5.00"),
            "outcome": o,
            "messages": "",
            "credit_note_id": f"c{i}",
            "original_id": f"i{i}",
        }
        for i, o in enumerate(AllocationOutcome, start=1)
    ]
    result = AllocationResult(pd.DataFrame(rows), {"xero": 0}, 0.0, {"organisation": "Demo"})
    for outcome in AllocationOutcome:
        assert f"1 {outcome.label}" in str(result)
        assert ALLOCATION_SEVERITY[outcome] == display.VERDICT_SEVERITY[outcome.verdict]
    assert "1 allocated in Xero, 1 not allocated (see reason)" in str(result)


def test_the_reports_labels_meanings_and_highlights_come_from_the_table(
    tmp_path: Path, every_transfer: TransferResult
) -> None:
    run_dir = tmp_path / "run"
    every_transfer.save(run_dir)
    payments = pd.DataFrame(
        [
            [f"SHO-{i}", i, o, Decimal("5.00"), "2026-09-01", ""]
            for i, o in enumerate(PaymentOutcome)
        ],
        columns=APPLY_COLUMNS,
    )
    payments.to_csv(run_dir / "status_applied.csv", index=False)
    with (run_dir / "transfer_outcomes.csv").open(newline="", encoding="utf-8") as fh:
        assert [r["outcome"] for r in csv.DictReader(fh)] == TRANSFER_VALUES

    built = build_report(run_dir, load_params(ROOT / "params" / "demo.yaml"), steps=[])
    wb = openpyxl.load_workbook(built.workbook)

    failures = [
        o for kind in (TransferOutcome, PaymentOutcome) for o in kind.judged(Verdict.FAILURE)
    ]
    assert [(e["kind"], e["meaning"], e["fix"]) for e in sheet_records(wb["Errors"])] == [
        (about(o).heading, about(o).meaning, about(o).fix) for o in failures
    ]
    totals = {r["item"]: r["detail"] for r in sheet_records(wb["Run"]) if r["section"] == "totals"}
    for outcome in TransferOutcome:
        assert str(totals[f"transfer: {outcome}"]).startswith(f"{outcome.label}: ")
    for payment in PaymentOutcome:
        assert str(totals[f"marked paid in Nexudus: {payment}"]).startswith(f"{payment.label}: ")

    # The Transfers sheet fills a row red by a conditional format on its outcome column: the rule's
    # values are read back and applied to every row, which is red exactly when its outcome fails.
    sheet = wb["Transfers"]
    names = [machine(c.value) for c in sheet[1]]
    outcome_col = get_column_letter(names.index("outcome") + 1)
    red = red_when(sheet, outcome_col)
    assert red == {o.value for o in TransferOutcome.judged(Verdict.FAILURE)}
    rows = sheet_records(sheet)
    assert [r["outcome"] for r in rows] == TRANSFER_VALUES
    for row in rows:
        failed = TransferOutcome(row["outcome"]).verdict is Verdict.FAILURE
        assert (row["outcome"] in red) is failed, row["outcome"]


def red_when(sheet: Any, column: str) -> set[str]:
    """The values of ``column`` that the sheet's red conditional fills pick out: each red rule must
    cover the whole table and be ``$X2="v"`` or an ``OR`` of such tests on that column."""
    test = rf'\${column}2="([^"]*)"'
    table = f"A2:{get_column_letter(sheet.max_column)}{sheet.max_row}"
    values: set[str] = set()
    for area in sheet.conditional_formatting:
        for rule in area.rules:
            if rule.dxf.fill.bgColor.rgb != FAILED_FILL:
                continue
            assert str(area.sqref) == table, (area.sqref, table)
            (formula,) = rule.formula
            assert re.fullmatch(rf"{test}|OR\({test}(,{test})*\)", formula), formula
            values |= set(re.findall(test, formula))
    return values


def test_every_reason_recon_gives_itself_has_one_row_with_a_plain_label_meaning_and_fix() -> None:
    """recon's own reasons (deferred by the call budget, refused by its checks, held back by a
    binding, a lock date, a number clash, ...) each have a label of their own."""
    assert [row.reason for row in REASONS] == list(ReconReason), "one row per reason, in order"
    labels = [row.label for row in REASONS]
    assert len(set(labels)) == len(labels)
    for reason in ReconReason:
        row = reason.about
        assert row.label and row.meaning and row.fix and row.forms
        assert reason.label == row.label and "Xero message" not in row.label
    assert reason_of(None) is None and reason_of("Invoice # must be unique.") is None
    assert reason_of("dated 2026-07-31, on or before Xero's end of year lock date 31 Jul 2026") is (
        ReconReason.LOCK_DATE
    )
