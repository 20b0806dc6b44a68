"""From calls to stored analyses: analyse a batch of calls concurrently, then complete them.

`complete` is the one place an analysis is completed: whatever makes analyses (the queue's
workers, a manager's run) stores them through it, in the caller's transaction. Whatever else must
happen when a call is analysed, atomically with it (an outbox `call.analyzed` event), goes there.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from analysis.analyser import Analyser, analyse_call
from analysis.privacy import redacted
from db.analysis import analyses, owners
from db.analysis.analyses import Analysis
from db.analysis.facts import CallFacts
from db.analysis.owners import CallOwner
from db.outbound import outbox
from db.privacy.redaction import Redactor


@dataclass(frozen=True)
class Attempt:
    """What became of one call: its analysis, or the error that kept it from being made."""

    call_id: uuid.UUID
    analysis: Analysis | None = None
    error: str | None = None
    seconds: float = 0.0  # how long the analyser took


async def analyse_batch(analyser: Analyser, batch: Sequence[CallFacts], *, concurrency: int) -> list[Attempt]:
    """Each call's analysis, at most `concurrency` at once; one call's failure is its own."""
    limit = asyncio.Semaphore(concurrency)

    async def one(facts: CallFacts) -> Attempt:
        async with limit:
            started = time.monotonic()
            try:
                analysis = await analyse_call(analyser, facts)
            except Exception as exc:  # noqa: BLE001 - any failure of one call is kept as its error
                return Attempt(facts.call_id, error=f"{type(exc).__name__}: {exc}",
                               seconds=time.monotonic() - started)
            return Attempt(facts.call_id, analysis=analysis, seconds=time.monotonic() - started)

    return list(await asyncio.gather(*(one(facts) for facts in batch)))


def _as_stored(analysis: Analysis, owner: CallOwner | None,
               redactors: dict[str, Redactor]) -> Analysis:
    """The analysis as its organisation stores it: redacted when it has redact_pii on."""
    if owner is None or not owner.redact_pii:
        return analysis
    return redacted(analysis, redactors.setdefault(owner.country, Redactor(region=owner.country)))


def analyzed_event(analysis: Analysis, owner: CallOwner, version: int) -> dict[str, Any]:
    """The `call.analyzed` payload: what was stored (redacted when the organisation redacts)."""
    return {
        "call_id": str(analysis.call_id), "session_id": owner.session_id,
        "location_id": str(owner.location_id) if owner.location_id else None,
        "version": version, "status": analysis.status, "analyser": analysis.analyser,
        "model": analysis.model_used, "prompt_version": analysis.prompt_version,
        "summary": analysis.summary, "intent": analysis.intent,
        "journey_stage": analysis.journey_stage, "sentiment": analysis.sentiment,
        "outcome": analysis.outcome, "success": analysis.success,
        "success_reason": analysis.success_reason, "quality": analysis.agent_quality,
        "confidence": analysis.confidence, "fields": analysis.extraction,
        "follow_ups": analysis.follow_ups,
    }


async def complete(conn: asyncpg.Connection, batch: Sequence[Analysis]) -> dict[uuid.UUID, int]:
    """Store the analyses as their calls' current ones, each a new version (redacted for an
    organisation with redact_pii on), and write a `call.analyzed` event to the outbox for each
    call that belongs to an organisation; returns the version per call. The caller owns the
    transaction: the analyses and their events commit, or roll back, together."""
    if not batch:
        return {}
    owner_of = await owners.owners(conn, call_ids=[a.call_id for a in batch])
    redactors: dict[str, Redactor] = {}
    stored = [_as_stored(a, owner_of.get(a.call_id), redactors) for a in batch]
    versions = await analyses.save(conn, analyses=stored)
    await outbox.enqueue_many(conn, events=[
        (owner.organization_id, "call.analyzed", analyzed_event(a, owner, versions[a.call_id]),
         f"call.analyzed:{a.call_id}:{versions[a.call_id]}")
        for a in stored
        # a call of no organisation has no endpoint to tell
        if (owner := owner_of.get(a.call_id)) is not None and owner.organization_id is not None])
    return versions
