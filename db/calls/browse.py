"""The call log as people browse it (the admin API): filtered, keyset-paged lists of calls, and
one call's summary with its analysis and the appointments it touched.

Written to run under RLS as the caller: nothing here filters by tenant on its own except the
organisation the caller names (for the index), so a query can never show more than the policies
allow. Keyset paging on (started_at, id): the cursor is the last row of the previous page, and the
first page starts from a sentinel past either end, so the bound is always an index condition.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime

import asyncpg

from db.errors import repository

FIRST_DESC = (datetime(9999, 12, 31, tzinfo=UTC), uuid.UUID(int=(1 << 128) - 1))
FIRST_ASC = (datetime(1, 1, 2, tzinfo=UTC), uuid.UUID(int=0))


@dataclass(frozen=True)
class CallFilters:
    organization_id: uuid.UUID
    started_from: datetime | None = None
    started_to: datetime | None = None
    location_id: uuid.UUID | None = None
    status: str | None = None
    outcome: str | None = None
    caller_number: str | None = None
    agent_config_id: uuid.UUID | None = None
    sentiment: str | None = None
    intent: str | None = None
    min_latency_ms: float | None = None


@dataclass(frozen=True)
class CallSummary:
    id: uuid.UUID
    session_id: str
    room_name: str | None
    organization_id: uuid.UUID | None
    location_id: uuid.UUID | None
    location_name: str | None
    agent_config_id: uuid.UUID | None
    config_version: int | None
    direction: str
    caller_number: str | None
    dialed_number: str | None
    status: str
    outcome: str | None
    end_reason: str | None
    started_at: datetime
    connected_at: datetime | None
    ended_at: datetime | None
    duration_seconds: int | None
    total_tokens_used: int
    recording_url: str | None
    sentiment: str | None
    intent: str | None

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> CallSummary:
        return cls(**{f.name: record[f.name] for f in fields(cls)})


_SELECT = """
select c.id, c.session_id, c.room_name, c.organization_id, c.location_id, l.name as location_name,
       c.agent_config_id, ac.version as config_version, c.direction::text as direction,
       c.caller_number, c.dialed_number, c.status::text as status, c.outcome, c.end_reason,
       c.started_at, c.connected_at, c.ended_at, c.duration_seconds, c.total_tokens_used,
       c.recording_url, a.sentiment, a.intent
  from voice_calls c
  left join locations l on l.id = c.location_id
  left join agent_configs ac on ac.id = c.agent_config_id
  left join call_analyses a on a.call_id = c.id
"""

_FILTERS = """
 where c.organization_id = $1
   and ($2::timestamptz is null or c.started_at >= $2)
   and ($3::timestamptz is null or c.started_at < $3)
   and ($4::uuid is null or c.location_id = $4)
   and ($5::text is null or c.status::text = $5)
   and ($6::text is null or c.outcome = $6)
   and ($7::text is null or c.caller_number = $7)
   and ($8::uuid is null or c.agent_config_id = $8)
   and ($9::text is null or a.sentiment = $9)
   and ($10::text is null or a.intent = $10)
   and ($11::real is null or exists (select 1 from voice_messages m
                                      where m.call_id = c.id and m.e2e_latency_ms >= $11))
"""

LIST_CALLS_DESC = _SELECT + _FILTERS + """
   and (c.started_at, c.id) < ($12, $13)
 order by c.started_at desc, c.id desc
 limit $14
"""
LIST_CALLS_ASC = _SELECT + _FILTERS + """
   and (c.started_at, c.id) > ($12, $13)
 order by c.started_at, c.id
 limit $14
"""


@repository
async def list_calls(
    conn: asyncpg.Connection,
    *,
    filters: CallFilters,
    after: tuple[datetime, uuid.UUID] | None = None,
    newest_first: bool = True,
    limit: int = 50,
) -> list[CallSummary]:
    """One page of calls matching `filters`, after the row `after` (started_at, id) if given."""
    query, start = (LIST_CALLS_DESC, FIRST_DESC) if newest_first else (LIST_CALLS_ASC, FIRST_ASC)
    bound = after or start
    values = [getattr(filters, f.name) for f in fields(CallFilters)]
    records = await conn.fetch(query, *values, *bound, limit)
    return [CallSummary.from_record(r) for r in records]


GET_CALL = _SELECT + " where c.id = $1"


@repository
async def get_call_summary(conn: asyncpg.Connection, *, call_id: uuid.UUID) -> CallSummary | None:
    record = await conn.fetchrow(GET_CALL, call_id)
    return CallSummary.from_record(record) if record else None


@dataclass(frozen=True)
class Analysis:
    summary: str | None
    intent: str | None
    sentiment: str | None
    outcome: str | None
    success: bool | None
    quality_score: float | None
    extraction: dict
    model_used: str | None
    created_at: datetime


GET_ANALYSIS = """
select summary, intent, sentiment, outcome, success, quality_score, extraction, model_used, created_at
  from call_analyses where call_id = $1
"""


@repository
async def get_analysis(conn: asyncpg.Connection, *, call_id: uuid.UUID) -> Analysis | None:
    record = await conn.fetchrow(GET_ANALYSIS, call_id)
    return Analysis(**dict(record)) if record else None


@dataclass(frozen=True)
class TouchedAppointment:
    id: uuid.UUID
    status: str
    starts_at: datetime
    ends_at: datetime
    service: str
    provider: str | None
    location: str
    timezone: str
    made_by_this_call: bool


APPOINTMENTS_TOUCHED = """
select a.id, a.status::text as status, a.starts_at, a.ends_at, s.name as service,
       p.name as provider, l.name as location, l.timezone, a.call_id is not distinct from $1
           as made_by_this_call
  from appointments a
  join services s on s.id = a.service_id
  join locations l on l.id = a.location_id
  left join providers p on p.id = a.provider_id
 where a.call_id = $1 or a.last_call_id = $1
 order by a.created_at, a.id
"""


@repository
async def appointments_touched(conn: asyncpg.Connection, *, call_id: uuid.UUID) -> list[TouchedAppointment]:
    """Appointments the call made or last changed (no customer phone or confirmation code)."""
    return [TouchedAppointment(**dict(r)) for r in await conn.fetch(APPOINTMENTS_TOUCHED, call_id)]
