"""A Nexudus location's time zone, and its calendar dates.

Nexudus names a location's zone the Windows way ("GMT Standard Time",
``sys/simpletimezones``, nexudus.md §6) and stores date-like fields
(InvoiceFromDate, DueDate, SaleDate …) as the UTC instant of the location's
local midnight. recon turns them into the location's calendar dates, and turns
a period's local days into the UTC instants it queries with.

Windows names map to IANA names through CLDR's table as shipped by Babel; the
zone rules come from ``zoneinfo`` with the ``tzdata`` package, so the same
answer comes out on any machine.

Floor 1: imports ``recon.errors`` only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.core import get_global

from recon.errors import ParamsError

__all__ = ["day_bounds_utc", "iana_zone", "local_date"]


def iana_zone(name: str) -> ZoneInfo:
    """The zone for a Windows zone name ("GMT Standard Time") or an IANA one ("Europe/London")."""
    mapping = get_global("windows_zone_mapping")
    iana = str(mapping.get(name, name))
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ParamsError(
            f"unknown time zone {name!r}: neither a Windows zone name CLDR knows nor an IANA name",
            key="time_zone",
        ) from exc


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    """The calendar date ``instant`` falls on in ``zone`` (a naive instant is taken as UTC)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(zone).date()


def day_bounds_utc(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants of ``first`` 00:00:00 and ``last`` 23:59:59 local time (nexudus.md §6, §13)."""
    start = datetime.combine(first, time(0, 0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0, 0), tzinfo=zone).astimezone(UTC)
    return start, end - timedelta(seconds=1)
