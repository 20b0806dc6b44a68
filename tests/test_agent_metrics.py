"""The worker's Prometheus metrics, read back through the text format with prometheus_client's
parser: a text-mode call moves calls active/closed, tool latency and errors, and the recorder's
rows, batches and batch write time; LiveKit's own worker metrics are in the same exposition."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.metrics import RecorderSampler
from agent.scripted import Step
from metrics import render
from tests.clock import local, next_open_weekday
from tests.harness import open_text_call

pytestmark = pytest.mark.db


def samples() -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(render().decode()) for s in family.samples}


def value(snapshot, name: str, **labels: str) -> float:
    return snapshot.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_text_mode_call_moves_the_worker_metrics(pool, recorder, tenant):
    sampler = RecorderSampler(recorder)
    sampler.sample()
    before = samples()
    call = await open_text_call(pool, recorder)
    during = samples()
    assert value(during, "frontdesk_calls_active") == value(before, "frontdesk_calls_active") + 1
    day = next_open_weekday()
    await call.say(f"Book me a cleaning on {day} at ten, I'm Jane Doe",
                   Step(calls=[("book_appointment", {"service": "cleaning", "start_time": local(day, "10:00"),
                                                     "customer_name": "Jane Doe"})]),
                   Step(calls=[("book_appointment", {"service": "no such thing", "start_time": "soon",
                                                     "customer_name": "Jane Doe"})]),
                   Step(text="You're booked."))
    await call.hang_up(recorder)
    sampler.sample()
    after = samples()

    assert value(after, "frontdesk_calls_active") == value(before, "frontdesk_calls_active")
    assert value(after, "frontdesk_calls_closed_total", status="completed") == \
        value(before, "frontdesk_calls_closed_total", status="completed") + 1
    booked = ("frontdesk_tool_duration_seconds_count", {"tool": "book_appointment"})
    assert value(after, booked[0], **booked[1]) == value(before, booked[0], **booked[1]) + 2
    assert value(after, "frontdesk_tool_duration_seconds_sum", tool="book_appointment") > \
        value(before, "frontdesk_tool_duration_seconds_sum", tool="book_appointment")
    assert value(after, "frontdesk_tool_errors_total", tool="book_appointment") == \
        value(before, "frontdesk_tool_errors_total", tool="book_appointment") + 1
    written = value(after, "frontdesk_recorder_written_rows_total") - \
        value(before, "frontdesk_recorder_written_rows_total")
    assert written >= 5  # the call, its update and close, two messages, tool events
    assert value(after, "frontdesk_recorder_batches_total") > \
        value(before, "frontdesk_recorder_batches_total")
    assert value(after, "frontdesk_recorder_batch_write_seconds_total") > \
        value(before, "frontdesk_recorder_batch_write_seconds_total")
    assert value(after, "frontdesk_recorder_queue_rows") == 0
    assert ("frontdesk_recorder_database_down", ()) in after
    assert value(after, "frontdesk_recorder_database_down") == 0
    assert ("frontdesk_recorder_dead_letters_total", ()) in after
    assert ("frontdesk_recorder_spooled_rows_total", ()) in after


async def test_the_worker_process_serves_livekits_metrics_and_ours(tmp_path):
    """`python -m agent start` with PROMETHEUS_PORT: LiveKit's server, in multiprocess mode, sums
    what its idle job processes (which import our metrics) write. No LiveKit server is needed."""
    port = free_port()
    env = {**os.environ, "PROVIDERS": "tests.worker_providers:scripted", "PROMETHEUS_PORT": str(port),
           "PROMETHEUS_DIR": str(tmp_path / "prom"), "HEALTH_HOST": "127.0.0.1", "HEALTH_PORT": "0",
           "LIVEKIT_URL": f"ws://127.0.0.1:{free_port()}", "DATABASE_URL": "postgresql://x@127.0.0.1:9/x",
           "MIGRATE_ON_START": "false", "SPOOL_DIR": str(tmp_path / "spool")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "start", env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
    try:
        names: set[str] = set()
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                        names = {f.name for f in text_string_to_metric_families(await response.text())}
                if {"frontdesk_calls_active", "frontdesk_recorder_queue_rows"} <= names:
                    break
                await asyncio.sleep(0.1)
        assert {"frontdesk_calls_active", "frontdesk_recorder_queue_rows",
                "frontdesk_recorder_written_rows", "frontdesk_recorder_database_down"} <= names, names
        assert any(n.startswith("lk_agents_") for n in names), names
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(worker.wait(), timeout=15)
        except TimeoutError:
            os.killpg(worker.pid, signal.SIGKILL)
            await worker.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
