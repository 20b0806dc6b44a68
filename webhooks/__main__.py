"""`python -m webhooks [--host H] [--port P]`: the LiveKit webhook receiver.

Reads its settings, finds the database (embedded Postgres unless DATABASE_URL is set), applies
pending migrations, opens a pool, serves until SIGINT/SIGTERM, lets in-flight requests finish,
then closes the pool and stops the embedded server it started.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from db import migrate
from db.pool import create_pool, resolve_dsn
from webhooks.app import DEFAULT_MAX_BODY_BYTES, create_app
from webhooks.verify import WebhookVerifier

log = logging.getLogger("webhooks")

DEFAULT_PORT = 8787
# How long shutdown waits for in-flight deliveries; LiveKit retries any it does not get a reply to.
SHUTDOWN_TIMEOUT_S = 10.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Defaults match `livekit-server --dev`.
    livekit_api_key: str = "devkey"
    livekit_api_secret: SecretStr = SecretStr("secret")
    # More key pairs accepted during a rotation: "key1:secret1,key2:secret2".
    webhook_keys: SecretStr = SecretStr("")
    database_url: str | None = None
    embedded_pg_dir: Path = Path(".data/postgres")
    migrate_on_start: bool = True
    webhook_host: str = "127.0.0.1"
    webhook_port: int = DEFAULT_PORT
    webhook_max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Connections to Postgres; deliveries beyond it wait for one (they are a few ms each).
    webhook_db_pool_size: int = 10

    def key_pairs(self) -> dict[str, str]:
        """API key -> secret for every key pair a delivery may be signed with."""
        pairs = {self.livekit_api_key: self.livekit_api_secret.get_secret_value()}
        for item in filter(None, (p.strip() for p in self.webhook_keys.get_secret_value().split(","))):
            key, sep, secret = item.partition(":")
            if not sep or not key.strip() or not secret:
                raise ValueError(f"WEBHOOK_KEYS entries are key:secret (got one for {key.strip()!r})")
            if pairs.get(key.strip(), secret) != secret:
                raise ValueError(f"WEBHOOK_KEYS gives key {key.strip()!r} a second, different secret")
            pairs[key.strip()] = secret
        return pairs


async def _migrate(dsn: str) -> None:
    for name in await migrate.migrate_dsn(dsn):
        log.info("applied migration %s", name)


async def serve(settings: Settings, verifier: WebhookVerifier, dsn: str, host: str, port: int) -> None:
    if settings.migrate_on_start:
        await _migrate(dsn)
    pool = await create_pool(dsn, min_size=2, max_size=settings.webhook_db_pool_size)
    try:
        app = create_app(pool=pool, verifier=verifier, max_body_bytes=settings.webhook_max_body_bytes)
        runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT_S, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            log.info("listening on http://%s:%s/livekit/webhook (keys: %s)", host, port,
                     ", ".join(verifier.api_keys))
            await _until_signalled()
            log.info("shutting down: finishing in-flight deliveries")
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        verifier = WebhookVerifier(settings.key_pairs())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    dsn, server = resolve_dsn(settings.database_url, settings.embedded_pg_dir)
    try:
        asyncio.run(serve(settings, verifier, dsn, args.host, args.port))
    except migrate.MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
