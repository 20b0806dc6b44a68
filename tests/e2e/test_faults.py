"""Faults in the middle of a real call: the agent worker killed with SIGKILL, and Postgres
stopped and started again. The call record must still be complete and exact."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from db.calls.lifecycle import AGENT_LEFT_OPEN
from db.embedded import EmbeddedPostgres
from tests.e2e.calls import create_room, dial, latency_summary, settled_report
from tests.e2e.conftest import (
    create_demo_database,
    note,
    register_stack,
    skip_reason,
    unregister_stack,
)
from tests.e2e.conversation import BOOKING_REQUEST, CALLER_LINES, GOODBYE, QUESTION
from tests.e2e.servers import free_port
from tests.e2e.services import CallStack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_killed_worker_leaves_its_finished_turns_and_the_webhook_closes_the_call(
        live_stack, e2e_conn):
    room, room_sid = await create_room(live_stack, prefix="e2e-kill")
    caller = dial(live_stack, room)
    lines = [CALLER_LINES[QUESTION], CALLER_LINES[BOOKING_REQUEST]]
    caller.rehearse(lines)
    await caller.join()
    await caller.hear_reply(within=30)
    for line in lines:
        await caller.say(line)
        await caller.hear_reply()
    assert live_stack.worker is not None
    killed = live_stack.worker.kill_tree()  # no shutdown hook, no flush: SIGKILL
    await asyncio.sleep(1.0)
    await caller.hang_up()

    report = await settled_report(e2e_conn, room_sid, status="failed")
    call = report.call
    assert (call.status, call.closed_by, call.end_reason) == ("failed", "webhook", AGENT_LEFT_OPEN)
    assert call.ended_at is not None and len(killed) >= 2  # the worker and its job process(es)
    # Every turn the caller heard finish before the kill: greeting, two questions, two answers.
    assert [m.role for m in report.messages] == ["assistant", "user", "assistant", "user", "assistant"]
    assert [m.sequence_number for m in report.messages] == list(range(5))
    assert "parking" in report.messages[1].content and "cleaning" in report.messages[3].content
    assert report.messages[4].content.startswith("The first opening is ")
    tools = [(e.event_type, e.payload["name"]) for e in report.events
             if e.event_type in ("tool_call", "tool_result")]
    assert tools == [("tool_call", "answer_question"), ("tool_result", "answer_question"),
                     ("tool_call", "check_availability"), ("tool_result", "check_availability")]
    # LiveKit saw both leave: the agent's connection dropped, then the caller hung up.
    assert len(report.participants) == 2
    assert all(p.left_at is not None for p in report.participants)


@pytest.fixture
async def stoppable_postgres(tmp_path: Path):
    """A Postgres of this test's own on a fixed port, so it can be stopped and started again
    under the processes using it."""
    if reason := skip_reason("livekit-server"):
        pytest.skip(reason)
    server = EmbeddedPostgres(tmp_path / "pg" / "data", port=free_port(), fsync=False).start()
    _, dsn = await create_demo_database(server.admin_dsn)
    yield server, dsn
    server.stop()


async def test_postgres_restart_mid_call_loses_and_duplicates_nothing(stoppable_postgres, tmp_path):
    server, dsn = stoppable_postgres
    stack = CallStack(tmp_path, dsn=dsn).start()
    register_stack(stack)
    try:
        await _call_through_an_outage(stack, server, dsn)
    finally:
        unregister_stack(stack)
        stack.stop()


async def _call_through_an_outage(stack: CallStack, server: EmbeddedPostgres, dsn: str) -> None:
    from db.pool import connect

    room, room_sid = await create_room(stack, prefix="e2e-pg")
    caller = dial(stack, room)
    lines = [CALLER_LINES[i] for i in (QUESTION, BOOKING_REQUEST, GOODBYE)]
    caller.rehearse(lines)
    await caller.join()
    await caller.hear_reply(within=30)
    await caller.say(lines[0])
    await caller.hear_reply()

    server.stop()  # the booking request runs into a dead database
    await caller.say(lines[1])
    await caller.hear_reply()
    await asyncio.to_thread(server.start)
    await caller.say(lines[2])
    await caller.hear_reply()
    await caller.hang_up()

    conn = await connect(dsn)
    try:
        report = await settled_report(conn, room_sid, status="completed", within=45)
        note("postgres restart call, " + latency_summary(caller.turns, report))
        duplicates = await conn.fetchval(
            "select count(*) - count(distinct item_id) from voice_messages where call_id = $1",
            report.call.id)
    finally:
        await conn.close()
    assert (report.call.end_reason, report.call.closed_by) == ("caller_hung_up", "agent")
    messages = report.messages
    assert [m.role for m in messages] == ["assistant"] + ["user", "assistant"] * 3
    assert [m.sequence_number for m in messages] == list(range(7)) and duplicates == 0
    # The tool could not reach Postgres, and said so in words the agent could pass on.
    assert messages[4].content.startswith("I'm sorry, our booking system is not answering")
    kinds = Counter((e.event_type, e.payload.get("name")) for e in report.events)
    assert kinds[("tool_call", "answer_question")] == kinds[("tool_result", "answer_question")] == 1
    assert kinds[("tool_call", "check_availability")] == 1
    assert kinds[("tool_result", "check_availability")] == 1
    assert kinds[("usage", None)] == 1
    # The outage really hit the recorder: it spooled rows and replayed them.
    assert stack.worker is not None
    log = stack.worker.log_path.read_text(errors="replace")
    assert "database unavailable" in log and "spool replayed" in log
