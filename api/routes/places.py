"""/v1/locations, their hours and exceptions, /v1/services, /v1/providers: what the business is."""

from __future__ import annotations

import uuid
from datetime import date, time
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.auth import Reader, Writer
from db.desk import catalog, hours, hours_listing, locations
from db.desk.catalog import Provider, Service
from db.desk.hours_listing import HoursException, WeeklyHours
from db.desk.locations import Location

router = APIRouter(tags=["business"])


class LocationHours(BaseModel):
    location_id: uuid.UUID
    timezone: str
    weekly: list[WeeklyHours]
    exceptions: list[HoursException]


class NewException(BaseModel):
    on_date: date
    opens_at: time | None = None
    closes_at: time | None = None
    reason: Annotated[str | None, Field(max_length=200)] = None


@router.get("/locations", response_model=list[Location], summary="The organisation's locations")
async def list_locations(caller: Reader, include_inactive: bool = False) -> list[Location]:
    return await locations.list_locations(caller.conn, organization_id=caller.organization_id,
                                          active_only=not include_inactive)


async def _location(caller: Reader, location_id: uuid.UUID) -> Location:
    # Under RLS another organisation's location is not there: LocationNotFound, a 404.
    return await locations.get_location(caller.conn, location_id=location_id)


@router.get("/locations/{location_id}/hours", response_model=LocationHours,
            summary="Weekly hours and dated exceptions (from `since`, default all)")
async def get_hours(caller: Reader, location_id: uuid.UUID, since: date | None = None) -> LocationHours:
    location = await _location(caller, location_id)
    return LocationHours(
        location_id=location.id, timezone=location.timezone,
        weekly=await hours_listing.weekly_hours(caller.conn, location_id=location.id),
        exceptions=await hours_listing.list_exceptions(caller.conn, location_id=location.id, since=since))


@router.post("/locations/{location_id}/exceptions", response_model=list[HoursException], status_code=201,
             summary="Add a dated exception: closed all day (no times) or special hours")
async def add_exception(caller: Writer, location_id: uuid.UUID, body: NewException) -> list[HoursException]:
    location = await _location(caller, location_id)
    await hours.add_exception(caller.conn, location_id=location.id, **body.model_dump())
    return await hours_listing.list_exceptions(caller.conn, location_id=location.id, since=body.on_date)


@router.get("/services", response_model=list[Service], summary="What can be booked")
async def list_services(caller: Reader, include_inactive: bool = False) -> list[Service]:
    return await catalog.list_services(caller.conn, organization_id=caller.organization_id,
                                       active_only=not include_inactive)


@router.get("/providers", response_model=list[Provider], summary="Staff who can be booked at a location")
async def list_providers(caller: Reader, location_id: uuid.UUID, service_id: uuid.UUID | None = None,
                         include_inactive: bool = False) -> list[Provider]:
    location = await _location(caller, location_id)
    return await catalog.list_providers(caller.conn, location_id=location.id, service_id=service_id,
                                        active_only=not include_inactive)
