"""The audit workbook: sheets, headers, filters, row counts, money cells and totals, checked against
the sandbox.

One demo run is made in-process (mapping check, transfer with push, the demo
accountant paying some invoices in Xero, status sync with apply), its step
CSVs saved as the notebooks save them, then the report is built from that
folder. Smaller cases build reports from hand-written CSVs and notebooks.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import nbformat
import openpyxl
import pytest
from support import fast_retry

from recon import status, status_xero, transfer
from recon.cells import csv_safe
from recon.demo import act_as_accountant, act_in_nexudus
from recon.ledger import Ledger
from recon.mapping import check_location
from recon.money import CENT
from recon.params import load_params
from recon.report import (
    LocationRun,
    ReportPaths,
    StepRun,
    StepStatus,
    build_report,
    interruption,
    is_notebook_session,
    load_report,
    location_folders,
    location_runs,
    open_report,
    parameter_rows,
    record_location,
    record_step,
    steps_from_run,
)
from recon.report.workbook import HEADINGS
from recon.sandbox import RateLimits, start
from recon.session import connect, register_sandbox

ROOT = Path(__file__).resolve().parent.parent
SHEETS = [
    "Summary",
    "Run",
    "Account mapping",
    "Tax mapping",
    "Transfers",
    "Status differences",
    "Errors",
]
# The sheet each CSV of csv/ copies (tie_out.csv: the Summary's tie-out, summary.csv: Run).
SHEET_OF_CSV = {
    "tie_out.csv": "Summary",
    "summary.csv": "Run",
    "account_mapping.csv": "Account mapping",
    "tax_mapping.csv": "Tax mapping",
    "transfers.csv": "Transfers",
    "status_differences.csv": "Status differences",
    "errors.csv": "Errors",
}
# Each data sheet and the step CSV it is made from.
SOURCES = {
    "Account mapping": "mapping_accounts.csv",
    "Tax mapping": "mapping_tax_rates.csv",
    "Transfers": "transfer_outcomes.csv",
    "Status differences": "status_differences.csv",
}
T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


@dataclass(frozen=True)
class DemoRun:
    report: ReportPaths
    xero_totals: dict[
        str, Decimal
    ]  # Xero's Total of every document recon created, read back from the sandbox
    applied: int


def ok_steps() -> list[StepRun]:
    names = ["01_mapping_check.ipynb", "02_transfer.ipynb", "03_status_sync.ipynb"]
    return [
        StepRun(
            n, StepStatus.OK, T0 + timedelta(seconds=10 * i), T0 + timedelta(seconds=10 * i + 9)
        )
        for i, n in enumerate(names)
    ]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """A full demo run against a sandbox of its own, saved as the step notebooks save it."""
    tmp = tmp_path_factory.mktemp("report")
    box = start(tmp / "sandbox", limits=RateLimits(minute_seconds=1.0))
    register_sandbox(box)
    run_dir = tmp / "out" / "20261102T020000Z"
    params = load_params(ROOT / "params" / "demo.yaml").with_overrides(
        sandbox_dir=str(box.state_dir),
        output_dir=str(run_dir),
        ledger_file=str(tmp / "ledger.sqlite"),
    )
    try:
        with connect(params) as conn, Ledger(conn.ledger_path) as ledger:
            conn.xero.retry = conn.nexudus.retry = fast_retry()
            mapping = check_location(conn)
            mapping.save(run_dir)
            plan = transfer.plan_transfer(conn, mapping, ledger=ledger)
            plan.eligible.to_csv(run_dir / "transfer_plan_eligible.csv", index=False)
            plan.excluded.to_csv(run_dir / "transfer_plan_excluded.csv", index=False)
            transfer.push(conn, plan, ledger).save(run_dir)
            xero_totals = {
                str(i["InvoiceID"]): Decimal(str(i["Total"]))
                for i in conn.xero.iter_invoices(summary_only=True)
            }
            xero_totals |= {
                str(n["CreditNoteID"]): Decimal(str(n["Total"]))
                for n in conn.xero.iter_credit_notes()
            }
            allocations = transfer.plan_allocations(conn, ledger)
            transfer.allocate(conn, allocations, ledger).save(run_dir)
            act_as_accountant(conn)
            act_in_nexudus(conn, ledger)  # as notebook 03 does on the sandbox
            diff = status.sync_status(conn, ledger)
            diff.save(run_dir)  # with status_unpaid.csv beside the differences
            applied = status.apply_paid(conn, ledger, diff)
            applied.to_csv(run_dir / "status_applied.csv", index=False)
            changed = status_xero.apply_xero_changes(conn, ledger, diff, confirm=True)
            csv_safe(changed).to_csv(run_dir / "status_xero_changes.csv", index=False)
        report = build_report(
            run_dir, params, started=T0, finished=T0 + timedelta(seconds=30), steps=ok_steps()
        )
        yield DemoRun(report, xero_totals, int((applied["outcome"] == "applied").sum()))
    finally:
        box.stop()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def machine(header: object) -> str:
    """A sheet's human header back as the step CSV's column name ("Invoice number" ->
    "invoice_number", "Blocked GBP" -> "blocked_GBP")."""
    text = str(header)
    known = {v: k for k, v in HEADINGS.items()}
    if text in known:
        return known[text]
    words = text.split(" ")
    return "_".join(w if len(w) == 3 and w.isupper() and w != "ID" else w.lower() for w in words)


def sheet_records(ws: openpyxl.worksheet.worksheet.Worksheet) -> list[dict[str, object]]:
    """A data sheet's rows, keyed by the step CSVs' column names."""
    rows = list(ws.iter_rows(values_only=True))
    names = [machine(h) for h in rows[0]]
    return [dict(zip(names, r, strict=True)) for r in rows[1:]]


def cents(value: object) -> Decimal:
    """A cell's number as the exact cents it stands for."""
    assert isinstance(value, (int, float)) and not isinstance(value, bool), value
    return Decimal(repr(value)).quantize(CENT)


# ---- the demo run's workbook ---------------------------------------------------------------------
def test_the_workbook_has_the_audit_sheets_in_order(demo_run: DemoRun) -> None:
    wb = openpyxl.load_workbook(demo_run.report.workbook)
    assert wb.sheetnames == SHEETS


def test_every_table_sheet_has_a_frozen_header_a_filter_over_its_table_and_readable_widths(
    demo_run: DemoRun,
) -> None:
    wb = openpyxl.load_workbook(demo_run.report.workbook)
    for ws in wb.worksheets[1:]:  # the Summary is laid out apart (tests/test_workbook.py)
        assert ws.freeze_panes == "A2", ws.title
        assert ws.auto_filter.ref == ws.dimensions, ws.title
        assert all(cell.font.bold for cell in ws[1]), ws.title
        widths = [
            ws.column_dimensions[openpyxl.utils.get_column_letter(c)].width
            for c in range(1, ws.max_column + 1)
        ]
        assert all(10 <= w <= 52 for w in widths), (ws.title, widths)


def test_each_data_sheet_has_one_row_per_row_of_its_step_csv_and_of_its_csv_copy(
    demo_run: DemoRun,
) -> None:
    wb = openpyxl.load_workbook(demo_run.report.workbook)
    run_dir = demo_run.report.run_dir
    for sheet, source in SOURCES.items():
        step_rows = read_csv(run_dir / source)
        assert step_rows, f"the demo run should give {source} rows"
        assert wb[sheet].max_row - 1 == len(step_rows), sheet
    for path in demo_run.report.csv:
        sheet = SHEET_OF_CSV[path.name]
        if sheet != "Summary":
            assert wb[sheet].max_row - 1 == len(read_csv(path)), sheet
    assert [p.name for p in demo_run.report.csv] == [
        "tie_out.csv",
        "summary.csv",
        "account_mapping.csv",
        "tax_mapping.csv",
        "transfers.csv",
        "status_differences.csv",
        "errors.csv",
    ]


def test_money_cells_are_numbers_in_the_rows_currency_format(demo_run: DemoRun) -> None:
    wb = openpyxl.load_workbook(demo_run.report.workbook)
    for sheet, columns in (
        ("Transfers", ["nexudus_total", "xero_total"]),
        ("Status differences", ["xero_total", "nexudus_total"]),
    ):
        ws = wb[sheet]
        header = [machine(c.value) for c in ws[1]]
        for row in ws.iter_rows(min_row=2):
            currency = row[header.index("currency")].value
            for name in columns:
                cell = row[header.index(name)]
                if cell.value is None:
                    continue
                assert isinstance(cell.value, (int, float)), (sheet, name, cell.value)
                assert cell.number_format == f'#,##0.00 "{currency}"', (
                    sheet,
                    name,
                    cell.number_format,
                )
    blocked = wb["Account mapping"]
    header = [machine(c.value) for c in blocked[1]]
    cells = [row[header.index("blocked_GBP")] for row in blocked.iter_rows(min_row=2)]
    assert all(
        isinstance(c.value, (int, float)) and c.number_format == '#,##0.00 "GBP"'
        for c in cells
        if c.value is not None
    )


def test_the_transfer_totals_per_currency_equal_the_created_invoices_in_xero_to_the_cent(
    demo_run: DemoRun,
) -> None:
    wb = openpyxl.load_workbook(demo_run.report.workbook)
    created = [
        r
        for r in read_csv(demo_run.report.run_dir / "transfer_outcomes.csv")
        if r["outcome"] == "created"
    ]
    assert created and len({r["currency"] for r in created}) > 1, (
        "the demo transfers in more than one currency"
    )
    expected: dict[str, Decimal] = defaultdict(Decimal)
    in_xero: dict[str, Decimal] = defaultdict(Decimal)
    for r in created:
        expected[r["currency"]] += Decimal(r["nexudus_total"])
        sign = (
            -1 if r["kind"] == "credit_note" else 1
        )  # Xero totals credit notes as positive amounts
        in_xero[r["currency"]] += sign * demo_run.xero_totals[r["xero_id"]]
    assert in_xero == expected, "what the report says was created is what the sandbox holds"

    summary = {
        (r["item"], r["currency"]): r for r in sheet_records(wb["Run"]) if r["section"] == "totals"
    }
    for currency, total in expected.items():
        row = summary[("transfer: created", currency)]
        assert cents(row["value"]) == total
        assert row["count"] == sum(1 for r in created if r["currency"] == currency)
    on_sheet: dict[str, Decimal] = defaultdict(Decimal)
    for r in sheet_records(wb["Transfers"]):
        if r["outcome"] == "created":
            on_sheet[str(r["currency"])] += cents(r["nexudus_total"])
    assert on_sheet == expected


def test_every_attempted_invoice_is_on_the_transfers_sheet_with_its_outcome_and_xero_id(
    demo_run: DemoRun,
) -> None:
    wb = openpyxl.load_workbook(demo_run.report.workbook)
    rows = sheet_records(wb["Transfers"])
    eligible = read_csv(demo_run.report.run_dir / "transfer_plan_eligible.csv")
    assert {r["invoice_number"] for r in rows} == {r["invoice_number"] for r in eligible}
    assert all(r["outcome"] == "created" and r["xero_id"] in demo_run.xero_totals for r in rows)


def test_the_summary_gives_steps_context_parameters_versions_and_totals(demo_run: DemoRun) -> None:
    wb = openpyxl.load_workbook(demo_run.report.workbook)
    rows = sheet_records(wb["Run"])
    by = {(r["section"], r["item"]): r["value"] for r in rows}
    assert by[("run", "run id")] == "20261102T020000Z"
    assert by[("run", "started")] == datetime(2026, 11, 2, 2, 0) and by[
        ("run", "finished")
    ] == datetime(2026, 11, 2, 2, 0, 30)
    assert [by[("step", s.stem)] for s in ok_steps()] == ["ok", "ok", "ok"]
    assert by[("context", "location")] == "Hive Shoreditch"
    assert by[("parameter", "period_start")] == datetime(2026, 8, 1)  # a date cell
    assert by[("parameter", "push")] == "true"
    assert by[("parameter", "xero.token_url")] == "https://identity.xero.com/connect/token"
    assert by[("parameter", "xero.client_secret_env")] == "(masked)"
    assert {"recon", "pandas", "httpx", "authlib", "papermill", "openpyxl", "python"} <= {
        i for s, i in by if s == "version"
    }
    assert ("totals", "invoices in scope") in by and (
        "totals",
        "marked paid in Nexudus: applied",
    ) in by
    applied = [r for r in rows if r["item"] == "marked paid in Nexudus: applied"]
    assert sum(int(r["count"]) for r in applied) == demo_run.applied > 0
    money = [r for r in rows if r["section"] == "totals"]
    assert all(isinstance(r["value"], (int, float)) for r in money)


def test_a_clean_run_says_nothing_failed(demo_run: DemoRun) -> None:
    errors = sheet_records(openpyxl.load_workbook(demo_run.report.workbook)["Errors"])
    assert [r["kind"] for r in errors] == ["none"]
    assert demo_run.report.ok


def test_the_report_renders_itself_and_loads_back(demo_run: DemoRun) -> None:
    report = demo_run.report
    assert str(report.workbook) in str(report) and "no step failed" in str(report)
    page = report._repr_html_()
    assert "audit.xlsx" in page and "transfer: created" in page and "client_secret_env" not in page
    assert "in_scope_amount" in page, "the tie-out first"
    again = load_report(report.run_dir)
    assert (
        again.workbook == report.workbook
        and again.csv == tuple(sorted(report.csv))
        and not again.failed_steps
    )
    assert [s.to_dict() for s in again.steps] == [s.to_dict() for s in ok_steps()]
    assert report.table("transfers")["nexudus_total"].map(type).eq(Decimal).all()


# ---- smaller cases -------------------------------------------------------------------------------
def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def outcome(number: str, outcome: str, currency: str, total: str, **extra: str) -> dict[str, str]:
    row = {
        "invoice_number": number,
        "nexudus_invoice_id": "1",
        "kind": "invoice",
        "outcome": outcome,
        "xero_id": "",
        "currency": currency,
        "nexudus_total": total,
        "xero_total": total if outcome == "created" else "",
        "difference": "",
        "messages": "",
        "meaning": "",
        "fix": "",
    }
    return row | extra


def failed_notebook(path: Path) -> None:
    """An executed notebook as papermill leaves it when a cell raised."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {
        "exception": True,
        "start_time": "2026-11-02T02:00:01",
        "end_time": "2026-11-02T02:00:04",
    }
    ok = nbformat.v4.new_code_cell("conn = connect(params_file)", execution_count=3)
    bad = nbformat.v4.new_code_cell("plan = transfer.plan_transfer(conn)\nplan", execution_count=4)
    bad.outputs = [
        nbformat.v4.new_output(
            "error",
            ename="ServiceUnavailable",
            evalue="\x1b[31mXero did not answer\x1b[0m after 5 tries",
            traceback=["\x1b[0;31mServiceUnavailable\x1b[0m: Xero did not answer after 5 tries"],
        )
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# 02 · Transfer"), ok, bad]
    nbformat.write(nb, path)


def test_a_failed_step_gives_every_sheet_a_note_and_the_error_from_its_notebook(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "20261102T020000Z"
    write_csv(
        run_dir / "mapping_accounts.csv",
        [{"account_code": "4000", "account_name": "Desk", "problem": "ok"}],
    )
    run_dir.mkdir(exist_ok=True)
    failed_notebook(run_dir / "02_transfer.ipynb")
    steps = [
        StepRun("01_mapping_check.ipynb", StepStatus.OK, T0, T0),
        StepRun(
            "02_transfer.ipynb", StepStatus.FAILED, T0, T0, "PapermillExecutionError", "In [4]"
        ),
        StepRun(
            "03_status_sync.ipynb",
            StepStatus.SKIPPED,
            note="02_transfer failed and later steps depend on it",
        ),
    ]
    params = load_params(ROOT / "params" / "demo.yaml")
    report = build_report(run_dir, params, started=T0, finished=T0, steps=steps)

    wb = openpyxl.load_workbook(report.workbook)
    assert wb.sheetnames == SHEETS and report.failed_steps == ("02_transfer.ipynb",)
    notes = {
        s: ws["A2"].value
        for s, ws in ((s, wb[s]) for s in ("Tax mapping", "Transfers", "Status differences"))
    }
    assert all(wb[s]["A1"].value == "Note" and wb[s].max_row == 2 for s in notes)
    assert (
        "02_transfer failed" in notes["Transfers"]
        and "03_status_sync was skipped" in notes["Status differences"]
    )
    assert "01_mapping_check ran but wrote no mapping_tax_rates.csv" in notes["Tax mapping"]
    assert wb["Account mapping"].max_row == 2 and wb["Account mapping"]["A2"].value == "4000"

    summary = {(r["section"], r["item"]): r for r in sheet_records(wb["Run"])}
    assert (
        summary[("step", "02_transfer")]["value"] == "failed"
        and summary[("step", "03_status_sync")]["value"] == "skipped"
    )
    assert str(summary[("run", "result")]["value"]).startswith("FAILED: 02_transfer")
    errors = sheet_records(wb["Errors"])
    assert len(errors) == 1 and errors[0]["kind"] == "step failed"
    assert (
        errors[0]["what"] == "ServiceUnavailable: Xero did not answer after 5 tries"
    )  # from the notebook, ANSI removed
    assert errors[0]["where"] == "02_transfer, In [4]: plan = transfer.plan_transfer(conn)"
    assert "03_status_sync" in str(errors[0]["meaning"]) and "html/02_transfer.html" in str(
        errors[0]["fix"]
    )

    page = (run_dir / "html" / "02_transfer.html").read_text("utf-8")
    assert "Xero did not answer" in page and "plan_transfer(conn)" not in page, (
        "HTML shows outputs, not code"
    )
    assert "FAILED" in str(report) and "#f8d7da" in report._repr_html_()


@pytest.mark.parametrize("sigterm", [True, False])
def test_a_step_stopped_by_the_runs_interruption_keeps_it_as_its_error_and_takes_the_cell(
    tmp_path: Path, sigterm: bool
) -> None:
    """The kernel's KeyboardInterrupt that stopping the run caused is in the executed notebook
    only when papermill wrote it in time: the step says what stopped the run either way, and where
    the notebook shows it stopped."""
    run_dir = tmp_path / "20261102T020000Z"
    run_dir.mkdir()
    interrupted_notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(
        "for path in plan.save(output_dir):\n    path", execution_count=9
    )
    cell.outputs = [
        nbformat.v4.new_output("error", ename="KeyboardInterrupt", evalue="", traceback=[])
    ]
    interrupted_notebook.cells = [cell]
    nbformat.write(interrupted_notebook, run_dir / "02_transfer.ipynb")
    why = interruption(sigterm)
    steps = [
        StepRun("01_mapping_check.ipynb", StepStatus.OK, T0, T0),
        StepRun("02_transfer.ipynb", StepStatus.FAILED, T0, T0, why),
    ]
    report = build_report(run_dir, load_params(ROOT / "params" / "demo.yaml"), steps=steps)

    errors = sheet_records(openpyxl.load_workbook(report.workbook)["Errors"])
    assert [(e["what"], e["where"]) for e in errors] == [
        (why, "02_transfer, In [9]: for path in plan.save(output_dir):")
    ]


def test_failed_transfers_and_payments_are_listed_as_errors_with_their_fix(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write_csv(
        run_dir / "transfer_outcomes.csv",
        [
            outcome("SHO-1", "created", "GBP", "10.00", xero_id="x-1"),
            outcome(
                "SHO-2",
                "failed",
                "GBP",
                "20.00",
                messages="Account code '4050' is not a valid code for this document.",
                meaning="The account code does not exist in Xero.",
                fix="Create account 4050 in Xero or fix the mapping.",
            ),
        ],
    )
    write_csv(
        run_dir / "status_applied.csv",
        [
            {
                "invoice_number": "SHO-3",
                "nexudus_invoice_id": "3",
                "outcome": "failed",
                "amount": "5.00",
                "paid_on": "2026-09-01",
                "message": "The invoice is void",
            },
            {
                "invoice_number": "SHO-4",
                "nexudus_invoice_id": "4",
                "outcome": "applied",
                "amount": "7.00",
                "paid_on": "2026-09-01",
                "message": "",
            },
        ],
    )
    report = build_report(run_dir, load_params(ROOT / "params" / "demo.yaml"), steps=[])
    errors = sheet_records(openpyxl.load_workbook(report.workbook)["Errors"])
    assert [(e["kind"], e["where"]) for e in errors] == [
        ("transfer failed", "invoice SHO-2"),
        ("payment failed", "invoice SHO-3"),
    ]
    assert (
        errors[0]["fix"] == "Create account 4050 in Xero or fix the mapping."
        and errors[1]["what"] == "The invoice is void"
    )


def test_amounts_keep_every_cent_in_the_workbook_and_exactly_in_the_csv(tmp_path: Path) -> None:
    amounts = ["0.10", "0.20", "-0.30", "12345678901.23", "99999999999.99", "1234.005", "0.01"]
    run_dir = tmp_path / "run"
    write_csv(
        run_dir / "transfer_outcomes.csv",
        [
            outcome(f"SHO-{i}", "created", "EUR" if i % 2 else "GBP", a)
            for i, a in enumerate(amounts)
        ],
    )
    report = build_report(run_dir, load_params(ROOT / "params" / "demo.yaml"), steps=[])
    rows = sheet_records(openpyxl.load_workbook(report.workbook)["Transfers"])
    assert [cents(r["nexudus_total"]) for r in rows] == [
        Decimal(a).quantize(CENT) if a != "1234.005" else Decimal("1234.01") for a in amounts
    ]
    assert [r["nexudus_total"] for r in read_csv(run_dir / "csv" / "transfers.csv")] == amounts
    totals = {
        r["item"] + r["currency"]: r["value"]
        for r in sheet_records(openpyxl.load_workbook(report.workbook)["Run"])
        if r["section"] == "totals"
    }
    assert cents(totals["transfer: createdGBP"]) == Decimal("0.10") - Decimal("0.30") + Decimal(
        "99999999999.99"
    ) + Decimal("0.01")


def test_an_empty_folder_still_gives_the_whole_workbook(tmp_path: Path) -> None:
    report = build_report(tmp_path / "nothing-yet", load_params(ROOT / "params" / "demo.yaml"))
    wb = openpyxl.load_workbook(report.workbook)
    assert wb.sheetnames == SHEETS and report.html == ()
    assert all(wb[s]["A1"].value == "Note" for s in SOURCES)
    assert ("step", "(none recorded)") in {
        (r["section"], r["item"]) for r in sheet_records(wb["Run"])
    }


def test_open_report_keeps_a_run_s_report_and_rebuilds_a_hand_run_folder(
    demo_run: DemoRun, tmp_path: Path
) -> None:
    params = load_params(ROOT / "params" / "demo.yaml")
    before = demo_run.report.workbook.stat().st_mtime_ns
    assert open_report(demo_run.report.run_dir, params).workbook.stat().st_mtime_ns == before
    by_hand = tmp_path / "notebook"
    write_csv(by_hand / "transfer_outcomes.csv", [outcome("SHO-1", "created", "GBP", "10.00")])
    first = open_report(by_hand, params)
    write_csv(
        by_hand / "transfer_outcomes.csv",
        [outcome("SHO-1", "created", "GBP", "10.00"), outcome("SHO-2", "created", "GBP", "1")],
    )
    assert (
        openpyxl.load_workbook(open_report(by_hand, params).workbook)["Transfers"].max_row == 3
        and first.ok
    )


def test_steps_a_notebook_panel_records_are_counted_and_its_report_stays_current(
    tmp_path: Path,
) -> None:
    """A notebook session (panels, no `recon run`): each recorded step is on the Summary, a later
    record of the same step replaces it, and every open rebuilds the report."""
    params = load_params(ROOT / "params" / "demo.yaml")
    session = tmp_path / "notebook"
    status_step, transfer_step = ok_steps()[2], ok_steps()[1]
    record_step(session, params, status_step)
    record_step(session, params, transfer_step)
    assert [s.name for s in steps_from_run(session)] == [transfer_step.name, status_step.name]
    first = open_report(session, params)
    summary = {
        (r["section"], r["item"]): r["value"]
        for r in sheet_records(openpyxl.load_workbook(first.workbook)["Run"])
    }
    assert summary[("run", "result")] == "2 of 2 steps ran"
    assert is_notebook_session(session), "building the report keeps the session's mark"
    failed = StepRun(
        transfer_step.name, StepStatus.FAILED, T0, T0, "AuthError: sign in again", "panel"
    )
    record_step(session, params, failed)
    again = open_report(session, params)
    assert again.failed_steps == (transfer_step.name,), "rebuilt, with the later record"
    assert [s.status for s in steps_from_run(session)] == [StepStatus.FAILED, StepStatus.OK]


def test_a_key_naming_a_secret_password_or_token_is_masked() -> None:
    rows = dict(
        parameter_rows(
            {
                "location": "Hive",
                "xero": {
                    "client_secret": "s3cr3t",
                    "refresh_token": "rt-123",
                    "token_url": "https://user:pw@identity.example/connect/token",
                },
                "nexudus": {"password_env": "hunter2"},
            }
        )
    )
    assert rows == {
        "location": "Hive",
        "xero.client_secret": "(masked)",
        "xero.refresh_token": "(masked)",
        "xero.token_url": "https://(masked)@identity.example/connect/token",
        "nexudus.password_env": "(masked)",
    }


# ---- a run over several locations ----------------------------------------------------------------
LOCATION_SHEETS = [
    "Summary",
    "Run",
    "Locations",
    "Account mapping",
    "Tax mapping",
    "Transfers",
    "Status differences",
    "Errors",
]


def invoice(number: str, currency: str, total: str, blocked: bool = False) -> dict[str, str]:
    return {
        "invoice_id": number[-1],
        "invoice_number": number,
        "currency": currency,
        "total": total,
        "total_minor": str(int(Decimal(total) * 100)),
        "blocked": str(blocked),
        "reasons": "mapping: x" if blocked else "",
    }


def a_run_over_locations(run_dir: Path) -> list[LocationRun]:
    """Shoreditch ran (GBP and EUR, one deferred, one refused), Dublin failed at its first step,
    Manchester never ran."""
    shoreditch, dublin = run_dir / "hive-shoreditch", run_dir / "hive-dublin-docklands"
    write_csv(
        shoreditch / "mapping_invoices.csv",
        [
            invoice("SHO-1", "GBP", "10.00"),
            invoice("SHO-2", "GBP", "20.05"),
            invoice("SHO-3", "GBP", "5.00", blocked=True),
            invoice("SHO-4", "EUR", "7.50"),
            invoice("SHO-5", "GBP", "1.00"),
        ],
    )
    write_csv(
        shoreditch / "mapping_accounts.csv",
        [{"account_code": "4000", "account_name": "Desk", "problem": "ok", "blocked_GBP": "0.00"}],
    )
    write_csv(
        shoreditch / "transfer_outcomes.csv",
        [
            outcome("SHO-1", "created", "GBP", "10.00", xero_id="x-1"),
            outcome("SHO-2", "deferred", "GBP", "20.05"),
            outcome("SHO-4", "adopted", "EUR", "7.50", xero_id="x-4"),
            outcome(
                "SHO-5",
                "refused",
                "GBP",
                "1.00",
                messages="refused: this plan is for another organisation",
            ),
        ],
    )
    write_csv(
        shoreditch / "status_differences.csv",
        [
            {
                "difference": "paid in Xero, unpaid in Nexudus",
                "invoice_number": "SHO-1",
                "currency": "GBP",
                "nexudus_total": "10.00",
            }
        ],
    )
    dublin.mkdir(parents=True)
    failed_notebook(dublin / "01_mapping_check.ipynb")
    names = ["01_mapping_check.ipynb", "02_transfer.ipynb", "03_status_sync.ipynb"]
    return [
        LocationRun(
            "Hive Shoreditch", "hive-shoreditch", tuple(ok_steps()), T0, T0 + timedelta(seconds=30)
        ),
        LocationRun(
            "Hive Dublin Docklands",
            "hive-dublin-docklands",
            (
                StepRun(names[0], StepStatus.FAILED, T0, T0, "PapermillExecutionError", "In [4]"),
                *[
                    StepRun(
                        n,
                        StepStatus.SKIPPED,
                        note="01_mapping_check failed and later steps depend on it",
                    )
                    for n in names[1:]
                ],
            ),
            T0 + timedelta(seconds=30),
            T0 + timedelta(seconds=40),
        ),
        LocationRun(
            "Hive Manchester",
            "hive-manchester",
            note="not run: the run was interrupted (Ctrl-C) before this location",
        ),
    ]


def test_a_run_over_locations_gets_one_workbook_with_a_locations_sheet_and_a_location_column(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "20261102T020000Z"
    report = build_report(
        run_dir,
        load_params(ROOT / "tests" / "params" / "two-locations.yaml"),
        locations=a_run_over_locations(run_dir),
    )
    wb = openpyxl.load_workbook(report.workbook)
    assert wb.sheetnames == LOCATION_SHEETS and all(
        wb[s]["A1"].value == "Location"
        for s in LOCATION_SHEETS
        if s not in ("Summary", "Locations")
    )
    assert [p.name for p in report.csv] == [
        "tie_out.csv",
        "summary.csv",
        "locations.csv",
        "account_mapping.csv",
        "tax_mapping.csv",
        "transfers.csv",
        "status_differences.csv",
        "errors.csv",
    ]
    assert report.failed_steps == (
        "Hive Dublin Docklands: 01_mapping_check.ipynb",
        "Hive Manchester: not run",
    )

    rows = {(r["location"], r["currency"]): r for r in sheet_records(wb["Locations"])}
    assert list(rows) == [
        ("Hive Shoreditch", "EUR"),
        ("Hive Shoreditch", "GBP"),
        ("Hive Dublin Docklands", None),
        ("Hive Manchester", None),
    ]
    gbp = rows[("Hive Shoreditch", "GBP")]
    assert (gbp["status"], gbp["01_mapping_check"], gbp["03_status_sync"]) == ("ok", "ok", "ok")
    assert (
        gbp["invoices_in_scope"],
        gbp["blocked"],
        gbp["transferred"],
        gbp["deferred"],
        gbp["failed"],
        gbp["status_differences"],
    ) == (4, 1, 1, 1, 1, 1)
    assert [
        cents(gbp[c])
        for c in ("in_scope_total", "blocked_total", "transferred_total", "deferred_total")
    ] == [Decimal("36.05"), Decimal("5.00"), Decimal("10.00"), Decimal("20.05")]
    eur = rows[("Hive Shoreditch", "EUR")]
    assert (eur["transferred"], cents(eur["transferred_total"]), eur["status_differences"]) == (
        1,
        Decimal("7.50"),
        0,
    )
    dublin = rows[("Hive Dublin Docklands", None)]
    assert (
        dublin["status"],
        dublin["01_mapping_check"],
        dublin["02_transfer"],
        dublin["transferred"],
    ) == ("failed", "failed", "skipped", None)
    assert dublin["error"] == (
        "01_mapping_check failed at In [4]: plan = transfer.plan_transfer(conn): "
        "ServiceUnavailable: Xero did not answer after 5 tries"
    )
    assert rows[("Hive Manchester", None)]["status"] == "not run"
    header = [machine(c.value) for c in wb["Locations"][1]]
    gbp_row = next(r for r in wb["Locations"].iter_rows(min_row=2) if r[1].value == "GBP")
    assert gbp_row[header.index("in_scope_total")].number_format == '#,##0.00 "GBP"'
    # a location that failed or did not run is filled red by a rule on its status column
    [(area, rules)] = [(str(cf.sqref), cf.rules) for cf in wb["Locations"].conditional_formatting]
    assert area == wb["Locations"].dimensions.replace("A1:", "A2:")
    assert [r.formula for r in rules] == [['$C2<>"ok"']]

    transfers = sheet_records(wb["Transfers"])
    assert [(r["location"], r["invoice_number"] or r["note"][:20]) for r in transfers] == [
        ("Hive Shoreditch", "SHO-1"),
        ("Hive Shoreditch", "SHO-2"),
        ("Hive Shoreditch", "SHO-4"),
        ("Hive Shoreditch", "SHO-5"),
        ("Hive Dublin Docklands", "No data: step 02_tra"),
        ("Hive Manchester", "No data: this locati"),
    ]
    assert list(transfers[0])[-1] == "note", "the note column comes last"
    errors = sheet_records(wb["Errors"])
    assert [(e["location"], e["kind"], e["where"]) for e in errors] == [
        ("Hive Shoreditch", "transfer refused", "invoice SHO-5"),
        ("Hive Dublin Docklands", "step failed", errors[1]["where"]),
        ("Hive Manchester", "location not run", "hive-manchester/"),
    ]
    assert "another organisation" in errors[0]["what"]
    assert "html/hive-dublin-docklands/01_mapping_check.html" in errors[1]["fix"]
    assert "--location 'Hive Manchester' --run-id 20261102T020000Z" in errors[2]["fix"]
    summary = {(r["location"], r["section"], r["item"]): r for r in sheet_records(wb["Run"])}
    assert (
        summary[(None, "run", "result")]["value"]
        == "FAILED: Hive Dublin Docklands (01_mapping_check); Hive Manchester (not run)"
    )
    assert summary[("Hive Dublin Docklands", "step", "01_mapping_check")]["value"] == "failed"
    assert cents(summary[("Hive Shoreditch", "totals", "transfer: created")]["value"]) == Decimal(
        "10.00"
    )
    assert (
        summary[(None, "parameter", "locations.Hive Dublin Docklands.organisation")]["value"]
        == "Hive Coworking Ireland Ltd"
    )
    assert [p.relative_to(run_dir).as_posix() for p in report.html] == [
        "html/hive-dublin-docklands/01_mapping_check.html"
    ]
    assert "location: Hive Manchester (hive-manchester/): not run" in str(report)


def test_a_run_over_locations_loads_back_and_rebuilds_from_its_folders_alone(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    params = load_params(ROOT / "tests" / "params" / "two-locations.yaml")
    first = build_report(run_dir, params, locations=a_run_over_locations(run_dir))
    loaded = load_report(run_dir)
    assert loaded.failed_steps == first.failed_steps and [loc.name for loc in loaded.locations] == [
        "Hive Shoreditch",
        "Hive Dublin Docklands",
        "Hive Manchester",
    ]
    assert (
        open_report(run_dir, params).workbook.stat().st_mtime_ns
        == first.workbook.stat().st_mtime_ns
    ), "kept, not rebuilt"
    (
        run_dir / "run.json"
    ).unlink()  # as a scheduler's location tasks leave it: location folders only
    rebuilt = build_report(run_dir, params)
    assert [(loc.name, loc.status.value) for loc in rebuilt.locations] == [
        ("Hive Shoreditch", "ok"),
        ("Hive Dublin Docklands", "failed"),
    ]
    assert openpyxl.load_workbook(rebuilt.workbook).sheetnames == LOCATION_SHEETS


def test_a_mapped_location_without_a_folder_is_reported_not_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    params = load_params(ROOT / "tests" / "params" / "two-locations.yaml")
    record_location(
        run_dir / "hive-dublin-docklands",
        params,
        LocationRun("Hive Dublin Docklands", "hive-dublin-docklands", tuple(ok_steps())),
    )
    assert [
        (loc.name, loc.folder, loc.status.value) for loc in location_runs(run_dir, params.locations)
    ] == [
        ("Hive Shoreditch", "hive-shoreditch", "not run"),
        ("Hive Dublin Docklands", "hive-dublin-docklands", "ok"),
    ]
    assert location_runs(tmp_path / "single-location-run", params.locations) == []


def test_location_folders_are_plain_unique_and_never_the_report_s_own() -> None:
    assert location_folders(
        [
            "Hive Shoreditch",
            "Hive Dublin Docklands",
            "Zürich Hauptbahnhof",
            "hive  shoreditch",
            "CSV",
            "***",
        ]
    ) == {
        "Hive Shoreditch": "hive-shoreditch",
        "Hive Dublin Docklands": "hive-dublin-docklands",
        "Zürich Hauptbahnhof": "zurich-hauptbahnhof",
        "hive  shoreditch": "hive-shoreditch-2",
        "CSV": "csv-2",
        "***": "location",
    }
