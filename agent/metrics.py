"""The worker's own Prometheus metrics, served beside LiveKit's (jobs running, worker load, child
processes) at the worker's `/metrics` when PROMETHEUS_PORT is set.

Calls run in job processes: LiveKit's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, which the
worker sets for its children) sums what every process writes, so gauges here say how to combine
processes (`multiprocess_mode`), and the recorder's running totals become counters by adding
what changed since the last sample. In one process (text mode, tests) they are plain metrics.

The worker's /metrics is ours (metrics.render), not LiveKit's server: LiveKit's reads the files
alone, which leaves out its own worker metrics (made in memory before the folder was set).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from db.recorder import Recorder
from db.recorder.options import RecorderStats
from metrics import start_metrics_server

CALLS_ACTIVE = Gauge("frontdesk_calls_active", "Calls being answered now", multiprocess_mode="livesum")
CALLS_CLOSED = Counter("frontdesk_calls_closed", "Calls closed by the agent, by status", ["status"])
TOOL_SECONDS = Histogram("frontdesk_tool_duration_seconds", "Tool execution time, by tool", ["tool"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
TOOL_ERRORS = Counter("frontdesk_tool_errors", "Tool calls that ended in an error, by tool", ["tool"])

RECORDER_QUEUE = Gauge("frontdesk_recorder_queue_rows", "Rows in memory not yet written or spooled",
                       multiprocess_mode="livesum")
RECORDER_LAG = Gauge("frontdesk_recorder_lag_seconds", "Age of the oldest row not yet written",
                     multiprocess_mode="livemax")
RECORDER_DOWN = Gauge("frontdesk_recorder_database_down", "1 while the recorder cannot write (rows spool)",
                      multiprocess_mode="livemax")
RECORDER_TOTALS = {
    "written": Counter("frontdesk_recorder_written_rows", "Rows written to Postgres"),
    "spooled": Counter("frontdesk_recorder_spooled_rows", "Rows appended to the local spool"),
    "dead_lettered": Counter("frontdesk_recorder_dead_letters", "Rows Postgres rejected for good"),
    "batches_written": Counter("frontdesk_recorder_batches", "Batches written to Postgres"),
    "batch_write_seconds": Counter("frontdesk_recorder_batch_write_seconds",
                                   "Time spent writing batches (divide by batches for the mean)"),
}

SAMPLE_INTERVAL_S = 5.0


def call_opened() -> None:
    CALLS_ACTIVE.inc()


def call_closed(status: str) -> None:
    CALLS_ACTIVE.dec()
    CALLS_CLOSED.labels(status=status).inc()


class RecorderSampler:
    """Copies a recorder's stats into the metrics; each `sample()` adds what changed."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._last: RecorderStats | None = None

    def sample(self) -> None:
        stats = self._recorder.stats()
        RECORDER_QUEUE.set(stats.queued)
        RECORDER_LAG.set(stats.lag_seconds)
        RECORDER_DOWN.set(0 if stats.database_available else 1)
        for name, counter in RECORDER_TOTALS.items():
            delta = getattr(stats, name) - (getattr(self._last, name) if self._last else 0)
            if delta > 0:
                counter.inc(delta)
        self._last = stats

    async def run(self, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        while True:
            self.sample()
            await asyncio.sleep(interval_s)


class ToolTimer:
    """Times each tool from LiveKit's 'started' update to its result, and counts its errors."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}

    def attach(self, session: Any) -> None:
        session.on("tool_execution_updated", self.on_update)
        session.on("function_tools_executed", self.on_executed)

    def on_update(self, event: Any) -> None:
        if event.update.type == "tool_call_started":
            self._started[event.update.function_call.call_id] = time.monotonic()

    def on_executed(self, event: Any) -> None:
        now = time.monotonic()
        for call, output in event.zipped():
            started = self._started.pop(call.call_id, None)
            if started is not None:
                TOOL_SECONDS.labels(tool=call.name).observe(now - started)
            if output is not None and output.is_error:
                TOOL_ERRORS.labels(tool=call.name).inc()


def serve_metrics_when_started(server: Any, host: str, port: int) -> None:
    """Serve /metrics from the worker's main process once its event loop runs."""
    runners: list[Any] = []

    def start() -> None:
        async def serve() -> None:
            runners.append(await start_metrics_server(host, port))
        asyncio.get_running_loop().create_task(serve())

    server.on("worker_started", start)
