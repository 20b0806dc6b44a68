"""The webhook service over real HTTP: deliveries in any order, redeliveries, concurrent
deliveries, health and readiness, an unavailable database, graceful shutdown, the process."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from db.pool import create_pool
from tests.livekit_webhooks import (
    call_rows,
    check_realistic_call,
    delivery,
    post,
    realistic_call,
    verifier,
    webhook_client,
)
from webhooks.app import WEBHOOK_PATH, create_app

pytestmark = [
    pytest.mark.db,
    # livekit-server --dev's secret is short; PyJWT says so on every token.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]


@pytest.fixture
async def client(pool):
    async with webhook_client(pool) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def forget_call(pool, session_id: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute("delete from voice_calls where session_id = $1", session_id)
        await conn.execute("delete from webhook_events where room_sid = $1", session_id)


async def test_health_answers_while_the_process_runs(client):
    response = await client.get("/healthz")
    assert response.status == 200 and (await response.json())["status"] == "ok"


async def test_ready_when_the_database_answers_and_is_migrated(client):
    response = await client.get("/readyz")
    assert response.status == 200 and (await response.json())["ready"] is True


async def test_not_ready_with_pending_migrations(empty_dsn):
    pool = await create_pool(empty_dsn)
    try:
        async with webhook_client(pool) as c:
            response = await c.get("/readyz")
            body = await response.json()
    finally:
        await pool.close()
    assert response.status == 503
    assert "0001_call_schema.sql" in body["pending_migrations"]


async def test_not_ready_and_503_when_the_database_is_unreachable():
    # min_size=0: the pool connects on first use, to a port nobody listens on.
    pool = await asyncpg.create_pool(f"postgresql://x@127.0.0.1:{free_port()}/x", min_size=0)
    try:
        async with webhook_client(pool) as c:
            ready = await c.get("/readyz")
            delivered = await post(c, realistic_call()["room_started"])
            assert ready.status == 503 and (await ready.json())["reason"] == "database unavailable"
            # A 5xx makes livekit-server retry the delivery later.
            assert delivered.status == 503
    finally:
        await pool.close()


async def test_a_realistic_call_over_http_gives_the_expected_record(client, conn):
    for event in realistic_call().values():
        response = await post(client, event)
        assert (response.status, (await response.json())["status"]) == (200, "applied")
    check_realistic_call(await call_rows(conn, "RM_call"), "RM_call")


async def test_adversarial_arrival_orders_over_http_converge(client, pool, conn):
    call = realistic_call()
    orders = {
        "in order": list(call),
        "reversed": list(call)[::-1],
        "room_finished first": ["room_finished", *[k for k in call if k != "room_finished"]],
        "everyone left before joining": ["caller_left", "agent_left", "room_finished", "track_published",
                                         "agent_joined", "caller_joined", "room_started"],
        "agent last": ["room_started", "caller_joined", "track_published", "caller_left",
                       "room_finished", "agent_left", "agent_joined"],
    }
    rng = random.Random(42)
    orders.update({f"seeded {n}": rng.sample(list(call), len(call)) for n in range(5)})
    reference = None
    for name, order in orders.items():
        for key in order:
            assert (await post(client, call[key])).status == 200, name
        rows = await call_rows(conn, "RM_call")
        reference = reference or rows
        assert rows == reference, name
        await forget_call(pool, "RM_call")
    check_realistic_call(reference, "RM_call")


async def test_a_redelivery_answers_200_and_changes_nothing(client, conn):
    events = list(realistic_call().values())
    for event in events:
        await post(client, event)
    exact = "select * from {} order by 1"  # every column, updated_at and received_at included
    tables = ("voice_calls", "call_participants", "call_events", "webhook_events")
    before = {t: [dict(r) for r in await conn.fetch(exact.format(t))] for t in tables}
    for event in reversed(events):
        response = await post(client, event)
        assert (response.status, (await response.json())["status"]) == (200, "duplicate")
    after = {t: [dict(r) for r in await conn.fetch(exact.format(t))] for t in tables}
    assert after == before


async def test_fifty_concurrent_deliveries_are_all_applied(client, conn):
    calls = {f"RM_c{n}": realistic_call(f"RM_c{n}") for n in range(7)}
    events = [e for call in calls.values() for e in call.values()]
    events.append(realistic_call("RM_c7")["room_started"])
    random.Random(5).shuffle(events)
    assert len(events) == 50
    responses = await asyncio.gather(*(post(client, e) for e in events))
    assert [r.status for r in responses] == [200] * 50
    assert {(await r.json())["status"] for r in responses} == {"applied"}
    for room in calls:
        check_realistic_call(await call_rows(conn, room), room)


async def test_fifty_concurrent_copies_of_one_event_are_applied_once(client, conn):
    event = realistic_call()["track_published"]
    responses = await asyncio.gather(*(post(client, event) for _ in range(50)))
    statuses = sorted([(await r.json())["status"] for r in responses])
    assert statuses == ["applied"] + ["duplicate"] * 49
    rows = await call_rows(conn, "RM_call")
    assert len(rows["call_participants"]) == 1 and len(rows["call_events"]) == 1


async def test_an_in_flight_delivery_finishes_during_shutdown(pool, conn):
    call = realistic_call()
    port = free_port()
    runner = web.AppRunner(create_app(pool=pool, verifier=verifier()), shutdown_timeout=10)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with aiohttp.ClientSession() as session:
        body, headers = delivery(call["room_started"])
        await session.post(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", data=body, headers=headers)
        # Hold the call's row so the next delivery is still in flight when shutdown begins.
        blocker = conn.transaction()
        await blocker.start()
        await conn.execute("select 1 from voice_calls where session_id = 'RM_call' for update")
        body, headers = delivery(call["caller_joined"])
        in_flight = asyncio.create_task(
            session.post(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", data=body, headers=headers))
        await asyncio.sleep(0.3)
        shutdown = asyncio.create_task(runner.cleanup())
        await asyncio.sleep(0.3)
        assert not in_flight.done() and not shutdown.done()
        await blocker.rollback()
        response = await asyncio.wait_for(in_flight, timeout=5)
        assert (response.status, (await response.json())["status"]) == (200, "applied")
        await asyncio.wait_for(shutdown, timeout=5)
    assert await conn.fetchval("select count(*) from call_participants") == 1


async def test_the_process_serves_and_stops_cleanly_on_sigterm(db_dsn, tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_dsn, "LIVEKIT_API_KEY": "devkey",
           "LIVEKIT_API_SECRET": "secret", "WEBHOOK_KEYS": "", "WEBHOOK_JOURNAL_DIR": str(tmp_path)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "webhooks", "--port", str(port), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    async with session.get(f"{base}/readyz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the service did not become ready in 10 s")
            body, headers = delivery(realistic_call()["room_started"])
            async with session.post(f"{base}{WEBHOOK_PATH}", data=body, headers=headers) as response:
                assert response.status == 200
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=15)
        assert process.returncode == 0, output.decode()
        assert b"finishing in-flight deliveries" in output
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
