"""/v1/me (the key in use), /v1/api-keys (admin), /v1/appointments, /v1/dashboard."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api import pagination
from api.auth import Admin, Reader
from db import apikeys
from db.apikeys import ApiKey
from db.calls import dashboard as figures
from db.desk import appointment_log, organizations
from db.desk.appointments import Appointment

router = APIRouter(tags=["account"])


class Me(BaseModel):
    key_id: uuid.UUID
    prefix: str
    scope: str
    organization_id: uuid.UUID
    organization_name: str


class AppointmentPage(BaseModel):
    items: list[Appointment]
    next_cursor: str | None


class Rate(BaseModel):
    key: str | None
    label: str
    calls: int
    booked: int
    contained: int


class Dashboard(BaseModel):
    since: datetime
    until: datetime
    calls_per_day: list[tuple[date, int]]
    by_location: list[Rate]
    by_config: list[Rate]
    latency_turns: int
    latency_ms: dict[str, float | None]
    peak_hours: list[tuple[int, int, int]]


@router.get("/me", response_model=Me, summary="The key in use and its organisation")
async def me(caller: Reader) -> Me:
    organization = await organizations.get_organization(caller.conn, id=caller.organization_id)
    key = caller.key
    return Me(key_id=key.id, prefix=key.prefix, scope=key.scope, organization_id=key.organization_id,
              organization_name=organization.name)


@router.get("/api-keys", response_model=list[ApiKey], summary="The organisation's keys (admin scope)")
async def list_api_keys(caller: Admin) -> list[ApiKey]:
    # RLS shows an owner (an admin key's member) its own organisation's keys only.
    return await apikeys.list_keys(caller.conn)


@router.get("/appointments", response_model=AppointmentPage, summary="Appointments by start time")
async def list_appointments(
    caller: Reader,
    location_id: uuid.UUID | None = None,
    status: Literal["confirmed", "cancelled", "completed", "no_show"] | None = None,
    starts_from: datetime | None = None,
    starts_before: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AppointmentPage:
    rows = await appointment_log.list_appointments(
        caller.conn, organization_id=caller.organization_id, location_id=location_id, status=status,
        starts_from=starts_from, starts_before=starts_before, after=pagination.decode(cursor),
        limit=limit + 1)
    page = rows[:limit]
    more = len(rows) > limit
    return AppointmentPage(items=page,
                           next_cursor=pagination.encode(page[-1].starts_at, page[-1].id) if more else None)


@router.get("/dashboard", response_model=Dashboard, summary="Calls, conversion, containment, latency")
async def dashboard(caller: Reader, days: Annotated[int, Query(ge=1, le=366)] = 30) -> Dashboard:
    # A rolling window of N x 24 hours over every call (open ones too), rates over all calls; the
    # rollup's figures (local days, closed calls, rates over answered ones) are /v1/kpis/daily.
    until = datetime.now(UTC)
    since = until - timedelta(days=days)
    found = await figures.dashboard(caller.conn, organization_id=caller.organization_id, since=since,
                                    until=until)
    return Dashboard(since=since, until=until, calls_per_day=found.calls_per_day,
                     by_location=[Rate.model_validate(r, from_attributes=True) for r in found.by_location],
                     by_config=[Rate.model_validate(r, from_attributes=True) for r in found.by_config],
                     latency_turns=found.latency_turns, latency_ms=found.latency_ms,
                     peak_hours=found.peak_hours)
