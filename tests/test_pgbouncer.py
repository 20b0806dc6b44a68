"""Behind a transaction-mode pooler, as on Supabase (DATABASE_POOL_MODE=transaction): the
migrations (through DATABASE_DIRECT_URL), the recorder, the webhook service and a text-mode call
all work through a real PgBouncer with pool_mode = transaction."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
import pytest

from db import ids
from db.calls.events import Event
from db.calls.messages import Message
from db.pool import connection_options, create_pool
from db.recorder import Recorder, RecorderOptions
from db.settings import DatabaseSettings
from tests.clock import local, next_open_weekday
from tests.harness import open_text_call, stored
from tests.livekit_webhooks import call_rows, check_realistic_call, post, realistic_call, webhook_client
from tests.pgbouncer import PgBouncer, missing_reason

pytestmark = [
    pytest.mark.db,
    pytest.mark.pgbouncer,
    pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or ""),
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

POOLED = DatabaseSettings(database_pool_mode="transaction", database_url="set by each test")


@pytest.fixture(scope="module")
def bouncer(admin_dsn: str) -> Iterator[PgBouncer]:
    pooler = PgBouncer(admin_dsn).start()
    yield pooler
    pooler.stop()


@pytest.fixture
async def pooled_pool(bouncer, db_dsn):
    pool = await create_pool(bouncer.dsn(db_dsn), min_size=1, max_size=8, **connection_options(POOLED))
    yield pool
    await pool.close()


@pytest.fixture
async def pooled_recorder(bouncer, db_dsn, tmp_path, tenant):
    rec = Recorder(bouncer.dsn(db_dsn), spool_dir=tmp_path, name="pooled",
                   options=RecorderOptions(pooled=True))
    await rec.start()
    yield rec
    await rec.close()


async def run_db(*args: str, env: dict[str, str], cwd) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "db", *args, cwd=cwd, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode, output.decode()


async def test_migrations_go_to_the_direct_url_and_the_rest_through_the_pooler(bouncer, empty_dsn,
                                                                                 repo_root):
    pooled = {"DATABASE_URL": bouncer.dsn(empty_dsn), "DATABASE_POOL_MODE": "transaction"}
    code, output = await run_db("migrate", env={**pooled, "DATABASE_DIRECT_URL": ""}, cwd=repo_root)
    assert code == 1 and "needs DATABASE_DIRECT_URL" in output
    code, output = await run_db("migrate", env={**pooled, "DATABASE_DIRECT_URL": empty_dsn},
                                cwd=repo_root)
    assert code == 0 and "applied 0001_call_schema.sql" in output, output
    code, output = await run_db("seed", "--demo", env={**pooled, "DATABASE_DIRECT_URL": empty_dsn},
                                cwd=repo_root)
    assert code == 0 and "nothing to do" in output, output
    code, output = await run_db("status", env=pooled, cwd=repo_root)
    assert code == 0 and " 0 pending" in output, output


async def test_asyncpg_statement_cache_breaks_behind_the_pooler_and_ours_does_not(bouncer, db_dsn):
    """Why the cache is off: a named prepared statement lives on one server connection, and the
    next transaction may get another."""
    async def run(options: dict) -> None:
        pool = await create_pool(bouncer.dsn(db_dsn), min_size=4, max_size=4, **options)
        try:
            await asyncio.gather(*(pool.fetchval("select count(*) from voice_calls where id = $1",
                                                 ids.call_id(f"RM_{n}")) for n in range(200)))
        finally:
            await pool.close()

    with pytest.raises(asyncpg.PostgresError):
        await run({})
    await run(connection_options(POOLED))


async def test_the_recorder_writes_through_the_pooler(pooled_recorder, conn):
    now = datetime.now(UTC)
    for n in range(3):
        sid = f"RM_pooled_{n}"
        call = ids.call_id(sid)
        pooled_recorder.start_call(session_id=sid, room_name="front-desk")
        for turn in range(20):
            pooled_recorder.message(Message(call_id=call, sequence_number=turn, item_id=f"i{turn}",
                                            role="user", content="hello", started_at=now))
            pooled_recorder.event(Event(id=ids.event_id(call, f"e{turn}"), call_id=call,
                                        event_type="tool_call", payload={"n": turn}, occurred_at=now))
    assert await pooled_recorder.flush(10)
    counts = await conn.fetchrow("select (select count(*) from voice_calls) as calls, "
                                 "(select count(*) from voice_messages) as messages, "
                                 "(select count(*) from call_events) as events")
    assert tuple(counts) == (3, 60, 60)
    assert pooled_recorder.stats().spooled == 0


async def test_the_webhook_service_applies_a_call_through_the_pooler(pooled_pool, conn):
    async with webhook_client(pooled_pool) as client:
        for event in realistic_call().values():
            response = await post(client, event)
            assert response.status == 200
    check_realistic_call(await call_rows(conn, "RM_call"), "RM_call")


async def test_a_text_mode_booking_call_through_the_pooler(pooled_pool, pooled_recorder, tenant):
    from agent.scripted import Step

    call = await open_text_call(pooled_pool, pooled_recorder)
    day = next_open_weekday()
    result = await call.say("a cleaning please, I'm Jane Doe", Step(calls=[("book_appointment", {
        "service": "cleaning", "start_time": local(day, "10:00"), "customer_name": "Jane Doe"})]),
        Step(text="Booked."))
    result.expect.next_event().is_function_call(name="book_appointment")
    result.expect.next_event().is_function_call_output(is_error=False)
    await call.hang_up(pooled_recorder)
    await pooled_recorder.flush(10)
    report = await stored(pooled_pool, call.desk.session_id)
    assert report.call.outcome == "appointment_booked" and len(report.appointments) == 1
