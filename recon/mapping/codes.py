"""The mapping check's lines and invoices as integer codes, and the exact sums over them.

Part of the mapping step (floor 3; imports the leaves only). A million lines carry a few dozen
distinct accounts and tax rates, so each line is reduced to integer codes: each distinct value
is converted once (text cleaned, percentage keyed, amount read to integer minor units) and
counts and money are numpy sums over the codes. No Python runs per line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api.types import infer_dtype

from recon.money import D, minor_or_zero

__all__ = [
    "ACCOUNT_KEY",
    "PAIR_CELLS_PER_PASS",
    "PLAIN_AMOUNT",
    "PLAIN_AMOUNT_TYPES",
    "TAX_KEY",
    "IntArray",
    "InvoiceCodes",
    "Lines",
    "clean_text",
    "distinct_pairs",
    "invoice_codes",
    "invoice_frame",
    "invoices_per_group",
    "line_keys",
    "sum_by",
]

# The key of an account and of a tax rate, as the lines carry them.
ACCOUNT_KEY = ["account_code", "account_name"]
TAX_KEY = ["tax_rate_name", "tax_rate"]


# ---- invoices and lines as integer codes ------------------------------------------------
IntArray = npt.NDArray[np.intp]
# Amounts whose text is a plain decimal number, read to minor units without a Decimal each.
PLAIN_AMOUNT_TYPES = (Decimal, str, int, float)
PLAIN_AMOUNT = r"^([+-]?)([0-9]{1,15})(?:\.([0-9]*))?$"


@dataclass(frozen=True)
class InvoiceCodes:
    """The invoices in scope as integer codes (one entry per row of the invoice frame)."""

    ids: npt.NDArray[np.int64]  # the distinct invoice ids, in the order of the rows
    id_of_row: IntArray  # each row's position in ``ids`` (an id may have several rows)
    currencies: list[str]  # the currencies, sorted
    currency: IntArray  # each row's position in ``currencies``; -1 when it has none
    minor: npt.NDArray[np.int64]  # each row's total in minor units

    def rows_of(self, positions: IntArray) -> tuple[IntArray, IntArray]:
        """The invoice rows of the ids at ``positions``: (which entry of ``positions``, row)."""
        if len(self.ids) == len(self.id_of_row):  # every id has one row
            row = np.empty(len(self.ids), dtype=np.intp)
            row[self.id_of_row] = np.arange(len(self.id_of_row), dtype=np.intp)
            return np.arange(len(positions), dtype=np.intp), row[positions]
        found = pd.DataFrame({"entry": np.arange(len(positions)), "id": positions}).merge(
            pd.DataFrame({"id": self.id_of_row, "row": np.arange(len(self.id_of_row))}), on="id"
        )
        return found["entry"].to_numpy(dtype=np.intp), found["row"].to_numpy(dtype=np.intp)


@dataclass(frozen=True)
class Lines:
    """The in-scope lines as integer codes; each distinct key's text is held once in ``keys``."""

    # One row per distinct (account_code, account_name, tax_rate_name, tax_rate), in the order
    # the lines first use them; text as the per-line columns were ("string" dtype).
    keys: pd.DataFrame
    key: IntArray  # per line: its row in ``keys``
    invoice: IntArray  # per line: its invoice's position in ``InvoiceCodes.ids``
    line_id: npt.NDArray[np.int64]
    position: pd.Series  # per line: Position as given (NA when the lines have none)

    def lines_per_key(self) -> npt.NDArray[np.int64]:
        """How many lines use each key."""
        return np.bincount(self.key, minlength=len(self.keys)).astype(np.int64)


def invoice_codes(invoices: pd.DataFrame) -> InvoiceCodes:
    """The invoices in scope (``invoice_frame``) as integer codes."""
    id_of_row, ids = pd.factorize(invoices["invoice_id"].to_numpy(dtype=np.int64))
    currency_of_row, found = pd.factorize(invoices["currency"].to_numpy(dtype=object))
    currencies = sorted(str(c) for c in found)
    to_sorted = np.array([currencies.index(str(c)) for c in found] + [-1], dtype=np.intp)
    return InvoiceCodes(
        ids=np.asarray(ids, dtype=np.int64),
        id_of_row=id_of_row.astype(np.intp),
        currencies=currencies,
        currency=to_sorted[currency_of_row],  # -1 (none) takes the appended -1
        minor=invoices["total_minor"].to_numpy(dtype=np.int64),
    )


def _first_positions(codes: IntArray, n_codes: int) -> IntArray:
    """The position of the first row holding each code."""
    seen = np.flatnonzero(~pd.Series(codes).duplicated().to_numpy())
    first = np.empty(n_codes, dtype=np.intp)
    first[codes[seen]] = seen
    return first


def _by_type_and_text(values: npt.NDArray[np.object_]) -> IntArray:
    """Codes that are equal exactly when two values have the same type and the same text."""
    n = len(values)
    text_codes = pd.factorize(np.fromiter(map(str, values), dtype=object, count=n))[0]
    type_codes, types = pd.factorize(np.fromiter(map(type, values), dtype=object, count=n))
    if len(types) < 2:
        return text_codes.astype(np.intp)
    combined = text_codes.astype(np.int64) * len(types) + type_codes
    return pd.factorize(combined)[0].astype(np.intp)


def _distinct(series: pd.Series, *, by_value: bool = False) -> tuple[IntArray, IntArray]:
    """A code per row and the first row of each code, for converting each distinct value once.

    Rows share a code only when their values have the same type and the same text (strings:
    when they are equal), so a conversion that depends on nothing else gives each row what it
    would give the row itself. Values that are equal but differ in type or text (20 and 20.0,
    Decimal 0 and -0, None and "None") are kept apart.

    ``by_value`` (the conversion gives equal Decimals the same result, but for the sign of a
    zero): a column of Decimals only is coded by value, without writing each as text.
    """
    values = series.to_numpy(dtype=object)
    kind = (
        "string" if isinstance(series.dtype, pd.StringDtype) else infer_dtype(values, skipna=False)
    )
    if kind == "decimal" and by_value:
        codes = _decimal_value_codes(values)
    elif kind == "decimal":  # no blanks and one type: the text says it all
        codes = pd.factorize(np.frompyfunc(str, 1, 1)(values))[0].astype(np.intp)
    elif kind == "string" or infer_dtype(values, skipna=True) == "string":
        codes, uniques = pd.factorize(values)
        codes = codes.astype(np.intp)
        missing = codes < 0
        if missing.any():
            codes[missing] = _by_type_and_text(values[missing]) + len(uniques)
    else:
        codes = _by_type_and_text(values)
    n_codes = int(codes.max()) + 1 if len(codes) else 0
    return codes, _first_positions(codes, n_codes)


def _decimal_value_codes(values: npt.NDArray[np.object_]) -> IntArray:
    """Codes of Decimals, equal exactly when the values are equal (20 and 20.0 share one), but
    zeros, whose sign a conversion may show ("-0.00"), and NaNs are told apart by their text."""
    codes, uniques = pd.factorize(values)
    codes = codes.astype(np.intp)
    apart = codes < 0  # NaN, which equals nothing
    zeros = [i for i, value in enumerate(uniques) if value.is_zero()]
    if zeros:
        apart |= np.isin(codes, zeros)
    if not apart.any():
        return codes
    codes[apart] = _by_type_and_text(values[apart]) + len(uniques)
    return pd.factorize(codes)[0].astype(np.intp)  # no code left unused


def _converted(
    series: pd.Series, convert: Callable[[pd.Series], pd.Series], *, by_value: bool = False
) -> tuple[IntArray, pd.Series]:
    """``convert`` (a Series -> Series of the old per-line rule) applied to each distinct value
    (``by_value``: see ``_distinct``).

    Returns a code per row and the distinct results (no two alike), so that row ``i``
    converts to ``results.iloc[codes[i]]``.
    """
    codes, first = _distinct(series, by_value=by_value)
    converted: pd.Series = convert(series.iloc[first]).reset_index(drop=True)
    result_codes, _ = pd.factorize(converted.to_numpy(dtype=object))
    seen = _first_positions(result_codes.astype(np.intp), int(result_codes.max(initial=-1)) + 1)
    return result_codes.astype(np.intp)[codes], converted.iloc[seen].reset_index(drop=True)


def _rate_keys(rates: pd.Series) -> pd.Series:
    """Each rate's key (``_rate_key``), as the "string" column the lines carry."""
    return rates.map(_rate_key).astype("string")


def _minor_units(amounts: pd.Series) -> npt.NDArray[np.int64]:
    """``minor_or_zero`` of every amount, computed once per distinct amount.

    A plain decimal number (sign, up to 15 whole digits, any places) is read from its text in
    integer arithmetic, rounded half away from zero; anything else (blank, NaN, exponent,
    padded text) goes through ``minor_or_zero`` itself.
    """
    codes, first = _distinct(amounts, by_value=True)  # whole cents: the value decides
    values = amounts.to_numpy(dtype=object)[first]
    text = pd.Series(np.fromiter(map(str, values), dtype=object, count=len(values)), dtype=object)
    kinds = np.fromiter(map(type, values), dtype=object, count=len(values))
    parts = text.str.extract(PLAIN_AMOUNT)
    plain = pd.Series(kinds).isin(PLAIN_AMOUNT_TYPES).to_numpy() & parts[1].notna().to_numpy()
    minor = np.zeros(len(values), dtype=np.int64)
    if plain.any():
        sign, whole, places = parts[0][plain], parts[1][plain], parts[2][plain].fillna("")
        cents = (places + "00").str[:2].astype("int64")
        half_up = (places.str[2:3] >= "5").astype("int64")
        size = whole.astype("int64") * 100 + cents + half_up
        minor[plain] = np.where(sign == "-", -size, size)
    minor[~plain] = [minor_or_zero(v) for v in values[~plain]]
    return minor[codes]


def invoice_frame(invoices: pd.DataFrame) -> pd.DataFrame:
    """The Nexudus invoices as recon reads them: id, number, currency, total and its minor units."""
    out = pd.DataFrame(
        {
            "invoice_id": invoices["Id"].astype("int64"),
            "invoice_number": invoices["InvoiceNumber"].astype("string"),
            "currency": invoices["CurrencyCode"].astype("string"),
            "total": invoices["TotalAmount"],
        }
    )
    # Money is summed as integer cents: exact, and fast enough for a million rows.
    out["total_minor"] = _minor_units(invoices["TotalAmount"])
    return out


def clean_text(series: pd.Series) -> pd.Series:
    """Text without surrounding spaces; blank for a missing value."""
    return series.astype("string").str.strip().fillna("")


def _rate_key(rate: object) -> str:
    """A line's tax percentage as text with 2 places (an exact key); "" when it is no number."""
    try:
        value = D(rate)
    except ValueError:
        return ""
    return f"{value:.2f}" if value.is_finite() else ""


def line_keys(lines: pd.DataFrame, invoices: InvoiceCodes) -> Lines:
    """The lines of the invoices in scope, each as its key's code and its invoice's position."""
    line_id = lines["Id"].astype("int64").to_numpy(dtype=np.int64)
    invoice_id = lines["CoworkerInvoiceId"].astype("int64").to_numpy(dtype=np.int64)
    columns = [
        _converted(lines["FinancialAccountCode"], clean_text),
        _converted(lines["FinancialAccountName"], clean_text),
        _converted(lines["TaxCategoryName"], clean_text),
        # Percentages as text with a fixed 2 places: exact keys for grouping and comparing.
        _converted(lines["TaxRate"], _rate_keys, by_value=True),
    ]
    invoice = pd.Index(invoices.ids).get_indexer(pd.Index(invoice_id))
    kept = np.flatnonzero(invoice >= 0)
    if len(kept) == len(invoice):  # every line is of an invoice in scope
        kept_codes = [codes for codes, _ in columns]
    else:
        kept_codes = [codes[kept] for codes, _ in columns]
    # The four codes as one number (renumbered first if the product would outgrow int64).
    combined, span = np.zeros(len(kept), dtype=np.int64), 1
    for codes, (_, values) in zip(kept_codes, columns, strict=True):
        if span * max(len(values), 1) >= 2**62:
            combined = pd.factorize(combined)[0].astype(np.int64)
            span = int(combined.max(initial=-1)) + 1
        combined = combined * max(len(values), 1) + codes
        span *= max(len(values), 1)
    key = pd.factorize(combined)[0].astype(np.intp)
    first = _first_positions(key, int(key.max(initial=-1)) + 1)
    keys = pd.DataFrame(
        {
            name: values.iloc[codes[first]].reset_index(drop=True)
            for name, codes, (_, values) in zip(
                [*ACCOUNT_KEY, *TAX_KEY], kept_codes, columns, strict=True
            )
        },
        index=pd.RangeIndex(len(first)),
    )
    if "Position" in lines.columns:
        position = lines["Position"].reset_index(drop=True)
        position = position if len(kept) == len(invoice) else position.iloc[kept]
        position = position.reset_index(drop=True)
    else:
        position = pd.Series(pd.NA, index=pd.RangeIndex(len(kept)), dtype=object)
    return Lines(
        keys=keys,
        key=key,
        invoice=invoice[kept].astype(np.intp),
        line_id=line_id[kept].astype(np.int64),
        position=position,
    )


PAIR_CELLS_PER_PASS = 1 << 26


def invoices_per_group(
    group: IntArray, invoice: IntArray, n_groups: int, n_invoices: int
) -> npt.NDArray[np.int64]:
    """How many distinct invoices the lines of each group are on (a table of booleans, a few
    groups at a time when it would be large)."""
    counts = np.zeros(n_groups, dtype=np.int64)
    step = max(1, PAIR_CELLS_PER_PASS // max(n_invoices, 1))
    for low in range(0, n_groups, step):
        high = min(low + step, n_groups)
        chosen = slice(None) if step >= n_groups else (group >= low) & (group < high)
        seen = np.zeros((high - low, n_invoices), dtype=bool)
        seen[group[chosen] - low, invoice[chosen]] = True
        counts[low:high] = seen.sum(axis=1)
    return counts


def distinct_pairs(
    group: IntArray, invoice: IntArray, n_invoices: int
) -> tuple[IntArray, IntArray]:
    """The distinct (group, invoice) pairs among the given lines."""
    width = max(n_invoices, 1)
    pairs = pd.unique(group.astype(np.int64) * width + invoice)
    return (pairs // width).astype(np.intp), (pairs % width).astype(np.intp)


def sum_by(index: IntArray, values: npt.NDArray[np.int64], size: int) -> npt.NDArray[np.int64]:
    """Exact integer sums of ``values`` by ``index`` (``np.bincount`` would sum in float)."""
    sums = np.zeros(size, dtype=np.int64)
    np.add.at(sums, index, values)
    return sums
