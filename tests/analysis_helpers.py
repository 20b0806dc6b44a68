"""Stored calls for the analysis tests, written through the repositories the agent uses."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from db.calls import calls, events, messages
from db.calls.events import Event
from db.calls.messages import Message

# A conversation in which the caller books: (role, text, end-to-end latency of the reply in ms).
BOOKING = (("assistant", "Bright Smile Dental, how can I help?", None),
           ("user", "Hi, I'd like to book a cleaning next Monday please.", None),
           ("assistant", "Monday at nine is free. Shall I book it?", 800.0),
           ("user", "Yes please, thank you!", None),
           ("assistant", "Booked. See you Monday.", 1200.0))


async def make_call(
    conn: asyncpg.Connection, *, organization_id: uuid.UUID, started_at: datetime,
    turns: Sequence[tuple[str, str, float | None]] = BOOKING, outcome: str | None = "appointment_booked",
    status: str = "completed", location_id: uuid.UUID | None = None,
    agent_config_id: uuid.UUID | None = None, event_types: Sequence[str] = (),
    session_id: str | None = None,
) -> uuid.UUID:
    """A closed call (closed by the agent, which queues its analysis job); its id."""
    session_id = session_id or f"RM_{uuid.uuid4().hex[:12]}"
    call = await calls.start_call(conn, session_id=session_id, started_at=started_at)
    values = {"organization_id": organization_id, "location_id": location_id}
    if agent_config_id is not None:
        values["agent_config_id"] = agent_config_id
    await calls.update_call(conn, session_id=session_id, **values)
    await messages.append_messages(conn, messages=[
        Message(call_id=call.id, sequence_number=i, item_id=f"item-{i}", role=role, content=text,
                e2e_latency_ms=latency)
        for i, (role, text, latency) in enumerate(turns)])
    await events.append_events(conn, events=[
        Event(id=uuid.uuid4(), call_id=call.id, event_type=kind,
              severity="error" if kind == "error" else "info") for kind in event_types])
    await calls.finish_call(conn, session_id=session_id, status=status, closed_by="agent",
                            ended_at=started_at + timedelta(minutes=2), outcome=outcome,
                            end_reason="caller_hung_up")
    return call.id
