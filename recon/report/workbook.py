"""Writing the report's tables: the openpyxl workbook and the CSV files.

Floor 2 (part of ``recon.report``): one sheet per table with a bold filled
header, frozen header row, a filter, readable column widths, money as numbers
in a currency format (the only place a ``Decimal`` becomes a float) and failed
rows highlighted (a failed step or location, a transfer whose outcome is a
failure); and each table as a CSV with money as exact decimal text. Text that a
spreadsheet could read as a formula stays text in both (``recon.report.cells``).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from recon.cells import csv_text, is_formula_like
from recon.money import round_cents
from recon.outcomes import TransferOutcome, Verdict
from recon.report.runs import LocationStatus, StepStatus
from recon.report.tables import Table

MONEY_FORMAT = "#,##0.00"
_ILLEGAL_IN_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _cell_value(value: Any) -> Any:
    """What goes into a cell. Money becomes a float here and nowhere else.

    Why this is safe: an amount rounded to the cent with at most 15 significant
    digits (any amount below 10 trillion) has one nearest double, Excel stores
    exactly that double and shows and re-reads 15 significant digits, so the
    cell reads back as the same cents (``Decimal(repr(cell)).quantize(CENT)``
    is the original). The exact decimal text is in the CSVs.
    """
    if isinstance(value, Decimal):
        return float(round_cents(value))
    if isinstance(value, str):
        # Control characters other than tab, LF and CR cannot be stored in a workbook (openpyxl
        # refuses the whole file); a broken customer name must not cost the report.
        return _ILLEGAL_IN_XLSX.sub("\ufffd", value)
    return value


def _put(ws: Any, row: int, column: int, value: Any) -> Any:
    """Write one cell; text a spreadsheet could read as a formula is stored as text (a string
    cell with Excel's quote prefix), never as a formula (``recon.report.cells``)."""
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


def _display(value: Any, currency: str | None) -> str:
    if isinstance(value, Decimal):
        return f"{value:,.2f} {currency or ''}"
    return "" if value is None else str(value)


def write_workbook(tables: Sequence[Table], path: Path) -> Path:
    """Write the tables as one workbook at ``path``, a sheet each, failed rows highlighted;
    return ``path``."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]
    header_fill = PatternFill("solid", fgColor="DDEBF7")
    failed_fill = PatternFill("solid", fgColor="F8D7DA")
    for table in tables:
        ws = wb.create_sheet(table.sheet)
        widths = [len(c) for c in table.columns]
        for col, name in enumerate(table.columns, start=1):
            cell = _put(ws, 1, col, name)
            cell.font, cell.fill = Font(bold=True), header_fill
        for r, row in enumerate(table.rows, start=2):
            is_failed = _marks_failure(table, row)
            for col, (name, value) in enumerate(zip(table.columns, row, strict=True), start=1):
                cell = _put(ws, r, col, value)
                currency = table.currency(name, row) if isinstance(value, Decimal) else None
                if isinstance(value, Decimal):
                    cell.number_format = _money_format(currency)
                if is_failed:
                    cell.fill = failed_fill
                widths[col - 1] = max(widths[col - 1], len(_display(value, currency)))
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = f"A1:{get_column_letter(len(table.columns))}{len(table.rows) + 1}"
        for col, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(col)].width = min(max(width + 2, 10), 60)
    tmp = path.with_suffix(".xlsx.tmp")
    wb.save(tmp)
    os.replace(tmp, path)
    return path


def _marks_failure(table: Table, row: list[Any]) -> bool:
    """A Summary row of a failed step or location, a Locations row of a location that failed or did
    not run, a Transfers row whose outcome is a failure (``recon.outcomes``)."""
    if table.sheet == "Summary":
        section, value = row[table.columns.index("section")], row[table.columns.index("value")]
        return section in ("step", "location") and value in (
            StepStatus.FAILED.value,
            LocationStatus.NOT_RUN.value,
        )
    if table.sheet == "Locations":
        return bool(row[table.columns.index("status")] != LocationStatus.OK.value)
    if table.sheet == "Transfers" and "outcome" in table.columns:
        outcome = TransferOutcome.of(row[table.columns.index("outcome")])
        return outcome is not None and outcome.verdict is Verdict.FAILURE
    return False


def write_csv(table: Table, folder: Path) -> Path:
    """Write a table as ``folder/<its csv name>`` (money as exact text, formula-like text behind a
    ``'``); return the file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / table.csv_name
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([csv_text(c) for c in table.columns])
        writer.writerows([[csv_text(v) for v in row] for row in table.rows])
    os.replace(tmp, path)
    return path
