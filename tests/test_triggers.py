"""The triggers of 0001: call and participant durations, total_tokens_used kept equal to the sum
over a call's messages, updated_at."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from db import ids
from db.calls import calls, messages, participants
from db.calls.messages import Message
from db.pool import connect

pytestmark = pytest.mark.db

T0 = datetime(2025, 3, 14, 9, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def total_tokens(conn, session_id: str) -> int:
    return await conn.fetchval(
        "select total_tokens_used from voice_calls where session_id = $1", session_id
    )


async def tokens_sum(conn, session_id: str) -> int:
    return await conn.fetchval(
        "select coalesce(sum(tokens_used), 0) from voice_messages where call_id = $1",
        ids.call_id(session_id),
    )


def turn(session_id: str, seq: int, tokens: int, role: str = "assistant") -> Message:
    return Message(
        call_id=ids.call_id(session_id), sequence_number=seq, item_id=f"item_{seq}", role=role,
        content=f"turn {seq}", tokens_used=tokens,
    )


# Call duration -----------------------------------------------------------------------------------


async def test_call_duration_runs_from_connection_to_end(conn):
    await calls.start_call(conn, session_id="RM_d1", started_at=at(0))
    await calls.mark_connected(conn, session_id="RM_d1", connected_at=at(5))
    call = await calls.finish_call(
        conn, session_id="RM_d1", status="completed", ended_at=at(65), closed_by="agent"
    )
    assert call.duration_seconds == 60


async def test_call_duration_falls_back_to_start_when_never_connected(conn):
    await calls.start_call(conn, session_id="RM_d2", started_at=at(0))
    call = await calls.finish_call(
        conn, session_id="RM_d2", status="abandoned", ended_at=at(12.4), closed_by="webhook"
    )
    assert call.connected_at is None
    assert call.duration_seconds == 12


async def test_call_duration_is_recomputed_when_a_later_write_moves_its_bounds(conn):
    await calls.start_call(conn, session_id="RM_d3", started_at=at(10))
    await calls.finish_call(
        conn, session_id="RM_d3", status="completed", ended_at=at(70), closed_by="agent"
    )
    # An earlier start arriving late (the webhook's room_started) lengthens the call...
    call = await calls.start_call(conn, session_id="RM_d3", started_at=at(0))
    assert call.duration_seconds == 70
    # ...and a connection time reported after the end shortens it to the served part.
    call = await calls.mark_connected(conn, session_id="RM_d3", connected_at=at(20))
    assert call.duration_seconds == 50


async def test_call_duration_is_clamped_at_zero_when_clocks_disagree(conn):
    await calls.start_call(conn, session_id="RM_d4", started_at=at(10))
    call = await calls.finish_call(
        conn, session_id="RM_d4", status="failed", ended_at=at(9), closed_by="webhook"
    )
    assert call.duration_seconds == 0


async def test_open_call_has_no_duration(conn):
    await calls.start_call(conn, session_id="RM_d5", started_at=at(0))
    call = await calls.mark_connected(conn, session_id="RM_d5", connected_at=at(3))
    assert call.duration_seconds is None


# Participant duration ----------------------------------------------------------------------------


async def test_participant_duration_runs_from_join_to_leave(conn):
    await calls.start_call(conn, session_id="RM_p1", started_at=at(0))
    p = await participants.upsert_participant(
        conn, session_id="RM_p1", participant_sid="PA_1", identity="caller", joined_at=at(2)
    )
    assert p.duration_seconds is None
    p = await participants.upsert_participant(
        conn, session_id="RM_p1", participant_sid="PA_1", identity="caller", left_at=at(47)
    )
    assert p.duration_seconds == 45


async def test_participant_duration_is_computed_when_the_join_arrives_after_the_leave(conn):
    await calls.start_call(conn, session_id="RM_p2", started_at=at(0))
    p = await participants.upsert_participant(
        conn, session_id="RM_p2", participant_sid="PA_2", identity="agent", left_at=at(30)
    )
    assert p.duration_seconds is None
    p = await participants.upsert_participant(
        conn, session_id="RM_p2", participant_sid="PA_2", identity="agent", joined_at=at(1)
    )
    assert (p.joined_at, p.left_at, p.duration_seconds) == (at(1), at(30), 29)


# total_tokens_used ------------------------------------------------------------------------------


async def test_total_tokens_follow_inserted_messages(conn):
    await calls.start_call(conn, session_id="RM_t1")
    await messages.append_messages(conn, messages=[turn("RM_t1", 0, 10)])
    assert await total_tokens(conn, "RM_t1") == 10
    await messages.append_messages(conn, messages=[turn("RM_t1", 1, 15), turn("RM_t1", 2, 7)])
    assert await total_tokens(conn, "RM_t1") == 32 == await tokens_sum(conn, "RM_t1")


async def test_total_tokens_ignore_a_rewritten_message(conn):
    await calls.start_call(conn, session_id="RM_t2")
    await messages.append_messages(conn, messages=[turn("RM_t2", 0, 10)])
    await messages.append_messages(conn, messages=[turn("RM_t2", 0, 10)])
    assert await total_tokens(conn, "RM_t2") == 10


async def test_total_tokens_follow_updated_and_deleted_messages(conn):
    await calls.start_call(conn, session_id="RM_t3")
    await messages.append_messages(
        conn, messages=[turn("RM_t3", 0, 10), turn("RM_t3", 1, 20), turn("RM_t3", 2, 30)]
    )
    await conn.execute(
        "update voice_messages set tokens_used = 100 where call_id = $1 and sequence_number = 1",
        ids.call_id("RM_t3"),
    )
    assert await total_tokens(conn, "RM_t3") == 140
    await conn.execute(
        "delete from voice_messages where call_id = $1 and sequence_number = 2",
        ids.call_id("RM_t3"),
    )
    assert await total_tokens(conn, "RM_t3") == 110
    await conn.execute("delete from voice_messages where call_id = $1", ids.call_id("RM_t3"))
    assert await total_tokens(conn, "RM_t3") == 0


async def test_total_tokens_after_multi_row_statements_over_several_calls(conn):
    for sid in ("RM_t4", "RM_t5"):
        await calls.start_call(conn, session_id=sid)
    # One executemany spanning two calls, then one INSERT .. SELECT of many rows.
    await conn.executemany(
        "insert into voice_messages (call_id, sequence_number, item_id, role, tokens_used, "
        "call_created_at) values ($1, $2, $3, 'user', $4, call_partition_key($1))",
        [(ids.call_id("RM_t4"), i, f"a{i}", i) for i in range(10)]
        + [(ids.call_id("RM_t5"), i, f"a{i}", 2 * i) for i in range(10)],
    )
    assert await total_tokens(conn, "RM_t4") == 45
    assert await total_tokens(conn, "RM_t5") == 90
    await conn.execute(
        "insert into voice_messages (call_id, sequence_number, item_id, role, tokens_used, "
        "call_created_at) select c.id, 100 + g, 'b' || g, 'assistant', 3, c.created_at "
        "from voice_calls c, generate_series(1, 50) g"
    )
    assert await total_tokens(conn, "RM_t4") == 45 + 150
    assert await total_tokens(conn, "RM_t5") == 90 + 150
    await conn.execute("update voice_messages set tokens_used = tokens_used + 1")
    assert await total_tokens(conn, "RM_t4") == await tokens_sum(conn, "RM_t4") == 195 + 60
    assert await total_tokens(conn, "RM_t5") == await tokens_sum(conn, "RM_t5") == 240 + 60


async def test_total_tokens_follow_a_message_moved_to_another_call(conn):
    for sid in ("RM_t6", "RM_t7"):
        await calls.start_call(conn, session_id=sid)
    await messages.append_messages(conn, messages=[turn("RM_t6", 0, 10), turn("RM_t6", 1, 5)])
    await conn.execute(
        "update voice_messages set call_id = $2 where call_id = $1 and sequence_number = 1",
        ids.call_id("RM_t6"), ids.call_id("RM_t7"),
    )
    assert await total_tokens(conn, "RM_t6") == 10
    assert await total_tokens(conn, "RM_t7") == 5


async def test_total_tokens_stay_exact_when_two_transactions_write_one_call(db_dsn, conn):
    """Two writers (e.g. a recorder flushing on two pooled connections) add messages to the same
    call in overlapping transactions: neither's tokens may be lost."""
    await calls.start_call(conn, session_id="RM_t8")
    first, second = await connect(db_dsn), await connect(db_dsn)
    try:
        tx1, tx2 = first.transaction(), second.transaction()
        await tx1.start()
        await tx2.start()
        await messages.append_messages(first, messages=[turn("RM_t8", 0, 10)])
        # The second writer's trigger waits on the call row the first one updated.
        blocked = asyncio.create_task(
            messages.append_messages(second, messages=[turn("RM_t8", 1, 20)])
        )
        await asyncio.sleep(0.2)
        assert not blocked.done()
        await tx1.commit()
        await blocked
        await tx2.commit()
    finally:
        await first.close()
        await second.close()
    assert await tokens_sum(conn, "RM_t8") == 30
    assert await total_tokens(conn, "RM_t8") == 30


# updated_at -------------------------------------------------------------------------------------


async def test_updated_at_changes_on_every_update_of_a_call(conn):
    before = await calls.start_call(conn, session_id="RM_u1", started_at=at(0))
    after = await calls.update_call(conn, session_id="RM_u1", llm_model="gpt-4o-mini")
    assert after.updated_at > before.updated_at
    assert after.created_at == before.created_at


async def test_updated_at_changes_on_update_of_a_participant_and_a_user(conn):
    await calls.start_call(conn, session_id="RM_u2", started_at=at(0))
    await participants.upsert_participant(
        conn, session_id="RM_u2", participant_sid="PA_u", identity="caller", joined_at=at(1)
    )
    query = "select created_at, updated_at from call_participants where participant_sid = 'PA_u'"
    created, updated = await conn.fetchrow(query)
    await participants.upsert_participant(
        conn, session_id="RM_u2", participant_sid="PA_u", identity="caller", left_at=at(9)
    )
    created_after, updated_after = await conn.fetchrow(query)
    assert created_after == created
    assert updated_after > updated

    user_id = await conn.fetchval("insert into users (email) values ('a@example.com') returning id")
    user_before = await conn.fetchval("select updated_at from users where id = $1", user_id)
    await conn.execute("update users set full_name = 'Ada' where id = $1", user_id)
    assert await conn.fetchval("select updated_at from users where id = $1", user_id) > user_before
