"""A run's KPIs, in one query over its categorised calls and their turns (seed 003's
AnalysisKPI metrics, kept as one JSON object on the run).

Definitions: response time is the end-to-end latency of the receptionist's turns (caller stops
speaking -> reply audio starts), p50 / p90 over every such turn of the run's calls. Booking
conversion: of the calls whose intent was `book`, the share that booked. Containment: the share
of calls completed without being handed to a person. Days and hours are in `timezone`.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from db.errors import repository

RUN_KPIS = """
with rc as materialized (
    select rc.call_id, rc.status, rc.intent, rc.journey_stage, rc.sentiment, rc.success,
           rc.agent_quality, c.outcome, c.status::text as call_status, c.duration_seconds,
           c.started_at at time zone $2 as local_start
      from analysis_run_calls rc join voice_calls c on c.id = rc.call_id
     where rc.run_id = $1
), latency as (
    select percentile_cont(array[0.5, 0.9]) within group (order by m.e2e_latency_ms) as p,
           count(*) as turns
      from voice_messages m
     where m.call_id in (select call_id from rc) and m.role = 'assistant'
       and m.e2e_latency_ms is not null
)
select jsonb_build_object(
    'calls', (select count(*) from rc),
    'analysed', (select count(*) from rc where status in ('completed', 'no_conversation')),
    'no_conversation', (select count(*) from rc where status = 'no_conversation'),
    'failed', (select count(*) from rc where status in ('failed', 'error')),
    'avg_duration_s', (select round(avg(duration_seconds)::numeric, 1) from rc),
    'response_ms', (select jsonb_build_object('p50', round(p[1]::numeric), 'p90', round(p[2]::numeric),
                                              'turns', turns) from latency),
    'calls_per_day', (select coalesce(jsonb_object_agg(day, n), '{}') from (
        select to_char(local_start, 'YYYY-MM-DD') as day, count(*) as n from rc group by 1) d),
    'peak_hours', (select coalesce(jsonb_object_agg(hour, n), '{}') from (
        select extract(hour from local_start)::integer as hour, count(*) as n from rc group by 1) h),
    'intents', (select coalesce(jsonb_object_agg(intent, n), '{}') from (
        select intent, count(*) as n from rc where intent is not null group by 1) i),
    'journey_stages', (select coalesce(jsonb_object_agg(journey_stage, n), '{}') from (
        select journey_stage, count(*) as n from rc where journey_stage is not null group by 1) j),
    'sentiments', (select coalesce(jsonb_object_agg(sentiment, n), '{}') from (
        select sentiment, count(*) as n from rc where sentiment is not null group by 1) s),
    'avg_quality', (select round(avg(agent_quality)::numeric, 2) from rc),
    'success_rate', (select round(avg(success::integer)::numeric, 3) from rc where success is not null),
    'booking_conversion', (select round((count(*) filter (where outcome = 'appointment_booked'))::numeric
                                        / nullif(count(*), 0), 3) from rc where intent = 'book'),
    'containment', (select round((count(*) filter (where call_status = 'completed'
                                                   and coalesce(outcome, '') <> 'transferred'))::numeric
                                 / nullif(count(*), 0), 3) from rc)
)
"""


@repository
async def run_kpis(conn: asyncpg.Connection, *, run_id: uuid.UUID, timezone: str) -> dict[str, Any]:
    return await conn.fetchval(RUN_KPIS, run_id, timezone)
