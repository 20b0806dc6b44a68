"""How the agent says days and times to a caller (agent/speech.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from agent.speech import spoken_clock, spoken_day, spoken_time


def test_a_day_is_said_without_a_leading_zero():
    assert spoken_day(date(2031, 3, 4)) == "Tuesday March 4"


def test_clock_times_are_twelve_hour_with_midnight_and_noon_as_twelve():
    assert [spoken_clock(time(h, m)) for h, m in ((0, 5), (9, 0), (12, 30), (17, 45))] == [
        "12:05 AM", "9:00 AM", "12:30 PM", "5:45 PM"]


def test_a_moment_is_said_as_the_location_clocks_show_it():
    # 02:30 UTC on a Wednesday is still Tuesday evening in New York (EST, UTC-5) ...
    assert spoken_time(datetime(2031, 3, 5, 2, 30, tzinfo=UTC), "America/New_York") == \
        "Tuesday March 4 at 9:30 PM"
    # ... and after the switch to summer time the same UTC hour is an hour later there.
    assert spoken_time(datetime(2031, 3, 12, 2, 30, tzinfo=UTC), "America/New_York") == \
        "Tuesday March 11 at 10:30 PM"
