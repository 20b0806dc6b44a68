"""`python -m analysis work`: take analysis jobs from the queue until stopped (or, `--once`,
until none is due), any number of workers on any number of hosts."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass

import asyncpg

from analysis import metrics
from analysis.analyser import Analyser
from analysis.pipeline import Attempt, analyse_batch, complete
from db.analysis import facts, jobs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    batch_size: int = 50
    concurrency: int = 8
    lease_seconds: float = 300.0
    max_attempts: int = 5
    backoff_seconds: float = 30.0
    poll_seconds: float = 2.0
    name: str = f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    def __init__(self, pool: asyncpg.Pool, analyser: Analyser, options: WorkerOptions) -> None:
        self.pool = pool
        self.analyser = analyser
        self.options = options
        self.queue_gauge = metrics.QueueGauge()
        self._moved = True  # jobs changed since the queue gauge was last read exactly

    async def process_batch(self) -> int:
        """Claim a batch of due jobs, analyse their calls, store the results; how many jobs were
        claimed (0: nothing is due)."""
        options = self.options
        async with self.pool.acquire() as conn:
            await self.queue_gauge.refresh(conn)
            claimed = await jobs.claim(conn, limit=options.batch_size,
                                       lease_seconds=options.lease_seconds, worker=options.name)
            if not claimed:
                # Once the queue runs dry, the gauge shows where the work ended.
                await self.queue_gauge.refresh(conn, force=self._moved)
                self._moved = False
                return 0
            self._moved = True
            loaded = await facts.load(conn, call_ids=[job.call_id for job in claimed])
        attempts = {a.call_id: a for a in await analyse_batch(
            self.analyser, loaded, concurrency=options.concurrency)}
        async with self.pool.acquire() as conn, conn.transaction():
            await complete(conn, [a.analysis for a in attempts.values() if a.analysis])
            done = [job.id for job in claimed
                    if job.call_id not in attempts or attempts[job.call_id].analysis]
            await jobs.finish(conn, job_ids=done)
            for job in claimed:
                attempt = attempts.get(job.call_id, Attempt(job.call_id))
                if attempt.error is not None:
                    status = await jobs.retry(conn, job_id=job.id, error=attempt.error,
                                              max_attempts=options.max_attempts,
                                              backoff_seconds=options.backoff_seconds)
                    log.warning("analysis job %s (call %s) attempt %s failed, now %s",
                                job.id, job.call_id, job.attempts, status)
        metrics.observe(self.analyser.name, (
            (a.analysis.analyser if a.analysis else "", "done" if a.analysis else "failed", a.seconds)
            for a in attempts.values()))
        log.info("analysed %s call(s), %s failed", len(done), len(claimed) - len(done))
        return len(claimed)

    async def drain(self) -> int:
        """Process batches until no job is due; how many jobs were taken."""
        total = 0
        while taken := await self.process_batch():
            total += taken
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Process jobs until `stop` is set, polling every poll_seconds when the queue is empty.
        A failed batch (the database away) is logged and tried again after a poll."""
        while not stop.is_set():
            try:
                if await self.process_batch():
                    continue
            except Exception:
                log.exception("analysis batch failed; trying again in %ss", self.options.poll_seconds)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.options.poll_seconds)
            except TimeoutError:
                pass
