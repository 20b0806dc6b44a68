"""A location's weekly hours and dated exceptions as rows to show and edit (the admin API);
db/desk/hours.py turns the same rows into a Schedule for the agent."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, time

import asyncpg

from db.errors import repository


@dataclass(frozen=True)
class WeeklyHours:
    day_of_week: int
    opens_at: time
    closes_at: time


@dataclass(frozen=True)
class HoursException:
    id: uuid.UUID
    on_date: date
    opens_at: time | None
    closes_at: time | None
    reason: str | None


WEEKLY = """
select day_of_week, opens_at, closes_at from business_hours where location_id = $1
 order by day_of_week, opens_at
"""
EXCEPTIONS = """
select id, on_date, opens_at, closes_at, reason from business_hour_exceptions
 where location_id = $1 and ($2::date is null or on_date >= $2)
 order by on_date, opens_at nulls first
"""


@repository
async def weekly_hours(conn: asyncpg.Connection, *, location_id: uuid.UUID) -> list[WeeklyHours]:
    return [WeeklyHours(**dict(r)) for r in await conn.fetch(WEEKLY, location_id)]


@repository
async def list_exceptions(
    conn: asyncpg.Connection, *, location_id: uuid.UUID, since: date | None = None
) -> list[HoursException]:
    return [HoursException(**dict(r)) for r in await conn.fetch(EXCEPTIONS, location_id, since)]
