"""The repositories of calls, participants, messages and events: upserts that converge in any
order, idempotent appends, and bad input turned into our own errors with nothing written."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from db import ids
from db.calls import calls, events, messages, participants
from db.calls.calls import CallNotFound, DuplicateSession
from db.calls.events import Event
from db.calls.messages import Message
from db.errors import Conflict, InvalidInput, translated

pytestmark = pytest.mark.db

T0 = datetime(2025, 3, 14, 9, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# The writes one call receives from the agent and the webhook service.
def start_late(conn, sid):  # the agent's start: a later clock, the room name
    return calls.start_call(conn, session_id=sid, room_name="front-desk", started_at=at(1))


def start_early(conn, sid):  # the webhook's room_started, and the SIP caller's number
    return calls.start_call(conn, session_id=sid, started_at=at(0), caller_number="+15550100")


def connected(conn, sid):
    return calls.mark_connected(conn, session_id=sid, connected_at=at(2))


def agent_finish(conn, sid):
    return calls.finish_call(
        conn, session_id=sid, status="completed", ended_at=at(95), closed_by="agent",
        end_reason="caller_said_goodbye", outcome="appointment_booked",
    )


def webhook_finish(conn, sid):
    return calls.finish_call(
        conn, session_id=sid, status="failed", ended_at=at(96), closed_by="webhook",
        end_reason="room_finished_without_agent_close",
    )


def caller_joined(conn, sid):
    return participants.upsert_participant(
        conn, session_id=sid, participant_sid="PA_caller", identity="sip_+15550100",
        name="Caller", kind="sip", attributes={"sip.callID": "abc"}, joined_at=at(1.5),
    )


def caller_left(conn, sid):
    return participants.upsert_participant(
        conn, session_id=sid, participant_sid="PA_caller", identity="sip_+15550100",
        left_at=at(93.5),
    )


WRITES = (start_late, start_early, connected, agent_finish, webhook_finish, caller_joined, caller_left)

CALL_STATE = """
select session_id, room_name, user_id, direction, channel, caller_number, dialed_number,
       sip_call_id, status, end_reason, outcome, closed_by, started_at, connected_at, ended_at,
       duration_seconds, recording_url, transcript, total_tokens_used, ai_agent_used, metadata
  from voice_calls where session_id = any($1::text[])
"""
PARTICIPANT_STATE = """
select c.session_id, p.participant_sid, p.participant_identity, p.participant_name,
       p.participant_type, p.kind, p.attributes, p.joined_at, p.left_at, p.duration_seconds,
       p.is_muted
  from call_participants p join voice_calls c on c.id = p.call_id
 where c.session_id = any($1::text[])
 order by participant_sid
"""


async def final_states(conn, sids: list[str]) -> dict[str, tuple[dict, list[dict]]]:
    """session id -> (call row, participant rows), without ids and the bookkeeping timestamps."""
    states: dict[str, tuple[dict, list[dict]]] = {}
    for row in await conn.fetch(CALL_STATE, sids):
        call = dict(row)
        states[call.pop("session_id")] = (call, [])
    for row in await conn.fetch(PARTICIPANT_STATE, sids):
        person = dict(row)
        states[person.pop("session_id")][1].append(person)
    return states


async def test_call_upserts_converge_in_every_order(pool):
    orders = list(itertools.permutations(WRITES))
    assert len(orders) == 5040
    sids = [f"RM_order_{n}" for n in range(len(orders))]
    # Every write but start_call needs the row; a writer that may come first (the webhook
    # service) creates it with a bare start_call, done here for all orders in one executemany.
    async with pool.acquire() as conn:
        await conn.executemany(calls.START_CALL, [
            (ids.call_id(sid), sid, None, None, None, None, None, None, None, None) for sid in sids
        ])

    todo = list(zip(sids, orders, strict=True))

    async def worker() -> None:
        # One connection per worker for many orders: a pool acquire per order costs a reset.
        async with pool.acquire() as conn:
            while todo:
                sid, order = todo.pop()
                for write in order:
                    await write(conn, sid)

    await asyncio.gather(*(worker() for _ in range(8)))

    async with pool.acquire() as conn:
        states = await final_states(conn, sids)
    assert len(states) == len(orders)
    # repr: the rows hold dicts (jsonb), which do not hash.
    distinct = {repr(state) for state in states.values()}
    assert len(distinct) == 1, f"{len(distinct)} different final rows over {len(orders)} orders"
    call, people = states[sids[0]]
    assert call["status"] == "completed" and call["closed_by"] == "agent"
    assert call["end_reason"] == "caller_said_goodbye" and call["outcome"] == "appointment_booked"
    assert (call["started_at"], call["connected_at"], call["ended_at"]) == (at(0), at(2), at(96))
    assert call["duration_seconds"] == 94
    assert (call["room_name"], call["caller_number"]) == ("front-desk", "+15550100")
    assert people == [{
        "participant_sid": "PA_caller", "participant_identity": "sip_+15550100",
        "participant_name": "Caller", "participant_type": "user", "kind": "sip",
        "attributes": {"sip.callID": "abc"}, "joined_at": at(1.5), "left_at": at(93.5),
        "duration_seconds": 92, "is_muted": False,
    }]


async def test_finished_call_never_returns_to_active(conn):
    await calls.start_call(conn, session_id="RM_closed", started_at=at(0))
    await calls.finish_call(
        conn, session_id="RM_closed", status="abandoned", ended_at=at(8), closed_by="webhook"
    )
    await calls.start_call(conn, session_id="RM_closed", started_at=at(0))
    call = await calls.mark_connected(conn, session_id="RM_closed", connected_at=at(3))
    assert call.status == "abandoned"
    assert call.connected_at == at(3)


@pytest.mark.parametrize("order", ["agent_first", "webhook_first"])
async def test_agent_verdict_beats_the_webhooks(conn, order):
    await calls.start_call(conn, session_id="RM_verdict", started_at=at(0))
    writes = [agent_finish, webhook_finish]
    if order == "webhook_first":
        writes.reverse()
    for write in writes:
        call = await write(conn, "RM_verdict")
    assert (call.status, call.closed_by, call.end_reason) == ("completed", "agent", "caller_said_goodbye")
    assert call.ended_at == at(96)


async def test_a_second_webhook_close_changes_only_the_end_time(conn):
    await calls.start_call(conn, session_id="RM_twice", started_at=at(0))
    await calls.finish_call(
        conn, session_id="RM_twice", status="abandoned", ended_at=at(5), closed_by="webhook",
        end_reason="caller_left_before_agent",
    )
    call = await webhook_finish(conn, "RM_twice")
    assert (call.status, call.end_reason, call.ended_at) == ("abandoned", "caller_left_before_agent", at(96))


async def test_participant_left_before_joined_is_merged(conn):
    await calls.start_call(conn, session_id="RM_left", started_at=at(0))
    await caller_left(conn, "RM_left")
    await caller_joined(conn, "RM_left")
    (p,) = await participants.list_participants(conn, session_id="RM_left")
    assert (p.joined_at, p.left_at, p.duration_seconds) == (at(1.5), at(93.5), 92)
    assert (p.kind, p.participant_name) == ("sip", "Caller")


async def test_start_call_fills_blanks_and_keeps_what_is_stored(conn):
    await calls.start_call(conn, session_id="RM_fill", room_name="a", metadata={"k": 1, "x": 1})
    call = await calls.start_call(
        conn, session_id="RM_fill", room_name="b", dialed_number="+15550199",
        metadata={"k": 2, "y": 2},
    )
    assert (call.room_name, call.dialed_number) == ("a", "+15550199")
    assert call.metadata == {"k": 1, "x": 1, "y": 2}
    assert call.id == ids.call_id("RM_fill")


async def test_update_call_sets_columns_and_merges_metadata(conn):
    await calls.start_call(conn, session_id="RM_upd", metadata={"a": 1})
    call = await calls.update_call(
        conn, session_id="RM_upd", llm_model="gpt-4o-mini", recording_url="s3://r", metadata={"b": 2}
    )
    assert (call.llm_model, call.recording_url, call.metadata) == ("gpt-4o-mini", "s3://r", {"a": 1, "b": 2})
    assert await calls.get_call(conn, session_id="RM_upd") == call


async def test_messages_and_events_are_idempotent_and_ordered(conn):
    call = await calls.start_call(conn, session_id="RM_idem")
    turns = [
        Message(call_id=call.id, sequence_number=i, item_id=f"it_{i}", role=role, content=text)
        for i, (role, text) in enumerate([("assistant", "Hello"), ("user", "Hi"), ("assistant", "Ok")])
    ]
    await messages.append_messages(conn, messages=turns[1:])
    await messages.append_messages(conn, messages=turns)
    stored = await messages.list_messages(conn, session_id="RM_idem")
    assert stored == turns

    log = [
        Event(id=ids.event_id(call.id, f"e{i}"), call_id=call.id, event_type=kind, occurred_at=at(i))
        for i, kind in enumerate(["room_started", "tool_call", "tool_result", "call_ended"])
    ]
    await events.append_events(conn, events=log)
    await events.append_events(conn, events=log[1:3])
    stored_events = await events.list_events(conn, session_id="RM_idem")
    assert [e.event_type for e in stored_events] == ["room_started", "tool_call", "tool_result", "call_ended"]
    assert [e.sequence for e in stored_events] == sorted(e.sequence for e in stored_events)


# Bad input: our error, nothing written -----------------------------------------------------------


async def row_counts(conn) -> dict[str, int]:
    tables = ("voice_calls", "call_participants", "voice_messages", "call_events")
    return {t: await conn.fetchval(f"select count(*) from {t}") for t in tables}


@pytest.fixture
async def started(conn):
    call = await calls.start_call(conn, session_id="RM_bad", started_at=at(0))
    await messages.append_messages(
        conn, messages=[Message(call_id=call.id, sequence_number=0, item_id="it_0", role="user")]
    )
    return call


async def test_unknown_status_is_refused(conn, started):
    before = await row_counts(conn), await calls.get_call(conn, session_id="RM_bad")
    with pytest.raises(InvalidInput, match="bogus"):
        await calls.finish_call(
            conn, session_id="RM_bad", status="bogus", ended_at=at(9), closed_by="agent"
        )
    with pytest.raises(InvalidInput, match="closed_by"):
        await calls.finish_call(
            conn, session_id="RM_bad", status="failed", ended_at=at(9), closed_by="somebody"
        )
    assert (await row_counts(conn), await calls.get_call(conn, session_id="RM_bad")) == before


async def test_duplicate_session_id_inserted_directly_is_refused(conn, started):
    before = await row_counts(conn)
    with pytest.raises(DuplicateSession, match="voice_calls_session_id_key"):
        with translated():
            await conn.execute("insert into voice_calls (session_id) values ('RM_bad')")
    assert await row_counts(conn) == before


async def test_negative_duration_is_refused(conn, started):
    before = await calls.get_call(conn, session_id="RM_bad")
    with pytest.raises(InvalidInput, match="voice_calls_duration_check"):
        with translated():
            await conn.execute(
                "update voice_calls set duration_seconds = -5 where session_id = 'RM_bad'"
            )
    await caller_joined(conn, "RM_bad")
    with pytest.raises(InvalidInput, match="call_participants_duration_check"):
        with translated():
            await conn.execute("update call_participants set duration_seconds = -1")
    assert await calls.get_call(conn, session_id="RM_bad") == before
    assert await conn.fetchval("select duration_seconds from call_participants") is None


async def test_message_for_a_missing_call_is_refused_and_its_batch_not_written(conn, started):
    before = await row_counts(conn)
    missing = ids.call_id("RM_nowhere")
    batch = [
        Message(call_id=started.id, sequence_number=1, item_id="it_1", role="assistant", tokens_used=5),
        Message(call_id=missing, sequence_number=0, item_id="it_0", role="user"),
    ]
    with pytest.raises(CallNotFound, match="voice_messages_call_id_fkey"):
        await messages.append_messages(conn, messages=batch)
    assert await row_counts(conn) == before
    assert (await calls.get_call(conn, session_id="RM_bad")).total_tokens_used == 0


async def test_unknown_message_role_is_refused(conn, started):
    before = await row_counts(conn)
    with pytest.raises(InvalidInput, match="robot"):
        Message(call_id=started.id, sequence_number=1, item_id="it_1", role="robot")
    with pytest.raises(InvalidInput, match="robot"):
        with translated():
            await conn.execute(
                "insert into voice_messages (call_id, sequence_number, item_id, role, "
                "call_created_at) values ($1, 1, 'it_1', 'robot', now())", started.id,
            )
    assert await row_counts(conn) == before


async def test_unknown_event_type_is_refused(conn, started):
    before = await row_counts(conn)
    with pytest.raises(InvalidInput, match="teleported"):
        Event(id=uuid.uuid4(), call_id=started.id, event_type="teleported")
    with pytest.raises(CallNotFound, match="call_events_call_id_fkey"):
        await events.append_events(
            conn, events=[Event(id=uuid.uuid4(), call_id=ids.call_id("RM_nowhere"), event_type="error")]
        )
    assert await row_counts(conn) == before


async def test_writes_to_a_call_that_was_never_started_are_refused(conn):
    with pytest.raises(CallNotFound, match="RM_ghost"):
        await calls.mark_connected(conn, session_id="RM_ghost", connected_at=at(1))
    with pytest.raises(CallNotFound, match="RM_ghost"):
        await agent_finish(conn, "RM_ghost")
    with pytest.raises(CallNotFound, match="RM_ghost"):
        await calls.update_call(conn, session_id="RM_ghost", outcome="x")
    with pytest.raises(CallNotFound, match="RM_ghost"):
        await caller_joined(conn, "RM_ghost")
    assert set((await row_counts(conn)).values()) == {0}


async def test_other_bad_values_are_refused(conn, started):
    before = await row_counts(conn)
    with pytest.raises(InvalidInput, match="session id"):
        await calls.start_call(conn, session_id="")
    with pytest.raises(InvalidInput, match="ended_at"):
        await calls.update_call(conn, session_id="RM_bad", ended_at=at(1))
    with pytest.raises(InvalidInput, match="participant_type"):
        await participants.upsert_participant(
            conn, session_id="RM_bad", participant_sid="PA_x", identity="x", participant_type="boss"
        )
    with pytest.raises(InvalidInput, match="voice_messages_tokens_check"):
        await messages.append_messages(conn, messages=[
            Message(call_id=started.id, sequence_number=1, item_id="it_1", role="user", tokens_used=-3)
        ])
    with pytest.raises(InvalidInput, match="voice_messages_confidence_check"):
        await messages.append_messages(conn, messages=[
            Message(call_id=started.id, sequence_number=1, item_id="it_1", role="user",
                    transcript_confidence=1.5)
        ])
    assert await row_counts(conn) == before


async def test_another_message_at_a_taken_sequence_number_is_a_conflict(conn, started):
    """A retried item is skipped, but a different item claiming a used sequence number is a bug in
    the writer: it must be reported, not silently dropped."""
    clash = Message(call_id=started.id, sequence_number=0, item_id="it_other", role="assistant",
                    content="lost?")
    with pytest.raises(Conflict, match="voice_messages_call_sequence_key"):
        await messages.append_messages(conn, messages=[clash])
    assert [m.item_id for m in await messages.list_messages(conn, session_id="RM_bad")] == ["it_0"]


async def test_errors_are_ours_not_the_drivers(conn, started):
    with pytest.raises(DuplicateSession) as caught:
        with translated():
            await conn.execute("insert into voice_calls (session_id) values ('RM_bad')")
    assert not isinstance(caught.value, asyncpg.PostgresError)
    assert isinstance(caught.value.__cause__, asyncpg.UniqueViolationError)


async def test_concurrent_starts_of_the_same_call_merge_instead_of_failing(pool):
    async def start(i: int):
        async with pool.acquire() as c:
            return await calls.start_call(c, session_id="RM_race", room_name=f"room-{i}")

    started = await asyncio.gather(*(start(i) for i in range(20)))
    assert len({call.id for call in started}) == 1
    async with pool.acquire() as c:
        assert await c.fetchval("select count(*) from voice_calls where session_id = 'RM_race'") == 1
