"""What the webhook service derives from stored rows rather than from the event in hand, and the
blanks it fills on a call (its location) without overriding the agent.

LiveKit does not promise the order of its webhooks, so anything that depends on more than one
event is recomputed from what is stored after each event: the verdict on a call the agent never
closed, a participant's mute state, the call's recording. Whatever order the events arrived in,
the last recomputation sees the same rows and so writes the same values.

The call_events read here are the ones the webhook service writes (webhooks/effects.py): track
events carry `participant_sid`, `track_type` and `muted`; egress events carry `location`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from db.calls.calls import CallNotFound
from db.errors import repository

AGENT_NEVER_JOINED = "agent never joined"
AGENT_LEFT_OPEN = "agent disconnected without closing the call"
CALLER_LEFT_FIRST = "caller left before being served"


@dataclass(frozen=True)
class Verdict:
    status: str
    end_reason: str


UNATTENDED_FACTS = """
select (c.connected_at is not null or a.agent_rows > 0) as agent_present,
       exists (
           select 1 from call_participants u
            where u.call_id = c.id
              and u.participant_type = 'user' and u.kind in ('standard', 'sip')
              and u.left_at <= least(c.connected_at, a.first_agent_join)
       ) as caller_left_first
  from voice_calls c
 cross join lateral (
     select count(*) as agent_rows, min(p.joined_at) as first_agent_join
       from call_participants p
      where p.call_id = c.id and p.participant_type = 'agent'
 ) a
 where c.session_id = $1
"""


@repository
async def unattended_verdict(conn: asyncpg.Connection, *, session_id: str) -> Verdict:
    """How a call ended that the agent did not close, judged from its participants.

    No agent ever in the room (and the agent never reported the call connected): failed. A caller
    (a standard or SIP participant) who left no later than the agent's arrival: abandoned.
    Otherwise the agent was there and went away without closing the call: failed."""
    facts = await conn.fetchrow(UNATTENDED_FACTS, session_id)
    if facts is None:
        raise CallNotFound(f"no call with session id {session_id!r}")
    if not facts["agent_present"]:
        return Verdict("failed", AGENT_NEVER_JOINED)
    if facts["caller_left_first"]:
        return Verdict("abandoned", CALLER_LEFT_FIRST)
    return Verdict("failed", AGENT_LEFT_OPEN)


SETTLE_CALL = """
update voice_calls set status = $2::call_status, end_reason = $3
 where session_id = $1 and closed_by = 'webhook'
   and (status <> $2::call_status or end_reason is distinct from $3)
"""


@repository
async def settle_unattended_call(conn: asyncpg.Connection, *, session_id: str) -> bool:
    """Re-judge a call the webhook service closed, now that more of its events are stored; True
    when the verdict changed. Calls the agent closed are left alone (its verdict wins), and the
    status only moves between closed states: a closed call never reopens."""
    verdict = await unattended_verdict(conn, session_id=session_id)
    result = await conn.execute(SETTLE_CALL, session_id, verdict.status, verdict.end_reason)
    return result != "UPDATE 0"


LATEST_AUDIO_MUTE = """
select (payload ->> 'muted')::boolean from call_events
 where call_id = $1 and event_type in ('track_published', 'track_unpublished')
   and payload ->> 'participant_sid' = $2 and payload ->> 'track_type' = 'AUDIO'
 order by occurred_at desc, id desc
 limit 1
"""


@repository
async def latest_audio_mute(
    conn: asyncpg.Connection, *, call_id: uuid.UUID, participant_sid: str
) -> bool | None:
    """The mute flag of the participant's latest audio track event (None without one). Ties on
    time are broken by event id: arbitrary, but the same in every arrival order."""
    return await conn.fetchval(LATEST_AUDIO_MUTE, call_id, participant_sid)


LATEST_RECORDING = """
select payload ->> 'location' from call_events
 where call_id = $1 and event_type = 'egress_ended' and payload ->> 'location' <> ''
 order by occurred_at desc, id desc
 limit 1
"""


@repository
async def latest_recording_location(conn: asyncpg.Connection, *, call_id: uuid.UUID) -> str | None:
    """Where the call's latest finished recording was stored (None without one)."""
    return await conn.fetchval(LATEST_RECORDING, call_id)


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
