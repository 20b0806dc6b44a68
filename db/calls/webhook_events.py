"""webhook_events: every verified LiveKit webhook, keyed by its event id and LiveKit's time of the
event (`created_at`, the same on every retry of a delivery: the month partitions' key, sql/0016).

Inserting the event is how the webhook service deduplicates: the insert runs in the same
transaction as the event's effect, and a redelivery finds the id taken and skips the effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from db.errors import InvalidInput, repository

OUTCOMES = ("applied", "ignored")

INSERT_WEBHOOK_EVENT = """
insert into webhook_events (
    event_id, event, room_sid, room_name, participant_sid, payload, created_at, outcome
) values ($1, $2, $3, $4, $5, $6, $7, $8)
on conflict (event_id, created_at) do nothing
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


@dataclass(frozen=True)
class NewWebhookEvent:
    """One row for insert_webhook_events: the body as LiveKit sent it (JSON text, stored as jsonb)."""
    event_id: str
    event: str
    body: str
    created_at: datetime | None
    room_sid: str | None = None
    room_name: str | None = None
    participant_sid: str | None = None
    outcome: str = "applied"


INSERT_WEBHOOK_EVENTS = """
insert into webhook_events (
    event_id, event, room_sid, room_name, participant_sid, payload, created_at, outcome
)
select e.event_id, e.event, e.room_sid, e.room_name, e.participant_sid, e.body::jsonb,
       e.created_at, e.outcome
  from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
              $7::timestamptz[], $8::text[])
       as e(event_id, event, room_sid, room_name, participant_sid, body, created_at, outcome)
on conflict (event_id, created_at) do nothing
returning event_id
"""


@repository
async def insert_webhook_events(conn: asyncpg.Connection, *, events: Sequence[NewWebhookEvent]) -> set[str]:
    """Store several webhook events in one statement (the webhook service's group commit); the
    ids that were new. An id given twice is stored once (and returned once)."""
    for e in events:
        if not e.event_id or not e.event:
            raise InvalidInput("a webhook event needs its id and its event name")
        if e.outcome not in OUTCOMES:
            raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}")
    rows = await conn.fetch(INSERT_WEBHOOK_EVENTS, *(
        [getattr(e, name) for e in events]
        for name in ("event_id", "event", "room_sid", "room_name", "participant_sid", "body",
                     "created_at", "outcome")))
    return {r["event_id"] for r in rows}
