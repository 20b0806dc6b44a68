"""voice_messages: the spoken turns of a call, written idempotently by their chat item id."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import astuple, dataclass, field, fields
from datetime import datetime

import asyncpg

from db import errors, ids
from db.calls.calls import CALL_NOT_FOUND
from db.calls.partition_keys import call_created_at
from db.errors import Conflict, InvalidInput, repository

ROLES = ("user", "assistant", "system")

CONSTRAINTS = errors.constraints({
    "voice_messages_call_id_fkey": CALL_NOT_FOUND,
    "voice_messages_call_sequence_key": (
        Conflict, "another message of this call already has this sequence number"),
    "voice_messages_sequence_check": (InvalidInput, "sequence numbers start at 0"),
    "voice_messages_confidence_check": (
        InvalidInput, "transcript confidence must be between 0 and 1"),
    "voice_messages_latency_check": (InvalidInput, "latency figures cannot be negative"),
    "voice_messages_tokens_check": (InvalidInput, "token counts cannot be negative"),
})


@dataclass(frozen=True)
class Message:
    """One turn. `id` defaults to ids.message_id(call_id, item_id), so a rewrite is a no-op."""

    call_id: uuid.UUID
    sequence_number: int
    item_id: str
    role: str
    content: str = ""
    interrupted: bool = False
    transcript_confidence: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    transcription_delay_ms: float | None = None
    end_of_turn_delay_ms: float | None = None
    llm_ttft_ms: float | None = None
    tts_ttfb_ms: float | None = None
    e2e_latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_used: int = 0
    model_used: str | None = None
    audio_url: str | None = None
    metadata: dict = field(default_factory=dict)
    id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidInput(f"message role must be one of {', '.join(ROLES)}, not {self.role!r}")
        if self.id is None:
            object.__setattr__(self, "id", ids.message_id(self.call_id, self.item_id))

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> Message:
        return cls(**{f.name: record[f.name] for f in fields(cls)})


COLUMNS = tuple(f.name for f in fields(Message))
_PLACEHOLDERS = ", ".join(f"${i}" for i in range(1, len(COLUMNS) + 2))  # and call_created_at

# Only a rewrite of the same item is skipped. A different item at a sequence number already taken
# is a writer's bug and raises Conflict (a bare `on conflict do nothing` dropped it silently).
INSERT_MESSAGE = f"""
insert into voice_messages ({", ".join(COLUMNS)}, call_created_at) values ({_PLACEHOLDERS})
on conflict (call_id, item_id, call_created_at) do nothing
"""


@repository
async def append_messages(conn: asyncpg.Connection, *, messages: Sequence[Message]) -> None:
    """Insert turns; one already stored (same item of the same call) is skipped. Raises Conflict
    for another item at a sequence number the call already uses and CallNotFound when a message's
    call does not exist; either way nothing of the batch is written (executemany is atomic)."""
    keys = await call_created_at(
        conn, call_ids=(m.call_id for m in messages), foreign_key="voice_messages_call_id_fkey")
    await conn.executemany(INSERT_MESSAGE, [(*astuple(m), keys[m.call_id]) for m in messages])


LIST_MESSAGES = f"""
select {", ".join(COLUMNS)} from voice_messages
 where call_id = (select id from voice_calls where session_id = $1)
 order by sequence_number
"""


@repository
async def list_messages(conn: asyncpg.Connection, *, session_id: str) -> list[Message]:
    return [Message.from_record(r) for r in await conn.fetch(LIST_MESSAGES, session_id)]


NEXT_SEQUENCE = "select max(sequence_number) + 1 from voice_messages where call_id = $1"


@repository
async def next_sequence(conn: asyncpg.Connection, *, call_id: uuid.UUID) -> int | None:
    """The sequence number after the call's last stored message; None when it has none yet."""
    return await conn.fetchval(NEXT_SEQUENCE, call_id)
