"""The tests' dates, all computed from the clock (the real one, or libfaketime's: see README), so
that no date written in a test can move from the future into the past and fail the suite.

Code under test that takes `now` gets a time from here; code that reads the clock itself (the
agent's tools) is given dates counted from today. Public holidays are the demo locations' own
(db.demo.seed.demo_holidays: the `holidays` package), never a list kept here.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from db.demo.seed import demo_holidays
from db.desk.public_holidays import holiday_names

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")


def today(tz: ZoneInfo = NY) -> date:
    return datetime.now(tz).date()


def _quiet_monday(start: date) -> date:
    """The first Monday at least a week after `start` whose week, from the Saturday before to the
    Sunday after, has no public holiday at either demo location: both keep their weekly hours."""
    day = start + timedelta(days=7)
    day += timedelta(days=-day.weekday() % 7)
    closed = demo_holidays(day - timedelta(days=2), day + timedelta(days=365))
    while any(day + timedelta(days=offset) in closed for offset in range(-2, 7)):
        day += timedelta(days=7)
    return day


# The tests' Monday: a week ahead of today, in a week without holidays.
MONDAY = _quiet_monday(today())


def monday(hour: int, minute: int = 0, *, days: int = 0, tz: ZoneInfo = NY) -> datetime:
    """Local time on the test Monday (plus `days`), New York by default."""
    # Adding a timedelta to an aware datetime keeps its wall-clock time: 9:00 stays 9:00 local.
    return datetime.combine(MONDAY, time(hour, minute), tzinfo=tz) + timedelta(days=days)


def on(day: date, hour: int, minute: int = 0, *, tz: ZoneInfo = NY) -> datetime:
    """Local time on `day`, New York by default."""
    return datetime.combine(day, time(hour, minute), tzinfo=tz)


def at(tz: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A local time on a fixed date: only for code given `now` explicitly (DST changes)."""
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def next_open_weekday(after: date | None = None) -> date:
    """A Monday-Thursday at least two days after `after` (default: today in New York) that is no
    public holiday at the demo locations: Midtown is open 9-12:30 and 13:30-17:30 then."""
    day = (after or today()) + timedelta(days=2)
    closed = demo_holidays(day, day + timedelta(days=60))
    while day.isoweekday() > 4 or day in closed:
        day += timedelta(days=1)
    return day


def next_holiday(region: str, after: date, *, weekdays: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7),
                 scope: str = "regional") -> tuple[date, str]:
    """The first US public holiday of `region` (its state's and the nation's; `scope="national"`:
    the nation's only) after `after`, on one of `weekdays` (ISO), followed by a day that is no
    holiday: (the date, its name)."""
    names = holiday_names(country="US", region=region, mode=scope, start=after + timedelta(days=1),
                          end=after + timedelta(days=400))
    return next((day, name) for day, name in names.items()
                if day.isoweekday() in weekdays and day + timedelta(days=1) not in names)


def local(day: date, hhmm: str) -> str:
    """The local time the agent's tools read: '2026-11-24T10:30'."""
    return f"{day.isoformat()}T{hhmm}"
