"""Deliveries during a database outage longer than LiveKit's retry window are journaled on local
disk, answered 200, and applied once Postgres is back, by this process or, if it stopped
meanwhile, by the next one. The server is the real, restartable embedded Postgres (conftest)."""

from __future__ import annotations

import asyncio
import time

import pytest

from db.pool import connect, create_pool
from tests.livekit_webhooks import call_rows, check_realistic_call, post, realistic_call, webhook_client

pytestmark = [
    pytest.mark.db,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

# livekit-server 1.13 posts a webhook once and retries it 4 times (go-retryablehttp's defaults in
# livekit/protocol's notifier), 1, 2, 4 and 8 s apart: about 15 s, after which the event is gone.
# An outage "longer than the window" is one in which all 5 attempts fail; sending them 5 times
# back to back gives the same verdict without waiting 15 s.
LIVEKIT_ATTEMPTS = 5


async def rows_of(dsn: str, session_id: str) -> dict:
    conn = await connect(dsn)
    try:
        return await call_rows(conn, session_id)
    finally:
        await conn.close()


async def wait_for_call(dsn: str, session_id: str, seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / 0.2)):  # polling another process's writes: no event to wait on
        if len((await rows_of(dsn, session_id))["webhook_events"]) == 7 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    # Read again: call_rows reads table by table, and the last event may have landed in between.
    return await rows_of(dsn, session_id)


async def deliver_during_outage(client, events) -> list[tuple[int, str]]:
    answers = []
    for event in events:
        for _ in range(LIVEKIT_ATTEMPTS if event.event == "room_finished" else 1):
            response = await post(client, event)
            answers.append((response.status, (await response.json()).get("status")))
    return answers


async def test_an_outage_longer_than_livekits_retries_loses_no_delivery(pg, fault_dsn, tmp_path):
    journal = tmp_path / "journal"
    pool = await create_pool(fault_dsn, min_size=0, max_size=4)
    try:
        async with webhook_client(pool, journal_dir=journal, journal_interval=0.2) as client:
            await asyncio.to_thread(pg.stop)
            answers = await deliver_during_outage(client, realistic_call("RM_outage").values())
            # Every attempt LiveKit would make is answered 200: none is retried, none is lost.
            assert answers == [(200, "journaled")] * (6 + LIVEKIT_ATTEMPTS)
            [kept] = list(journal.glob("*.spool"))
            assert kept.stat().st_mode & 0o777 == 0o600 and kept.stat().st_size > 0
            await asyncio.sleep(1.0)  # replays meanwhile fail and keep everything
            assert kept.stat().st_size > 0
            await asyncio.to_thread(pg.start)
            rows = await wait_for_call(fault_dsn, "RM_outage")
            # Applied once the database is back; the journal is emptied.
            check_realistic_call(rows, "RM_outage")
            assert kept.stat().st_size == 0
            response = await post(client, realistic_call("RM_outage")["room_finished"])
            assert (await response.json())["status"] == "duplicate"
    finally:
        await pool.close()
    assert list(journal.glob("*.spool")) == []  # closed empty: removed


async def test_a_journal_left_by_a_stopped_service_is_applied_by_the_next(pg, fault_dsn, tmp_path):
    journal = tmp_path / "journal"
    pool = await create_pool(fault_dsn, min_size=0, max_size=4)
    try:
        await asyncio.to_thread(pg.stop)
        async with webhook_client(pool, journal_dir=journal, journal_interval=0.2) as client:
            answers = await deliver_during_outage(client, realistic_call("RM_left").values())
            assert {a for a in answers} == {(200, "journaled")}
        [left] = list(journal.glob("*.spool"))  # stopped with the database still away: kept
        await asyncio.to_thread(pg.start)
        async with webhook_client(pool, journal_dir=journal, journal_interval=0.2):
            rows = await wait_for_call(fault_dsn, "RM_left")
        check_realistic_call(rows, "RM_left")
        assert not left.exists()
    finally:
        await pool.close()


async def test_without_room_in_the_journal_the_delivery_is_refused_for_livekit_to_retry(
        pg, fault_dsn, tmp_path):
    pool = await create_pool(fault_dsn, min_size=0, max_size=4)
    try:
        async with webhook_client(pool, journal_dir=tmp_path / "j", journal_max_bytes=2000) as client:
            await asyncio.to_thread(pg.stop)
            statuses = [(await post(client, e)).status for e in realistic_call("RM_full").values()]
    finally:
        await pool.close()
    assert statuses[0] == 200 and 503 in statuses  # kept until the cap, then 503
