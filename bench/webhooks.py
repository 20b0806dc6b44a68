"""Verified webhooks per second: the real service (`python -m webhooks`, its own process) on
loopback with its own database, fed by 50 concurrent aiohttp clients.

    uv run python bench/webhooks.py [--calls 1000] [--clients 50] [--max-seconds 60]

Each call is the seven webhooks of an answered SIP call (room started, caller and agent joined,
audio published, both left, room finished), signed as livekit-server signs them; the deliveries
of all calls go out in order, 50 at a time, so the events of one call overlap as they do when
LiveKit posts them. Then every delivery is sent again: the duplicates pass. Prints
`webhooks_per_s=`, `webhooks_p50_ms=`, `webhooks_p99_ms=` and the same for `duplicates_`.
Target (issue 12): `webhooks_vs_bare_http` >= 0.25 and p99 < 50 ms with 50 clients.

On a shared machine the rates swing with the neighbours' load, so the CPU spent per delivery is
printed too, which the load changes far less: `bare_http_cpu_us` (the bare server's process),
`webhooks_cpu_us` and `duplicates_cpu_us` (the service's process), `webhooks_db_cpu_us` and
`duplicates_db_cpu_us` (its database sessions).

The database is an embedded Postgres in a temporary folder, or a fresh database created on the
server DATABASE_URL points at (dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
import warnings

import aiohttp
import asyncpg
from google.protobuf.json_format import MessageToJson
from livekit.api import AccessToken
from livekit.protocol.models import ParticipantInfo, TrackInfo, TrackSource, TrackType
from livekit.protocol.webhook import WebhookEvent

from bench.cpu import cpu_seconds, database_sessions
from db.scratch import scratch_database

API_KEY, API_SECRET = "devkey", "secret"
T0 = 1_760_000_000


def _event(name: str, room: str, at: int, n: int) -> WebhookEvent:
    event = WebhookEvent(event=name, id=f"EV_{room}_{n}", created_at=T0 + at)
    event.room.sid, event.room.name = room, f"call-{room}"
    return event


def _with_participant(event: WebhookEvent, sid: str, kind: int, joined: int) -> WebhookEvent:
    info = ParticipantInfo(sid=sid, identity=f"{sid}-id", kind=kind, joined_at=T0 + joined)
    if kind == ParticipantInfo.Kind.SIP:
        info.attributes.update({"sip.phoneNumber": "+15551230001", "sip.trunkPhoneNumber": "+15559870002",
                                "sip.callID": f"SCL_{sid}"})
    event.participant.CopyFrom(info)
    return event


def call_events(room: str) -> list[WebhookEvent]:
    caller, agent = f"PA_{room}_c", f"PA_{room}_a"
    sip, bot = ParticipantInfo.Kind.SIP, ParticipantInfo.Kind.AGENT
    track = _with_participant(_event("track_published", room, 3, 4), caller, sip, 1)
    track.track.CopyFrom(TrackInfo(sid=f"TR_{room}", type=TrackType.AUDIO, source=TrackSource.MICROPHONE))
    return [
        _event("room_started", room, 0, 1),
        _with_participant(_event("participant_joined", room, 1, 2), caller, sip, 1),
        _with_participant(_event("participant_joined", room, 2, 3), agent, bot, 2),
        track,
        _with_participant(_event("participant_left", room, 60, 5), caller, sip, 1),
        _with_participant(_event("participant_left", room, 61, 6), agent, bot, 2),
        _event("room_finished", room, 62, 7),
    ]


def signed(event: WebhookEvent) -> tuple[bytes, dict[str, str]]:
    body = MessageToJson(event).encode()
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    token = AccessToken(API_KEY, API_SECRET).with_sha256(digest).to_jwt()
    return body, {"Authorization": token, "Content-Type": "application/webhook+json"}


async def deliver_all(url: str, deliveries: list, clients: int, deadline: float) -> tuple[list[float], dict]:
    """Post every delivery with `clients` concurrent workers; latencies in ms and status counts."""
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    pending = iter(deliveries)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for body, headers in pending:
                if time.monotonic() > deadline:
                    return
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    answer = await response.json()
                latencies.append((time.perf_counter() - started) * 1000)
                key = answer.get("status") or f"{response.status}: {answer.get('error')}"
                outcomes[key] = outcomes.get(key, 0) + 1

        await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, outcomes


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def wait_ready(base: str, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if process.returncode is not None:
                raise RuntimeError("the webhook service exited during startup")
            try:
                async with session.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the webhook service did not become ready in 30 s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BARE_SERVER = """
import sys
from aiohttp import web

async def accept(request):
    await request.read()
    return web.json_response({"status": "applied"})

async def ready(request):
    return web.json_response({"ready": True})

app = web.Application()
app.router.add_post("/livekit/webhook", accept)
app.router.add_get("/readyz", ready)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


async def start(args: list[str], port: int, env: dict | None = None) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, str(port), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    await wait_ready(f"http://127.0.0.1:{port}", process)
    return process


async def stop(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGTERM)
    await process.wait()


async def paced(url: str, deliveries: list, rate: float) -> list[float]:
    """Open loop: one delivery every 1/rate s whatever the answers, so latency is the service's
    own and not the queue that 50 waiting clients build in front of it."""
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:

        async def one(body: bytes, headers: dict) -> None:
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
            latencies.append((time.perf_counter() - started) * 1000)

        tasks, t0 = [], time.monotonic()
        for n, (body, headers) in enumerate(deliveries):
            await asyncio.sleep(max(0.0, t0 + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(body, headers)))
        await asyncio.gather(*tasks)
    return latencies


def sign_calls(prefix: str, count: int) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dev secret is short, and PyJWT says so each time
        return [signed(e) for n in range(count) for e in call_events(f"RM_{prefix}{n:06d}")]


def figures(name: str, latencies: list[float], elapsed: float | None = None) -> dict[str, str]:
    found = {f"{name}_p50_ms": f"{percentile(latencies, 50):.1f}",
             f"{name}_p99_ms": f"{percentile(latencies, 99):.1f}"}
    if elapsed is not None:
        found = {f"{name}_per_s": f"{len(latencies) / elapsed:.0f}", **found}
    return found


async def run(dsn: str, args: argparse.Namespace) -> None:
    report: dict[str, str] = {}
    deliveries = sign_calls("", args.calls)
    # The ceiling on this machine, side by side: the same clients against a handler that only
    # reads the body and answers.
    port = free_port()
    bare = await start(["-c", BARE_SERVER], port)
    try:
        started, cpu = time.monotonic(), cpu_seconds([bare.pid])
        latencies, _ = await deliver_all(f"http://127.0.0.1:{port}/livekit/webhook", deliveries,
                                         args.clients, started + args.max_seconds)
        report.update(figures("bare_http", latencies, time.monotonic() - started))
        report["bare_http_cpu_us"] = f"{(cpu_seconds([bare.pid]) - cpu) / len(latencies) * 1e6:.0f}"
    finally:
        await stop(bare)

    port = free_port()
    journal = tempfile.mkdtemp(prefix="bench-webhooks-journal-")
    env = {**os.environ, "DATABASE_URL": dsn, "LIVEKIT_API_KEY": API_KEY, "LIVEKIT_API_SECRET": API_SECRET,
           "WEBHOOK_JOURNAL_DIR": journal}
    service = await start(["-m", "webhooks", "--port"], port, env)
    url = f"http://127.0.0.1:{port}/livekit/webhook"
    try:
        await deliver_all(url, sign_calls("warmup", 2), 7, time.monotonic() + 30)
        sessions = await database_sessions(dsn)
        for phase in ("webhooks", "duplicates"):
            started, cpu, db_cpu = time.monotonic(), cpu_seconds([service.pid]), cpu_seconds(sessions)
            latencies, outcomes = await deliver_all(url, deliveries, args.clients, started + args.max_seconds)
            elapsed = time.monotonic() - started
            report[f"{phase}_cpu_us"] = f"{(cpu_seconds([service.pid]) - cpu) / len(latencies) * 1e6:.0f}"
            report[f"{phase}_db_cpu_us"] = f"{(cpu_seconds(sessions) - db_cpu) / len(latencies) * 1e6:.0f}"
            print(f"{phase}: {len(latencies)} deliveries by {args.clients} clients in {elapsed:.2f} s, "
                  f"answers {outcomes}")
            report.update(figures(phase, latencies, elapsed))
        rate = args.paced_rate or max(50.0, float(report["webhooks_per_s"]) / 2)
        paced_deliveries = sign_calls("paced", max(10, int(rate * 5 / 7)))
        latencies = await paced(url, paced_deliveries, rate)
        print(f"paced: {len(latencies)} deliveries offered at {rate:.0f}/s")
        report["paced_rate_per_s"] = f"{rate:.0f}"
        report.update(figures("webhooks_paced", latencies))
        conn = await asyncpg.connect(dsn)
        try:
            closed = await conn.fetchval("select count(*) from voice_calls where ended_at is not null")
            total = await conn.fetchval("select count(*) from voice_calls")
        finally:
            await conn.close()
        print(f"calls closed in the database: {closed} of {total}")
    finally:
        await stop(service)
        shutil.rmtree(journal, ignore_errors=True)
    ratio = float(report["webhooks_per_s"]) / float(report["bare_http_per_s"])
    report["webhooks_vs_bare_http"] = f"{ratio:.2f}"
    print(" ".join(f"{k}={v}" for k, v in report.items()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000, help="calls of 7 webhooks each (default 1000)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="per phase (default 60)")
    parser.add_argument("--paced-rate", type=float, default=None,
                        help="deliveries/s offered in the open-loop latency phase (default: half "
                             "the measured webhooks_per_s)")
    args = parser.parse_args()
    asyncio.run(in_scratch_database(args))


async def in_scratch_database(args: argparse.Namespace) -> None:
    async with scratch_database("bench-webhooks", fsync=True) as dsn:
        await run(dsn, args)


if __name__ == "__main__":
    main()
