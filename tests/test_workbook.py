"""The audit pack an auditor accepts: a Summary that ties out, real number and date cells, human
headers, print settings, charts, clean web pages and a manifest whose hashes match.

The workbook is the one of a full demo run against the sandbox (``demo_run`` of
tests/test_report.py: mapping check, transfer with push, credit notes
allocated, the demo accountant and billing staff acting, status sync with
both applies), built once for this module.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import nbformat
import openpyxl
import pandas as pd
import pytest
from test_report import DemoRun, cents, demo_run, machine, sheet_records  # noqa: F401

from recon.outcomes import AllocationOutcome, TransferOutcome, Verdict, XeroChangeOutcome
from recon.report import render_notebooks
from recon.report.manifest import MANIFEST, git_commit, verify_manifest
from recon.report.summary import BUCKETS, NOT_FOR_XERO
from recon.report.workbook import CHECK_FORMULA, CHECK_RECON, TIE_OUT_ROWS

CELL = re.compile(r"\$?([A-Z]{1,3})\$?(\d+)")


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def wb(demo_run: DemoRun) -> Any:  # noqa: F811  the fixture imported above
    return openpyxl.load_workbook(demo_run.report.workbook)


def labelled_rows(ws: Any) -> dict[str, int]:
    """Column A's text -> its row (the first one)."""
    found: dict[str, int] = {}
    for row in ws.iter_rows(min_col=1, max_col=1):
        if isinstance(row[0].value, str):
            found.setdefault(row[0].value, row[0].row)
    return found


def currency_columns(ws: Any) -> dict[str, int]:
    """Each currency over the Summary's figures -> its Invoices column (Amount is the next)."""
    header = next(
        r for r in ws.iter_rows(min_row=1, max_row=12) if r[0].value == "Figures per currency"
    )[0].row
    return {
        str(c.value): c.column
        for c in ws[header - 1]
        if isinstance(c.value, str) and re.fullmatch(r"[A-Z]{3}", c.value)
    }


def money(value: object) -> Decimal:
    """A chart table's cell: blank where a currency has no money."""
    return Decimal(0) if value is None else cents(value)


def evaluate(formula: str, ws: Any) -> bool:
    """The check cell's formula worked out on the sheet's values, in exact decimals: AND, ROUND,
    +, -, = and cell references, as Excel and LibreOffice evaluate them."""
    assert formula.startswith("="), formula
    expression = CELL.sub(lambda m: f"v({m[1]!r},{m[2]})", formula[1:])
    expression = expression.replace("AND(", "AND_(").replace("ROUND(", "ROUND_(")
    expression = re.sub(r"(?<![<>=!])=(?!=)", "==", expression)

    def v(column: str, row: int) -> Decimal:
        value = ws[f"{column}{row}"].value
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (column, row)
        return Decimal(repr(value))

    def AND_(*tests: bool) -> bool:
        return all(tests)

    def ROUND_(value: Decimal, places: int) -> Decimal:
        return round(value, places)

    return bool(eval(expression, {"v": v, "AND_": AND_, "ROUND_": ROUND_}))


# ---- 1. the Summary ties out ---------------------------------------------------------------------
def test_the_summary_is_first_and_ties_out_per_currency_by_its_formula_and_by_recon(
    demo_run: DemoRun,  # noqa: F811
    wb: Any,
) -> None:
    ws = wb.worksheets[0]
    assert ws.title == "Summary"
    rows, columns = labelled_rows(ws), currency_columns(ws)
    assert set(columns) >= {"GBP", "EUR"}, "the demo books in several currencies"
    label = {name: rows[TIE_OUT_ROWS[name]] for name in ("in scope", *BUCKETS)}
    for currency, n in columns.items():
        a = n + 1
        check = ws.cell(row=rows[CHECK_FORMULA], column=n)
        assert check.data_type == "f" and str(check.value).startswith("=AND("), check.value
        assert evaluate(str(check.value), ws) is True, currency
        assert ws.cell(row=rows[CHECK_RECON], column=n).value is True, currency
        # the same equality, recomputed from the cells: counts as ints, money to the cent
        counts = {k: ws.cell(row=r, column=n).value for k, r in label.items()}
        assert all(type(c) is int for c in counts.values()), counts
        assert counts["in scope"] == sum(counts[b] for b in BUCKETS) > 0
        money = {k: cents(ws.cell(row=r, column=a).value) for k, r in label.items()}
        assert money["in scope"] == sum(money[b] for b in BUCKETS)
    # a figure changed by hand turns the formula false: the check can fail
    gbp = columns["GBP"]
    transferred = ws.cell(row=label["transferred"], column=gbp)
    transferred.value += 1
    try:
        assert evaluate(str(ws.cell(row=rows[CHECK_FORMULA], column=gbp).value), ws) is False
    finally:
        transferred.value -= 1


def test_each_tie_out_bucket_is_counted_from_its_own_step_file(demo_run: DemoRun) -> None:  # noqa: F811
    run_dir = demo_run.report.run_dir
    eligible = rows_of(run_dir / "transfer_plan_eligible.csv")
    excluded = rows_of(run_dir / "transfer_plan_excluded.csv")
    outcomes = rows_of(run_dir / "transfer_outcomes.csv")
    expected: dict[str, dict[str, list[Decimal]]] = defaultdict(lambda: defaultdict(list))
    for r in [*eligible, *excluded]:
        expected[r["currency"]]["in scope"].append(Decimal(r["nexudus_total"]))
    for r in outcomes:
        verdict = TransferOutcome(r["outcome"]).verdict
        bucket = {Verdict.SUCCESS: "transferred", Verdict.FAILURE: "failed"}.get(
            verdict, "held back"
        )
        expected[r["currency"]][bucket].append(Decimal(r["nexudus_total"]))
    for r in excluded:
        bucket = "excluded" if r["reason"].startswith(NOT_FOR_XERO) else "held back"
        expected[r["currency"]][bucket].append(Decimal(r["nexudus_total"]))
    assert any(expected[c]["excluded"] for c in expected), "the demo has void and draft invoices"
    assert any(expected[c]["held back"] for c in expected), "the demo holds invoices back"
    tie_out = {r["currency"]: r for r in rows_of(demo_run.report.csv_dir / "tie_out.csv")}
    assert set(tie_out) == set(expected)
    for currency, buckets in expected.items():
        row = tie_out[currency]
        for bucket in ("in scope", *BUCKETS):
            key = bucket.replace(" ", "_")
            assert int(row[f"{key}_invoices"]) == len(buckets[bucket]), (currency, bucket)
            assert Decimal(row[f"{key}_amount"]) == sum(buckets[bucket], Decimal(0))
        assert row["ties_out"] == "True"


# ---- 2. allocations and changes in Xero are counted ----------------------------------------------
def test_the_summary_counts_credit_note_allocations_and_changes_in_xero(
    demo_run: DemoRun,  # noqa: F811
    wb: Any,
) -> None:
    run_dir = demo_run.report.run_dir
    ws = wb["Summary"]
    rows, columns = labelled_rows(ws), currency_columns(ws)
    for what, name, kind in (
        ("Credit note allocations", "allocation_outcomes.csv", AllocationOutcome),
        ("Changes in Xero", "status_xero_changes.csv", XeroChangeOutcome),
    ):
        written = rows_of(run_dir / name)
        assert written, f"the demo run writes {name}"
        tally: dict[tuple[str, str], list[Decimal]] = defaultdict(list)
        for r in written:
            tally[(kind(r["outcome"]).label, r["currency"])].append(Decimal(r["amount"]))
        for (label, currency), amounts in tally.items():
            row = rows[f"{what}: {label}"]
            assert ws.cell(row=row, column=columns[currency]).value == len(amounts)
            assert cents(ws.cell(row=row, column=columns[currency] + 1).value) == sum(amounts)
        run = {(r["section"], r["item"]): r for r in sheet_records(wb["Run"])}
        prefix = "credit note allocation" if kind is AllocationOutcome else "changed in Xero"
        assert sum(
            r["count"] for (s, i), r in run.items() if s == "totals" and i.startswith(prefix)
        ) == len(written)


# ---- number and date cells, human headers --------------------------------------------------------
def test_money_counts_rates_and_dates_are_real_cells_with_formats(wb: Any) -> None:
    transfers = wb["Transfers"]
    header = [machine(c.value) for c in transfers[1]]
    for row in transfers.iter_rows(min_row=2):
        total = row[header.index("nexudus_total")]
        assert type(total.value) in (int, float) and total.number_format.startswith("#,##0.00")
    accounts = wb["Account mapping"]
    header = [machine(c.value) for c in accounts[1]]
    counts = [r[header.index("invoices_using")] for r in accounts.iter_rows(min_row=2)]
    assert all(type(c.value) is int and c.number_format == "#,##0" for c in counts)
    taxes = wb["Tax mapping"]
    header = [machine(c.value) for c in taxes[1]]
    rates = [r[header.index("tax_rate")].value for r in taxes.iter_rows(min_row=2)]
    assert all(type(v) in (int, float) for v in rates if v is not None) and 20 in rates
    differences = wb["Status differences"]
    header = [machine(c.value) for c in differences[1]]
    paid_on = [r[header.index("xero_paid_on")] for r in differences.iter_rows(min_row=2)]
    dated = [c for c in paid_on if c.value is not None]
    assert dated and all(
        isinstance(c.value, datetime) and c.number_format == "yyyy-mm-dd" for c in dated
    )
    run = {(r["section"], r["item"]): r["value"] for r in sheet_records(wb["Run"])}
    assert isinstance(run[("run", "report built")], datetime)
    assert run[("parameter", "period_end")] == datetime(2026, 10, 31)
    # nothing a reader adds up or sorts by date is text
    number_or_day = re.compile(r"-?\d[\d,]*(\.\d+)?|\d{4}-\d{2}-\d{2}")
    identifiers = {"Account code", "Xero code", "Nexudus invoice ID", "Invoice number", "Value"}
    for ws in wb.worksheets[1:]:
        header = [c.value for c in ws[1]]
        for row in ws.iter_rows(min_row=2):
            for name, cell in zip(header, row, strict=True):
                if isinstance(cell.value, str) and name not in identifiers:
                    assert not number_or_day.fullmatch(cell.value), (ws.title, name, cell.value)


def test_headers_are_human_words(wb: Any) -> None:
    transfers = [c.value for c in wb["Transfers"][1]]
    assert transfers[:3] == ["Invoice number", "Nexudus invoice ID", "Kind"]
    assert "Xero ID" in transfers and "Nexudus total" in transfers
    assert "Blocked GBP" in [c.value for c in wb["Account mapping"][1]]
    for ws in wb.worksheets[1:]:
        assert not [c.value for c in ws[1] if "_" in str(c.value)], ws.title


def test_problem_rows_are_filled_by_a_rule_on_the_column_that_says_so(
    demo_run: DemoRun,  # noqa: F811
    wb: Any,
) -> None:
    ws = wb["Account mapping"]
    header = [machine(c.value) for c in ws[1]]
    rules = [(str(cf.sqref), r.formula[0]) for cf in ws.conditional_formatting for r in cf.rules]
    letter = openpyxl.utils.get_column_letter(header.index("severity") + 1)
    assert (ws.dimensions.replace("A1:", "A2:"), f'${letter}2="blocks"') in rules
    blocking = [r for r in rows_of(demo_run.report.run_dir / "mapping_accounts.csv")]
    assert any(r["severity"] == "blocks" for r in blocking), "the demo has blocking accounts"
    summary = wb["Summary"]
    held = labelled_rows(summary)[TIE_OUT_ROWS["held back"]]
    assert any(str(cf.sqref).startswith(f"B{held}:") for cf in summary.conditional_formatting)


# ---- print setup and charts ----------------------------------------------------------------------
def test_every_sheet_prints_landscape_fit_to_width_with_repeated_headers_and_page_numbers(
    wb: Any,
) -> None:
    for ws in wb.worksheets:
        assert ws.page_setup.orientation == "landscape", ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert (ws.page_setup.fitToWidth, ws.page_setup.fitToHeight) == (1, 0), ws.title
        assert ws.print_title_rows, ws.title
        assert "&P" in ws.oddFooter.center.text and "&N" in ws.oddFooter.center.text
        assert ws.oddHeader.right.text == "&A" and "run 20261102T020000Z" in str(
            ws.oddHeader.left.text
        )
        assert ws.freeze_panes, ws.title
    assert wb["Transfers"].print_title_rows == "$1:$1"


def test_the_summary_charts_blocked_money_by_problem_and_unpaid_money_by_age(
    demo_run: DemoRun,  # noqa: F811
    wb: Any,
) -> None:
    ws = wb["Summary"]
    charts = ws._charts  # openpyxl keeps a sheet's charts there
    titles = [" ".join(r.t for p in c.title.tx.rich.p for r in p.r) for c in charts]
    assert titles[0] == "Money blocked by mapping problem"
    assert titles[1].startswith("Unpaid in Xero by days past due")
    assert [c.tagname for c in charts] == ["barChart", "barChart"]
    rows = labelled_rows(ws)
    buckets = [ws.cell(row=rows[f"{b} days"], column=1).value for b in ("0-30", "31-60", "61-90")]
    assert buckets == ["0-30 days", "31-60 days", "61-90 days"] and "90+ days" in rows
    gbp = currency_columns(ws)["GBP"] + 1
    unpaid = rows_of(demo_run.report.run_dir / "status_unpaid.csv")
    ages = ("0-30", "31-60", "61-90", "90+")
    aged = sum((money(ws.cell(row=rows[f"{b} days"], column=gbp).value) for b in ages), Decimal(0))
    assert aged == sum(Decimal(r["amount_due"]) for r in unpaid if r["currency"] == "GBP") > 0
    blocked = sum(
        Decimal(r["blocked_GBP"])
        for r in rows_of(demo_run.report.run_dir / "mapping_mismatches.csv")
        if r["severity"] == "blocks"
    )
    first = next(r for k, r in rows.items() if k.startswith("Money blocked by mapping problem"))
    last = next(r for k, r in rows.items() if k.startswith("Unpaid in Xero"))
    on_sheet = sum(
        (money(ws.cell(row=r, column=gbp).value) for r in range(first + 1, last)), Decimal(0)
    )
    assert on_sheet == blocked > 0


# ---- 3. web pages --------------------------------------------------------------------------------
def visible_text(page: str) -> str:
    """A page's text as a reader sees it: no style or script, tags removed, entities kept."""
    page = re.sub(r"<(style|script)\b.*?</\1>", "", page, flags=re.S)
    return re.sub(r"<[^>]+>", " ", page)


def test_web_pages_show_values_not_python_reprs_relative_paths_and_escaped_text(
    demo_run: DemoRun,  # noqa: F811
    tmp_path: Path,
) -> None:
    """An executed notebook whose outputs are what a step's frames and prints look like: the demo
    run's transfers (Decimal, None, NaN, <NA>, NaT, Timestamp), a path in the run folder, an error
    with a traceback, and a customer named like markup."""
    run_dir = tmp_path / "20261102T020000Z"
    run_dir.mkdir()
    frame = demo_run.report.table("transfers").head(5)
    frame["paid"] = [None, float("nan"), pd.NA, pd.NaT, pd.Timestamp("2026-08-15", tz="UTC")]
    shown = frame[["invoice_number", "nexudus_total", "paid"]]
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("transfers", execution_count=1)
    cell.outputs = [
        nbformat.v4.new_output(
            "execute_result",
            data={"text/html": shown.to_html(), "text/plain": repr(shown)},
            execution_count=1,
        ),
        nbformat.v4.new_output(
            "display_data", data={"text/plain": repr(list(shown.itertuples(index=False))[:2])}
        ),
        nbformat.v4.new_output(
            "display_data",
            data={"text/plain": "<Connection location='Hive Shoreditch' target=sandbox>"},
        ),
        nbformat.v4.new_output(
            "stream", name="stdout", text=f"outcomes: {run_dir.resolve()}/transfer_outcomes.csv\n"
        ),
        nbformat.v4.new_output(
            "stream", name="stdout", text="customer: <script>alert('x')</script> & Co\n"
        ),
        nbformat.v4.new_output(
            "error",
            ename="ApiRejected",
            evalue="Xero said no",
            traceback=[
                "\x1b[0;31mApiRejected\x1b[0m Traceback",
                f'File "{Path(__file__).resolve().parent.parent}/recon/transfer/push.py", line 3',
                'File "/usr/lib/python3/site.py", line 1',
            ],
        ),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# 02 · Transfer"), cell]
    nbformat.write(nb, run_dir / "02_transfer.ipynb")
    [page_path] = render_notebooks(run_dir, run_dir / "html")
    page = page_path.read_text("utf-8")
    text = visible_text(page)
    for repr_ in ("Decimal(", "Timestamp(", "datetime.", "<NA>", "&lt;NA&gt;"):
        assert repr_ not in text, repr_
    for word in ("nan", "NaN", "None", "NaT"):
        assert not re.search(rf"(?<![\w'])({word})(?![\w'])", text), word
    assert str(tmp_path) not in page and "/usr/lib" not in page and "/recon/transfer" not in page
    assert "outcomes: transfer_outcomes.csv" in text
    assert "Connection: location Hive Shoreditch, target sandbox" in text and "&lt;Conn" not in page
    assert "recon/transfer/push.py" in text and "…/site.py" in text
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert str(frame["invoice_number"].iloc[0]) in text
    assert f"{frame['nexudus_total'].iloc[0]}" in text, "the amount itself, not its repr"
    assert "transfers" not in re.findall(r"<pre>(.*?)</pre>", page, flags=re.S)[:1], "no code"


# ---- 4. the manifest -----------------------------------------------------------------------------
def test_the_manifest_hashes_every_file_of_the_run_folder_and_the_params_file(
    demo_run: DemoRun,  # noqa: F811
) -> None:
    run_dir = demo_run.report.run_dir
    manifest = json.loads((run_dir / MANIFEST).read_text("utf-8"))
    listed = {f["path"]: f for f in manifest["files"]}
    on_disk = {
        p.relative_to(run_dir).as_posix()
        for p in run_dir.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    assert set(listed) == on_disk
    assert {"audit.xlsx", "csv/tie_out.csv", "transfer_outcomes.csv", "run.json"} <= on_disk
    for name, entry in listed.items():
        data = (run_dir / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
    params_file = Path(__file__).resolve().parent.parent / "params" / "demo.yaml"
    assert manifest["params"] == {
        "file": "demo.yaml",
        "sha256": hashlib.sha256(params_file.read_bytes()).hexdigest(),
    }
    assert "XERO_CLIENT_ID" not in json.dumps(manifest), "the params' content never"
    assert manifest["recon"]["version"] and manifest["recon"]["git_commit"] == git_commit()
    commit = manifest["recon"]["git_commit"]
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit)
    assert verify_manifest(run_dir) == []


def test_a_changed_file_no_longer_matches_the_manifest(tmp_path: Path) -> None:
    from recon.params import load_params
    from recon.report import build_report

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "transfer_outcomes.csv").write_text(
        "invoice_number,currency,nexudus_total,outcome\nSHO-1,GBP,1.00,created\n", "utf-8"
    )
    params = load_params(Path(__file__).resolve().parent.parent / "params" / "demo.yaml")
    build_report(run_dir, params, steps=[])
    assert verify_manifest(run_dir) == []
    (run_dir / "transfer_outcomes.csv").write_text("tampered", "utf-8")
    (run_dir / "extra.csv").write_text("x", "utf-8")
    assert verify_manifest(run_dir) == ["not listed: extra.csv", "changed: transfer_outcomes.csv"]


def test_git_commit_is_none_outside_a_checkout(tmp_path: Path) -> None:
    package = tmp_path / "recon"
    package.mkdir()
    assert git_commit(package) is None


def test_an_outcome_for_an_invoice_the_plan_does_not_have_breaks_the_tie_out(
    tmp_path: Path,
) -> None:
    """Each bucket is counted from its own file: a transfer outcome with no planned invoice behind
    it is money the scope does not hold, and both checks say so."""
    from recon.params import load_params
    from recon.report import build_report

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "transfer_plan_eligible.csv").write_text(
        "nexudus_invoice_id,invoice_number,currency,nexudus_total\n1,SHO-1,GBP,10.00\n", "utf-8"
    )
    (run_dir / "transfer_plan_excluded.csv").write_text(
        "nexudus_invoice_id,invoice_number,currency,nexudus_total,reason\n"
        "2,SHO-2,GBP,5.00,void in Nexudus\n3,SHO-3,GBP,7.25,mapping: missing in Xero\n",
        "utf-8",
    )
    (run_dir / "transfer_outcomes.csv").write_text(
        "invoice_number,nexudus_invoice_id,currency,nexudus_total,outcome\n"
        "SHO-1,1,GBP,10.00,created\nSHO-9,9,GBP,1.00,failed\n",
        "utf-8",
    )
    params = load_params(Path(__file__).resolve().parent.parent / "params" / "demo.yaml")
    report = build_report(run_dir, params, steps=[])
    [row] = rows_of(report.csv_dir / "tie_out.csv")
    assert (row["in_scope_invoices"], row["in_scope_amount"]) == ("3", "22.25")
    assert [row[f"{b}_invoices"] for b in ("transferred", "held_back", "failed", "excluded")] == [
        "1",
        "1",
        "1",
        "1",
    ]
    assert row["ties_out"] == "False"
    ws = openpyxl.load_workbook(report.workbook)["Summary"]
    rows, gbp = labelled_rows(ws), currency_columns(ws)["GBP"]
    assert evaluate(str(ws.cell(row=rows[CHECK_FORMULA], column=gbp).value), ws) is False
    assert ws.cell(row=rows[CHECK_RECON], column=gbp).value is False
