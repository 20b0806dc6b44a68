"""Calls for the API and console tests, written with plain SQL as the tables' owner (the agent's
recorder is tested elsewhere): a finished call with turns and latencies, events, an analysis and
the appointment it booked, and a second organisation with a call of its own."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from db.desk.locations import Address, create_location
from db.desk.organizations import create_organization

INSERT_CALL = """
insert into voice_calls (session_id, room_name, organization_id, location_id, agent_config_id,
                         direction, caller_number, dialed_number, status, outcome, end_reason,
                         started_at, connected_at, ended_at, recording_url)
values ($1, $2, $3, $4, $5, 'inbound', $6, '+12125550100', $7::call_status, $8, 'caller_hung_up',
        $9::timestamptz, $9::timestamptz + interval '2 seconds', $9::timestamptz + interval '3 minutes', $10)
returning id
"""
INSERT_TURN = """
insert into voice_messages (call_id, sequence_number, item_id, role, content, started_at, ended_at,
                            transcription_delay_ms, end_of_turn_delay_ms, llm_ttft_ms, tts_ttfb_ms,
                            e2e_latency_ms, tokens_used, call_created_at)
values ($1, $2, $3, $4::message_role, $5, $6, $6::timestamptz + interval '3 seconds', $7, $8, $9, $10,
        $11, $12, call_partition_key($1))
"""
INSERT_EVENT = """
insert into call_events (id, call_id, event_type, payload, occurred_at, call_created_at)
values ($1, $2, $3, $4, $5, call_partition_key($2))
"""
INSERT_ANALYSIS = """
insert into call_analyses (call_id, summary, intent, sentiment, outcome, success, model_used)
values ($1, $2, $3, $4, $5, true, 'rules')
"""
INSERT_APPOINTMENT = """
insert into appointments (organization_id, location_id, service_id, customer_name, customer_phone,
                          starts_at, ends_at, confirmation_code, call_id, last_call_id)
values ($1, $2, $3, 'Dana Caller', $4, $5::timestamptz, $5::timestamptz + interval '30 minutes', $6, $7, $7)
"""

TURNS = (
    ("assistant", "Thank you for calling Bright Smile Dental, how can I help?", (None, None, 420, 180, 600)),
    ("user", "I would like a cleaning next Tuesday morning.", (210, 480, None, None, None)),
    ("assistant", "I have Tuesday at 9:30 with Dr. Patel. Shall I book it?", (None, None, 510, 220, 1150)),
    ("user", "Yes please.", (190, 350, None, None, None)),
    ("assistant", "You are booked. Your confirmation code is in a text message.",
     (None, None, 380, 160, 900)),
)


@dataclass(frozen=True)
class SeededCall:
    id: uuid.UUID
    session_id: str


async def seed_call(
    conn: asyncpg.Connection,
    *,
    organization_id: uuid.UUID,
    location_id: uuid.UUID,
    started_at: datetime,
    caller_number: str = "+12125550199",
    agent_config_id: uuid.UUID | None = None,
    status: str = "completed",
    outcome: str = "appointment_booked",
    sentiment: str | None = "positive",
    intent: str | None = "book_appointment",
    service_id: uuid.UUID | None = None,
    confirmation_code: str | None = None,
) -> SeededCall:
    session_id = f"RM_{uuid.uuid4().hex[:12]}"
    call_id = await conn.fetchval(INSERT_CALL, session_id, f"call-{session_id[-6:]}", organization_id,
                                  location_id, agent_config_id, caller_number, status, outcome, started_at,
                                  f"https://recordings.invalid/{session_id}.ogg")
    for n, (role, text, latency) in enumerate(TURNS):
        await conn.execute(INSERT_TURN, call_id, n, f"item_{n}", role, text,
                           started_at + timedelta(seconds=5 * n), *latency, 40 if role == "assistant" else 0)
    await conn.execute(INSERT_EVENT, uuid.uuid4(), call_id, "tool_call",
                       {"name": "book_appointment"}, started_at + timedelta(seconds=12))
    await conn.execute(INSERT_EVENT, uuid.uuid4(), call_id, "appointment_booked", {},
                       started_at + timedelta(seconds=20))
    if sentiment:
        await conn.execute(INSERT_ANALYSIS, call_id, "The caller booked a cleaning.", intent, sentiment,
                           outcome)
    if service_id and confirmation_code:
        await conn.execute(INSERT_APPOINTMENT, organization_id, location_id, service_id, caller_number,
                           started_at + timedelta(days=3), confirmation_code, call_id)
    return SeededCall(id=call_id, session_id=session_id)


async def other_organization(conn: asyncpg.Connection) -> tuple[uuid.UUID, uuid.UUID]:
    """A second tenant (organisation, location) that the demo's keys must never see."""
    org = await create_organization(conn, name="Other Clinic", slug="other-clinic", default_timezone="UTC")
    location = await create_location(
        conn, organization_id=org.id, slug="main", name="Other Main", timezone="America/Chicago",
        address=Address(line1="1 Elm St", city="Chicago", region="IL", postal_code="60601"))
    return org.id, location.id
