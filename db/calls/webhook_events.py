"""webhook_events: every verified LiveKit webhook, keyed by its event id.

Inserting the event is how the webhook service deduplicates: the insert runs in the same
transaction as the event's effect, and a redelivery finds the id taken and skips the effect.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from db.errors import InvalidInput, repository

OUTCOMES = ("applied", "ignored")

INSERT_WEBHOOK_EVENT = """
insert into webhook_events (
    event_id, event, room_sid, room_name, participant_sid, payload, created_at, outcome
) values ($1, $2, $3, $4, $5, $6, $7, $8)
on conflict (event_id) do nothing
returning event_id
"""


@repository
async def insert_webhook_event(
    conn: asyncpg.Connection,
    *,
    event_id: str,
    event: str,
    payload: Any,
    created_at: datetime | None,
    room_sid: str | None = None,
    room_name: str | None = None,
    participant_sid: str | None = None,
    outcome: str = "applied",
) -> bool:
    """Store a webhook event; False when its id is already stored (a redelivery).

    A concurrent delivery of the same id waits for the first transaction and then gets False,
    so exactly one of them applies the effect."""
    if not event_id or not event:
        raise InvalidInput("a webhook event needs its id and its event name")
    if outcome not in OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}")
    stored = await conn.fetchval(
        INSERT_WEBHOOK_EVENT, event_id, event, room_sid, room_name, participant_sid, payload,
        created_at, outcome,
    )
    return stored is not None
