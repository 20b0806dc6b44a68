"""The verdict texts on a call the agent never closed, and the blank a call's routing fills (its
location) without overriding the agent.

LiveKit does not promise the order of its webhooks, so what depends on more than one event is
recomputed from what is stored after each event: the verdict on a call the agent never closed, a
participant's mute state, the call's recording. The webhook service does that in Postgres, in
the statement that applies a group of events (sql/0017_webhook_effects.sql, called by
sql/0020_webhook_record_events.sql); whatever order the events arrived in, the last recomputation sees
the same rows and so writes the same values.
"""

from __future__ import annotations

import uuid

import asyncpg

from db.errors import repository

AGENT_NEVER_JOINED = "agent never joined"
AGENT_LEFT_OPEN = "agent disconnected without closing the call"
CALLER_LEFT_FIRST = "caller left before being served"
# In the order webhook_apply_effects takes them: no agent, the caller left first, the agent left.
VERDICT_REASONS = (AGENT_NEVER_JOINED, CALLER_LEFT_FIRST, AGENT_LEFT_OPEN)


ROUTE_CALL = """
update voice_calls set location_id = $2, organization_id = coalesce(organization_id, $3)
 where session_id = $1 and location_id is null
"""


@repository
async def route_to_location(
    conn: asyncpg.Connection, *, session_id: str, location_id: uuid.UUID, organization_id: uuid.UUID
) -> bool:
    """Give a call the location its dialed number belongs to, unless it has one (the agent may
    have routed it first, possibly by other means: its choice stands). True when set here."""
    result = await conn.execute(ROUTE_CALL, session_id, location_id, organization_id)
    return result != "UPDATE 0"
