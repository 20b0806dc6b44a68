"""`python -m analysis run`: a manager's analysis of a period (seed 003).

The run is created pending with its filters, moves to processing, analyses every closed call of
the period once (each a new version of the call's analysis, stamped with the run), then computes
its KPIs and ends completed, partial (some calls could not be analysed) or failed (none could,
or the run itself broke, with its error).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from analysis.analyser import Analyser
from analysis.pipeline import Attempt, analyse_batch, complete
from db.analysis import facts, kpis, runs
from db.analysis.runs import Run, RunCall
from db.desk import locations, organizations
from db.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRequest:
    period_from: date
    period_to: date
    organization_slug: str | None = None
    location_slug: str | None = None
    config_version: int | None = None


@dataclass(frozen=True)
class Scope:
    organization_id: uuid.UUID
    location_id: uuid.UUID | None
    timezone: str  # the location's, else the organisation's: what a "day" of the period means


async def resolve_scope(conn: asyncpg.Connection, request: RunRequest) -> Scope:
    slug = request.organization_slug
    if slug is None:
        slug = await runs.only_organization_slug(conn)
        if slug is None:
            raise InvalidInput("name the organisation (--organization SLUG): there is not exactly one")
    org = await organizations.get_organization(conn, slug=slug)
    if org is None:
        raise NotFound(f"no organisation {slug!r}")
    if request.location_slug is None:
        return Scope(org.id, None, org.default_timezone)
    found = [loc for loc in await locations.list_locations(conn, organization_id=org.id, active_only=False)
             if loc.slug == request.location_slug]
    if not found:
        raise NotFound(f"{org.name} has no location {request.location_slug!r}")
    return Scope(org.id, found[0].id, found[0].timezone)


def _run_call(attempt: Attempt, versions: dict[uuid.UUID, int]) -> RunCall:
    a = attempt.analysis
    if a is None:
        return RunCall(attempt.call_id, status="error", error=attempt.error)
    return RunCall(a.call_id, status=a.status, version=versions.get(a.call_id), intent=a.intent,
                   journey_stage=a.journey_stage, sentiment=a.sentiment, success=a.success,
                   agent_quality=a.agent_quality, confidence=a.confidence, error=a.error)


async def _analyse(pool: asyncpg.Pool, analyser: Analyser, run: Run, call_ids: list[uuid.UUID], *,
                   batch_size: int, concurrency: int) -> None:
    for start in range(0, len(call_ids), batch_size):
        async with pool.acquire() as conn:
            loaded = await facts.load(conn, call_ids=call_ids[start:start + batch_size])
        attempts = await analyse_batch(analyser, loaded, concurrency=concurrency)
        made = [dataclasses.replace(a.analysis, run_id=run.id) for a in attempts if a.analysis]
        async with pool.acquire() as conn, conn.transaction():
            versions = await complete(conn, made)
            await runs.record_calls(conn, run_id=run.id,
                                    calls=[_run_call(a, versions) for a in attempts])


def _status(run: Run) -> str:
    if run.calls_failed == 0:
        return "completed"
    return "partial" if run.calls_analysed else "failed"


@dataclass(frozen=True)
class StartedRun:
    run: Run
    scope: Scope
    call_ids: list[uuid.UUID]


async def start_analysis(conn: asyncpg.Connection, analyser: Analyser, request: RunRequest) -> StartedRun:
    """Create the run with its filters and the calls of its period, and mark it processing (in
    the caller's transaction, if it has one: the run's work must start after it commits)."""
    scope = await resolve_scope(conn, request)
    tz = ZoneInfo(scope.timezone)
    start = datetime.combine(request.period_from, time(), tz)
    end = datetime.combine(request.period_to + timedelta(days=1), time(), tz)
    filters = {"from": request.period_from.isoformat(), "to": request.period_to.isoformat(),
               "organization": request.organization_slug, "location": request.location_slug,
               "config_version": request.config_version, "timezone": scope.timezone}
    run = await runs.create_run(
        conn, organization_id=scope.organization_id, location_id=scope.location_id,
        config_version=request.config_version, period_from=request.period_from,
        period_to=request.period_to, filters=filters, analyser=analyser.name)
    call_ids = await runs.calls_in_period(
        conn, organization_id=scope.organization_id, start=start, end=end,
        location_id=scope.location_id, config_version=request.config_version)
    await runs.start_run(conn, run_id=run.id, calls_total=len(call_ids))
    run = await runs.get_run(conn, run_id=run.id)
    log.info("analysis run %s: %s call(s)", run.id, len(call_ids))
    return StartedRun(run, scope, call_ids)


async def finish_analysis(pool: asyncpg.Pool, analyser: Analyser, started: StartedRun, *,
                          batch_size: int = 200, concurrency: int = 8) -> Run:
    """Analyse a started run's calls, compute its KPIs and end it; returns it as it ended."""
    run, scope = started.run, started.scope
    try:
        await _analyse(pool, analyser, run, started.call_ids, batch_size=batch_size,
                       concurrency=concurrency)
        async with pool.acquire() as conn:
            figures = await kpis.run_kpis(conn, run_id=run.id, timezone=scope.timezone)
            counted = await runs.get_run(conn, run_id=run.id)
            return await runs.finish_run(conn, run_id=run.id, status=_status(counted), kpis=figures)
    except Exception as exc:
        log.exception("analysis run %s failed", run.id)
        async with pool.acquire() as conn:
            await runs.finish_run(conn, run_id=run.id, status="failed",
                                  error=f"{type(exc).__name__}: {exc}"[:1000])
        raise


async def run_analysis(pool: asyncpg.Pool, analyser: Analyser, request: RunRequest, *,
                       batch_size: int = 200, concurrency: int = 8) -> Run:
    """Create, process and finish a run; returns it as it ended (the CLI's run; the admin API
    starts one and finishes it in the background)."""
    async with pool.acquire() as conn:
        started = await start_analysis(conn, analyser, request)
    return await finish_analysis(pool, analyser, started, batch_size=batch_size, concurrency=concurrency)
