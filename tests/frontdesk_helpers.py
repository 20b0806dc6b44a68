"""Small builders for the front-desk domain tests: a one-location business with given hours."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from db.desk import catalog, hours, locations, organizations

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
# A Monday, before the demo's Thanksgiving closure (Thursday 2026-11-26).
MONDAY = (2026, 11, 23)


def at(tz: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def monday(hour: int, minute: int = 0, *, days: int = 0, tz: ZoneInfo = NY) -> datetime:
    """Local time on the test Monday (plus `days`), New York by default."""
    # Adding a timedelta to an aware datetime keeps its wall-clock time: 9:00 stays 9:00 local.
    return datetime(*MONDAY, hour, minute, tzinfo=tz) + timedelta(days=days)


@dataclass(frozen=True)
class Shop:
    organization_id: uuid.UUID
    location_id: uuid.UUID
    service_id: uuid.UUID
    provider_id: uuid.UUID | None


async def make_shop(
    conn: asyncpg.Connection,
    *,
    slug: str,
    timezone: str = "America/New_York",
    opens: time = time(9),
    closes: time = time(17),
    days: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7),
    duration_minutes: int = 60,
    with_provider: bool = True,
    capacity: int = 1,
    phone_number: str | None = None,
) -> Shop:
    """An organisation with one location open `opens`-`closes` on `days`, one service, and one
    provider who performs it (or none: the location then books against `capacity`)."""
    org = await organizations.create_organization(conn, name=slug.title(), slug=slug,
                                                  default_timezone=timezone)
    address = locations.Address(line1="1 Main Street", city="Springfield", region="NY", postal_code="10001")
    location = await locations.create_location(
        conn, organization_id=org.id, slug="main", name=f"{slug} main", timezone=timezone,
        phone_number=phone_number, booking_capacity=capacity, address=address)
    await hours.set_weekly_hours(conn, location_id=location.id, hours=[(d, opens, closes) for d in days])
    service = await catalog.create_service(conn, organization_id=org.id, name="Consultation",
                                           duration_minutes=duration_minutes)
    provider = None
    if with_provider:
        provider = await catalog.create_provider(conn, organization_id=org.id, location_id=location.id,
                                                 name="Alex Doe", service_ids=[service.id])
    return Shop(org.id, location.id, service.id, provider.id if provider else None)
