"""outbound_events: the outbox. Most events are written by triggers (sql/0013), in the
transaction of the change they report; `enqueue` is for changes no trigger sees (a finished call
analysis), called by their writer inside its own transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
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


def _check(event_type: str) -> None:
    if event_type not in EVENT_TYPES:
        raise InvalidInput(f"unknown event type {event_type!r}: one of {', '.join(EVENT_TYPES)}")


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
    _check(event_type)
    return await conn.fetchval(ENQUEUE, organization_id, event_type, payload, dedupe_key)


@repository
async def enqueue_many(
    conn: asyncpg.Connection, *, events: Sequence[tuple[uuid.UUID, str, dict[str, Any], str | None]]
) -> None:
    """`enqueue` for several events, (organization_id, event_type, payload, dedupe_key) each, in
    one round trip (a writer of a batch: the analysis workers)."""
    for _, event_type, _, _ in events:
        _check(event_type)
    await conn.executemany(ENQUEUE, events)
