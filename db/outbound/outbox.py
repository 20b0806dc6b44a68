"""outbound_events: the outbox. Most events are written by triggers (sql/0013), in the
transaction of the change they report; `enqueue` is for changes no trigger sees (a finished call
analysis), called by their writer inside its own transaction."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from db import errors
from db.errors import InvalidInput, NotFound, repository

EVENT_TYPES = (
    "call.started", "call.ended", "call.analyzed", "call.transferred",
    "appointment.booked", "appointment.rescheduled", "appointment.cancelled",
)

CONSTRAINTS = errors.constraints({
    "outbound_events_organization_id_fkey": (NotFound, "no organisation with this id"),
})

ENQUEUE = "select outbound_enqueue($1, $2, $3::jsonb, $4)"


@repository
async def enqueue(
    conn: asyncpg.Connection,
    *,
    organization_id: uuid.UUID,
    event_type: str,
    payload: dict[str, Any],
    dedupe_key: str | None = None,
) -> uuid.UUID | None:
    """Write one event to the outbox in the caller's transaction: it is sent if and only if that
    transaction commits. With `dedupe_key`, a second event with the same key is a no-op (None)."""
    if event_type not in EVENT_TYPES:
        raise InvalidInput(f"unknown event type {event_type!r}: one of {', '.join(EVENT_TYPES)}")
    return await conn.fetchval(ENQUEUE, organization_id, event_type, payload, dedupe_key)
