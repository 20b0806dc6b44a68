"""From calls to stored analyses: analyse a batch of calls concurrently, then complete them.

`complete` is the one place an analysis is completed: whatever makes analyses (the queue's
workers, a manager's run) stores them through it, in the caller's transaction. Whatever else must
happen when a call is analysed, atomically with it (an outbox `call.analyzed` event), goes there.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from analysis.analyser import Analyser, analyse_call
from db.analysis import analyses
from db.analysis.analyses import Analysis
from db.analysis.facts import CallFacts


@dataclass(frozen=True)
class Attempt:
    """What became of one call: its analysis, or the error that kept it from being made."""

    call_id: uuid.UUID
    analysis: Analysis | None = None
    error: str | None = None


async def analyse_batch(analyser: Analyser, batch: Sequence[CallFacts], *, concurrency: int) -> list[Attempt]:
    """Each call's analysis, at most `concurrency` at once; one call's failure is its own."""
    limit = asyncio.Semaphore(concurrency)

    async def one(facts: CallFacts) -> Attempt:
        async with limit:
            try:
                return Attempt(facts.call_id, analysis=await analyse_call(analyser, facts))
            except Exception as exc:  # noqa: BLE001 - any failure of one call is kept as its error
                return Attempt(facts.call_id, error=f"{type(exc).__name__}: {exc}")

    return list(await asyncio.gather(*(one(facts) for facts in batch)))


async def complete(conn: asyncpg.Connection, batch: Sequence[Analysis]) -> dict[uuid.UUID, int]:
    """Store the analyses as their calls' current ones, each a new version; returns the version
    per call. The caller owns the transaction."""
    return await analyses.save(conn, analyses=batch)
