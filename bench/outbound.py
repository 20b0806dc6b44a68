"""Signed outbound webhooks delivered per second: the real delivery loop (`python -m webhooks
--outbound-only`, its own process: relay, claims, signing, HTTP, a recorded attempt per delivery)
to a local receiver (this process) on loopback.

    uv run python bench/outbound.py [--events 2000] [--endpoints 4] [--max-seconds 60]

Writes `--events` events to one organisation's outbox (one transaction), subscribes
`--endpoints` endpoints of a receiver that answers 200 (and checks every signature with the
`standardwebhooks` library, so the figure includes what a real receiver costs on this machine),
then starts the service and times it until every delivery is recorded as delivered. Prints
`outbound_deliveries_per_s=`, `outbound_events=`, `outbound_endpoints=`, `outbound_failed=`
(deliveries not delivered at the end: 0 unless --max-seconds ran out).

The database is an embedded Postgres in a temporary folder, or a fresh database created on the
server DATABASE_URL points at (dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import time

from aiohttp import web
from standardwebhooks.webhooks import Webhook

from db.desk import organizations
from db.migrate import migrate
from db.outbound import endpoints
from db.pool import connect
from db.scratch import scratch_database

PENDING = "select count(*) from outbound_deliveries where status <> 'delivered'"
TOTAL = "select count(*) from outbound_deliveries"


class Receiver:
    def __init__(self) -> None:
        self.verifiers: dict[str, Webhook] = {}
        self.received = self.rejected = 0
        self.first = self.last = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            self.verifiers[request.match_info["name"]].verify(body, dict(request.headers))
        except Exception:
            self.rejected += 1
            return web.Response(status=400)
        self.received += 1
        self.last = time.perf_counter()
        self.first = self.first or self.last
        return web.Response(status=200)


async def run(dsn: str, args: argparse.Namespace) -> None:
    conn = await connect(dsn)
    await migrate(conn)
    org = await organizations.create_organization(conn, name="Bench", slug="bench",
                                                  default_timezone="America/New_York")
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/{name}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    for i in range(args.endpoints):
        ep = await endpoints.add_endpoint(conn, organization_id=org.id, url=f"http://127.0.0.1:{port}/e{i}")
        receiver.verifiers[f"e{i}"] = Webhook(ep.secret)
    await conn.executemany("select outbound_enqueue($1, 'call.analyzed', $2::jsonb)",
                           [(org.id, {"n": n, "summary": "x" * 200}) for n in range(args.events)])
    env = {**os.environ, "DATABASE_URL": dsn, "OUTBOUND_MAX_IN_FLIGHT": str(args.in_flight),
           "OUTBOUND_PER_ENDPOINT": str(args.in_flight), "OUTBOUND_POLL_INTERVAL_S": "0.05"}
    started = time.perf_counter()
    service = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "webhooks", "--outbound-only", "--port", str(free_port()), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    expected = args.events * args.endpoints
    try:
        while time.perf_counter() - started < args.max_seconds:
            await asyncio.sleep(0.1)
            if await conn.fetchval(TOTAL) == expected and not await conn.fetchval(PENDING):
                break
        left = await conn.fetchval(PENDING) + expected - await conn.fetchval(TOTAL)
    finally:
        service.send_signal(signal.SIGTERM)
        await service.wait()
        await runner.cleanup()
        await conn.close()
    elapsed = receiver.last - receiver.first  # from the first delivery to the last: no start-up
    print(f"{expected - left} deliveries in {elapsed:.2f} s; receiver verified {receiver.received}, "
          f"rejected {receiver.rejected}")
    print(f"outbound_deliveries_per_s={(expected - left) / elapsed:.0f} outbound_events={args.events} "
          f"outbound_endpoints={args.endpoints} outbound_failed={left}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--endpoints", type=int, default=4)
    parser.add_argument("--in-flight", type=int, default=64, help="requests at a time (default 64)")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()
    asyncio.run(in_scratch_database(args))


async def in_scratch_database(args: argparse.Namespace) -> None:
    async with scratch_database("bench-outbound", fsync=True) as dsn:
        await run(dsn, args)


if __name__ == "__main__":
    main()
