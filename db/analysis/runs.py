"""analysis_runs and analysis_run_calls: a manager's analysis of a period, each call of it
categorised once, and the run's KPIs computed in one query over what the run stored."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

import asyncpg

from db import errors
from db.calls.calls import CALL_NOT_FOUND
from db.errors import InvalidInput, NotFound, repository

RUN_STATUSES = ("pending", "processing", "completed", "failed", "partial")


class RunNotFound(NotFound):
    pass


CONSTRAINTS = errors.constraints({
    "analysis_runs_organization_id_fkey": (NotFound, "no organisation with this id"),
    "analysis_runs_location_id_fkey": (NotFound, "no location with this id"),
    "analysis_runs_status_check": (InvalidInput, f"a run is one of {', '.join(RUN_STATUSES)}"),
    "analysis_runs_period_check": (InvalidInput, "a period starts on or before its last day"),
    "analysis_run_calls_run_id_fkey": (RunNotFound, "no analysis run with this id"),
    "analysis_run_calls_call_id_fkey": CALL_NOT_FOUND,
    "analysis_run_calls_pkey": (InvalidInput, "a run categorises each call once"),
})


@dataclass(frozen=True)
class Run:
    id: uuid.UUID
    organization_id: uuid.UUID
    location_id: uuid.UUID | None
    config_version: int | None
    period_from: date
    period_to: date
    filters: dict[str, Any]
    status: str
    calls_total: int
    calls_analysed: int
    calls_failed: int
    analyser: str | None
    kpis: dict[str, Any]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    processing_ms: int | None


_COLUMNS = ", ".join(f.name for f in fields(Run))

CREATE_RUN = f"""
insert into analysis_runs (organization_id, location_id, config_version, period_from, period_to,
                           filters, analyser)
values ($1, $2, $3, $4, $5, $6, $7)
returning {_COLUMNS}
"""


@repository
async def create_run(
    conn: asyncpg.Connection, *, organization_id: uuid.UUID, location_id: uuid.UUID | None,
    config_version: int | None, period_from: date, period_to: date, filters: dict[str, Any],
    analyser: str,
) -> Run:
    record = await conn.fetchrow(CREATE_RUN, organization_id, location_id, config_version,
                                 period_from, period_to, filters, analyser)
    return Run(**dict(record))


GET_RUN = f"select {_COLUMNS} from analysis_runs where id = $1"


@repository
async def get_run(conn: asyncpg.Connection, *, run_id: uuid.UUID) -> Run:
    record = await conn.fetchrow(GET_RUN, run_id)
    if record is None:
        raise RunNotFound(f"no analysis run {run_id}")
    return Run(**dict(record))


ONLY_ORGANIZATION = "select slug from organizations order by created_at limit 2"


@repository
async def only_organization_slug(conn: asyncpg.Connection) -> str | None:
    """The slug of the only organisation; None when there are none or several."""
    slugs = [r["slug"] for r in await conn.fetch(ONLY_ORGANIZATION)]
    return slugs[0] if len(slugs) == 1 else None


CALLS_IN_PERIOD = """
select c.id from voice_calls c
  left join agent_configs ac on ac.id = c.agent_config_id
 where c.organization_id = $1 and c.started_at >= $2 and c.started_at < $3
   and ($4::uuid is null or c.location_id = $4)
   and ($5::integer is null or ac.version = $5)
   and c.status in ('completed', 'failed', 'abandoned')
 order by c.started_at, c.id
"""


@repository
async def calls_in_period(
    conn: asyncpg.Connection, *, organization_id: uuid.UUID, start: datetime, end: datetime,
    location_id: uuid.UUID | None = None, config_version: int | None = None,
) -> list[uuid.UUID]:
    """The closed calls of the organisation that started in [start, end), oldest first."""
    records = await conn.fetch(CALLS_IN_PERIOD, organization_id, start, end, location_id,
                               config_version)
    return [r["id"] for r in records]


START_RUN = """
update analysis_runs set status = 'processing', started_at = now(), calls_total = $2 where id = $1
"""


@repository
async def start_run(conn: asyncpg.Connection, *, run_id: uuid.UUID, calls_total: int) -> None:
    await conn.execute(START_RUN, run_id, calls_total)


@dataclass(frozen=True)
class RunCall:
    call_id: uuid.UUID
    status: str  # the analysis' status, or 'error' when none could be made
    version: int | None = None
    intent: str | None = None
    journey_stage: str | None = None
    sentiment: str | None = None
    success: bool | None = None
    agent_quality: int | None = None
    confidence: float | None = None
    error: str | None = None


_RUN_CALL = tuple(f.name for f in fields(RunCall))
RECORD_CALLS = f"""
insert into analysis_run_calls (run_id, {', '.join(_RUN_CALL)})
values ($1, {', '.join(f'${i}' for i in range(2, len(_RUN_CALL) + 2))})
"""
COUNT_CALLS = """
update analysis_runs r set
    calls_analysed = r.calls_analysed + $2, calls_failed = r.calls_failed + $3
 where id = $1
"""


@repository
async def record_calls(conn: asyncpg.Connection, *, run_id: uuid.UUID, calls: Sequence[RunCall]) -> None:
    """Each call's categorisation in this run; the run's counts follow."""
    await conn.executemany(RECORD_CALLS, [(run_id, *(getattr(c, n) for n in _RUN_CALL)) for c in calls])
    failed = sum(c.status in ("failed", "error") for c in calls)
    await conn.execute(COUNT_CALLS, run_id, len(calls) - failed, failed)


FINISH_RUN = f"""
update analysis_runs set status = $2, kpis = coalesce($3, kpis), error = $4, completed_at = now(),
       processing_ms = (extract(epoch from now() - coalesce(started_at, created_at)) * 1000)::integer
 where id = $1
returning {_COLUMNS}
"""


@repository
async def finish_run(
    conn: asyncpg.Connection, *, run_id: uuid.UUID, status: str,
    kpis: dict[str, Any] | None = None, error: str | None = None,
) -> Run:
    record = await conn.fetchrow(FINISH_RUN, run_id, status, kpis, error)
    if record is None:
        raise RunNotFound(f"no analysis run {run_id}")
    return Run(**dict(record))


RUN_CALL_ROWS = """
select c.session_id, c.started_at, c.duration_seconds, c.status::text as call_status, c.outcome,
       l.slug as location, rc.status, rc.version, rc.intent, rc.journey_stage, rc.sentiment,
       rc.success, rc.agent_quality, rc.confidence, v.summary, v.success_reason, v.analyser,
       v.model_used, v.follow_ups, v.extraction
  from analysis_run_calls rc
  join voice_calls c on c.id = rc.call_id
  left join locations l on l.id = c.location_id
  left join call_analysis_versions v on v.call_id = rc.call_id and v.version = rc.version
 where rc.run_id = $1
 order by c.started_at, c.id
"""


@repository
async def run_call_rows(conn: asyncpg.Connection, *, run_id: uuid.UUID) -> list[dict[str, Any]]:
    """One row per call of the run, with what the run made of it (for the CSV)."""
    return [dict(r) for r in await conn.fetch(RUN_CALL_ROWS, run_id)]
