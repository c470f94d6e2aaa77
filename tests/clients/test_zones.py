"""A location's zone and calendar dates, checked against nexudus.md §6.

§6: "Location zone: Business.SimpleTimeZoneId → `sys/simpletimezones/{id}` (Windows-style
Name such as "GMT Standard Time" ...). Mapping Windows names to IANA is recon's job";
"Date-like fields ... hold the UTC instant of the location's local midnight"; "Period
queries: send explicit UTC instants for the location's local day bounds (`from` = local
00:00, `to` = local 23:59:59)".
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from recon.clients.zones import day_bounds_utc, iana_zone, local_date
from recon.errors import ParamsError

LONDON = ZoneInfo("Europe/London")
SINGAPORE = ZoneInfo("Asia/Singapore")
NEW_YORK = ZoneInfo("America/New_York")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("windows", "iana"),
    [
        ("GMT Standard Time", "Europe/London"),
        ("Singapore Standard Time", "Asia/Singapore"),
        ("Eastern Standard Time", "America/New_York"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("AUS Eastern Standard Time", "Australia/Sydney"),
    ],
)
def test_windows_zone_names_map_to_iana_zones(windows: str, iana: str) -> None:
    assert iana_zone(windows) == ZoneInfo(iana)


def test_an_iana_name_is_taken_as_it_is() -> None:
    assert iana_zone("Europe/Dublin") == ZoneInfo("Europe/Dublin")


def test_an_unknown_zone_name_is_a_params_error_naming_it() -> None:
    with pytest.raises(ParamsError, match="Mars Standard Time") as caught:
        iana_zone("Mars Standard Time")
    assert caught.value.key == "time_zone"


@pytest.mark.parametrize(
    ("stored", "zone", "day"),
    [
        ("2026-03-31T23:00:00", LONDON, date(2026, 4, 1)),  # BST: a day early in UTC
        ("2024-11-19T00:00:00", LONDON, date(2024, 11, 19)),  # GMT
        ("2026-03-31T16:00:00", SINGAPORE, date(2026, 4, 1)),
        ("2026-04-01T04:00:00", NEW_YORK, date(2026, 4, 1)),
        ("2026-04-01T03:59:59", NEW_YORK, date(2026, 3, 31)),
    ],
)
def test_a_stored_local_midnight_reads_as_the_location_calendar_date(
    stored: str, zone: ZoneInfo, day: date
) -> None:
    """§6: "a London period from 1 April 2025 reads `2025-03-31T23:00:00Z`, a November (GMT)
    one `2024-11-19T00:00:00Z`"."""
    assert local_date(utc(stored), zone) == day


def test_a_naive_instant_is_taken_as_utc() -> None:
    assert local_date(datetime(2026, 3, 31, 23, 0), LONDON) == date(2026, 4, 1)


@pytest.mark.parametrize(
    ("first", "last", "zone", "start", "end"),
    [
        (date(2026, 4, 1), date(2026, 4, 30), LONDON, "2026-03-31T23:00", "2026-04-30T22:59:59"),
        (date(2026, 4, 1), date(2026, 4, 30), SINGAPORE, "2026-03-31T16:00", "2026-04-30T15:59:59"),
        (date(2026, 4, 1), date(2026, 4, 30), NEW_YORK, "2026-04-01T04:00", "2026-05-01T03:59:59"),
        # 29 March 2026 in London has 23 hours; 1 November 2026 in New York has 25.
        (date(2026, 3, 29), date(2026, 3, 29), LONDON, "2026-03-29T00:00", "2026-03-29T22:59:59"),
        (date(2026, 11, 1), date(2026, 11, 1), NEW_YORK, "2026-11-01T04:00", "2026-11-02T04:59:59"),
    ],
)
def test_local_day_bounds_are_sent_as_utc_instants(
    first: date, last: date, zone: ZoneInfo, start: str, end: str
) -> None:
    """§6 "Period queries": `from` = local 00:00, `to` = local 23:59:59, in UTC."""
    assert day_bounds_utc(first, last, zone) == (utc(start), utc(end))
