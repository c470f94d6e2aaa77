"""Exact money for the sandbox: Decimal parsing and rounding to the cent.

The sandbox is an independent twin of the real services, so it keeps its own
small helpers rather than recon's: amounts are ``Decimal`` end to end, and
rounding to the cent is half away from zero, the rule Xero documents for line
tax and totals (``shared/reference/xero-api.md``) and the one the demo data is
computed with. ``ROUND_HALF_UP`` is Python's name for half away from zero
(``Decimal("-0.005")`` rounds to ``-0.01``).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final

__all__ = ["CENT", "ZERO", "D", "money_text", "round_cents"]

ZERO: Final = Decimal("0")
CENT: Final = Decimal("0.01")


def D(value: object) -> Decimal:
    """``value`` as a Decimal; floats go through ``repr`` so 0.1 stays 0.1.

    ``None`` and the empty string are zero (both APIs write them for "no
    amount"); booleans and anything that is not a number raise ``ValueError``.
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
        result = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return result


def round_cents(value: Decimal) -> Decimal:
    """Round half away from zero to two places."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money_text(amount: Decimal) -> str:
    """An amount with its cents, for messages (JSON storage turns 140.00 into 140.0)."""
    return str(amount.quantize(CENT)) if amount == amount.quantize(CENT) else str(amount)
