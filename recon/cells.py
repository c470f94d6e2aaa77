"""Text cells that cannot turn into formulas: the one rule every spreadsheet and CSV writer uses.

A leaf (imports nothing of recon), so every step's own CSV writer uses it as the
report does: a customer named
``=HYPERLINK("http://x","y")`` or ``=cmd|' /C calc'!A0`` must reach the reader's
spreadsheet as that text, never as a live formula (OWASP "CSV Injection"). Excel,
LibreOffice and Google Sheets start a formula at a cell beginning with ``=``, ``+``,
``-`` or ``@``, and a leading tab or carriage return hides such a start from a
reader's eye, so a text cell beginning with any of them is written:

- in a CSV, with a single quote in front (``'=HYPERLINK(...)``), which the
  spreadsheet shows as text; ``unescape`` takes it off again when recon reads
  its own CSV back;
- in a workbook, as a string cell (openpyxl writes any ``str`` starting with
  ``=`` as a formula unless the cell's ``data_type`` is ``'s'``) with Excel's
  quote prefix set, so even editing the cell keeps it text
  (``workbook.write_workbook``).

A number is never touched: money is ``Decimal`` in the report's tables and
stays a number, and a text cell that is nothing but a plain number
(``-12.50``) cannot be a formula, so it keeps its value for the reader.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

__all__ = ["FORMULA_STARTS", "csv_safe", "csv_text", "is_formula_like", "unescape"]

# What a spreadsheet reads as the start of a formula (OWASP CSV Injection), and the tab and carriage
# return that hide one.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# One or more quotes before a formula start: escaped once more, so ``unescape`` undoes exactly one.
_QUOTED_FORMULA = re.compile(r"'+[=+\-@\t\r]")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def is_formula_like(text: str) -> bool:
    """Whether a spreadsheet could read ``text`` as a formula (a plain number is not one)."""
    return text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text)


def csv_text(value: Any) -> str:
    """A cell as CSV text: blank for None, a number as it is, a formula-like text behind a ``'``.

    Text that already starts with quotes before a formula start gets one more
    quote, so that ``unescape(csv_text(x)) == x`` for every text.
    """
    if value is None:
        return ""
    text = str(value)
    if not isinstance(value, str):
        return text  # Decimal, int, date: recon's own values, never a formula
    if is_formula_like(text) or _QUOTED_FORMULA.match(text):
        return "'" + text
    return text


def unescape(text: str) -> str:
    """A CSV cell recon wrote, as the text it stands for (one quote off a ``'=...`` cell)."""
    return text[1:] if _QUOTED_FORMULA.match(text) else text


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells are ``csv_text``'d, for ``DataFrame.to_csv``: blanks,
    numbers and Decimals are left for ``to_csv`` to write as it does."""
    return frame.map(lambda v: csv_text(v) if isinstance(v, str) else v)
