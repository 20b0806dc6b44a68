"""`python -m webhooks [--host H] [--port P] [--no-outbound | --outbound-only]`: the LiveKit
webhook receiver, the delivery of signed outbound webhooks, and `/metrics`.

Reads its settings, finds the database (embedded Postgres unless DATABASE_URL is set), applies
pending migrations, opens a pool, serves until SIGINT/SIGTERM, lets in-flight requests finish,
then closes the pool and stops the embedded server it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from aiohttp import web

from db import migrate
from db.pool import connection_options, create_pool
from db.startup import database
from metrics import add_metrics_route
from webhooks.app import RUNNER_OPTIONS, create_app
from webhooks.outbound.service import delivering
from webhooks.retention import retention_schedule
from webhooks.settings import Settings, refuse_dev_keys
from webhooks.verify import WebhookVerifier

log = logging.getLogger("webhooks")

# How long shutdown waits for in-flight deliveries; LiveKit retries any it does not get a reply to.
SHUTDOWN_TIMEOUT_S = 10.0


async def serve(settings: Settings, verifier: WebhookVerifier, dsn: str, host: str, port: int,
                *, receive: bool = True, deliver: bool = True) -> None:
    pool = await create_pool(dsn, min_size=2, max_size=settings.webhook_db_pool_size,
                             **connection_options(settings))
    try:
        app = create_app(pool=pool, verifier=verifier, max_body_bytes=settings.webhook_max_body_bytes,
                         body_timeout=settings.webhook_body_timeout,
                         journal_dir=settings.webhook_journal_dir,
                         journal_max_bytes=settings.webhook_journal_max_bytes,
                         commit_lanes=settings.webhook_commit_lanes) if receive else web.Application()
        add_metrics_route(app)
        runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT_S, access_log=None, **RUNNER_OPTIONS)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            retention = asyncio.create_task(retention_schedule(
                pool, interval_s=settings.retention_interval_hours * 3600, spool_dir=settings.spool_dir))
            if receive:
                log.info("listening on http://%s:%s/livekit/webhook (keys: %s)", host, port,
                         ", ".join(verifier.api_keys))
            else:
                log.info("delivering only; /metrics on http://%s:%s/metrics", host, port)
            async with contextlib.AsyncExitStack() as outbound:
                if deliver:
                    await outbound.enter_async_context(delivering(pool, settings))
                await _until_signalled()
            log.info("shutting down: finishing in-flight deliveries")
            retention.cancel()
            await asyncio.gather(retention, return_exceptions=True)
        finally:
            # Stops accepting, then waits up to SHUTDOWN_TIMEOUT_S for requests in progress.
            await runner.cleanup()
    finally:
        await pool.close()


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main(argv: list[str] | None = None) -> int:
    settings = Settings()
    parser = argparse.ArgumentParser(prog="python -m webhooks", description=__doc__)
    parser.add_argument("--host", default=settings.webhook_host)
    parser.add_argument("--port", type=int, default=settings.webhook_port)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-outbound", action="store_true", help="do not deliver outbound webhooks")
    mode.add_argument("--outbound-only", action="store_true",
                      help="only deliver outbound webhooks (and serve /metrics), receive nothing")
    parser.add_argument("--allow-dev-keys", action="store_true", default=settings.webhook_allow_dev_keys,
                        help="accept the devkey/secret pair on an address other than loopback")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if not args.allow_dev_keys:
            refuse_dev_keys(settings.key_pairs(), args.host)
        verifier = WebhookVerifier(settings.key_pairs())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with database(settings.database_url, settings.embedded_pg_dir,
                      migrate=settings.migrate_on_start) as dsn:
            asyncio.run(serve(settings, verifier, dsn, args.host, args.port, receive=not args.outbound_only,
                              deliver=settings.outbound_enabled and not args.no_outbound))
    except migrate.MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
