"""Every connection is bounded: a process's queries give up on a lock held elsewhere instead of
waiting for it forever (STATEMENT_TIMEOUT_MS, LOCK_TIMEOUT_MS, MIGRATION_TIMEOUT_MS)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time

import aiohttp
import pytest

from db.migrate import _LOCK_KEY
from db.pool import connect
from tests.livekit_webhooks import delivery, realistic_call
from webhooks.app import WEBHOOK_PATH

pytestmark = [
    pytest.mark.db,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

BOUNDS = {"STATEMENT_TIMEOUT_MS": "1000", "LOCK_TIMEOUT_MS": "500", "MIGRATION_TIMEOUT_MS": "1000"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


async def test_the_webhook_service_gives_up_on_a_table_locked_elsewhere(db_dsn, repo_root):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_dsn, "LIVEKIT_API_KEY": "devkey",
           "LIVEKIT_API_SECRET": "secret", "WEBHOOK_KEYS": "", **BOUNDS}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "webhooks", "--port", str(port), cwd=repo_root, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    holder = await connect(db_dsn)
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            for _ in range(150):
                try:
                    async with session.get(f"{base}/readyz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the service did not become ready in 15 s")
            async with holder.transaction():
                await holder.execute("lock table webhook_events in access exclusive mode")
                body, headers = delivery(realistic_call()["room_started"])
                started = time.monotonic()
                async with session.post(f"{base}{WEBHOOK_PATH}", data=body,
                                        headers=headers) as response:
                    status = response.status
                elapsed = time.monotonic() - started
    finally:
        await holder.close()
        process.terminate()
        await process.wait()
    # Answered while the lock is still held: the delivery gave up on it, LiveKit retries later.
    assert status >= 500 and elapsed < 10
