"""Public holidays: the days a location closes because its country or region does.

The dates come from the `holidays` package (maintained rules for about 200 countries and their
subdivisions, observed days included), so nobody keeps a list of dates that runs out. Which
calendar applies is a location setting (`locations.public_holidays`, sql/0006) read against the
location's address: 'none', 'national' (its country) or 'regional' (its country and its region).
"""

from __future__ import annotations

import functools
import uuid
from datetime import date

import asyncpg
import holidays

from db import errors
from db.desk.locations import LocationNotFound
from db.errors import DomainError, InvalidInput, repository

MODES = ("none", "national", "regional")

CONSTRAINTS = errors.constraints({
    "locations_public_holidays_check": (
        InvalidInput, "public holidays are 'none', 'national' or 'regional'"),
    "locations_public_holidays_region_check": (
        InvalidInput, "regional public holidays need the address's region (a state or province)"),
})


class InvalidHolidaySetting(DomainError):
    """Not a public-holiday setting, or one the holidays package has no calendar for."""


class UnknownHolidayCalendar(InvalidHolidaySetting):
    """The holidays package has no calendar for that country or region."""


def holiday_names(
    *, country: str, region: str | None, mode: str, start: date, end: date
) -> dict[date, str]:
    """The public holidays from `start` to `end` (inclusive) of a location with this address and
    setting, each day with one name to say ("Presidents' Day and Susan B. Anthony Day")."""
    _check_mode(mode)
    if mode == "none" or end < start:
        return {}
    subdivision = region if mode == "regional" else None
    return {day: name for year in range(start.year, end.year + 1)
            for day, name in _year(country, subdivision, year) if start <= day <= end}


def load_calendars() -> None:
    """Import the holidays package's calendars now. Its first lookup in a process imports every
    country's module (0.5-1 s of blocking work), which must happen at a worker's warm-up, not in
    a caller's first availability check."""
    holidays.country_holidays("US")


@functools.lru_cache(maxsize=256)
def _year(country: str, subdivision: str | None, year: int) -> tuple[tuple[date, str], ...]:
    """One year's holidays, computed once per process: slot search asks on every call."""
    calendar = _calendar(country, subdivision, years=range(year, year + 1))
    return tuple((day, " and ".join(calendar.get_list(day))) for day in sorted(calendar))


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise InvalidHolidaySetting(f"public holidays are {', '.join(MODES)}, not {mode!r}")


def _calendar(country: str, subdivision: str | None, *, years: range) -> holidays.HolidayBase:
    try:
        return holidays.country_holidays(country, subdiv=subdivision, years=years)
    except NotImplementedError as exc:
        where = f"{country}-{subdivision}" if subdivision else country
        raise UnknownHolidayCalendar(f"no public holiday calendar is known for {where}") from exc


GET_ADDRESS = "select country, region from locations where id = $1"
SET_MODE = "update locations set public_holidays = $2 where id = $1"


@repository
async def set_public_holidays(conn: asyncpg.Connection, *, location_id: uuid.UUID, mode: str) -> None:
    """Whether the location closes on public holidays: 'none', 'national' (its country's) or
    'regional' (its country's and its region's). Refused when the package knows no such calendar."""
    _check_mode(mode)
    record = await conn.fetchrow(GET_ADDRESS, location_id)
    if record is None:
        raise LocationNotFound(f"no location with id {location_id}")
    if mode != "none":  # a region missing for 'regional' is the check constraint's to refuse
        _calendar(record["country"], record["region"] if mode == "regional" else None, years=range(0))
    await conn.execute(SET_MODE, location_id, mode)
