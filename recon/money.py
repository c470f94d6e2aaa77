"""Exact money: one constructor, rounding to the cent, no floats.

A leaf module: it imports nothing from recon, so every floor (the sandbox
included) may use it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final

__all__ = ["CENT", "ZERO", "D", "from_minor", "round_cents", "to_cents", "to_minor"]

ZERO: Final = Decimal("0")
CENT: Final = Decimal("0.01")


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
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def to_cents(value: object) -> Decimal:
    """Shorthand for ``round_cents(D(value))``."""
    return round_cents(D(value))


def to_minor(value: object) -> int:
    """Integer minor units (cents) of an amount, rounded half away from zero."""
    return int(to_cents(value) * 100)


def from_minor(minor: int) -> Decimal:
    """Decimal amount from integer minor units."""
    return (Decimal(minor) / 100).quantize(CENT)
