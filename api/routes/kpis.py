"""/v1/kpis: issue 14's rollup: figures per day, peak hours, two configuration versions compared.

Days are [from, to) in each location's time zone, as `call_kpis_daily` counts them; without
`from` and `to` the last 30 days up to today (UTC) are read. Rates are fractions (0.25 = 25%);
a cost is null when some call of its group has usage no price covers (`unpriced_calls`)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.auth import Reader
from api.problems import ApiProblem
from api.routes.configs import find_config
from db.calls import kpi_views
from db.calls.kpi_views import ConfigFigures, KpiDay, PeakHour

router = APIRouter(prefix="/kpis", tags=["kpis"])

MAX_DAYS = 366
From = Annotated[date | None, Query(alias="from", description="first day (default: 30 days before `to`)")]
To = Annotated[date | None, Query(alias="to", description="the day after the last (default: tomorrow, UTC)")]


def _range(day_from: date | None, day_to: date | None) -> tuple[date, date]:
    day_to = day_to or datetime.now(UTC).date() + timedelta(days=1)
    day_from = day_from or day_to - timedelta(days=30)
    if day_from >= day_to:
        raise ApiProblem(422, "`from` must be before `to`")
    if (day_to - day_from).days > MAX_DAYS:
        raise ApiProblem(422, f"a range is at most {MAX_DAYS} days")
    return day_from, day_to


class Comparison(BaseModel):
    configs: list[ConfigFigures]


@router.get("/daily", response_model=list[KpiDay],
            summary="KPIs per day x location x configuration version (the rollup)")
async def daily(caller: Reader, day_from: From = None, day_to: To = None,
                location_id: uuid.UUID | None = None, agent_config_id: uuid.UUID | None = None,
                agent_config_version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
                ) -> list[KpiDay]:
    first, end = _range(day_from, day_to)
    return await kpi_views.kpis_daily(
        caller.conn, organization_id=caller.organization_id, day_from=first, day_to=end,
        location_id=location_id, agent_config_id=agent_config_id, agent_config_version=agent_config_version)


@router.get("/peak-hours", response_model=list[PeakHour],
            summary="Calls per hour of the week (0 = Monday 00:00 local), busiest first")
async def peak_hours(caller: Reader, day_from: From = None, day_to: To = None) -> list[PeakHour]:
    first, end = _range(day_from, day_to)
    return await kpi_views.peak_hours(caller.conn, organization_id=caller.organization_id,
                                      day_from=first, day_to=end)


@router.get("/compare", response_model=Comparison,
            summary="Two configuration versions side by side (`a` first): the figures for a rollback")
async def compare(caller: Reader, a: uuid.UUID, b: uuid.UUID, day_from: From = None,
                  day_to: To = None) -> Comparison:
    first, end = _range(day_from, day_to)
    for config_id in (a, b):
        await find_config(caller, config_id)  # 404 for a version the caller cannot see
    return Comparison(configs=await kpi_views.compare_configs(caller.conn, config_a=a, config_b=b,
                                                            day_from=first, day_to=end))
