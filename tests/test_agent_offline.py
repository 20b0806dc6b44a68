"""Always answer: a call arriving while Postgres is away is answered with its location's last
known route (cached by the process on an earlier call; here as a second job in that call's room),
the receptionist says it cannot book, the booking tool says the system is not answering, and the
call's rows wait in the spool until Postgres is back. The server is a restartable embedded
Postgres of this module's own."""

from __future__ import annotations

import asyncio

import pytest

from agent.call import close_call
from agent.routing import RouteCache
from agent.scripted import Step
from agent.settings import Settings
from db.pool import connection_options, create_pool
from db.recorder import Recorder, RecorderOptions
from tests.clock import local, next_open_weekday
from tests.harness import demo_tenant, open_text_call, spool_dir, stored_call

pytestmark = [pytest.mark.db, pytest.mark.slow]


async def test_a_call_while_postgres_is_away_is_answered_from_the_cached_route(pg, fault_dsn, tmp_path):
    dsn = fault_dsn
    pool = await create_pool(dsn, min_size=0, max_size=4, **connection_options(Settings()))
    recorder = Recorder(dsn, spool_dir=spool_dir(tmp_path), name="offline",
                        options=RecorderOptions(retry_interval=0.1, retry_max_interval=0.5))
    await recorder.start()
    routes = RouteCache()
    try:
        await demo_tenant(pool)
        earlier = await open_text_call(pool, recorder, routes=routes)  # fills the cache
        assert not earlier.desk.offline
        await earlier.say("hello", Step(text="Hi."))
        await earlier.hang_up(recorder)

        # A second job in the same room, as after a worker crash, while Postgres is away: it
        # cannot read where the first job's turns ended, and numbers its own from the clock.
        await asyncio.to_thread(pg.stop)
        call = await asyncio.wait_for(open_text_call(pool, recorder, routes=routes,
                                                     session_id=earlier.desk.session_id), 5)
        assert call.desk.offline and call.desk.location == earlier.desk.location
        assert "cannot book" in call.session.current_agent.instructions
        result = await call.say("book me a cleaning", Step(calls=[("book_appointment", {
            "service": "cleaning", "start_time": local(next_open_weekday(), "10:00"),
            "customer_name": "Jane Doe"})]), Step(text="I can take a message."))
        result.expect.next_event().is_function_call(name="book_appointment")
        output = result.expect.next_event().is_function_call_output(is_error=True)
        assert "not answering right now" in output.event().item.output
        close_call(call.desk, reason="caller_hung_up")
        await call.session.aclose()
        assert await recorder.flush(1, session_id=call.desk.session_id) is False
        assert recorder.stats().spooled > 0

        await asyncio.to_thread(pg.start)
        assert await recorder.flush(30)
        assert recorder.stats().dead_lettered == 0
        stored = await stored_call(pool, call.desk.session_id)
        assert stored.call.status == "completed" and stored.call.metadata["route"] == "cached"
        assert [m.content for m in stored.messages] == [
            "hello", "Hi.", "book me a cleaning", "I can take a message."]
        assert [m.sequence_number for m in stored.messages][:2] == [0, 1]
        assert "tool_result" in stored.event_types
    finally:
        await recorder.close()
        await pool.close()
