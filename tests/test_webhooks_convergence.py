"""The webhook effects against a real database: any arrival order of the same events, and any
interleaving with the agent's own writes, ends in the same rows; a call the agent never closed
is closed with a verdict that follows from who was in the room."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest
from google.protobuf.json_format import MessageToJson

from db.calls import calls
from db.calls.lifecycle import AGENT_LEFT_OPEN, AGENT_NEVER_JOINED, CALLER_LEFT_FIRST
from db.desk import locations, organizations
from db.pool import connect
from tests.livekit_webhooks import (
    CALLER_NUMBER,
    DIALED_NUMBER,
    SIP_CALL_ID,
    agent,
    at,
    call_rows,
    check_realistic_call,
    egress_ended,
    participant_event,
    realistic_call,
    room_event,
    sip_caller,
    track_event,
)
from webhooks import effects

pytestmark = pytest.mark.db


async def deliver(conn, event) -> str | None:
    """One delivery as the service applies it: stored and applied in one transaction."""
    async with conn.transaction():
        return await effects.record(conn, event, body=MessageToJson(event))


async def rows_after(conn, session_id: str, steps) -> dict:
    """Apply `steps` (webhook events, or agent calls as coroutine functions of conn) inside a
    transaction that is rolled back, and return the call's rows as they were at the end."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        for step in steps:
            if callable(step):
                await step(conn)
            else:
                await effects.record(conn, step, body=MessageToJson(step))
        return await call_rows(conn, session_id)
    finally:
        await transaction.rollback()


async def test_the_realistic_call_in_order_gives_the_expected_record(conn):
    for event in realistic_call().values():
        assert await deliver(conn, event) == "applied"
    check_realistic_call(await call_rows(conn, "RM_call"), "RM_call")


async def test_a_seeded_sample_of_arrival_orders_converges(conn):
    events = list(realistic_call().values())
    reference = await rows_after(conn, "RM_call", events)
    check_realistic_call(reference, "RM_call")
    rng = random.Random(20251009)
    for _ in range(200):
        order = rng.sample(events, len(events))
        assert await rows_after(conn, "RM_call", order) == reference, [e.event for e in order]


@pytest.mark.slow
async def test_every_arrival_order_of_a_realistic_call_converges(db_dsn):
    """All 7! = 5040 orders, shared among four connections, each with its own room."""
    orders = list(itertools.permutations(range(7)))

    async def worker(n: int) -> int:
        room = f"RM_worker{n}"
        events = list(realistic_call(room).values())
        conn = await connect(db_dsn)
        try:
            reference = await rows_after(conn, room, events)
            check_realistic_call(reference, room)
            checked = 0
            for order in orders[n::4]:
                rows = await rows_after(conn, room, [events[i] for i in order])
                assert rows == reference, [events[i].event for i in order]
                checked += 1
            return checked
        finally:
            await conn.close()

    assert sum(await asyncio.gather(*(worker(n) for n in range(4)))) == 5040


# --- interleaving with the agent's own writes ---------------------------------------------------------

def agent_writes(room: str) -> list:
    """What the agent writes for the same call, in its own order: the call when its job starts,
    connected once it greeted, closed as completed when the caller says goodbye."""
    async def start(conn):
        await calls.start_call(conn, session_id=room, room_name=f"call-{room}", started_at=at(2.5))

    async def connected(conn):
        await calls.mark_connected(conn, session_id=room, connected_at=at(4))

    async def finished(conn):
        await calls.finish_call(conn, session_id=room, status="completed", ended_at=at(60.5),
                                closed_by="agent", end_reason="caller said goodbye", outcome="booked")

    return [start, connected, finished]


def interleavings(first: list, second: list):
    """Every merge of two sequences that keeps each one's own order."""
    n = len(first) + len(second)
    for positions in itertools.combinations(range(n), len(second)):
        a, b = iter(first), iter(second)
        yield [next(b) if i in positions else next(a) for i in range(n)]


async def test_every_interleaving_with_the_agents_writes_converges(conn):
    events = list(realistic_call().values())
    reversed_events = events[::-1]
    reference = None
    count = 0
    rng = random.Random(3)
    # All 120 merges with the webhooks in order, and 30 of the 120 with the webhooks reversed.
    merges = [*interleavings(events, agent_writes("RM_call")),
              *rng.sample(list(interleavings(reversed_events, agent_writes("RM_call"))), 30)]
    for steps in merges:
        rows = await rows_after(conn, "RM_call", steps)
        reference = reference or rows
        assert rows == reference
        count += 1
    assert count == 150
    [call] = reference["voice_calls"]
    # The agent's verdict wins; the earliest connection and the latest end win whoever wrote them.
    assert (call["status"], call["closed_by"], call["end_reason"], call["outcome"]) == (
        "completed", "agent", "caller said goodbye", "booked")
    assert (call["started_at"], call["connected_at"], call["ended_at"]) == (at(0), at(2), at(62))


async def test_the_agent_closing_before_room_finished_is_kept(conn):
    call = realistic_call()
    for event in list(call.values())[:-1]:
        await deliver(conn, event)
    for write in agent_writes("RM_call")[1:]:
        await write(conn)
    await deliver(conn, call["room_finished"])
    closed = await calls.get_call(conn, session_id="RM_call")
    assert (closed.status, closed.closed_by, closed.ended_at) == ("completed", "agent", at(62))


async def test_the_agent_closing_after_room_finished_replaces_the_webhook_verdict(conn):
    for event in realistic_call().values():
        await deliver(conn, event)
    assert (await calls.get_call(conn, session_id="RM_call")).closed_by == "webhook"
    for write in agent_writes("RM_call")[1:]:
        await write(conn)
    closed = await calls.get_call(conn, session_id="RM_call")
    assert (closed.status, closed.closed_by, closed.end_reason) == ("completed", "agent",
                                                                    "caller said goodbye")
    # A late webhook does not re-judge a call the agent closed.
    await deliver(conn, participant_event("participant_left", "RM_call", 63, sip_caller(sid="PA_late")))
    assert (await calls.get_call(conn, session_id="RM_call")).status == "completed"


# --- verdicts on calls the agent never closed -----------------------------------------------------------

async def test_a_call_no_agent_joined_ends_failed_in_every_order(conn):
    caller = sip_caller()
    events = [
        room_event("room_started", "RM_lonely", 0),
        participant_event("participant_joined", "RM_lonely", 1, caller),
        participant_event("participant_left", "RM_lonely", 40, caller),
        room_event("room_finished", "RM_lonely", 41),
    ]
    for order in itertools.permutations(events):
        [call] = (await rows_after(conn, "RM_lonely", order))["voice_calls"]
        assert (call["status"], call["end_reason"], call["closed_by"]) == (
            "failed", AGENT_NEVER_JOINED, "webhook")
        assert call["connected_at"] is None and call["ended_at"] == at(41)


async def test_a_caller_who_left_before_the_agent_joined_ends_abandoned_in_any_order(conn):
    caller, desk = sip_caller(joined=1), agent(joined=5)
    events = [
        room_event("room_started", "RM_hangup", 0),
        participant_event("participant_joined", "RM_hangup", 1, caller),
        participant_event("participant_left", "RM_hangup", 3, caller),
        participant_event("participant_joined", "RM_hangup", 5, desk),
        participant_event("participant_left", "RM_hangup", 6, desk),
        room_event("room_finished", "RM_hangup", 7),
    ]
    reference = await rows_after(conn, "RM_hangup", events)
    rng = random.Random(7)
    # 100 of the 720 orders, seeded, plus the reverse one: the full set takes seconds.
    for order in [events[::-1]] + [rng.sample(events, len(events)) for _ in range(100)]:
        assert await rows_after(conn, "RM_hangup", order) == reference
    [call] = reference["voice_calls"]
    assert (call["status"], call["end_reason"]) == ("abandoned", CALLER_LEFT_FIRST)


async def test_room_finished_before_the_agents_join_is_judged_again_when_the_join_arrives(conn):
    call = realistic_call()
    await deliver(conn, call["room_finished"])
    early = await calls.get_call(conn, session_id="RM_call")
    assert (early.status, early.end_reason) == ("failed", AGENT_NEVER_JOINED)
    await deliver(conn, call["caller_joined"])
    await deliver(conn, call["agent_joined"])
    later = await calls.get_call(conn, session_id="RM_call")
    assert (later.status, later.end_reason, later.connected_at) == ("failed", AGENT_LEFT_OPEN, at(2))


async def test_a_closed_call_never_reopens(conn):
    for event in realistic_call().values():
        await deliver(conn, event)
    await calls.mark_connected(conn, session_id="RM_call", connected_at=at(1), activate=True)
    await calls.start_call(conn, session_id="RM_call", started_at=at(-5))
    reopened = await calls.get_call(conn, session_id="RM_call")
    assert reopened.status == "failed" and reopened.ended_at == at(62)


# --- participants, tracks, recordings -------------------------------------------------------------------

async def test_a_participant_left_before_its_joined_is_kept_and_merged(conn):
    caller = sip_caller()
    await deliver(conn, participant_event("participant_left", "RM_x", 30, caller))
    await deliver(conn, participant_event("participant_joined", "RM_x", 1, caller))
    [row] = (await call_rows(conn, "RM_x"))["call_participants"]
    assert (row["joined_at"], row["left_at"], row["duration_seconds"]) == (at(1), at(30), 29)
    assert row["attributes"]["sip.callID"] == SIP_CALL_ID
    call = await calls.get_call(conn, session_id="RM_x")
    assert (call.caller_number, call.dialed_number, call.sip_call_id) == (
        CALLER_NUMBER, DIALED_NUMBER, SIP_CALL_ID)


async def test_mute_state_follows_the_latest_audio_track_event_in_either_order(conn):
    caller = sip_caller()
    published = track_event("track_published", "RM_m", 3, caller, muted=False)
    muted = track_event("track_unpublished", "RM_m", 9, caller, muted=True)
    for order in ([published, muted], [muted, published]):
        [row] = (await rows_after(conn, "RM_m", order))["call_participants"]
        assert row["is_muted"] is True


async def test_egress_ended_sets_the_latest_recording_in_either_order(conn):
    first = egress_ended("RM_call", 50, "s3://recordings/first.ogg")
    second = egress_ended("RM_call", 70, "s3://recordings/second.ogg")
    for order in ([first, second], [second, first]):
        [call] = (await rows_after(conn, "RM_call", order))["voice_calls"]
        assert call["recording_url"] == "s3://recordings/second.ogg"


async def test_an_event_without_an_effect_is_stored_and_changes_nothing_else(conn):
    event = room_event("participant_attributes_changed", "RM_call", 5)
    assert await deliver(conn, event) == "ignored"
    rows = await call_rows(conn, "RM_call")
    assert rows["voice_calls"] == [] and [r["outcome"] for r in rows["webhook_events"]] == ["ignored"]


# --- routing to the location of the dialed number ---------------------------------------------------


async def make_location(conn, slug: str, phone_number: str | None):
    org = await organizations.create_organization(conn, name=slug.title(), slug=slug)
    return await locations.create_location(
        conn, organization_id=org.id, slug="main", name=f"{slug} main", timezone="America/New_York",
        phone_number=phone_number,
        address=locations.Address(line1="1 Main Street", city="Springfield", region="NY",
                                  postal_code="10001"),
    )


async def routed(conn, session_id: str):
    return tuple(await conn.fetchrow(
        "select location_id, organization_id from voice_calls where session_id = $1", session_id))


async def test_a_sip_call_is_routed_to_the_location_of_the_dialed_number_in_any_order(conn):
    clinic = await make_location(conn, "clinic", DIALED_NUMBER)
    await make_location(conn, "elsewhere", "+15550000099")
    for order in (list(realistic_call().values()), list(realistic_call().values())[::-1]):
        transaction = conn.transaction()
        await transaction.start()
        for event in order:
            await deliver(conn, event)
        assert await routed(conn, "RM_call") == (clinic.id, clinic.organization_id)
        await transaction.rollback()


async def test_the_agents_own_routing_is_not_overridden(conn):
    await make_location(conn, "clinic", DIALED_NUMBER)
    chosen = await make_location(conn, "by-metadata", None)
    call = realistic_call()
    await deliver(conn, call["room_started"])
    await calls.update_call(conn, session_id="RM_call", location_id=chosen.id,
                            organization_id=chosen.organization_id)
    await deliver(conn, call["caller_joined"])
    assert await routed(conn, "RM_call") == (chosen.id, chosen.organization_id)


async def test_a_dialed_number_that_is_no_phone_number_leaves_the_call_unrouted(conn):
    caller = sip_caller()
    odd = type(caller)(caller.sid, caller.identity, caller.kind, caller.joined, caller.name,
                       {**caller.attributes, "sip.trunkPhoneNumber": "sip:reception@example.com"})
    assert await deliver(conn, participant_event("participant_joined", "RM_odd", 1, odd)) == "applied"
    assert await routed(conn, "RM_odd") == (None, None)
    # Stored as unknown; the participant's attributes keep what the trunk sent.
    assert (await calls.get_call(conn, session_id="RM_odd")).dialed_number is None
    [row] = (await call_rows(conn, "RM_odd"))["call_participants"]
    assert row["attributes"]["sip.trunkPhoneNumber"] == "sip:reception@example.com"
