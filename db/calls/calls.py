"""voice_calls: start, update and finish a call by its session id (the LiveKit room SID).

The agent and the webhook service both call these, in any order, any number of times; each is
an upsert that converges: the earliest start and connection win, the latest end wins, a closed
call never reopens, and the agent's verdict on how a call ended outranks the webhook service's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

from db import errors, ids
from db.errors import Conflict, InvalidInput, NotFound, repository

CLOSED_STATUSES = ("completed", "failed", "abandoned")


class CallNotFound(NotFound):
    pass


class DuplicateSession(Conflict):
    pass


CALL_NOT_FOUND = (CallNotFound, "no call with this id: create the call first")

CONSTRAINTS = errors.constraints({
    "voice_calls_session_id_key": (DuplicateSession, "a call with this session id already exists"),
    "voice_calls_pkey": (DuplicateSession, "a call with this id already exists"),
    "voice_calls_duration_check": (InvalidInput, "a call's duration cannot be negative"),
    "voice_calls_tokens_check": (InvalidInput, "token counts cannot be negative"),
    "voice_calls_closed_by_check": (InvalidInput, "closed_by must be 'agent' or 'webhook'"),
    "voice_calls_organization_id_fkey": (NotFound, "no organisation with this id"),
    "voice_calls_location_id_fkey": (NotFound, "no location with this id"),
    "voice_calls_location_org_fkey": (NotFound, "no such location in the call's organisation"),
    "voice_calls_agent_config_id_fkey": (NotFound, "no agent config with this id"),
    "call_analyses_call_id_fkey": CALL_NOT_FOUND,
})


@dataclass(frozen=True)
class Call:
    id: uuid.UUID
    session_id: str
    room_name: str | None
    user_id: uuid.UUID | None
    direction: str
    channel: str
    caller_number: str | None
    dialed_number: str | None
    sip_call_id: str | None
    status: str
    end_reason: str | None
    outcome: str | None
    closed_by: str | None
    started_at: datetime
    connected_at: datetime | None
    ended_at: datetime | None
    duration_seconds: int | None
    recording_url: str | None
    transcript: str | None
    total_tokens_used: int
    ai_agent_used: bool
    stt_model: str | None
    llm_model: str | None
    tts_model: str | None
    session_report: Any
    metadata: dict
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> Call:
        return cls(**{f.name: record[f.name] for f in fields(cls)})

    @property
    def closed(self) -> bool:
        return self.status in CLOSED_STATUSES


_COLUMNS = ", ".join(f.name for f in fields(Call))

START_CALL = f"""
insert into voice_calls as c (
    id, session_id, room_name, user_id, direction, caller_number, dialed_number, sip_call_id,
    started_at, metadata
) values ($1, $2, $3, $4, coalesce($5, 'inbound')::call_direction, $6, $7, $8,
          coalesce($9, now()), coalesce($10, '{{}}'::jsonb))
on conflict (id) do update set
    room_name = coalesce(c.room_name, excluded.room_name),
    user_id = coalesce(c.user_id, excluded.user_id),
    direction = case when $5 is null then c.direction else excluded.direction end,
    caller_number = coalesce(c.caller_number, excluded.caller_number),
    dialed_number = coalesce(c.dialed_number, excluded.dialed_number),
    sip_call_id = coalesce(c.sip_call_id, excluded.sip_call_id),
    started_at = case when $9 is null then c.started_at
                      else least(c.started_at, excluded.started_at) end,
    metadata = excluded.metadata || c.metadata
returning {_COLUMNS}
"""


@repository
async def start_call(
    conn: asyncpg.Connection,
    *,
    session_id: str,
    room_name: str | None = None,
    started_at: datetime | None = None,
    user_id: uuid.UUID | None = None,
    direction: str | None = None,
    caller_number: str | None = None,
    dialed_number: str | None = None,
    sip_call_id: str | None = None,
    metadata: dict | None = None,
) -> Call:
    """Create the call for a room session, or merge into the one that exists.

    Values already stored win over new ones (first writer fills a blank), except started_at,
    where the earliest wins. Without `started_at`, a new call starts now."""
    if not session_id:
        raise InvalidInput("a call needs a session id (the LiveKit room SID)")
    args = (ids.call_id(session_id), session_id, room_name, user_id, direction, caller_number,
            dialed_number, sip_call_id, started_at, metadata)
    # Two writers creating the same call at once can collide on the unique index that is not
    # the ON CONFLICT arbiter (Postgres raises there instead of merging); the retry, in a
    # savepoint so the caller's transaction survives, sees the committed row and merges.
    attempts = 3
    while True:
        attempts -= 1
        try:
            async with conn.transaction():
                return Call.from_record(await conn.fetchrow(START_CALL, *args))
        except asyncpg.UniqueViolationError:
            if not attempts:
                raise


GET_CALL = f"select {_COLUMNS} from voice_calls where session_id = $1"


@repository
async def get_call(conn: asyncpg.Connection, *, session_id: str) -> Call | None:
    record = await conn.fetchrow(GET_CALL, session_id)
    return Call.from_record(record) if record else None


async def _one(record: asyncpg.Record | None, session_id: str) -> Call:
    if record is None:
        raise CallNotFound(f"no call with session id {session_id!r}: start the call first")
    return Call.from_record(record)


MARK_CONNECTED = f"""
update voice_calls set
    connected_at = least(coalesce(connected_at, $2), $2),
    status = case when status = 'pending' and $3 then 'active'::call_status else status end
where session_id = $1
returning {_COLUMNS}
"""


@repository
async def mark_connected(
    conn: asyncpg.Connection, *, session_id: str, connected_at: datetime, activate: bool = True
) -> Call:
    """Record when the caller was connected (the earliest report wins) and, with `activate`,
    move a pending call to active. A closed call keeps its status."""
    record = await conn.fetchrow(MARK_CONNECTED, session_id, connected_at, activate)
    return await _one(record, session_id)


# Columns a caller may set with update_call; all are "latest value wins".
_UPDATABLE = {
    "room_name", "user_id", "caller_number", "dialed_number", "sip_call_id", "recording_url",
    "stt_model", "llm_model", "tts_model", "ai_agent_used", "outcome", "channel",
    "organization_id", "location_id", "agent_config_id",  # added by 0002 / 0005
    "model_usage",  # added by 0012: LiveKit's usage per model, priced by call_costs
}


@repository
async def update_call(conn: asyncpg.Connection, *, session_id: str, **values: Any) -> Call:
    """Set descriptive columns of a call (models used, recording URL, numbers ...).

    `metadata` is merged into the stored object rather than replacing it."""
    metadata = values.pop("metadata", None)
    unknown = set(values) - _UPDATABLE
    if unknown:
        raise InvalidInput(f"update_call cannot set {', '.join(sorted(unknown))}")
    names = sorted(values)
    # Column names come from the fixed set above, never from input; values are parameters.
    assignments = [f"{name} = ${i}" for i, name in enumerate(names, start=3)]
    assignments.append("metadata = metadata || coalesce($2, '{}'::jsonb)")
    query = (
        f"update voice_calls set {', '.join(assignments)} where session_id = $1 "
        f"returning {_COLUMNS}"
    )
    record = await conn.fetchrow(query, session_id, metadata, *(values[n] for n in names))
    return await _one(record, session_id)


FINISH_CALL = f"""
update voice_calls c set
    ended_at = greatest(c.ended_at, $2),
    status = case when v.wins then $3::call_status else c.status end,
    end_reason = case when v.wins then $4 else c.end_reason end,
    outcome = case when v.wins then coalesce($5, c.outcome) else coalesce(c.outcome, $5) end,
    closed_by = case when v.wins then $6 else c.closed_by end,
    transcript = coalesce($7, c.transcript),
    session_report = coalesce($8, c.session_report)
from (
    select
        -- The agent's verdict replaces a webhook's; a webhook's only fills an open call.
        case when $6 = 'agent' then coalesce(closed_by, '') <> 'agent'
             else status not in ('completed', 'failed', 'abandoned') end as wins
    from voice_calls where session_id = $1
    for update
) v
where c.session_id = $1
returning {", ".join("c." + f.name for f in fields(Call))}
"""


@repository
async def finish_call(
    conn: asyncpg.Connection,
    *,
    session_id: str,
    status: str,
    ended_at: datetime,
    closed_by: str,
    end_reason: str | None = None,
    outcome: str | None = None,
    transcript: str | None = None,
    session_report: Any = None,
) -> Call:
    """Close a call. `closed_by` is 'agent' or 'webhook': the agent's closing replaces a
    webhook's (it knows how the call went); a webhook's never replaces anything. The latest
    ended_at wins whoever reports it. The duration follows by trigger."""
    if status not in CLOSED_STATUSES:
        raise InvalidInput(f"a call ends as one of {', '.join(CLOSED_STATUSES)}, not {status!r}")
    record = await conn.fetchrow(
        FINISH_CALL, session_id, ended_at, status, end_reason, outcome, closed_by,
        transcript, session_report,
    )
    return await _one(record, session_id)
