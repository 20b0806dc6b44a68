"""Issue 14's cost and KPI views as the admin API reads them (sql/0012): one call's cost
(`call_costs`), the daily rollup (`call_kpis_daily`), calls per hour of the week
(`kpi_peak_hours`) and two configuration versions side by side (`kpi_compare_configs`).

Run under RLS as the caller: the views are security_invoker and the functions read the rollup
with the member's policies, so another organisation's rows are never there. Numbers come out as
floats (the views round rates to 4 places and costs to 6 or 8, well within a double); a null
stays null: an unpriced part of a call is unknown, never free."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from db.errors import repository


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _build(cls, record: asyncpg.Record):
    return cls(**{f.name: _plain(record[f.name]) for f in fields(cls)})


@dataclass(frozen=True)
class CallCost:
    stt: float | None
    llm: float | None
    tts: float | None
    telephony: float | None
    analysis: float | None
    total: float | None
    currency: str
    unpriced: list[str] | None
    turns: int
    cost_per_turn: float | None


CALL_COST = f"select {', '.join(f.name for f in fields(CallCost))} from call_costs where call_id = $1"


@repository
async def call_cost(conn: asyncpg.Connection, *, call_id: uuid.UUID) -> CallCost | None:
    record = await conn.fetchrow(CALL_COST, call_id)
    return _build(CallCost, record) if record else None


@dataclass(frozen=True)
class KpiDay:
    day: date
    location_id: uuid.UUID | None
    agent_config_id: uuid.UUID | None
    agent_config_version: int | None
    calls: int
    answered: int
    abandoned: int
    failed: int
    transferred: int
    bookings: int
    reschedules: int
    cancellations: int
    containment_rate: float | None
    booking_conversion: float | None
    voice_to_voice_p50_ms: float | None
    voice_to_voice_p90_ms: float | None
    voice_to_voice_p95_ms: float | None
    transcription_p50_ms: float | None
    transcription_p95_ms: float | None
    end_of_turn_p50_ms: float | None
    end_of_turn_p95_ms: float | None
    llm_ttft_p50_ms: float | None
    llm_ttft_p95_ms: float | None
    tts_ttfb_p50_ms: float | None
    tts_ttfb_p95_ms: float | None
    interruptions_per_call: float | None
    tool_error_rate: float | None
    cost_per_call: float | None
    cost_per_booking: float | None
    unpriced_calls: int


KPIS_DAILY = f"""
select {', '.join(f.name for f in fields(KpiDay))} from call_kpis_daily
 where organization_id = $1 and day >= $2 and day < $3
   and ($4::uuid is null or location_id = $4)
   and ($5::uuid is null or agent_config_id = $5)
   and ($6::int is null or agent_config_version = $6)
 order by day, location_id nulls first, agent_config_version nulls first
"""


@repository
async def kpis_daily(conn: asyncpg.Connection, *, organization_id: uuid.UUID, day_from: date, day_to: date,
                     location_id: uuid.UUID | None = None, agent_config_id: uuid.UUID | None = None,
                     agent_config_version: int | None = None) -> list[KpiDay]:
    """The rollup's rows of [day_from, day_to) (days in each location's time zone)."""
    records = await conn.fetch(KPIS_DAILY, organization_id, day_from, day_to, location_id,
                               agent_config_id, agent_config_version)
    return [_build(KpiDay, r) for r in records]


@dataclass(frozen=True)
class PeakHour:
    hour_of_week: int  # 0 = Monday 00:00 local time
    weekday: str
    hour: int
    calls: int


PEAK_HOURS = "select hour_of_week, weekday, hour, calls from kpi_peak_hours($1, $2, $3)"


@repository
async def peak_hours(conn: asyncpg.Connection, *, organization_id: uuid.UUID, day_from: date,
                     day_to: date) -> list[PeakHour]:
    """Calls per hour of the week over [day_from, day_to), busiest first."""
    return [_build(PeakHour, r) for r in await conn.fetch(PEAK_HOURS, organization_id, day_from, day_to)]


@dataclass(frozen=True)
class ConfigFigures:
    agent_config_id: uuid.UUID
    agent_config_version: int | None
    calls: int
    answered: int
    containment_rate: float | None
    booking_conversion: float | None
    voice_to_voice_p50_ms: float | None
    voice_to_voice_p95_ms: float | None
    llm_ttft_p50_ms: float | None
    llm_ttft_p95_ms: float | None
    interruptions_per_call: float | None
    tool_error_rate: float | None
    cost_per_call: float | None
    cost_per_booking: float | None


COMPARE = (f"select {', '.join(f.name for f in fields(ConfigFigures))}"
           " from kpi_compare_configs($1, $2, $3, $4)")


@repository
async def compare_configs(conn: asyncpg.Connection, *, config_a: uuid.UUID, config_b: uuid.UUID,
                          day_from: date, day_to: date) -> list[ConfigFigures]:
    """Each version's figures over [day_from, day_to), `config_a` first; a version without calls
    in the range has no row."""
    records = await conn.fetch(COMPARE, config_a, config_b, day_from, day_to)
    return [_build(ConfigFigures, r) for r in records]
