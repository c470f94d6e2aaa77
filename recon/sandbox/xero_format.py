"""Xero's wire formats: MS-JSON dates, request date parsing, money places.

Xero answers dates as ``/Date(1539993600000+0000)/`` with ISO companions
(``DateString`` without zone, ``UpdatedDateUTCString`` with ``Z``) and takes
``YYYY-MM-DD``, ISO with offset or ``/Date(ms)/`` in requests
(shared/reference/xero-api.md §10). ``If-Modified-Since`` comes as ISO or
RFC 1123 (§2).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from email.utils import parsedate_to_datetime

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def ms_of_date(d: date) -> int:
    """Milliseconds since the epoch of midnight UTC on ``d``."""
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


def msdate(d: date) -> str:
    """A date-only field: midnight UTC with an explicit +0000 offset."""
    return f"/Date({ms_of_date(d)}+0000)/"


def msdatetime(ms: int, offset: bool = True) -> str:
    """A timestamp field; the envelope's ``DateTimeUTC`` has no offset."""
    return f"/Date({ms}+0000)/" if offset else f"/Date({ms})/"


def iso_date_string(d: date) -> str:
    """A date as a ``DateString``: ISO, midnight, no zone."""
    return f"{d.isoformat()}T00:00:00"


def iso_utc_string(ms: int) -> str:
    """Epoch milliseconds as an ``UpdatedDateUTCString``: ISO to the second, with ``Z``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_request_date(value: object) -> date:
    """A date as Xero accepts it in a request body; ``ValueError`` if not one."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"not a date: {value!r}")
    text = value.strip()
    m = _MS_DATE.match(text)
    if m:
        ms = int(m.group(1))
        tz = UTC
        if m.group(2):
            sign = 1 if m.group(2)[0] == "+" else -1
            tz = timezone(
                sign * timedelta(hours=int(m.group(2)[1:3]), minutes=int(m.group(2)[3:5]))
            )
        return datetime.fromtimestamp(ms / 1000, tz=tz).date()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        return date.fromisoformat(text[:10])


def parse_if_modified_since(value: str) -> int:
    """Milliseconds since the epoch from an ISO or RFC 1123 timestamp (UTC if no zone)."""
    text = value.strip()
    m = _MS_DATE.match(text)
    if m:
        return int(m.group(1))
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        dt = parsedate_to_datetime(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def money(value: Decimal, places: int = 2) -> Decimal:
    """Round half away from zero to ``places`` (Xero's rounding of amounts)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
