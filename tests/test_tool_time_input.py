"""What the tools make of the times and dates the model passes: the location's local time, read
strictly. DST dates are those of next year, computed from the clock."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from livekit.agents import ToolError

from agent.tools._common import parse_date, parse_local_time
from tests.clock import NY, today

NEW_YORK = "America/New_York"
YEAR = today().year + 1


def nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))


SPRING_FORWARD = nth_sunday(YEAR, 3, 2)  # US: the second Sunday of March, 2:00 -> 3:00
FALL_BACK = nth_sunday(YEAR, 11, 1)  # US: the first Sunday of November, 2:00 -> 1:00


def test_a_local_time_is_read_in_the_locations_zone():
    parsed = parse_local_time(f"{SPRING_FORWARD + timedelta(days=1)}T10:30", NEW_YORK)
    assert parsed.tzinfo is not None and parsed.utcoffset() == timedelta(hours=-4)
    assert (parsed.hour, parsed.minute) == (10, 30)


@pytest.mark.parametrize("value", ["9999-12-31T10:00", "9999-12-31T23:59", "3000-01-01T09:00"])
def test_a_date_in_the_far_future_is_refused_without_overflowing(value):
    with pytest.raises(ToolError, match="too far ahead"):
        parse_local_time(value, NEW_YORK)


def test_a_day_in_the_far_future_is_refused_so_the_week_after_it_cannot_overflow():
    with pytest.raises(ToolError, match="too far ahead"):
        parse_date("9999-12-31")


def test_a_year_long_gone_is_refused():
    with pytest.raises(ToolError, match="in the past"):
        parse_local_time("0001-01-01T10:00", NEW_YORK)


@pytest.mark.parametrize("value", ["tomorrow at ten", "", "2026-13-45T10:00", "10:00", "x" * 5000])
def test_garbage_is_refused_with_the_format_to_use(value):
    with pytest.raises(ToolError, match="YYYY-MM-DDTHH:MM") as refused:
        parse_local_time(value, NEW_YORK)
    assert len(str(refused.value)) < 120  # a short answer, whatever was passed


def test_a_time_the_clocks_skip_is_refused_and_another_asked_for():
    with pytest.raises(ToolError, match="does not exist .* another time"):
        parse_local_time(f"{SPRING_FORWARD}T02:30", NEW_YORK)
    # The same wall time a day later exists.
    assert parse_local_time(f"{SPRING_FORWARD + timedelta(days=1)}T02:30", NEW_YORK).hour == 2


def test_an_ambiguous_time_is_the_earlier_of_the_two():
    parsed = parse_local_time(f"{FALL_BACK}T01:30", NEW_YORK)
    assert parsed.utcoffset() == timedelta(hours=-4)  # still daylight time: the first 01:30
    assert parsed.fold == 0


def test_the_later_of_two_ambiguous_times_is_had_with_its_own_offset():
    parsed = parse_local_time(f"{FALL_BACK}T01:30-05:00", NEW_YORK)
    assert parsed.utcoffset() == timedelta(hours=-5)
    assert parsed.timestamp() - parse_local_time(f"{FALL_BACK}T01:30", NEW_YORK).timestamp() == 3600


def test_the_locations_own_offset_is_accepted():
    day = SPRING_FORWARD + timedelta(days=7)
    parsed = parse_local_time(f"{day}T10:00-04:00", NEW_YORK)
    assert parsed == parse_local_time(f"{day}T10:00", NEW_YORK)
    assert parsed.tzinfo is not None and parsed.astimezone(NY).hour == 10


@pytest.mark.parametrize("offset", ["-08:00", "Z", "+00:00", "-05:00"])
def test_an_offset_other_than_the_locations_is_refused_not_converted(offset):
    # In summer New York is at -04:00: each of these names another instant than the caller's 10:00.
    day = SPRING_FORWARD + timedelta(days=7)
    with pytest.raises(ToolError, match="local time .*America/New_York"):
        parse_local_time(f"{day}T10:00{offset}", NEW_YORK)
