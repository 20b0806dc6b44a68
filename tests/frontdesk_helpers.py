"""Small builders for the front-desk domain tests: a one-location business with given hours."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import time

import asyncpg

from db.desk import catalog, hours, locations, organizations, public_holidays


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
    holidays: str = "none",
) -> Shop:
    """An organisation with one location in New York State open `opens`-`closes` on `days`, one
    service, and one provider who performs it (or none: the location then books against
    `capacity`). `holidays`: which public holidays close it (none, national, regional)."""
    org = await organizations.create_organization(conn, name=slug.title(), slug=slug,
                                                  default_timezone=timezone)
    address = locations.Address(line1="1 Main Street", city="Springfield", region="NY", postal_code="10001")
    location = await locations.create_location(
        conn, organization_id=org.id, slug="main", name=f"{slug} main", timezone=timezone,
        phone_number=phone_number, booking_capacity=capacity, address=address)
    await hours.set_weekly_hours(conn, location_id=location.id, hours=[(d, opens, closes) for d in days])
    await public_holidays.set_public_holidays(conn, location_id=location.id, mode=holidays)
    service = await catalog.create_service(conn, organization_id=org.id, name="Consultation",
                                           duration_minutes=duration_minutes)
    provider = None
    if with_provider:
        provider = await catalog.create_provider(conn, organization_id=org.id, location_id=location.id,
                                                 name="Alex Doe", service_ids=[service.id])
    return Shop(org.id, location.id, service.id, provider.id if provider else None)
