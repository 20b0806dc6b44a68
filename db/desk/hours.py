"""Opening hours: weekly intervals, public holidays and dated exceptions, in the location's own
time zone.

Hours are stored as local wall-clock times (9:00 stays 9:00 across a DST change; its UTC offset
moves). `Schedule` turns them into aware datetimes for given dates; it is pure, so slot search and
the open-now answer share one definition of "open". A day's hours are its exception if the
business set one for that date, else closed on a public holiday (db/desk/public_holidays.py),
else the weekly hours.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from db import errors
from db.desk.locations import LocationNotFound
from db.desk.public_holidays import holiday_names
from db.errors import Conflict, InvalidInput, NotFound, repository

Interval = tuple[datetime, datetime]

CONSTRAINTS = errors.constraints({
    "business_hours_location_id_fkey": (NotFound, "no location with this id"),
    "business_hours_day_of_week_check": (InvalidInput, "day of week is 1 (Monday) to 7 (Sunday)"),
    "business_hours_interval_check": (
        InvalidInput, "opening hours must close after they open, on the same day"),
    "business_hours_no_overlap": (Conflict, "opening intervals of one day may not overlap"),
    "business_hour_exceptions_location_id_fkey": (NotFound, "no location with this id"),
    "business_hour_exceptions_interval_check": (
        InvalidInput, "special hours must close after they open, on the same day"),
    "business_hour_exceptions_no_overlap": (
        Conflict, "this date already has an exception that overlaps (or a closed-day entry)"),
})


@dataclass(frozen=True)
class Schedule:
    """Hours of one location. `weekly` maps ISO weekday (1 = Monday) to local (opens, closes);
    `exceptions` maps a date to its special intervals, empty when closed all day; `holidays` maps
    a public holiday on which the location closes to its name. Exceptions and holidays are known
    only for the dates they were loaded for."""

    timezone: str
    weekly: Mapping[int, tuple[tuple[time, time], ...]]
    exceptions: Mapping[date, tuple[tuple[time, time], ...]]
    holidays: Mapping[date, str] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_hours(self, day: date) -> tuple[tuple[time, time], ...]:
        if day in self.exceptions:
            return self.exceptions[day]
        if day in self.holidays:
            return ()
        return self.weekly.get(day.isoweekday(), ())

    def holiday(self, day: date) -> str | None:
        """The public holiday the location is closed for on `day` ("Thanksgiving Day"), or None:
        not a holiday, or the business set its own hours for that date (its exception wins)."""
        if self.exceptions.get(day):
            return None
        return self.holidays.get(day)

    def intervals(self, day: date) -> list[Interval]:
        """The day's opening intervals, touching ones merged, as UTC datetimes: arithmetic and
        comparison of two datetimes that share a ZoneInfo use wall-clock time, wrong across DST."""
        merged: list[Interval] = []
        for opens, closes in sorted(self.local_hours(day)):
            start = datetime.combine(day, opens, tzinfo=self.tz).astimezone(UTC)
            end = datetime.combine(day, closes, tzinfo=self.tz).astimezone(UTC)
            if merged and merged[-1][1] >= start:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def interval_at(self, instant: datetime) -> Interval | None:
        """The opening interval containing `instant`, if the location is open then."""
        instant = instant.astimezone(UTC)
        for start, end in self.intervals(instant.astimezone(self.tz).date()):
            if start <= instant < end:
                return start, end
        return None

    def next_opening(self, after: datetime, *, horizon_days: int = 14) -> datetime | None:
        """The first opening strictly after `after`, looking `horizon_days` ahead."""
        after = after.astimezone(UTC)
        day = after.astimezone(self.tz).date()
        for offset in range(horizon_days + 1):
            for start, _ in self.intervals(day + timedelta(days=offset)):
                if start > after:
                    return start
        return None


@dataclass(frozen=True)
class OpenStatus:
    is_open: bool
    open_until: datetime | None
    next_opening: datetime | None
    timezone: str
    holiday: str | None = None  # the public holiday closing the location today, if any


REPLACE_WEEKLY_DELETE = "delete from business_hours where location_id = $1"
REPLACE_WEEKLY_INSERT = """
insert into business_hours (location_id, day_of_week, opens_at, closes_at)
select $1, d, o, c from unnest($2::smallint[], $3::time[], $4::time[]) as h(d, o, c)
"""


@repository
async def set_weekly_hours(
    conn: asyncpg.Connection, *, location_id: uuid.UUID, hours: Sequence[tuple[int, time, time]]
) -> None:
    """Replace a location's weekly hours with (ISO weekday, opens, closes) intervals."""
    days, opens, closes = (list(column) for column in zip(*hours, strict=True)) if hours else ([], [], [])
    async with conn.transaction():
        await conn.execute(REPLACE_WEEKLY_DELETE, location_id)
        await conn.execute(REPLACE_WEEKLY_INSERT, location_id, days, opens, closes)


INSERT_EXCEPTION = """
insert into business_hour_exceptions (location_id, on_date, opens_at, closes_at, reason)
values ($1, $2, $3, $4, $5)
"""


@repository
async def add_exception(
    conn: asyncpg.Connection,
    *,
    location_id: uuid.UUID,
    on_date: date,
    opens_at: time | None = None,
    closes_at: time | None = None,
    reason: str | None = None,
) -> None:
    """A dated exception: closed all day (no times) or special hours that replace the weekly ones."""
    if (opens_at is None) != (closes_at is None):
        raise InvalidInput("give both opening and closing times, or neither for a closed day")
    await conn.execute(INSERT_EXCEPTION, location_id, on_date, opens_at, closes_at, reason)


LOAD_SCHEDULE = """
select l.timezone, l.country, l.region, l.public_holidays,
       array(select array[h.day_of_week::text, h.opens_at::text, h.closes_at::text]
               from business_hours h where h.location_id = l.id) as weekly,
       array(select array[e.on_date::text, e.opens_at::text, e.closes_at::text]
               from business_hour_exceptions e
              where e.location_id = l.id and e.on_date between $2 and $3) as exceptions
  from locations l
 where l.id = $1
"""


@repository
async def load_schedule(
    conn: asyncpg.Connection, *, location_id: uuid.UUID, start: date, end: date
) -> Schedule:
    """A location's weekly hours, and its exceptions and public holidays between `start` and `end`
    (inclusive)."""
    record = await conn.fetchrow(LOAD_SCHEDULE, location_id, start, end)
    if record is None:
        raise LocationNotFound(f"no location with id {location_id}")
    weekly: dict[int, list[tuple[time, time]]] = {}
    for day, opens, closes in record["weekly"]:
        weekly.setdefault(int(day), []).append((time.fromisoformat(opens), time.fromisoformat(closes)))
    exceptions: dict[date, list[tuple[time, time]]] = {}
    for day, opens, closes in record["exceptions"]:
        hours = exceptions.setdefault(date.fromisoformat(day), [])
        if opens is not None:
            hours.append((time.fromisoformat(opens), time.fromisoformat(closes)))
    return Schedule(
        timezone=record["timezone"],
        weekly={d: tuple(sorted(v)) for d, v in weekly.items()},
        exceptions={d: tuple(sorted(v)) for d, v in exceptions.items()},
        holidays=holiday_names(country=record["country"], region=record["region"],
                               mode=record["public_holidays"], start=start, end=end),
    )


@repository
async def opening_status(
    conn: asyncpg.Connection, *, location_id: uuid.UUID, now: datetime | None = None,
    horizon_days: int = 14,
) -> OpenStatus:
    """Is the location open at `now` (default: the current time), until when, and when it next opens."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise InvalidInput("now must be timezone-aware")
    today = now.astimezone(ZoneInfo(await _timezone(conn, location_id))).date()
    schedule = await load_schedule(conn, location_id=location_id, start=today - timedelta(days=1),
                                   end=today + timedelta(days=horizon_days + 1))
    current = schedule.interval_at(now)
    return OpenStatus(
        is_open=current is not None,
        open_until=current[1] if current else None,
        next_opening=schedule.next_opening(current[1] if current else now, horizon_days=horizon_days),
        timezone=schedule.timezone,
        holiday=schedule.holiday(today),
    )


GET_TIMEZONE = "select timezone from locations where id = $1"


async def _timezone(conn: asyncpg.Connection, location_id: uuid.UUID) -> str:
    timezone = await conn.fetchval(GET_TIMEZONE, location_id)
    if timezone is None:
        raise LocationNotFound(f"no location with id {location_id}")
    return timezone
