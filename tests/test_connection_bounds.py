"""Every connection is bounded: a process's queries give up on a lock held elsewhere instead of
waiting for it forever (STATEMENT_TIMEOUT_MS, LOCK_TIMEOUT_MS, MIGRATION_TIMEOUT_MS)."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import aiohttp
import pytest

from db.migrate import _LOCK_KEY
from db.pool import connect
from tests.e2e.services import WebhookService
from tests.livekit_webhooks import delivery, realistic_call

pytestmark = [
    pytest.mark.db,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

BOUNDS = {"STATEMENT_TIMEOUT_MS": "1000", "LOCK_TIMEOUT_MS": "500", "MIGRATION_TIMEOUT_MS": "1000"}


async def test_migrate_gives_up_when_another_migrator_holds_the_lock(db_dsn, repo_root):
    holder = await connect(db_dsn)
    try:
        await holder.execute("select pg_advisory_lock($1)", _LOCK_KEY)
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "db", "migrate", cwd=repo_root,
            env={**os.environ, "DATABASE_URL": db_dsn, **BOUNDS},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(process.communicate(), timeout=20)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        elapsed = time.monotonic() - started
    finally:
        await holder.close()
    assert process.returncode == 1 and b"MIGRATION_TIMEOUT_MS" in err, err.decode()
    assert elapsed < 15


async def test_the_webhook_service_gives_up_on_a_table_locked_elsewhere(db_dsn, tmp_path, monkeypatch):
    for name, value in BOUNDS.items():
        monkeypatch.setenv(name, value)  # the service's environment is ours
    service = WebhookService(tmp_path, dsn=db_dsn, api_key="devkey", api_secret="secret")
    await asyncio.to_thread(service.start)
    holder = await connect(db_dsn)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            async with holder.transaction():
                await holder.execute("lock table webhook_events in access exclusive mode")
                body, headers = delivery(realistic_call()["room_started"])
                started = time.monotonic()
                async with session.post(service.url, data=body, headers=headers) as response:
                    status, answer = response.status, await response.json()
                elapsed = time.monotonic() - started
        # Answered while the lock was still held: the delivery gave up on the table and was
        # journaled; once the lock is gone the service applies it by itself.
        stored = 0
        for _ in range(100):
            stored = await holder.fetchval("select count(*) from webhook_events")
            if stored:
                break
            await asyncio.sleep(0.2)
    finally:
        await holder.close()
        await asyncio.to_thread(service.stop)
    assert status == 200 and answer["status"] == "journaled" and elapsed < 10
    assert stored == 1
