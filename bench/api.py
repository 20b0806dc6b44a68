"""The admin API's call log and call detail over HTTP, with 200,000 stored calls.

    uv run python bench/api.py [--calls 200000] [--iterations 400]

Builds the demo tenant and a second organisation, then bulk-loads calls with generate_series (90%
the demo's, over its two locations and two configuration versions; 10% the other's), four turns
with latencies and two events each, an analysis for every other call. Starts the real
`python -m api` on a free loopback port and times, one request after another with a read key of
the demo organisation: call log pages (first pages, deep pages by cursor, filtered by location or
outcome) and call details of random calls. Targets: calls_list_p99_ms < 50, call_detail_p99_ms < 30.

Uses DATABASE_URL when set, else an embedded Postgres in a temporary folder; creates its own
database either way and drops it at the end. Ends with `name=value` lines."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

from db import apikeys
from db.demo.seed import seed_demo
from db.desk.locations import Address, create_location
from db.desk.organizations import create_organization
from db.migrate import migrate
from db.pool import connect
from db.scratch import scratch_database

# $1 demo org, $2/$3 its locations, $4/$5 its configs, $6 other org, $7 its location, $8 calls.
LOAD_CALLS = """
insert into voice_calls (id, session_id, room_name, organization_id, location_id, agent_config_id,
                         caller_number, dialed_number, status, outcome, started_at, connected_at, ended_at)
select gen_random_uuid(), 'RM_bench_' || g, 'room-' || g,
       case when g % 10 = 0 then $6::uuid else $1::uuid end,
       case when g % 10 = 0 then $7::uuid when g % 2 = 0 then $2::uuid else $3::uuid end,
       case when g % 10 = 0 then null when g % 3 = 0 then $4::uuid else $5::uuid end,
       '+1212555' || lpad((g % 10000)::text, 4, '0'), '+12125550100', 'completed',
       (array['appointment_booked', 'information_provided', 'transferred', 'no_action'])[1 + g % 4],
       t, t + interval '2 seconds', t + interval '3 minutes'
  from generate_series(1, $8::int) g, lateral (select now() - g * interval '13 seconds' as t) s
"""
LOAD_TURNS = """
insert into voice_messages (call_id, sequence_number, item_id, role, content, started_at,
                            transcription_delay_ms, end_of_turn_delay_ms, llm_ttft_ms, tts_ttfb_ms,
                            e2e_latency_ms, tokens_used, call_created_at)
select c.id, s, 'item_' || s, case when s % 2 = 0 then 'assistant' else 'user' end::message_role,
       case when s % 2 = 0 then 'How can I help you today?' else 'I would like to book a cleaning.' end,
       c.started_at + s * interval '5 seconds',
       case when s % 2 = 1 then 150 + s * 20 end, case when s % 2 = 1 then 300 + s * 30 end,
       case when s % 2 = 0 then 350 + (hashtext(c.session_id) & 255) end,
       case when s % 2 = 0 then 150 + s * 10 end,
       case when s % 2 = 0 then 700 + (hashtext(c.session_id) & 511) end,
       case when s % 2 = 0 then 40 else 0 end, c.created_at
  from voice_calls c, generate_series(0, 3) s
"""
LOAD_EVENTS = """
insert into call_events (id, call_id, event_type, payload, occurred_at, call_created_at)
select gen_random_uuid(), c.id, e, '{}'::jsonb, c.started_at + interval '10 seconds', c.created_at
  from voice_calls c, unnest(array['tool_call', 'call_ended']) e
"""
LOAD_ANALYSES = """
insert into call_analyses (call_id, summary, intent, sentiment, outcome, success)
select id, 'A caller asked about a cleaning.', 'book_appointment',
       (array['positive', 'neutral', 'negative'])[1 + (hashtext(session_id) & 3) % 3], outcome, true
  from voice_calls where hashtext(session_id) % 2 = 0
"""


async def build(conn: asyncpg.Connection, calls: int) -> tuple[str, list[str]]:
    """The data; returns a read key of the demo organisation and some of its calls' ids."""
    tenant = await seed_demo(conn)
    other = await create_organization(conn, name="Other Clinic", slug="other-clinic")
    other_location = await create_location(
        conn, organization_id=other.id, slug="main", name="Other Main", timezone="America/Chicago",
        address=Address(line1="1 Elm St", city="Chicago", region="IL", postal_code="60601"))
    for label, query, args in (
        ("calls", LOAD_CALLS, (tenant.organization_id, tenant.midtown_location_id,
                               tenant.santa_monica_location_id, tenant.config_v1_id, tenant.config_v2_id,
                               other.id, other_location.id, calls)),
        ("turns", LOAD_TURNS, ()), ("events", LOAD_EVENTS, ()), ("analyses", LOAD_ANALYSES, ()),
    ):
        start = time.perf_counter()
        await conn.execute(query, *args)
        print(f"loaded {label} in {time.perf_counter() - start:.1f} s", flush=True)
    await conn.execute("analyze")
    key = await apikeys.create_key(conn, organization_slug="bright-smile-dental", scope="read")
    ids = await conn.fetch(
        "select id from voice_calls where organization_id = $1 order by random() limit 2000",
        tenant.organization_id)
    return key.secret, [str(r["id"]) for r in ids], [str(tenant.midtown_location_id)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(dsn: str, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": dsn, "API_PORT": str(port), "API_RATE_LIMIT_BURST": "1000000",
           "API_RATE_LIMIT_PER_MINUTE": "100000000"}
    process = subprocess.Popen([sys.executable, "-m", "api"], env=env, stdout=log_path.open("w"),
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/openapi.json", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the API did not start: {log_path.read_text()}")


async def measure(base: str, key: str, call_ids: list[str], locations: list[str],
                  iterations: int) -> dict[str, list[float]]:
    rng = random.Random(15)
    results: dict[str, list[float]] = {"calls_list": [], "call_detail": []}
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        cursors = [None]
        for _ in range(20):  # cursors of deeper pages, to start some requests from
            page = (await client.get("/v1/calls", params={"limit": 50, "cursor": cursors[-1]}
                                     if cursors[-1] else {"limit": 50})).json()
            cursors.append(page["next_cursor"])
        variants = [{}, {"location_id": locations[0]}, {"outcome": "transferred"}, {"sort": "started_at"}]
        for i in range(iterations):
            params = {"limit": 50, **rng.choice(variants)}
            cursor = rng.choice(cursors)
            if cursor and "sort" not in params:
                params["cursor"] = cursor
            results["calls_list"].append(await timed(client, "/v1/calls", params, i))
            results["call_detail"].append(await timed(client, f"/v1/calls/{rng.choice(call_ids)}", {}, i))
    return results


async def timed(client: httpx.AsyncClient, path: str, params: dict, i: int) -> float:
    start = time.perf_counter()
    response = await client.get(path, params=params)
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code} on request {i}: {response.text[:300]}")
    return elapsed


def p(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


async def run(dsn: str, args: argparse.Namespace, tmp: Path) -> None:
    conn = await connect(dsn)
    try:
        await migrate(conn)
        key, call_ids, locations = await build(conn, args.calls)
        counts = {t: await conn.fetchval(f"select count(*) from {t}")
                  for t in ("voice_calls", "voice_messages", "call_events", "call_analyses")}
    finally:
        await conn.close()
    process, base = start_api(dsn, tmp / "api.log")
    try:
        results = await measure(base, key, call_ids, locations, args.iterations)
    finally:
        process.terminate()
        process.wait(timeout=10)
    for table, count in counts.items():
        print(f"rows_{table}={count}")
    for name, samples in results.items():
        print(f"{name}_n={len(samples)}")
        print(f"{name}_p50_ms={statistics.median(samples):.3f}")
        print(f"{name}_p99_ms={p(samples, 99):.3f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--iterations", type=int, default=400)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-api-files-") as tmp:
        async with scratch_database("bench-api") as dsn:
            await run(dsn, args, Path(tmp))
    print(f"wall_s={time.perf_counter() - started:.1f}")
    # These machines are shared: a p99 means little without the load it was measured under.
    print(f"loadavg_1m={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
