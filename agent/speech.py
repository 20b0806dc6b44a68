"""How the agent says a day or a time to a caller: "Tuesday November 24 at 10:30 AM", in the
location's time zone. Every sentence the agent builds with a date goes through here."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo


def spoken_day(day: date) -> str:
    """'Tuesday November 24'."""
    return f"{day:%A %B} {day.day}"


def spoken_clock(moment: time | datetime) -> str:
    """'10:30 AM', '9:05 PM'."""
    return f"{moment.hour % 12 or 12}:{moment:%M %p}"


def spoken_time(moment: datetime, timezone: str) -> str:
    """'Tuesday November 24 at 10:30 AM', `moment` as the clocks show it in `timezone`."""
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{spoken_day(local)} at {spoken_clock(local)}"
