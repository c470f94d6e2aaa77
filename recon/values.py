"""Typed scalars out of pandas cells and API records (a leaf: imports nothing of recon).

pandas types a cell as the union of everything a cell may hold, so every step
that reads one value back (an invoice id, a number, a flag) would repeat the
same checks. These helpers say once what a missing value is (None, NaN, NaT,
pd.NA) and turn a cell into the plain Python type the caller needs, or raise
``ValueError`` naming the value when it is not one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd

__all__ = [
    "cell_int",
    "decimal_sum",
    "is_missing",
    "optional_int",
    "records",
]


def is_missing(value: object) -> bool:
    """True for None, NaN, NaT and pd.NA (a blank cell), False for anything else."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]  # any scalar may be asked
    except (TypeError, ValueError):
        return False  # a list or other container is a value, not a blank


def cell_int(value: object) -> int:
    """A cell holding a whole number (int, numpy int, integral float or digits) as ``int``."""
    if isinstance(value, bool) or is_missing(value):
        raise ValueError(f"expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value.strip())
    as_float = float(value)  # type: ignore[arg-type]  # numpy and Decimal scalars convert
    if not as_float.is_integer():
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(as_float)


def optional_int(value: object) -> int | None:
    """``cell_int`` of a cell that may be blank."""
    return None if is_missing(value) else cell_int(value)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as dicts keyed by column name (column names are strings in recon)."""
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def decimal_sum(values: pd.Series) -> Decimal:
    """Exact sum of a column of Decimals (blank cells skipped; an empty column sums to 0)."""
    return sum((Decimal(v) for v in values if not is_missing(v)), Decimal("0"))
