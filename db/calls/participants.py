"""call_participants: everyone who was in a call, upserted by participant SID."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from db import errors
from db.calls.calls import CALL_NOT_FOUND, CallNotFound
from db.errors import InvalidInput, repository

PARTICIPANT_TYPES = ("user", "agent", "admin")

CONSTRAINTS = errors.constraints({
    "call_participants_call_id_fkey": CALL_NOT_FOUND,
    "call_participants_duration_check": (InvalidInput, "a participant's duration cannot be negative"),
})


@dataclass(frozen=True)
class Participant:
    id: uuid.UUID
    call_id: uuid.UUID
    user_id: uuid.UUID | None
    participant_identity: str
    participant_sid: str
    participant_name: str | None
    participant_type: str
    kind: str
    attributes: dict
    joined_at: datetime | None
    left_at: datetime | None
    duration_seconds: int | None
    is_muted: bool

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> Participant:
        return cls(**{f.name: record[f.name] for f in fields(cls)})


_COLUMNS = ", ".join(f.name for f in fields(Participant))

UPSERT_PARTICIPANT = f"""
insert into call_participants as p (
    call_id, participant_sid, participant_identity, participant_name, participant_type, kind,
    attributes, joined_at, left_at, is_muted, user_id
)
select c.id, $2, $3, $4, coalesce($5, 'user')::participant_type, coalesce($6, 'standard'),
       coalesce($7, '{{}}'::jsonb), $8, $9, coalesce($10, false), $11
  from voice_calls c where c.session_id = $1
on conflict (call_id, participant_sid) do update set
    participant_identity = excluded.participant_identity,
    participant_name = coalesce(excluded.participant_name, p.participant_name),
    participant_type = case when $5 is null then p.participant_type
                            else excluded.participant_type end,
    kind = case when $6 is null then p.kind else excluded.kind end,
    attributes = p.attributes || excluded.attributes,
    joined_at = least(p.joined_at, excluded.joined_at),
    left_at = greatest(p.left_at, excluded.left_at),
    is_muted = case when $10 is null then p.is_muted else excluded.is_muted end,
    user_id = coalesce(p.user_id, excluded.user_id)
returning {_COLUMNS}
"""


@repository
async def upsert_participant(
    conn: asyncpg.Connection,
    *,
    session_id: str,
    participant_sid: str,
    identity: str,
    name: str | None = None,
    participant_type: str | None = None,
    kind: str | None = None,
    attributes: dict | None = None,
    joined_at: datetime | None = None,
    left_at: datetime | None = None,
    is_muted: bool | None = None,
    user_id: uuid.UUID | None = None,
) -> Participant:
    """Record a participant of the call `session_id`, merging with what is stored: the earliest
    join and the latest leave win, so a 'left' that arrives before its 'joined' is kept."""
    if not participant_sid or not identity:
        raise InvalidInput("a participant needs its SID and identity")
    if participant_type is not None and participant_type not in PARTICIPANT_TYPES:
        raise InvalidInput(f"participant_type must be one of {', '.join(PARTICIPANT_TYPES)}")
    record = await conn.fetchrow(
        UPSERT_PARTICIPANT, session_id, participant_sid, identity, name, participant_type,
        kind, attributes, joined_at, left_at, is_muted, user_id,
    )
    if record is None:
        raise CallNotFound(f"no call with session id {session_id!r}: start the call first")
    return Participant.from_record(record)


LIST_PARTICIPANTS = f"""
select {_COLUMNS} from call_participants
 where call_id = (select id from voice_calls where session_id = $1)
 order by joined_at nulls last, participant_sid
"""


@repository
async def list_participants(conn: asyncpg.Connection, *, session_id: str) -> list[Participant]:
    return [Participant.from_record(r) for r in await conn.fetch(LIST_PARTICIPANTS, session_id)]
