"""A caller on WebRTC books an appointment through the real stack: livekit-server, the agent
worker (offline speech providers, scripted model) and the webhook service as processes, Postgres
underneath. Everything the call produced must be in the database, once, in order.

Exact assertions on ids, rows, order and status; keywords only on what speech recognition
produced (the caller's words, and the name the agent heard)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from db import ids
from db.demo.seed import NEW_YORK_NUMBER
from db.desk import locations
from tests.e2e.calls import create_room, dial, latency_summary, settled_report
from tests.e2e.conftest import note
from tests.e2e.conversation import CALLER_DIGITS, CALLER_LINES, SERVICE

pytestmark = pytest.mark.e2e

APPOINTMENT_OF_CALL = """
select a.customer_name, a.customer_phone, a.starts_at, a.status::text as status, a.location_id,
       a.confirmation_code, s.name as service
  from appointments a join services s on s.id = a.service_id
 where a.call_id = $1
"""


async def test_webrtc_caller_books_a_cleaning_and_the_whole_call_is_stored(live_stack, e2e_conn):
    room, room_sid = await create_room(live_stack)
    caller = dial(live_stack, room)
    caller.rehearse(CALLER_LINES)
    await caller.join()
    assert await caller.room_sid() == room_sid
    caller_sid = caller.room.local_participant.sid
    await caller.hear_reply(within=30)  # the greeting
    for line in CALLER_LINES:
        await caller.say(line)
        await caller.hear_reply()
    await caller.hang_up()

    report = await settled_report(e2e_conn, room_sid, status="completed")
    replies = [m for m in report.messages if m.role == "assistant"][1:]
    note("webrtc booking call, " + latency_summary(caller.turns, report))
    assert all(t.voice_to_voice is not None for t in caller.turns)

    # The call: the room LiveKit created, routed by the room's metadata to Midtown, closed by
    # the agent when the caller hung up.
    call = report.call
    midtown = await locations.find_location_by_number(e2e_conn, phone_number=NEW_YORK_NUMBER)
    assert (call.id, call.session_id, call.room_name) == (ids.call_id(room_sid), room_sid, room)
    assert (call.status, call.end_reason, call.closed_by, call.outcome) == (
        "completed", "caller_hung_up", "agent", "appointment_booked")
    assert await e2e_conn.fetchval("select location_id from voice_calls where id = $1",
                                   call.id) == midtown.id
    assert call.metadata["routed_by"] == "metadata"
    assert call.started_at <= call.connected_at < call.ended_at
    assert (call.stt_model, call.llm_model, call.tts_model) == (
        "pocketsphinx/en-us", "scripted-e2e", "espeak-ng/en-us")
    assert call.session_report is not None and call.transcript.startswith("Agent: ")

    # Both participants, as LiveKit saw them join and leave.
    people = {p.participant_identity: p for p in report.participants}
    assert set(people) == {"web-caller", caller.agent_identity}
    web, agent = people["web-caller"], people[caller.agent_identity]
    assert (web.participant_sid, web.participant_type, web.kind) == (caller_sid, "user", "standard")
    assert (agent.participant_type, agent.kind) == ("agent", "agent")
    for person in (web, agent):
        assert person.joined_at is not None and person.left_at is not None
        assert person.joined_at < person.left_at

    # Every turn, in order: the greeting, then the caller and the agent taking turns.
    messages = report.messages
    assert [m.sequence_number for m in messages] == list(range(2 * len(CALLER_LINES) + 1))
    assert [m.role for m in messages] == ["assistant"] + ["user", "assistant"] * len(CALLER_LINES)
    assert len({m.item_id for m in messages}) == len(messages)
    heard = [m.content for m in messages if m.role == "user"]
    # What the scripted model keys on in each sentence (conversation.receptionist_policy).
    keywords = [("parking",), ("cleaning",), ("six four six",), ("yes",), ("bye", "that is all")]
    for words, wanted in zip(heard, keywords, strict=True):
        assert any(k in words for k in wanted), (words, wanted)
    for m in messages:
        if m.role == "user":  # a non-streaming STT: LiveKit still times the transcript
            assert m.transcription_delay_ms is not None and m.end_of_turn_delay_ms is not None
            assert 0 < m.transcript_confidence <= 1
            assert m.started_at is not None and m.ended_at is not None
    assert messages[0].tts_ttfb_ms is not None
    for m in replies:
        assert None not in (m.llm_ttft_ms, m.tts_ttfb_ms, m.e2e_latency_ms), m
        assert m.model_used == "scripted-e2e" and m.completion_tokens > 0

    # The tools the model called, and the booking they made.
    (appointment,) = await e2e_conn.fetch(APPOINTMENT_OF_CALL, call.id)
    agent_events = [e for e in report.events if not e.payload.get("webhook_event_id")]
    assert [(e.event_type, e.payload.get("name")) for e in agent_events] == [
        ("tool_call", "answer_question"), ("tool_result", "answer_question"),
        ("tool_call", "check_availability"), ("tool_result", "check_availability"),
        ("tool_call", "book_appointment"), ("appointment_booked", None),
        ("tool_result", "book_appointment"), ("usage", None),
    ]
    booking = json.loads(agent_events[4].payload["arguments"])
    assert booking["phone_number"] == CALLER_DIGITS and booking["service"] == SERVICE
    assert not any(e.payload.get("is_error") for e in agent_events)
    assert agent_events[5].payload["code"] == appointment["confirmation_code"]
    assert (appointment["status"], appointment["service"], appointment["location_id"],
            appointment["customer_phone"]) == ("confirmed", SERVICE, midtown.id, f"+1{CALLER_DIGITS}")
    assert appointment["starts_at"].isoformat() == agent_events[5].payload["starts_at"]
    assert "doe" in appointment["customer_name"].lower()
    assert replies[-2].content.startswith("Booked: Dental cleaning on ")
    assert " ".join(appointment["confirmation_code"]) in replies[-2].content

    # A webhook_events row for every webhook livekit-server sent about this room.
    sent = live_stack.sent_webhooks(room_sid)
    assert all(entry["msg"] == "sent webhook" for entry in sent)
    stored = {r["event_id"]: r["event"] for r in await e2e_conn.fetch(
        "select event_id, event from webhook_events where room_sid = $1", room_sid)}
    assert stored == {entry["id"]: entry["event"] for entry in sent}
    counts = Counter(stored.values())
    assert {e: counts[e] for e in ("room_started", "participant_joined", "track_published",
                                   "participant_left", "room_finished")} == {
        "room_started": 1, "participant_joined": 2, "track_published": 2,
        "participant_left": 2, "room_finished": 1}
