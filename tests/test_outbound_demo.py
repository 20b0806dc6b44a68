"""Done-when of signed outbound webhooks, with real processes: an endpoint added with `python -m db
endpoints add`, `python -m webhooks` delivering, and the keyless demo (`python -m agent demo`)
make a local receiver verify call.started, appointment.booked and call.ended, in the order of
their sequence numbers; the service's /metrics counts the deliveries."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from db.demo.data import ORGANIZATION
from tests.outbound_receiver import Receiver

pytestmark = pytest.mark.db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run(env: dict, *args: str, within_s: float = 120) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=within_s)
    assert process.returncode == 0, output.decode()
    return output.decode()


async def scrape(base: str) -> dict[tuple[str, tuple], float]:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as response:
        text = await response.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def wait_until_serving(base: str) -> None:
    for _ in range(200):
        try:
            await scrape(base)
            return
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    pytest.fail("the webhook service did not serve /metrics in 20 s")


async def test_the_demo_call_reaches_a_local_receiver_signed(db_dsn, tmp_path):
    env = {**os.environ, "DATABASE_URL": db_dsn, "OPENAI_API_KEY": "", "SPOOL_DIR": str(tmp_path / "spool"),
           "OUTBOUND_POLL_INTERVAL_S": "0.2"}
    receiver = await Receiver().start()
    port = free_port()
    service = None
    try:
        await run(env, "db", "seed", "--demo")
        added = await run(env, "db", "endpoints", "add", ORGANIZATION["slug"], receiver.url("crm"))
        receiver.route("crm", added.strip().splitlines()[-1])
        service = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "webhooks", "--outbound-only", "--port", str(port), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        await wait_until_serving(base)
        await run(env, "agent", "demo")
        wanted = {"call.started", "appointment.booked", "call.ended"}
        await receiver.wait_for(lambda: wanted <= {d.body["type"] for d in receiver.of("crm")}, within_s=30)
        assert receiver.rejected == []
        got = sorted(receiver.of("crm"), key=lambda d: d.body["sequence"])
        types = [d.body["type"] for d in got]
        assert types.index("call.started") < types.index("appointment.booked") < types.index("call.ended")
        assert [d.body["sequence"] for d in got] == list(range(1, len(got) + 1))
        ended = next(d.body["data"] for d in got if d.body["type"] == "call.ended")
        assert ended["status"] == "completed" and ended["duration_seconds"] is not None
        metrics = await scrape(base)
        assert metrics[("frontdesk_outbound_attempts_total", (("result", "delivered"),))] >= 3
        service.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(service.communicate(), timeout=20)
        assert service.returncode == 0, output.decode()
    finally:
        if service is not None and service.returncode is None:
            service.kill()
            await service.wait()
        await receiver.stop()
