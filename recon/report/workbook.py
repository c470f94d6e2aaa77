"""Writing the report's tables: the openpyxl workbook and the CSV files.

Floor 2 (part of ``recon.report``). The workbook is for people, so every sheet
has human headers ("Invoice number", not ``invoice_number``), a bold frozen
header row, a filter, readable widths, problem rows filled by conditional
formatting on the column that says so (a failed transfer, a blocking mapping
row, a difference a person decides, an error), and a print setup (A4
landscape, fit to the page width, the header row on every page, the run and
sheet on top and "Page n of m" below). Cells hold real values: money a number
in a ``#,##0.00`` format (the only place a ``Decimal`` becomes a float), counts
integers, rates numbers, days and moments dates (UTC). Text that a spreadsheet
could read as a formula stays text (``recon.cells``).

The first sheet, Summary (``recon.report.summary``), lays out the tie-out per
currency with an Excel formula that checks it and recon's own check beside it,
what happened after the transfer, the money blocked by mapping problem and the
ageing of what Xero shows unpaid, with a bar chart of each.

The CSVs keep the steps' column names and money as exact decimal text.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from recon.cells import csv_text, is_formula_like
from recon.money import round_cents
from recon.outcomes import TransferOutcome, Verdict
from recon.report.runs import LocationStatus, StepStatus
from recon.report.summary import AGEING, BUCKETS, Figure, SummaryData, TieOut
from recon.report.tables import COUNT_COLUMNS, RATE_COLUMNS, RUN_SHEET, Table

MONEY_FORMAT = "#,##0.00"
COUNT_FORMAT = "#,##0"
RATE_FORMAT = "0.00##"
DATE_FORMAT = "yyyy-mm-dd"
MOMENT_FORMAT = "yyyy-mm-dd hh:mm:ss"
_ILLEGAL_IN_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Words a header keeps as the systems write them.
_WORDS = {"xero": "Xero", "nexudus": "Nexudus", "id": "ID", "ids": "IDs", "url": "URL"}
HEADINGS = {
    "total_minor": "Total (minor units)",
    "invoices_using": "Invoices using it",
    "lines_using": "Lines using it",
    "nexudus_paid": "Paid in Nexudus",
    "note": "Note",
}
RED, AMBER, GREEN, HEADER = "F8D7DA", "FFF3CD", "D1E7DD", "DDEBF7"
MAX_WIDTH = 50


def heading(column: str) -> str:
    """A column name as people read it: ``invoice_number`` -> ``Invoice number``, ``xero_id`` ->
    ``Xero ID``, ``blocked_GBP`` -> ``Blocked GBP``."""
    if column in HEADINGS:
        return HEADINGS[column]
    words = [_WORDS.get(w, w) for w in column.split("_") if w]
    if not words:
        return column
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def _cell_value(value: Any) -> Any:
    """What goes into a cell. Money becomes a float here and nowhere else.

    Why this is safe: an amount rounded to the cent with at most 15 significant
    digits (any amount below 10 trillion) has one nearest double, Excel stores
    exactly that double and shows and re-reads 15 significant digits, so the
    cell reads back as the same cents (``Decimal(repr(cell)).quantize(CENT)``
    is the original). The exact decimal text is in the CSVs. A moment goes in
    as UTC without its zone (a workbook has none; the header or detail says UTC).
    """
    if isinstance(value, Decimal):
        return float(round_cents(value))
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, str):
        # Control characters other than tab, LF and CR cannot be stored in a workbook (openpyxl
        # refuses the whole file); a broken customer name must not cost the report.
        return _ILLEGAL_IN_XLSX.sub("\ufffd", value)
    return value


def _put(ws: Any, row: int, column: int, value: Any) -> Any:
    """Write one cell; text a spreadsheet could read as a formula is stored as text (a string
    cell with Excel's quote prefix), never as a formula (``recon.cells``)."""
    cell = ws.cell(row=row, column=column, value=_cell_value(value))
    if isinstance(cell.value, str) and is_formula_like(cell.value):
        cell.data_type = "s"  # openpyxl made "=..." a formula; this stores the text itself
        cell.quotePrefix = True  # and Excel keeps it text even when the cell is edited
    return cell


def _money_format(currency: str | None) -> str:
    return (
        f'{MONEY_FORMAT} "{currency}"'
        if currency and re.fullmatch(r"[A-Z]{3}", currency)
        else MONEY_FORMAT
    )


def _number_format(table: Table, name: str, row: list[Any], value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        if name in RATE_COLUMNS:
            return RATE_FORMAT
        return _money_format(table.currency(name, row))
    if isinstance(value, int) and name in COUNT_COLUMNS:
        return COUNT_FORMAT
    if isinstance(value, datetime):
        return MOMENT_FORMAT
    if isinstance(value, date):
        return DATE_FORMAT
    return None


def _display_width(value: Any, currency: str | None) -> int:
    if isinstance(value, Decimal):
        return len(f"{value:,.2f} {currency or ''}")
    if isinstance(value, datetime):
        return 19
    if isinstance(value, date):
        return 10
    text = "" if value is None else str(value)
    return max((len(line) for line in text.splitlines()), default=0)


def write_workbook(
    tables: Sequence[Table],
    path: Path,
    summary: SummaryData | None = None,
    run_id: str = "",
) -> Path:
    """Write the Summary (if given), then the tables, a sheet each, at ``path``; return ``path``."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]
    if summary is not None:
        write_summary(wb.create_sheet("Summary"), summary)
    for table in tables:
        _write_table(wb.create_sheet(table.sheet), table)
    for ws in wb.worksheets:
        _print_setup(ws, run_id)
    tmp = path.with_suffix(".xlsx.tmp")
    wb.save(tmp)
    os.replace(tmp, path)
    return path


def _write_table(ws: Any, table: Table) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    header_fill = PatternFill("solid", fgColor=HEADER)
    widths = [len(heading(c)) for c in table.columns]
    for col, name in enumerate(table.columns, start=1):
        cell = _put(ws, 1, col, heading(name))
        cell.font, cell.fill = Font(bold=True), header_fill
        cell.alignment = Alignment(vertical="top")
    wrap = Alignment(wrap_text=True, vertical="top")
    for r, row in enumerate(table.rows, start=2):
        lines = 1
        for col, (name, value) in enumerate(zip(table.columns, row, strict=True), start=1):
            cell = _put(ws, r, col, value)
            number_format = _number_format(table, name, row, value)
            if number_format:
                cell.number_format = number_format
            width = _display_width(
                value, table.currency(name, row) if isinstance(value, Decimal) else None
            )
            if width > MAX_WIDTH:
                cell.alignment = wrap
                lines = max(lines, -(-width // MAX_WIDTH))
            widths[col - 1] = max(widths[col - 1], width)
        if lines > 1:  # a wrapped cell's row grows (not every spreadsheet does it on opening)
            ws.row_dimensions[r].height = 15 * min(lines, 8)
    last = get_column_letter(len(table.columns))
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{last}{len(table.rows) + 1}"
    ws.print_title_rows = "1:1"
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = min(max(width + 2, 10), MAX_WIDTH + 2)
    _highlight_problems(ws, table, last)


# A row is a problem when its column holds one of the values (red, then amber); a rule with a
# leading "!" fills every row whose column is not that value.
def problem_rules(table: Table) -> list[tuple[str, tuple[str, ...], str]]:
    """The conditional fills of a sheet: (column, values, colour) each."""
    failed = tuple(o.value for o in TransferOutcome.judged(Verdict.FAILURE))
    waiting = tuple(
        o.value for o in (*TransferOutcome.judged(Verdict.WAITING), TransferOutcome.SKIPPED)
    )
    rules: dict[str, list[tuple[str, tuple[str, ...], str]]] = {
        "Transfers": [("outcome", failed, RED), ("outcome", waiting, AMBER)],
        "Account mapping": [("severity", ("blocks",), RED), ("severity", ("warning",), AMBER)],
        "Tax mapping": [("severity", ("blocks",), RED), ("severity", ("warning",), AMBER)],
        "Status differences": [("actor", ("person",), AMBER)],
        "Errors": [("kind", ("!none",), RED)],
        "Locations": [("status", (f"!{LocationStatus.OK.value}",), RED)],
        RUN_SHEET: [("value", (StepStatus.FAILED.value, LocationStatus.NOT_RUN.value), RED)],
    }
    return [rule for rule in rules.get(table.sheet, []) if rule[0] in table.columns]


def _highlight_problems(ws: Any, table: Table, last: str) -> None:
    from openpyxl.utils import get_column_letter

    if not table.rows:
        return
    area = f"A2:{last}{len(table.rows) + 1}"
    for column, values, colour in problem_rules(table):
        letter = get_column_letter(table.columns.index(column) + 1)
        tests = [
            f'${letter}2<>"{v[1:]}"' if v.startswith("!") else f'${letter}2="{v}"' for v in values
        ]
        formula = tests[0] if len(tests) == 1 else f"OR({','.join(tests)})"
        ws.conditional_formatting.add(area, fill_rule(formula, colour))


def fill_rule(formula: str, colour: str) -> Any:
    """A conditional fill: ``colour`` on each cell of the range where ``formula`` (written for the
    range's first cell) is true."""
    from openpyxl.formatting.rule import FormulaRule
    from openpyxl.styles import PatternFill

    fill = PatternFill(bgColor=colour, fill_type="solid")
    return FormulaRule(formula=[formula], fill=fill)  # type: ignore[no-untyped-call]  # untyped


def _print_setup(ws: Any, run_id: str) -> None:
    """A4 landscape, fit to the page width, header and footer on every page."""
    from openpyxl.worksheet.page import PageMargins

    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages down as it takes
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins = PageMargins(left=0.4, right=0.4, top=0.7, bottom=0.6, header=0.3, footer=0.3)
    ws.print_options.gridLines = ws.title != "Summary"
    ws.oddHeader.left.text = f"recon audit pack, run {run_id}" if run_id else "recon audit pack"
    ws.oddHeader.right.text = "&A"
    ws.oddFooter.center.text = "Page &P of &N"


# ---- the Summary sheet ---------------------------------------------------------------------------
# What each tie-out row is, as the sheet says it.
TIE_OUT_ROWS = {
    "in scope": "In scope: every invoice and credit note of the period",
    "transferred": "Transferred: in Xero now (created, or found there)",
    "held back": "Held back: a reason to fix, deferred, or not sent",
    "failed": "Failed: refused by Xero or recon, or no answer",
    "excluded": "Excluded: void, draft, or already in Xero",
}
CHECK_FORMULA = "Ties out (Excel formula): in scope = the four rows above"
CHECK_RECON = "Ties out (recon's own check)"


def _indented() -> Any:
    from openpyxl.styles import Alignment

    return Alignment(indent=1)


class _Sheet:
    """The Summary sheet being written: its currency columns and the next free row."""

    def __init__(self, ws: Any, currencies: list[str]) -> None:
        self.ws = ws
        self.currencies = currencies
        self.row = 1
        self.source_col = 2 + 2 * len(currencies)

    def count_col(self, currency: str) -> int:
        return 2 + 2 * self.currencies.index(currency)

    def amount_col(self, currency: str) -> int:
        return self.count_col(currency) + 1


def _currencies(data: SummaryData) -> list[str]:
    found = {t.currency for t in data.tie_outs} | {a.currency for a in data.activity}
    for by in (*data.blocked.values(), *data.ageing.values()):
        found |= set(by)
    return sorted(found) or [""]


def write_summary(ws: Any, data: SummaryData) -> None:
    """Lay out the Summary sheet: title, tie-out, activity, the two chart tables and charts."""
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    sheet = _Sheet(ws, _currencies(data))
    _put(ws, 1, 1, data.title).font = Font(bold=True, size=14)
    for i, line in enumerate(data.lines, start=2):
        _put(ws, i, 1, line).font = Font(italic=True)
    header = len(data.lines) + 3
    fill, bold = PatternFill("solid", fgColor=HEADER), Font(bold=True)
    for currency in sheet.currencies:
        c = sheet.count_col(currency)
        top = _put(ws, header, c, currency or "(no currency)")
        top.font, top.fill, top.alignment = bold, fill, Alignment(horizontal="center")
        ws.cell(row=header, column=c + 1).fill = fill
        ws.merge_cells(start_row=header, start_column=c, end_row=header, end_column=c + 1)
        for col, text in ((c, "Invoices"), (c + 1, "Amount")):
            cell = _put(ws, header + 1, col, text)
            cell.font, cell.fill, cell.alignment = bold, fill, Alignment(horizontal="right")
    for col, text in ((1, "Figures per currency"), (sheet.source_col, "From")):
        cell = _put(ws, header + 1, col, text)
        cell.font, cell.fill, cell.alignment = bold, fill, _indented()
        ws.cell(row=header, column=col).fill = fill
    sheet.row = header + 2
    ws.freeze_panes = f"A{sheet.row}"
    ws.print_title_rows = f"{header}:{header + 1}"
    _write_tie_outs(sheet, data)
    _write_activity(sheet, data)
    charts = _write_chart_tables(sheet, data)
    for note in data.notes:
        _put(ws, sheet.row, 1, f"Note: {note}").font = Font(italic=True)
        sheet.row += 1
    _add_charts(sheet, charts)
    ws.column_dimensions["A"].width = 58
    for currency in sheet.currencies:
        ws.column_dimensions[get_column_letter(sheet.count_col(currency))].width = 10
        ws.column_dimensions[get_column_letter(sheet.amount_col(currency))].width = 15
    ws.column_dimensions[get_column_letter(sheet.source_col)].width = 40


def _section(sheet: _Sheet, title: str) -> None:
    from openpyxl.styles import Font

    sheet.row += 1
    _put(sheet.ws, sheet.row, 1, title).font = Font(bold=True, size=12)
    sheet.row += 1


def _figure_row(sheet: _Sheet, label: str, figures: dict[str, Figure], source: str = "") -> int:
    row = sheet.row
    _put(sheet.ws, row, 1, label)
    for currency, figure in figures.items():
        _put(sheet.ws, row, sheet.count_col(currency), figure.count).number_format = COUNT_FORMAT
        amount = _put(sheet.ws, row, sheet.amount_col(currency), figure.amount)
        amount.number_format = MONEY_FORMAT
    if source:
        _put(sheet.ws, row, sheet.source_col, source).alignment = _indented()
    sheet.row += 1
    return row


def _write_tie_outs(sheet: _Sheet, data: SummaryData) -> None:
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    ws = sheet.ws
    locations: dict[str | None, list[TieOut]] = {}
    for t in data.tie_outs:
        locations.setdefault(t.location, []).append(t)
    _section(sheet, "Tie-out: where every invoice of the period went")
    if not locations:
        _put(ws, sheet.row, 1, "No invoices in scope (see the notes below).")
        sheet.row += 1
    for location, ties in locations.items():
        if location:
            _put(ws, sheet.row, 1, location).font = Font(bold=True)
            sheet.row += 1
        source = ties[0].source
        rows = {
            "in scope": _figure_row(
                sheet, TIE_OUT_ROWS["in scope"], {t.currency: t.in_scope for t in ties}, source
            )
        }
        for bucket in BUCKETS:
            rows[bucket] = _figure_row(
                sheet,
                TIE_OUT_ROWS[bucket],
                {t.currency: t.buckets.get(bucket, Figure()) for t in ties},
            )
        check, mine = sheet.row, sheet.row + 1
        _put(ws, check, 1, CHECK_FORMULA).font = Font(bold=True)
        _put(ws, mine, 1, CHECK_RECON).font = Font(bold=True)
        for t in ties:
            n, a = (
                get_column_letter(sheet.count_col(t.currency)),
                get_column_letter(sheet.amount_col(t.currency)),
            )
            counts = "+".join(f"{n}{rows[b]}" for b in BUCKETS)
            amounts = "+".join(f"{a}{rows[b]}" for b in BUCKETS)
            ws.cell(
                row=check, column=sheet.count_col(t.currency)
            ).value = (
                f"=AND({n}{rows['in scope']}={counts},ROUND({a}{rows['in scope']}-({amounts}),2)=0)"
            )
            ws.cell(row=mine, column=sheet.count_col(t.currency)).value = t.ties
            for row in (check, mine):
                ws.merge_cells(
                    start_row=row,
                    start_column=sheet.count_col(t.currency),
                    end_row=row,
                    end_column=sheet.amount_col(t.currency),
                )
                ws.cell(row=row, column=sheet.count_col(t.currency)).alignment = Alignment(
                    horizontal="center"
                )
        sheet.row += 2
        for bucket, colour in (("held back", AMBER), ("failed", RED)):
            r = rows[bucket]
            area = f"B{r}:{get_column_letter(sheet.source_col - 1)}{r}"
            ws.conditional_formatting.add(area, fill_rule(f"B{r}<>0", colour))
        area = f"B{check}:{get_column_letter(sheet.source_col - 1)}{mine}"
        for value, colour in (("TRUE", GREEN), ("FALSE", RED)):
            ws.conditional_formatting.add(
                area, fill_rule(f"AND(ISLOGICAL(B{check}),B{check}={value})", colour)
            )


def _write_activity(sheet: _Sheet, data: SummaryData) -> None:
    from openpyxl.styles import PatternFill

    _section(sheet, "After the transfer: status sync, payments, changes and credit in Xero")
    if not data.activity:
        _put(sheet.ws, sheet.row, 1, "Nothing: the status sync wrote no results in this run.")
        sheet.row += 1
        return
    lines: dict[tuple[str | None, str, str, str], dict[str, Figure]] = {}
    look: set[tuple[str | None, str, str, str]] = set()
    for a in data.activity:
        key = (a.location, a.what, a.outcome, a.source)
        lines.setdefault(key, {})[a.currency] = a.figure
        if a.needs_a_look:
            look.add(key)
    for key, figures in lines.items():
        location, what, outcome, source = key
        label = f"{location}: " if location else ""
        row = _figure_row(sheet, f"{label}{what}: {outcome}", figures, source)
        if key in look:  # recon's verdict, not a rule on the cells: a plain fill
            for col in range(1, sheet.source_col + 1):
                sheet.ws.cell(row=row, column=col).fill = PatternFill("solid", fgColor=AMBER)


def _write_chart_tables(sheet: _Sheet, data: SummaryData) -> list[tuple[str, int, int, str]]:
    """The figures behind each chart; returns (title, first row, last row, axis title) each."""
    charts = []
    _section(
        sheet,
        "Money blocked by mapping problem (an invoice with two problems counts under each)",
    )
    if data.blocked:
        first = sheet.row
        for problem, amounts in data.blocked.items():
            _amount_row(sheet, problem, amounts)
        charts.append(("Money blocked by mapping problem", first, sheet.row - 1, "blocked"))
    else:
        _put(sheet.ws, sheet.row, 1, "Nothing: no mapping problem blocks an invoice.")
        sheet.row += 1
    as_of = f" on {data.as_of.isoformat()}" if data.as_of else ""
    _section(sheet, f"Unpaid in Xero by days past due{as_of} (not yet due counts as 0)")
    if data.as_of is not None:
        first = sheet.row
        for bucket in AGEING:
            _amount_row(sheet, f"{bucket} days", data.ageing.get(bucket, {}))
        charts.append(
            (f"Unpaid in Xero by days past due{as_of}", first, sheet.row - 1, "amount due")
        )
    else:
        _put(sheet.ws, sheet.row, 1, "No ageing: see the notes below.")
        sheet.row += 1
    sheet.row += 1
    return charts


def _amount_row(sheet: _Sheet, label: str, amounts: dict[str, Decimal]) -> None:
    """A chart table's row: the label, then each currency's money (blank where it has none)."""
    _put(sheet.ws, sheet.row, 1, label)
    for currency, amount in amounts.items():
        if amount:
            cell = _put(sheet.ws, sheet.row, sheet.amount_col(currency), amount)
            cell.number_format = MONEY_FORMAT
    sheet.row += 1


def _add_charts(sheet: _Sheet, charts: list[tuple[str, int, int, str]]) -> None:
    from openpyxl.chart import BarChart, Reference, Series

    anchor = sheet.row + 1
    for title, first, last, axis in charts:
        chart = BarChart()
        chart.type = "bar" if axis == "blocked" else "col"
        chart.title = title
        chart.y_axis.title = f"money {axis}"
        chart.y_axis.numFmt = "#,##0"
        chart.x_axis.delete = False  # openpyxl 3.1 hides both axes unless told
        chart.y_axis.delete = False
        chart.height, chart.width = 8, 22
        if axis == "blocked":
            chart.x_axis.scaling.orientation = "maxMin"  # the most money on top
        for currency in sheet.currencies:
            column = sheet.amount_col(currency)
            if not any(sheet.ws.cell(row=r, column=column).value for r in range(first, last + 1)):
                continue  # a currency with nothing to show: no empty series
            values = Reference(
                sheet.ws, min_col=sheet.amount_col(currency), min_row=first, max_row=last
            )
            chart.append(Series(values, title=currency or "(no currency)"))
        chart.set_categories(Reference(sheet.ws, min_col=1, min_row=first, max_row=last))
        sheet.ws.add_chart(chart, f"A{anchor}")
        anchor += 17


# ---- CSV -----------------------------------------------------------------------------------------
def write_csv(table: Table, folder: Path) -> Path:
    """Write a table as ``folder/<its csv name>`` (money as exact text, moments as ISO text in UTC,
    formula-like text behind a ``'``); return the file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / table.csv_name
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([csv_text(c) for c in table.columns])
        writer.writerows([[csv_text(_csv_value(v)) for v in row] for row in table.rows])
    os.replace(tmp, path)
    return path


def _csv_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return value
