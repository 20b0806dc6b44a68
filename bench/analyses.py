"""Post-call analysis throughput and a manager run's KPIs at scale.

    uv run python bench/analyses.py [--calls 10000] [--kpi-calls 100000] [--batch 200]

(Named analyses.py: a script named analysis.py would hide, as the first entry of sys.path, the
`analysis` package it measures.)

Builds the demo tenant and `--calls` closed calls (six turns each: three caller lines that differ
by call, three replies with latencies, an event or two), closing them with one UPDATE so the
trigger queues their analysis jobs as a real close does. Then one worker with the offline rules
analyser drains the queue through the production path (claim, load facts, analyse, store the
current row and a version, finish the jobs): offline_analyses_per_s (target >= 200).

Then grows the table to `--kpi-calls` calls, puts them all in one run (analysis_run_calls with
categorisations, as a run leaves them) and times the run's KPI query (response time percentiles
over every reply, volume per day, peak hours, distributions, quality, conversion, containment):
run_kpis_100k_s (target < 5).

Analysis never touches the voice loop: it runs in its own processes on what the recorder stored
(bench/turn_overhead.py measures the turn). Uses DATABASE_URL when set, else an embedded Postgres
in a temporary folder; creates its own database either way and drops it at the end. Ends with
`name=value` lines."""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import asyncpg

from analysis.rules import RulesAnalyser
from analysis.worker import Worker, WorkerOptions
from db.analysis import kpis, runs
from db.demo.seed import seed_demo
from db.migrate import migrate
from db.pool import connect, create_pool
from db.scratch import scratch_database

INSERT_CALLS = """
insert into voice_calls (id, session_id, organization_id, location_id, status, started_at,
                         connected_at, outcome)
select gen_random_uuid(), 'bench-' || ($4::bigint + g), $1, $2, 'active',
       now() - interval '40 days' + (g % 30) * interval '1 day' + (8 + g % 10) * interval '1 hour',
       now() - interval '40 days' + (g % 30) * interval '1 day' + (8 + g % 10) * interval '1 hour',
       (array['appointment_booked', 'information_provided', 'transferred', 'no_action',
              'appointment_cancelled'])[1 + g % 5]
  from generate_series(1, $3) g
"""
INSERT_TURNS = """
insert into voice_messages (call_id, sequence_number, item_id, role, content, interrupted, e2e_latency_ms,
                            call_created_at)
select c.id, s, 'item-' || s, case when s % 2 = 0 then 'user' else 'assistant' end::message_role,
       case when s % 2 = 1 then 'Certainly, let me look that up for you.'
            else (array['Hi, I would like to book a cleaning please.', 'How much is whitening?',
                        'I need to cancel my appointment on Friday.', 'There is a charge on my bill.',
                        'Thanks, that is great.', 'Sorry? I said Tuesday, not Thursday.'])
                 [1 + (abs(hashtext(c.session_id)) + s) % 6] end,
       s = 3 and c.started_at::time > '15:00', case when s % 2 = 1 then 400 + random() * 1600 end,
       c.created_at
  from voice_calls c cross join generate_series(0, 5) s
 where c.status = 'active'
"""
INSERT_EVENTS = """
insert into call_events (id, call_id, event_type, severity, payload, call_created_at)
select gen_random_uuid(), c.id, e.kind, e.severity, jsonb_build_object('name', e.tool), c.created_at
  from voice_calls c
 cross join lateral (values ('tool_call', 'info', 'check_availability'),
                            ('error', case when abs(hashtext(c.session_id)) % 10 = 0 then 'error'
                                           else 'debug' end, null)) e(kind, severity, tool)
 where c.status = 'active'
"""
CLOSE_CALLS = """
update voice_calls set status = 'completed', closed_by = 'agent', end_reason = 'caller_hung_up',
       ended_at = started_at + interval '3 minutes'
 where status = 'active'
"""
RUN_CALLS = """
insert into analysis_run_calls (run_id, call_id, status, intent, journey_stage, sentiment, success,
                                agent_quality, confidence)
select $1, c.id, 'completed',
       (array['book', 'reschedule', 'cancel', 'question', 'billing', 'complaint', 'other'])[1 + n % 7],
       (array['new_enquiry', 'booking', 'existing_appointment', 'after_visit'])[1 + n % 4],
       (array['positive', 'neutral', 'negative', 'friction'])[1 + n % 4], n % 3 <> 0,
       1 + n % 10, 0.5
  from (select id, abs(hashtext(session_id)) as n from voice_calls) c
"""


async def add_calls(conn: asyncpg.Connection, tenant, count: int, offset: int) -> float:
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute(INSERT_CALLS, tenant.organization_id, tenant.midtown_location_id, count, offset)
        await conn.execute(INSERT_TURNS)
        await conn.execute(INSERT_EVENTS)
        await conn.execute(CLOSE_CALLS)
    await conn.execute("analyze")
    return time.perf_counter() - started


async def run(dsn: str, args: argparse.Namespace) -> None:
    conn = await connect(dsn)
    try:
        await migrate(conn)
        tenant = await seed_demo(conn)
        built = await add_calls(conn, tenant, args.calls, 0)
        print(f"built {args.calls} closed calls in {built:.1f} s", flush=True)
        queued = await conn.fetchval("select count(*) from analysis_jobs where status = 'queued'")
        print(f"jobs_queued={queued}")
    finally:
        await conn.close()

    pool = await create_pool(dsn, min_size=1, max_size=4)
    try:
        worker = Worker(pool, RulesAnalyser(), WorkerOptions(batch_size=args.batch))
        started = time.perf_counter()
        done = await worker.drain()
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    print(f"offline_analyses={done}")
    print(f"offline_analyses_s={elapsed:.2f}")
    print(f"offline_analyses_per_s={done / elapsed:.0f}")

    conn = await connect(dsn)
    try:
        more = args.kpi_calls - args.calls
        built = await add_calls(conn, tenant, more, args.calls) if more > 0 else 0.0
        print(f"built {more} more calls in {built:.1f} s", flush=True)
        run_row = await conn.fetchrow(
            "insert into analysis_runs (organization_id, period_from, period_to) "
            "values ($1, current_date - 40, current_date) returning id", tenant.organization_id)
        await conn.execute(RUN_CALLS, run_row["id"])
        await conn.execute("analyze")
        started = time.perf_counter()
        figures = await kpis.run_kpis(conn, run_id=run_row["id"], timezone="America/New_York")
        elapsed = time.perf_counter() - started
        await runs.finish_run(conn, run_id=run_row["id"], status="completed", kpis=figures)
        turns = await conn.fetchval("select count(*) from voice_messages")
    finally:
        await conn.close()
    print(f"run_calls={figures['calls']}")
    print(f"rows_voice_messages={turns}")
    print(f"run_kpis_response_p50_ms={figures['response_ms']['p50']}")
    print(f"run_kpis_100k_s={elapsed:.2f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--kpi-calls", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    started = time.perf_counter()
    async with scratch_database("bench-analysis") as dsn:
        await run(dsn, args)
    print(f"wall_s={time.perf_counter() - started:.1f}")
    print(f"loadavg_1m={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
