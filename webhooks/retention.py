"""The retention schedule: the webhook service (always running, one or several) runs
db.privacy.retention every RETENTION_INTERVAL_HOURS. Several services running it at once share
the work (SKIP LOCKED batches), so no leader is needed."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg

from db.privacy.retention import run_retention

log = logging.getLogger(__name__)


async def retention_schedule(pool: asyncpg.Pool, *, interval_s: float, first_after_s: float = 60.0,
                             spool_dir: Path | None = None) -> None:
    """Run retention `first_after_s` after start (not while the service is starting), then every
    `interval_s`, until cancelled (an interval of 0: never). A failed run is logged and the next
    one tries again."""
    if interval_s <= 0:
        return
    await asyncio.sleep(first_after_s)
    while True:
        try:
            async with pool.acquire() as conn:
                await run_retention(conn, spool_dir=spool_dir)
        except Exception:
            log.exception("retention run failed; the next one is in %.0f s", interval_s)
        await asyncio.sleep(interval_s)
