"""The KPI views at a year of history: is one organisation's month as fast at 200,000 calls as at
50,000?

    uv run python bench/kpis.py [--calls 200000] [--small 50000] [--iterations 1000]

Builds 5 organisations of 10 locations (two agent config versions each) and loads calls of 20
turns in time order over a year (set-based SQL from generate_series: calls, turns with latency,
tool results, bookings and cancellations), each batch closed with one UPDATE, so that the
triggers of sql/0012 fold it into the rollup as the recorder's closes would. After the first
`--small` calls the database is copied; the copy then gets the rest of the year. The same query,
call_kpis_daily for one random organisation over one month (a month both databases hold), then
runs alternately on the two (both vacuumed first), so both figures see the same machine load.
Targets: p99 under 100 ms, and kpi_growth (p99 at the full size over p99 at the small one) under
1.5.

Uses DATABASE_URL when set, else an embedded Postgres in a temporary folder; creates its own
databases either way and drops them at the end. Ends with `name=value` lines."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from db.embedded import EmbeddedPostgres
from db.migrate import migrate
from db.pool import connect

YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
TURNS = 20
BATCH = 25_000

TENANTS = """
insert into organizations (name, slug, default_timezone)
    select 'Org ' || o, 'org-' || o, 'America/New_York' from generate_series(1, 5) o;
insert into locations (organization_id, slug, name, timezone, address_line1, city, region,
                       postal_code)
    select o.id, 'loc-' || n, o.name || ' ' || n,
           (array['America/New_York', 'America/Chicago', 'America/Los_Angeles'])[1 + n % 3],
           '1 Main Street', 'Springfield', 'NY', '10001'
      from organizations o, generate_series(1, 10) n;
insert into services (organization_id, name, duration_minutes, price)
    select id, 'Cleaning', 30, 100 from organizations;
insert into agent_configs (organization_id, version, instructions, greeting, is_active)
    select o.id, v, 'Instructions v' || v, 'Hello', v = 2
      from organizations o, generate_series(1, 2) v;
create table bench_locations as
    select row_number() over (order by l.id) - 1 as n, l.id as location_id, l.organization_id,
           s.id as service_id,
           (select id from agent_configs where organization_id = l.organization_id and version = 1)
               as config_v1,
           (select id from agent_configs where organization_id = l.organization_id and version = 2)
               as config_v2
      from locations l join services s using (organization_id);
"""

USAGE = ('[{"type": "llm_usage", "provider": "api.openai.com", "model": "gpt-4o-mini", '
         '"input_tokens": 30000, "input_cached_tokens": 18000, "output_tokens": 900}, '
         '{"type": "stt_usage", "provider": "Deepgram", "model": "nova-3", "audio_duration": 110}, '
         '{"type": "tts_usage", "provider": "api.openai.com", "model": "gpt-4o-mini-tts", '
         '"characters_count": 2400, "audio_duration": 95}]')

# $1..$2: the call numbers of the batch; $3 the calls of the year; $4 the year's start. Call i
# starts at its share of the year, at location i mod 50; config v2 from mid-year on.
CALLS = f"""
insert into voice_calls (id, session_id, organization_id, location_id, agent_config_id, status,
                         started_at, connected_at, sip_call_id, model_usage)
select md5('call' || i)::uuid, 'RM_' || i, b.organization_id, b.location_id,
       case when i < $3 / 2 then b.config_v1 else b.config_v2 end, 'active',
       $4::timestamptz + (i::float8 / $3) * interval '365 days',
       case when i % 10 <> 0 then $4::timestamptz + (i::float8 / $3) * interval '365 days'
                                  + interval '2 seconds' end,
       'SCL_' || i, '{USAGE}'::jsonb
  from generate_series($1::int, $2::int) i
  join bench_locations b on b.n = i % 50
"""
TURNS_SQL = f"""
insert into voice_messages (call_id, sequence_number, item_id, role, content, interrupted,
                            transcription_delay_ms, end_of_turn_delay_ms, llm_ttft_ms,
                            tts_ttfb_ms, e2e_latency_ms, tokens_used)
select md5('call' || i)::uuid, t, 'item' || t,
       case when t % 2 = 0 then 'assistant' else 'user' end::message_role, 'turn ' || t,
       t % 2 = 0 and random() < 0.05,
       case when t % 2 = 1 then 80 + random() * 250 end,
       case when t % 2 = 1 then 300 + random() * 900 end,
       case when t % 2 = 0 then 200 + random() * 600 end,
       case when t % 2 = 0 then 90 + random() * 300 end,
       case when t % 2 = 0 then 700 + random() * 1500 end,
       case when t % 2 = 0 then 1500 else 0 end
  from generate_series($1::int, $2::int) i, generate_series(0, {TURNS - 1}) t
 where i % 10 <> 0
"""
EVENTS = """
insert into call_events (id, call_id, event_type, payload, occurred_at)
select md5('event' || i || '/' || k)::uuid, md5('call' || i)::uuid,
       case when k < 2 then 'tool_result' else 'appointment_rescheduled' end,
       jsonb_build_object('is_error', k = 0 and i % 20 = 0),
       $3::timestamptz + (i::float8 / $4) * interval '365 days'
  from generate_series($1::int, $2::int) i, generate_series(0, 2) k
 where i % 10 <> 0 and (k < 2 or i % 25 = 0)
"""
# One call in three books; one booking in ten is cancelled by a later call. Codes: i in base 31.
BOOKINGS = """
insert into appointments (organization_id, location_id, service_id, customer_name, customer_phone,
                          starts_at, ends_at, confirmation_code, call_id, last_call_id, status)
select b.organization_id, b.location_id, b.service_id, 'Customer', '+15550101234',
       $3::timestamptz + (i::float8 / $4) * interval '365 days' + interval '3 days',
       $3::timestamptz + (i::float8 / $4) * interval '365 days' + interval '3 days 30 minutes',
       (select string_agg(substr('ABCDEFGHJKMNPQRSTUVWXYZ23456789',
                                 1 + ((i / power(31, k)::bigint) % 31)::int, 1), '' order by k)
          from generate_series(0, 5) k),
       md5('call' || i)::uuid,
       md5('call' || case when i % 30 = 0 and i > $1 then i - 1 else i end)::uuid,
       case when i % 30 = 0 and i > $1 then 'cancelled' else 'confirmed' end::appointment_status
  from generate_series($1::int, $2::int) i
  join bench_locations b on b.n = i % 50
 where i % 3 = 0 and i % 10 <> 0
"""
CLOSE = """
update voice_calls set
    status = case when connected_at is null then 'abandoned'
                  when substr(session_id, 4)::int % 50 = 7 then 'failed'
                  else 'completed' end::call_status,
    outcome = case when substr(session_id, 4)::int % 17 = 0 then 'transferred' end,
    ended_at = started_at + interval '3 minutes'
 where id in (select md5('call' || i)::uuid from generate_series($1::int, $2::int) i)
"""

QUERY = """
select * from call_kpis_daily
 where organization_id = $1 and day >= $2 and day < $3
"""


async def load(conn: asyncpg.Connection, first: int, last: int, total: int) -> None:
    """Calls first..last (inclusive) of `total`, in batches, each closed (and so folded)."""
    for lo in range(first, last + 1, BATCH):
        hi = min(last, lo + BATCH - 1)
        started = time.perf_counter()
        await conn.execute(CALLS, lo, hi, total, YEAR_START)
        await conn.execute(TURNS_SQL, lo, hi)
        await conn.execute(EVENTS, lo, hi, YEAR_START, total)
        await conn.execute(BOOKINGS, lo, hi, YEAR_START, total)
        loaded = time.perf_counter()
        await conn.execute(CLOSE, lo, hi)
        print(f"calls {lo}..{hi}: loaded in {loaded - started:.1f} s, "
              f"closed and folded in {time.perf_counter() - loaded:.1f} s", flush=True)
    await conn.execute("analyze")


async def measure(small: asyncpg.Connection, full: asyncpg.Connection, iterations: int,
                  month_start: datetime) -> tuple[list[float], list[float], int]:
    orgs = [r["id"] for r in await full.fetch("select id from organizations order by id")]
    rng = random.Random(14)
    first, until = month_start.date(), (month_start + timedelta(days=30)).date()
    samples: dict[int, list[float]] = {0: [], 1: []}
    rows = 0
    for n in range(iterations + 20):
        org = rng.choice(orgs)
        for side in rng.sample((0, 1), 2):  # either may go first: no side pays for the other
            conn = (small, full)[side]
            started = time.perf_counter()
            result = await conn.fetch(QUERY, org, first, until)
            if n >= 20:  # the first rounds warm caches and the statement cache
                samples[side].append((time.perf_counter() - started) * 1000)
                rows = max(rows, len(result))
    return samples[0], samples[1], rows


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


async def run(admin_dsn: str, args: argparse.Namespace) -> None:
    base = admin_dsn.rsplit("/", 1)[0]
    small_name, full_name = f"bench_kpis_small_{os.getpid()}", f"bench_kpis_full_{os.getpid()}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"create database {small_name}")
        conn = await connect(f"{base}/{small_name}")
        try:
            await migrate(conn)
            await conn.execute(TENANTS)
            await load(conn, 1, args.small, args.calls)
        finally:
            await conn.close()
        await admin.execute(f"create database {full_name} template {small_name} strategy file_copy")
        small, full = await connect(f"{base}/{small_name}"), await connect(f"{base}/{full_name}")
        try:
            await load(full, args.small + 1, args.calls, args.calls)
            # Both as autovacuum would leave them, so that it does not start mid-measurement.
            for conn in (small, full):
                await conn.execute("vacuum analyze")
            # A month that both hold: the small database's last full month.
            month = YEAR_START + timedelta(days=365 * args.small / args.calls - 31)
            small_ms, full_ms, rows = await measure(small, full, args.iterations, month)
            counts = {t: await full.fetchval(f"select count(*) from {t}") for t in
                      ("voice_calls", "voice_messages", "call_kpi_facts", "call_kpis_rollup")}
            check = await full.fetchval("select sum(calls) from call_kpis_daily")
        finally:
            await small.close()
            await full.close()
    finally:
        for name in (small_name, full_name):
            await admin.execute(f"drop database if exists {name} with (force)")
        await admin.close()
    for table, count in counts.items():
        print(f"rows_{table}={count}")
    print(f"kpi_calls_in_rollup={check}")
    print(f"kpi_rows_per_query={rows}")
    print(f"kpi_query_p50_ms={statistics.median(full_ms):.3f}")
    print(f"kpi_query_small_p99_ms={p99(small_ms):.3f}")
    print(f"kpi_query_p99_ms={p99(full_ms):.3f}")
    print(f"kpi_growth={p99(full_ms) / p99(small_ms):.3f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=50_000)
    parser.add_argument("--iterations", type=int, default=1000)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-kpis-") as tmp:
        server, admin_dsn = None, os.environ.get("DATABASE_URL")
        if not admin_dsn:
            server = EmbeddedPostgres(Path(tmp) / "pg", fsync=False).start()
            admin_dsn = server.dsn
        try:
            await run(admin_dsn, args)
        finally:
            if server is not None:
                server.stop()
    print(f"wall_s={time.perf_counter() - started:.1f}")
    # These machines are shared: a p99 means little without the load it was measured under.
    print(f"loadavg_1m={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
