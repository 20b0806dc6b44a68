"""The analysis worker's Prometheus metrics, read back with prometheus_client's text parser:
`python -m analysis work` serves them on ANALYSIS_METRICS_PORT (queue by status, analyses done
by analyser, analysis time), and a failing analyser's attempts count as failed."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from analysis.worker import Worker
from metrics import render
from tests.analysis_helpers import make_call
from tests.test_agent_metrics import free_port
from tests.test_analysis_queue import options

pytestmark = pytest.mark.db

NOW = datetime.now(UTC)


def parse(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def scrape(url: str) -> dict[tuple[str, tuple], float]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return parse(await response.text())


async def test_the_worker_serves_queue_depth_analyses_and_latency(db_dsn, pool, tenant, repo_root):
    async with pool.acquire() as conn:
        for _ in range(3):
            await make_call(conn, organization_id=tenant.organization_id, started_at=NOW)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_dsn, "OPENAI_API_KEY": "", "ANALYSIS_BASE_URL": "",
           "ANALYSIS_METRICS_PORT": str(port), "ANALYSIS_POLL_SECONDS": "0.1"}
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "analysis", "work", cwd=repo_root, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}/metrics"
    done = ("frontdesk_analyses_total", (("analyser", "rules"), ("result", "done")))
    got: dict = {}
    try:
        async with asyncio.timeout(60):
            while got.get(("frontdesk_analysis_jobs", (("status", "done"),))) != 3:
                await asyncio.sleep(0.2)
                try:
                    got = await scrape(url)
                except aiohttp.ClientConnectionError:
                    assert worker.returncode is None, await worker.stderr.read()
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            assert await asyncio.wait_for(worker.wait(), timeout=30) == 0
        except TimeoutError:
            os.killpg(worker.pid, signal.SIGKILL)
            await worker.wait()
    assert got[done] == 3
    assert got[("frontdesk_analysis_jobs", (("status", "queued"),))] == 0
    assert got[("frontdesk_analysis_duration_seconds_count", (("analyser", "rules"),))] == 3
    assert got[("frontdesk_analysis_duration_seconds_sum", (("analyser", "rules"),))] > 0


class Broken:
    name, model, prompt_version = "model", "gpt-test", "p1"

    async def analyse(self, facts, config):
        raise TimeoutError("the model did not answer")

    async def aclose(self) -> None:
        pass


async def test_failed_attempts_count_by_analyser(pool, tenant):
    async with pool.acquire() as conn:
        await make_call(conn, organization_id=tenant.organization_id, started_at=NOW)
    failed = ("frontdesk_analyses_total", (("analyser", "model"), ("result", "failed")))
    before = parse(render().decode()).get(failed, 0)
    assert await Worker(pool, Broken(), options(max_attempts=1)).drain() == 1
    after = parse(render().decode())
    assert after[failed] == before + 1
    assert after[("frontdesk_analysis_jobs", (("status", "failed"),))] == 1
    assert after[("frontdesk_analysis_jobs", (("status", "queued"),))] == 0
