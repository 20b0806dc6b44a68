"""The console's dashboard figures, computed from the call tables of one organisation over a time
range (issue 14's KPI views can replace these queries once they land: same shapes).

Booking conversion: calls whose outcome is appointment_booked over all calls. Containment: calls
the agent handled without handing over to a person (outcome other than transferred) over all
calls. Days and hours are in the organisation's default time zone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from db.errors import repository


def _over_range(select: str, *, joins: str = "", tail: str = "") -> str:
    """`select` over the organisation's calls started in [$2, $3), with extra joins and a tail."""
    return f"""{select}
  from voice_calls c
  join organizations o on o.id = c.organization_id
  {joins}
 where c.organization_id = $1 and c.started_at >= $2 and c.started_at < $3
 {tail}"""


_LOCAL = "c.started_at at time zone o.default_timezone"
CALLS_PER_DAY = _over_range(f"select ({_LOCAL})::date as day, count(*)::int as calls",
                            tail="group by 1 order by 1")

_RATES = """
select {key} as key, {label} as label, count(*)::int as calls,
       count(*) filter (where c.outcome = 'appointment_booked')::int as booked,
       count(*) filter (where c.outcome is distinct from 'transferred')::int as contained"""
BY_LOCATION = _over_range(
    _RATES.format(key="c.location_id::text", label="coalesce(l.name, 'no location')"),
    joins="left join locations l on l.id = c.location_id", tail="group by 1, 2 order by 2")
BY_CONFIG = _over_range(
    _RATES.format(key="c.agent_config_id::text", label="coalesce('v' || ac.version, 'none')"),
    joins="left join agent_configs ac on ac.id = c.agent_config_id", tail="group by 1, 2 order by 2")

LATENCY = _over_range("""
select count(m.e2e_latency_ms)::int as turns,
       percentile_cont(0.5) within group (order by m.e2e_latency_ms) as p50,
       percentile_cont(0.9) within group (order by m.e2e_latency_ms) as p90,
       percentile_cont(0.95) within group (order by m.e2e_latency_ms) as p95,
       percentile_cont(0.99) within group (order by m.e2e_latency_ms) as p99""",
    joins="join voice_messages m on m.call_id = c.id",
    tail="and m.role = 'assistant' and m.e2e_latency_ms is not null")

PEAK_HOURS = _over_range(f"""
select extract(isodow from {_LOCAL})::int as day_of_week, extract(hour from {_LOCAL})::int as hour,
       count(*)::int as calls""", tail="group by 1, 2 order by 1, 2")


@dataclass(frozen=True)
class Rate:
    key: str | None
    label: str
    calls: int
    booked: int
    contained: int


@dataclass(frozen=True)
class Dashboard:
    calls_per_day: list[tuple[date, int]]
    by_location: list[Rate]
    by_config: list[Rate]
    latency_turns: int
    latency_ms: dict[str, float | None]
    peak_hours: list[tuple[int, int, int]]  # (ISO day of week, hour, calls)


@repository
async def dashboard(
    conn: asyncpg.Connection, *, organization_id: uuid.UUID, since: datetime, until: datetime
) -> Dashboard:
    args = (organization_id, since, until)
    latency = await conn.fetchrow(LATENCY, *args)
    return Dashboard(
        calls_per_day=[(r["day"], r["calls"]) for r in await conn.fetch(CALLS_PER_DAY, *args)],
        by_location=[Rate(**dict(r)) for r in await conn.fetch(BY_LOCATION, *args)],
        by_config=[Rate(**dict(r)) for r in await conn.fetch(BY_CONFIG, *args)],
        latency_turns=latency["turns"],
        latency_ms={k: latency[k] for k in ("p50", "p90", "p95", "p99")},
        peak_hours=[(r["day_of_week"], r["hour"], r["calls"]) for r in await conn.fetch(PEAK_HOURS, *args)],
    )
