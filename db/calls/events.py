"""call_events: the ordered, append-only log of what happened in a call.

event_type is validated here, not by a CHECK in the database (seed 004: a CHECK on it broke
every new kind of event). Add a kind to EVENT_TYPES when you start writing it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import astuple, dataclass, field, fields
from datetime import UTC, datetime

import asyncpg

from db import errors
from db.calls.calls import CALL_NOT_FOUND
from db.calls.partition_keys import call_created_at
from db.errors import InvalidInput, repository

EVENT_TYPES = frozenset({
    # the agent
    "tool_call", "tool_result", "agent_state", "user_state", "interruption",
    "false_interruption", "transfer", "escalation", "error", "appointment_booked",
    "appointment_rescheduled", "appointment_cancelled", "digression", "call_ended",
    "silence_timeout", "max_duration", "usage", "identity_refused",
    # the webhook service (LiveKit lifecycle)
    "track_published", "track_unpublished", "participant_joined", "participant_left",
    "room_started", "room_finished", "egress_ended",
})
SEVERITIES = ("debug", "info", "warning", "error", "critical")

CONSTRAINTS = errors.constraints({
    "call_events_call_id_fkey": CALL_NOT_FOUND,
    "call_events_severity_check": (
        InvalidInput, "severity must be one of debug, info, warning, error, critical"),
})


@dataclass(frozen=True)
class Event:
    """One entry of a call's log. `id` is chosen by the writer (see db.ids.event_id) so that
    writing the same event twice is a no-op."""

    id: uuid.UUID
    call_id: uuid.UUID
    event_type: str
    payload: dict = field(default_factory=dict)
    severity: str = "info"
    turn_index: int | None = None
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.event_type not in EVENT_TYPES:
            raise InvalidInput(f"unknown event type {self.event_type!r}")
        if self.severity not in SEVERITIES:
            raise InvalidInput(f"severity must be one of {', '.join(SEVERITIES)}")


COLUMNS = tuple(f.name for f in fields(Event))
_PLACEHOLDERS = ", ".join(f"${i}" for i in range(1, len(COLUMNS) + 2))  # and call_created_at

INSERT_EVENT = f"""
insert into call_events ({", ".join(COLUMNS)}, call_created_at) values ({_PLACEHOLDERS})
on conflict (id, call_created_at) do nothing
"""


@repository
async def append_events(conn: asyncpg.Connection, *, events: Sequence[Event]) -> None:
    """Append events in the given order (their `sequence` follows it); known ids are skipped."""
    keys = await call_created_at(
        conn, call_ids=(e.call_id for e in events), foreign_key="call_events_call_id_fkey")
    await conn.executemany(INSERT_EVENT, [(*astuple(e), keys[e.call_id]) for e in events])


@dataclass(frozen=True)
class StoredEvent(Event):
    sequence: int = 0


LIST_EVENTS = f"""
select {", ".join(COLUMNS)}, sequence from call_events
 where call_id = (select id from voice_calls where session_id = $1)
 order by sequence
"""


@repository
async def list_events(conn: asyncpg.Connection, *, session_id: str) -> list[StoredEvent]:
    return [StoredEvent(**dict(r)) for r in await conn.fetch(LIST_EVENTS, session_id)]
