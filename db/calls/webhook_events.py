"""webhook_events: every verified LiveKit webhook, keyed by its event id and LiveKit's time of the
event (`created_at`, the same on every retry of a delivery: the month partitions' key, sql/0016).

Inserting the event is how the webhook service deduplicates: the insert runs in the same
statement as the event's effect (record_webhook_events), and a redelivery finds the id taken and
skips the effect.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from db.calls import lifecycle
from db.errors import InvalidInput, repository

OUTCOMES = ("applied", "ignored")


@dataclass(frozen=True)
class NewWebhookEvent:
    """One delivery for record_webhook_events: its webhook_events row (the body as LiveKit sent
    it, JSON text, stored as jsonb) and its effect on the call record (an object as
    sql/0017_webhook_effects.sql reads it; times and ids may be datetimes and UUIDs), or None for
    an event that is only stored."""
    event_id: str
    event: str
    body: str
    created_at: datetime | None
    room_sid: str | None = None
    room_name: str | None = None
    participant_sid: str | None = None
    outcome: str = "applied"
    effect: dict[str, Any] | None = None


# One statement, so that on its own (no transaction open) it is one round trip and one commit.
RECORD_WEBHOOK_EVENTS = """
select webhook_record_events($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                             $7::timestamptz[], $8::text[], $9::text::jsonb, $10::text[])
"""


@repository
async def record_webhook_events(conn: asyncpg.Connection, *, events: Sequence[NewWebhookEvent]) -> set[str]:
    """Store several deliveries and apply the effects of the new ones, in arrival order, in one
    statement (sql/0020_webhook_record_events.sql: the webhook service's group commit); the ids
    that were new. An id given twice is stored and applied once."""
    for e in events:
        if not e.event_id or not e.event:
            raise InvalidInput("a webhook event needs its id and its event name")
        if e.outcome not in OUTCOMES:
            raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}")
    rows = [[getattr(e, name) for e in events]
            for name in ("event_id", "event", "room_sid", "room_name", "participant_sid", "body",
                         "created_at", "outcome")]
    fresh = await conn.fetchval(RECORD_WEBHOOK_EVENTS, *rows,
                                json.dumps([e.effect for e in events], default=str),
                                list(lifecycle.VERDICT_REASONS))
    return set(fresh)
