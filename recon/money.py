"""Exact money: one constructor, rounding to the cent, no floats; Xero's arithmetic replayed.

A leaf module: it imports nothing from recon, so every floor above the sandbox
may use it (the sandbox keeps its own arithmetic: it is an independent twin).

Xero's arithmetic (xero-api.md §3.3, §10), replayed exactly in integers:

* ``Quantity`` is kept to 4 places, ``UnitAmount`` to 4 places when the write
  sends ``unitdp=4`` (recon always does), money to 2.
* ``LineAmount = round2(Quantity x UnitAmount) - DiscountAmount``.
* Tax is worked out per line and rounded to the cent, then summed: exclusive
  ``LineAmount x rate / 100``; inclusive ``LineAmount x rate / (100 + rate)``.
  A line's ``TaxAmount``, when sent, replaces the computed one.
* Exclusive: ``SubTotal = sum(LineAmount)``, ``Total = SubTotal + TotalTax``.
  Inclusive: ``Total = sum(LineAmount)``, ``SubTotal = Total - TotalTax``.
* Every rounding is half away from zero (``MIDPOINT``), the one rule stated here.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final

import numpy as np
import pandas as pd

__all__ = [
    "CENT",
    "MIDPOINT",
    "ZERO",
    "D",
    "ExactInts",
    "from_minor",
    "minor_or_zero",
    "round_cents",
    "scaled",
    "to_cents",
    "to_minor",
    "xero_invoice_totals",
    "xero_line_amounts",
    "xero_line_tax",
]

ZERO: Final = Decimal("0")
CENT: Final = Decimal("0.01")
# Xero (and recon, everywhere it rounds money) rounds a midpoint away from zero.
MIDPOINT: Final = ROUND_HALF_UP
# Python integers in a numpy object array: exact at any size (no 64-bit overflow at 10^14
# cents x 10^4), still one vectorised expression per step.
ExactInts = np.ndarray[Any, np.dtype[np.object_]]


def D(value: object) -> Decimal:
    """Return ``value`` as a Decimal; floats go through ``repr`` so 0.1 stays 0.1.

    ``None`` and the empty string become zero, because both APIs use them for
    "no amount". Anything that is not a number raises ``ValueError``.
    """
    if value is None or value == "":
        return ZERO
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, float):
        value = repr(value)
    try:
        return Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc


def round_cents(value: Decimal) -> Decimal:
    """Round half away from zero to two places, as Xero rounds tax and totals."""
    return value.quantize(CENT, rounding=MIDPOINT)


def to_cents(value: object) -> Decimal:
    """Shorthand for ``round_cents(D(value))``."""
    return round_cents(D(value))


def to_minor(value: object) -> int:
    """Integer minor units (cents) of an amount, rounded half away from zero."""
    return int(to_cents(value) * 100)


def minor_or_zero(value: object) -> int:
    """``to_minor``, but 0 for a blank, a non-number or a non-finite amount.

    For sums that must not stop on one bad figure; the invoice carrying it is held back
    with its own reason elsewhere (``recon.transfer.amounts``).
    """
    try:
        amount = D(value)
    except ValueError:
        return 0
    return int(round_cents(amount) * 100) if amount.is_finite() else 0


def from_minor(minor: int) -> Decimal:
    """Decimal amount from integer minor units."""
    return (Decimal(minor) / 100).quantize(CENT)


# ---- Xero's arithmetic, in exact integers ----------------------------------------------------
def scaled(values: Iterable[Decimal], places: int) -> ExactInts:
    """Decimals as integers in units of 10^-places, rounded half away from zero."""
    return np.array(
        [int(Decimal(v).scaleb(places).to_integral_value(MIDPOINT)) for v in values],
        dtype=object,
    )


def _div_round(numerator: ExactInts, denominator: ExactInts | int) -> ExactInts:
    """numerator / denominator rounded half away from zero (denominator > 0)."""
    twice = 2 * np.asarray(denominator, dtype=object)
    rounded: ExactInts = np.sign(numerator) * ((2 * np.abs(numerator) + twice // 2) // twice)
    return rounded


def xero_line_amounts(
    quantity4: ExactInts, unit4: ExactInts, discount_cents: ExactInts
) -> ExactInts:
    """Xero's LineAmount in cents from quantity and unit amount (both 4 places) and discount."""
    amounts: ExactInts = _div_round(quantity4 * unit4, 1_000_000) - discount_cents
    return amounts


def xero_line_tax(
    line_cents: ExactInts, rate4: ExactInts, inclusive: np.ndarray[Any, np.dtype[np.bool_]]
) -> ExactInts:
    """Xero's TaxAmount per line in cents; ``rate4``: the percentage in 4 places (20% = 200000)."""
    exclusive_tax = _div_round(line_cents * rate4, 1_000_000)
    inclusive_tax = _div_round(line_cents * rate4, 1_000_000 + rate4)
    taxed: ExactInts = np.where(inclusive, inclusive_tax, exclusive_tax).astype(object)
    return taxed


def xero_invoice_totals(
    invoice_ids: pd.Series,
    line_cents: ExactInts,
    tax_cents: ExactInts,
    inclusive: pd.Series,
) -> pd.DataFrame:
    """Xero's SubTotal, TotalTax and Total in cents per invoice.

    ``invoice_ids`` names each line's invoice; ``inclusive`` (indexed by invoice id)
    says whether its line amounts include tax. Invoices without lines total zero.
    """
    per_line = pd.DataFrame(
        {"invoice": invoice_ids.to_numpy(), "line": line_cents, "tax": tax_cents}
    )
    sums = per_line.groupby("invoice")[["line", "tax"]].sum()
    sums = sums.reindex(inclusive.index, fill_value=0)
    incl = inclusive.reindex(sums.index).fillna(False).to_numpy(dtype=bool)
    lines = sums["line"].to_numpy(dtype=object)
    tax = sums["tax"].to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "subtotal": np.where(incl, lines - tax, lines),
            "tax": tax,
            "total": np.where(incl, lines, lines + tax),
        },
        index=sums.index,
        dtype=object,
    )
