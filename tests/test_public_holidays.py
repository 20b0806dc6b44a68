"""Public holidays without a database: the pure Schedule closes on them unless the business set
its own hours for the date, and holiday_names reads the `holidays` package by address and setting."""

from __future__ import annotations

from datetime import UTC, date, time, timedelta

import holidays
import pytest

from agent.tools.knowledge import week_lines
from db.desk.hours import Schedule
from db.desk.public_holidays import InvalidHolidaySetting, UnknownHolidayCalendar, holiday_names
from db.desk.slots import OutsideHours, check_hours
from tests.clock import MONDAY, on, today

NINE_TO_FIVE = ((time(9), time(17)),)
WEDNESDAY = MONDAY + timedelta(days=2)


def schedule(exceptions=None, holidays=None) -> Schedule:
    """Open 9-17 every day in New York, with Wednesday of the test week a public holiday."""
    return Schedule(timezone="America/New_York", weekly={d: NINE_TO_FIVE for d in range(1, 8)},
                    exceptions=exceptions or {},
                    holidays={WEDNESDAY: "Founders' Day"} if holidays is None else holidays)


def test_a_public_holiday_closes_the_day_and_says_which_holiday():
    hours = schedule()
    assert hours.intervals(WEDNESDAY) == [] and hours.interval_at(on(WEDNESDAY, 10)) is None
    assert hours.holiday(WEDNESDAY) == "Founders' Day" and hours.holiday(MONDAY) is None
    assert hours.next_opening(on(WEDNESDAY, 10)) == on(WEDNESDAY + timedelta(days=1), 9).astimezone(UTC)
    assert hours.intervals(MONDAY) == [(on(MONDAY, 9).astimezone(UTC), on(MONDAY, 17).astimezone(UTC))]
    assert schedule(holidays={}).intervals(WEDNESDAY) != []


def test_the_business_s_own_hours_on_a_holiday_win_and_its_closure_keeps_the_name():
    opens = schedule(exceptions={WEDNESDAY: ((time(10), time(14)),)})
    assert opens.interval_at(on(WEDNESDAY, 11)) == (on(WEDNESDAY, 10).astimezone(UTC),
                                                    on(WEDNESDAY, 14).astimezone(UTC))
    assert opens.holiday(WEDNESDAY) is None
    closed = schedule(exceptions={WEDNESDAY: ()})
    assert closed.intervals(WEDNESDAY) == [] and closed.holiday(WEDNESDAY) == "Founders' Day"


def test_a_booking_on_a_holiday_is_refused_with_its_name_and_the_day():
    with pytest.raises(OutsideHours, match=f"closed on {WEDNESDAY.strftime('%A %B %-d')} for Founders' Day"):
        check_hours(schedule(), on(WEDNESDAY, 10), on(WEDNESDAY, 11))
    with pytest.raises(OutsideHours, match="not open for the whole"):
        check_hours(schedule(), on(MONDAY, 16, 30), on(MONDAY, 17, 30))
    check_hours(schedule(), on(MONDAY, 16), on(MONDAY, 17))


def test_the_week_the_receptionist_reads_names_the_holiday():
    lines = week_lines(schedule(), MONDAY)
    assert lines[0] == f"{MONDAY.strftime('%A %B %-d')}: 9:00 AM to 5:00 PM"
    assert lines[2] == f"{WEDNESDAY.strftime('%A %B %-d')}: closed: Founders' Day"
    assert len(lines) == 7


def test_holiday_names_by_setting_country_and_region():
    year = today().year + 1
    start, end = date(year, 1, 1), date(year, 12, 31)

    def names(mode: str, region: str | None = "NY", country: str = "US") -> dict[date, str]:
        return holiday_names(country=country, region=region, mode=mode, start=start, end=end)

    assert names("none") == {}
    national, new_york, california = names("national"), names("regional"), names("regional", "CA")
    thanksgiving = next(d for d in (date(year, 11, 22) + timedelta(days=i) for i in range(7))
                        if d.isoweekday() == 4)  # the fourth Thursday of November
    assert national[thanksgiving] == new_york[thanksgiving] == "Thanksgiving Day"
    assert set(national) < set(new_york)  # (California drops Columbus Day: not a superset)
    assert "Lincoln's Birthday" in new_york.values() and "Cesar Chavez Day" in california.values()
    assert "Lincoln's Birthday" not in national.values()
    # Two holidays on one day (Susan B. Anthony Day on Washington's Birthday) are one name to say.
    package = holidays.country_holidays("US", subdiv="NY", years=range(year, year + 15))
    double = next(d for d in sorted(package) if len(package.get_list(d)) > 1)
    assert holiday_names(country="US", region="NY", mode="regional", start=double, end=double) == {
        double: " and ".join(package.get_list(double))}
    assert holiday_names(country="US", region=None, mode="national", start=end, end=start) == {}


def test_unknown_settings_and_calendars_are_refused():
    with pytest.raises(InvalidHolidaySetting, match="none, national, regional"):
        holiday_names(country="US", region="NY", mode="yes", start=MONDAY, end=MONDAY)
    with pytest.raises(UnknownHolidayCalendar, match="US-XX"):
        holiday_names(country="US", region="XX", mode="regional", start=MONDAY, end=MONDAY)
    with pytest.raises(UnknownHolidayCalendar, match="ZZ"):
        holiday_names(country="ZZ", region=None, mode="national", start=MONDAY, end=MONDAY)
