"""call_analyses and call_analysis_versions: the current analysis of a call and every version.

`save` writes one new version per analysis in one statement: the current row is upserted with
its version counted up (the row lock orders two writers of one call) and the same values go to
the history under that version. The caller owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import asyncpg

from db import errors
from db.calls.calls import CALL_NOT_FOUND
from db.errors import InvalidInput, repository

STATUSES = ("completed", "failed", "no_conversation")
SENTIMENTS = ("positive", "neutral", "negative", "friction")

CONSTRAINTS = errors.constraints({
    "call_analysis_versions_call_id_fkey": CALL_NOT_FOUND,
    "call_analysis_versions_pkey": (InvalidInput, "this version of the call's analysis exists"),
    "call_analyses_sentiment_check": (
        InvalidInput, "sentiment is one of positive, neutral, negative, friction"),
    "call_analyses_status_check": (
        InvalidInput, "an analysis is completed, failed or no_conversation"),
    "call_analyses_agent_quality_check": (InvalidInput, "agent quality is scored 1 to 10"),
    "call_analyses_confidence_check": (InvalidInput, "confidence is between 0 and 1"),
    "call_analyses_version_check": (InvalidInput, "versions start at 1"),
    "call_analyses_quality_score_check": (InvalidInput, "quality_score is between 0 and 1"),
})


@dataclass(frozen=True)
class Analysis:
    """One analysis of one call, as an analyser made it."""

    call_id: uuid.UUID
    status: str
    analyser: str
    model_used: str | None = None
    prompt_version: str | None = None
    summary: str | None = None
    intent: str | None = None
    journey_stage: str | None = None
    sentiment: str | None = None
    outcome: str | None = None
    success: bool | None = None
    success_reason: str | None = None
    agent_quality: int | None = None
    quality_reasoning: str | None = None
    confidence: float | None = None
    extraction: dict[str, Any] = field(default_factory=dict)
    follow_ups: list[str] = field(default_factory=list)
    error: str | None = None
    raw_reply: str | None = None
    run_id: uuid.UUID | None = None


@dataclass(frozen=True)
class StoredAnalysis(Analysis):
    version: int = 0
    created_at: datetime | None = None


_VALUES = tuple(f.name for f in fields(Analysis))
_INSERT_COLUMNS = ", ".join(_VALUES)
_PARAMS = ", ".join(f"${i}" for i in range(1, len(_VALUES) + 1))
_UPDATES = ", ".join(f"{name} = excluded.{name}" for name in _VALUES if name != "call_id")

SAVE = f"""
with current as (
    insert into call_analyses as a ({_INSERT_COLUMNS}, quality_score, version)
    values ({_PARAMS}, ${_VALUES.index('agent_quality') + 1}::smallint / 10.0, 1)
    on conflict (call_id) do update set
        {_UPDATES}, quality_score = excluded.quality_score, version = a.version + 1,
        created_at = now(), updated_at = now()
    returning {_INSERT_COLUMNS}, version
)
insert into call_analysis_versions ({_INSERT_COLUMNS}, version)
select {_INSERT_COLUMNS}, version from current
returning call_id, version
"""


@repository
async def save(conn: asyncpg.Connection, *, analyses: Sequence[Analysis]) -> dict[uuid.UUID, int]:
    """Store each analysis as the current one of its call and as a new version; returns the
    version written per call."""
    versions: dict[uuid.UUID, int] = {}
    for analysis in analyses:
        if analysis.status not in STATUSES:
            raise InvalidInput(f"an analysis is one of {', '.join(STATUSES)}, not {analysis.status!r}")
    # One statement per analysis (a CTE cannot be batched by executemany with RETURNING), on a
    # prepared statement: the cost is a round trip each.
    statement = await conn.prepare(SAVE)
    for analysis in analyses:
        record = await statement.fetchrow(*(getattr(analysis, name) for name in _VALUES))
        versions[record["call_id"]] = record["version"]
    return versions


_STORED = ", ".join(f.name for f in fields(StoredAnalysis))
CURRENT = f"select {_STORED} from call_analyses where call_id = $1"
HISTORY = f"select {_STORED} from call_analysis_versions where call_id = $1 order by version"


@repository
async def current(conn: asyncpg.Connection, *, call_id: uuid.UUID) -> StoredAnalysis | None:
    record = await conn.fetchrow(CURRENT, call_id)
    return StoredAnalysis(**dict(record)) if record else None


@repository
async def history(conn: asyncpg.Connection, *, call_id: uuid.UUID) -> list[StoredAnalysis]:
    """Every version of the call's analysis, oldest first (the last is the current one)."""
    return [StoredAnalysis(**dict(r)) for r in await conn.fetch(HISTORY, call_id)]
