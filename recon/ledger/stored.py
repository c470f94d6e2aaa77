"""How the ledger writes times and amounts as text, and reads amounts back into frames."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd


def utc_now() -> str:
    """Now in UTC as ISO text to the millisecond: how the ledger stores every time."""
    return datetime.now(tz=UTC).isoformat(timespec="milliseconds")


def _places(units: int) -> int:
    """The decimal places of a whole unit (``units`` = 10, 100, 10_000...)."""
    places = len(str(units)) - 1
    if units < 1 or 10**places != units:
        raise ValueError(f"units must be a power of ten, not {units}")
    return places


def with_money(
    frame: pd.DataFrame, money: tuple[str, ...], parse: Any, units: int | None
) -> pd.DataFrame:
    """``frame`` with each ``money`` column's text as ``parse`` gives it (Decimal, or None), and
    with ``units`` (a power of ten) ``<money>_units`` (int64, blanks 0) and ``<money>_known``
    beside it; each distinct text of all the columns is read once (a million amounts hold far
    fewer distinct ones, and an invoice's columns mostly hold the same few).

    Raises ``ValueError`` for an amount with more decimals than ``units`` keeps, which no
    whole-unit comparison could treat exactly."""
    rows = len(frame)
    texts = [frame[column].to_numpy(dtype=object) for column in money]
    stacked = np.concatenate(texts) if texts else np.empty(0, dtype=object)
    codes, distinct = pd.factorize(stacked, use_na_sentinel=True)
    own = {column: codes[i * rows : (i + 1) * rows] for i, column in enumerate(money)}
    return frame.assign(**money_from_codes(own, list(distinct), parse, units, frame.index))


def money_from_codes(
    codes: dict[str, np.ndarray],
    distinct: list[Any],
    parse: Any,
    units: int | None,
    index: pd.Index,
) -> dict[str, Any]:
    """Money columns from ``codes`` (per column, -1 for a blank) into ``distinct`` texts: each
    as ``parse`` gives it (Decimal, or None), parsed once per distinct text, and with ``units``
    (a power of ten) ``<money>_units`` (int64, blanks 0) and ``<money>_known``; columns to
    assign to a frame of ``index``. ``ValueError`` as ``with_money``."""
    places = None if units is None else _places(units)
    amounts = [*(parse(v) for v in distinct), parse(None)]  # code -1 (a blank): the last
    parsed = np.empty(len(amounts), dtype=object)
    parsed[:] = amounts
    whole = np.zeros(len(amounts), dtype=np.int64)
    known = np.zeros(len(amounts), dtype=bool)
    inexact: set[int] = set()
    for position, amount in enumerate(amounts if places is not None else ()):
        if amount is None:
            continue
        scaled = amount.scaleb(places)
        if scaled != scaled.to_integral_value():
            inexact.add(position)
            continue
        whole[position], known[position] = int(scaled), True
    extra: dict[str, Any] = {}
    for column, own in codes.items():
        if inexact and inexact.intersection(own.tolist()):
            raise ValueError(f"an amount has more than {places} decimal places in {column!r}")
        extra[column] = pd.Series(parsed[own], index=index, dtype=object)
        if places is not None:
            extra[f"{column}_units"] = whole[own]
            extra[f"{column}_known"] = known[own]
    return extra


def decimal_or_none(value: object) -> Decimal | None:
    """A stored amount's text as Decimal; None when blank."""
    return Decimal(str(value)) if value not in (None, "") else None


def stored_amount(value: object) -> Decimal | None:
    """An amount column's text as Decimal; None when blank or not a number (a row written by an
    older recon from a malformed invoice must not make the whole table unreadable)."""
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


# ---- one writer at a time: a lock per ledger file and Xero organisation -------------------------
