"""The analysis worker's Prometheus metrics (served by `python -m analysis work` on
ANALYSIS_METRICS_PORT through the metrics package): the queue by status, analyses done and
failed by analyser, and how long each call's analysis took to make."""

from __future__ import annotations

import time
from collections.abc import Iterable

import asyncpg
from prometheus_client import Counter, Gauge, Histogram

from db.analysis import jobs

QUEUE = Gauge("frontdesk_analysis_jobs", "Analysis jobs in the queue, by status", ["status"])
ANALYSES = Counter("frontdesk_analyses", "Calls analysed (done) or attempts that failed, by analyser",
                   ["analyser", "result"])
SECONDS = Histogram("frontdesk_analysis_duration_seconds", "Time to analyse one call, by analyser",
                    ["analyser"], buckets=(0.005, 0.05, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))

JOB_STATUSES = ("queued", "running", "done", "failed")


def observe(analyser: str, results: Iterable[tuple[str, str, float]]) -> None:
    """Each (analyser that made it, "done" or "failed", seconds) of a committed batch."""
    for made_by, result, seconds in results:
        ANALYSES.labels(made_by or analyser, result).inc()
        SECONDS.labels(made_by or analyser).observe(seconds)


class QueueGauge:
    """Refreshes the queue gauge from the database at most every `every` seconds (a count over
    analysis_jobs: cheap, but not for every batch)."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self._last = float("-inf")

    async def refresh(self, conn: asyncpg.Connection, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._last < self.every:
            return
        counts = await jobs.count_by_status(conn)
        for status in {*JOB_STATUSES, *counts}:
            QUEUE.labels(status).set(counts.get(status, 0))
        self._last = time.monotonic()
