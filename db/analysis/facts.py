"""What an analyser reads about a call: the call, its turns, its events, and the analysis part
of the agent configuration it ran with. Loaded for a batch of calls in three queries."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from db.errors import repository


@dataclass(frozen=True)
class Turn:
    role: str
    content: str
    interrupted: bool
    e2e_latency_ms: float | None


@dataclass(frozen=True)
class CallEvent:
    event_type: str
    severity: str
    name: str | None  # a tool call's tool


@dataclass(frozen=True)
class CallFacts:
    call_id: uuid.UUID
    organization_id: uuid.UUID | None
    status: str
    outcome: str | None
    end_reason: str | None
    started_at: datetime
    duration_seconds: int | None
    config_version: int | None
    # agent_configs.policies -> 'analysis' of the version the call ran with ({} without one)
    analysis_config: dict[str, Any]
    turns: list[Turn] = field(default_factory=list)
    events: list[CallEvent] = field(default_factory=list)

    @property
    def caller_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.role == "user" and t.content.strip()]


CALLS = """
select c.id, c.organization_id, c.status::text, c.outcome, c.end_reason, c.started_at,
       c.duration_seconds, ac.version as config_version,
       coalesce(ac.policies -> 'analysis', '{}'::jsonb) as analysis_config
  from voice_calls c
  left join agent_configs ac on ac.id = c.agent_config_id
 where c.id = any($1::uuid[])
"""
TURNS = """
select call_id, role::text, coalesce(content, '') as content, interrupted, e2e_latency_ms
  from voice_messages where call_id = any($1::uuid[])
 order by call_id, sequence_number
"""
EVENTS = """
select call_id, event_type, severity, payload ->> 'name' as name
  from call_events where call_id = any($1::uuid[])
 order by call_id, sequence
"""


@repository
async def load(conn: asyncpg.Connection, *, call_ids: Sequence[uuid.UUID]) -> list[CallFacts]:
    """The facts of each call that exists, in the order of `call_ids`."""
    ids = list(call_ids)
    turns: dict[uuid.UUID, list[Turn]] = defaultdict(list)
    for r in await conn.fetch(TURNS, ids):
        turns[r["call_id"]].append(Turn(r["role"], r["content"], r["interrupted"], r["e2e_latency_ms"]))
    events: dict[uuid.UUID, list[CallEvent]] = defaultdict(list)
    for r in await conn.fetch(EVENTS, ids):
        events[r["call_id"]].append(CallEvent(r["event_type"], r["severity"], r["name"]))
    calls = {r["id"]: r for r in await conn.fetch(CALLS, ids)}
    return [
        CallFacts(
            call_id=call_id, organization_id=r["organization_id"], status=r["status"],
            outcome=r["outcome"], end_reason=r["end_reason"], started_at=r["started_at"],
            duration_seconds=r["duration_seconds"], config_version=r["config_version"],
            analysis_config=r["analysis_config"] or {}, turns=turns[call_id], events=events[call_id],
        )
        for call_id in ids if (r := calls.get(call_id)) is not None
    ]
