"""JSON for the sandbox: Decimal money out as JSON numbers, in as Decimal.

Python's ``json`` cannot write a Decimal as a bare number, so amounts go out
through ``float``: for the two- and four-place amounts both APIs use (well
under 15 significant digits) ``repr(float(d))`` prints exactly the digits of
``d``, which is what a client that parses numbers as Decimal reads back.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        # Normalise -0 and keep integral amounts as numbers like 12.0 -> 12.0
        return float(obj)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    """Serialise to compact JSON (non-ASCII kept as UTF-8)."""
    return json.dumps(obj, default=_default, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """Parse JSON with every non-integer number as Decimal."""
    return json.loads(text, parse_float=Decimal)
