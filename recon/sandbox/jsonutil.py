"""JSON for the sandbox: Decimal money out as JSON numbers, in as Decimal.

Python's ``json`` cannot write a Decimal as a bare number, so each one goes
out as a marked string that is then unquoted: ``Decimal("12.00")`` is written
``12.00``, digit for digit, as Xero writes its amounts.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

_MARK = "\u0000D"
_MARKED = re.compile(r'"\\u0000D(-?[0-9.]+(?:E[+-]?[0-9]+)?)"')


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise TypeError(f"not a JSON number: {obj}")
        return _MARK + format(obj, "f")
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    """Serialise to compact JSON (non-ASCII kept as UTF-8)."""
    return _MARKED.sub(
        r"\1", json.dumps(obj, default=_default, ensure_ascii=False, separators=(",", ":"))
    )


def loads(text: str | bytes) -> Any:
    """Parse JSON with every non-integer number as Decimal."""
    return json.loads(text, parse_float=Decimal)
