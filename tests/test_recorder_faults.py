"""The recorder under real faults: the Postgres server process stopped and started again, the
recording process killed with kill -9, a spool replayed twice, rows Postgres rejects, and a
producer far faster than the database. Nothing is mocked: the server here is our own embedded
Postgres on a fixed port, so that it can be stopped and started again mid-test."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from db import ids
from db.calls.events import Event
from db.calls.messages import Message
from db.pool import connect
from db.recorder import Recorder, RecorderOptions
from tests.recorder_producer import record_turn

pytestmark = [pytest.mark.db, pytest.mark.slow]

QUIET = RecorderOptions(log_interval=3600)


def spool_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.spool"))


async def per_call(dsn: str) -> dict[str, tuple[list[int], list[int]]]:
    """session id -> (its messages' sequence numbers, sorted; its events' payload numbers in
    call_events.sequence order, i.e. the order they were written in)."""
    conn = await connect(dsn)
    try:
        rows = await conn.fetch("""
            select c.session_id,
                   (select coalesce(array_agg(m.sequence_number order by m.sequence_number), '{}')
                      from voice_messages m where m.call_id = c.id) as messages,
                   (select coalesce(array_agg((e.payload->>'n')::int order by e.sequence), '{}')
                      from call_events e where e.call_id = c.id) as events
              from voice_calls c""")
    finally:
        await conn.close()
    return {r["session_id"]: (list(r["messages"]), list(r["events"])) for r in rows}


async def test_postgres_stopped_mid_stream_loses_and_duplicates_nothing(pg, fault_dsn, tmp_path):
    rec = Recorder(fault_dsn, spool_dir=tmp_path, options=RecorderOptions(
        retry_interval=0.1, retry_max_interval=0.5, log_interval=3600))
    await rec.start()
    sids = [f"RM_outage_{i}" for i in range(5)]
    stop = asyncio.Event()

    async def produce() -> int:
        for sid in sids:
            rec.start_call(session_id=sid)
        n = 0
        while not stop.is_set():
            for sid in sids:
                record_turn(rec, sid, n)
            n += 1
            await asyncio.sleep(0.002)
        for sid in sids:
            rec.finish_call(session_id=sid, status="completed", ended_at=datetime.now(UTC))
        return n

    producer = asyncio.create_task(produce())
    await asyncio.sleep(1.0)
    await asyncio.to_thread(pg.stop)
    await asyncio.sleep(4.0)
    during = rec.stats()
    await asyncio.to_thread(pg.start)
    await asyncio.sleep(1.0)
    stop.set()
    turns = await producer
    assert await rec.flush(30)
    after = rec.stats()
    await rec.close()

    assert not during.database_available and during.spooled > 0 and during.queued < 1000
    assert after.replayed >= after.spooled > 0 and after.dead_lettered == 0
    assert await per_call(fault_dsn) == {sid: (list(range(turns)), list(range(turns))) for sid in sids}
    conn = await connect(fault_dsn)
    try:
        assert await conn.fetchval("select count(*) from voice_calls where status = 'completed'") == 5
    finally:
        await conn.close()


async def test_flush_and_close_during_an_outage_leave_the_rows_on_disk_for_the_next(pg, fault_dsn, tmp_path):
    await asyncio.to_thread(pg.stop)
    rec = Recorder(fault_dsn, spool_dir=tmp_path,
                   options=RecorderOptions(retry_interval=5, log_interval=3600))
    await rec.start()  # Postgres is down: the recorder starts anyway
    for sid in ("RM_down_1", "RM_down_2"):
        rec.start_call(session_id=sid)
        for n in range(20):
            record_turn(rec, sid, n)
    started = asyncio.get_running_loop().time()
    assert await rec.flush(3) is False
    # No retry falls within the deadline and the rows are fsync'd: flush does not wait it out.
    assert asyncio.get_running_loop().time() - started < 2
    assert rec.stats().spooled == 82 and rec.stats().queued == 0
    await rec.close(deadline=1)
    [left] = spool_files(tmp_path)

    await asyncio.to_thread(pg.start)
    successor = Recorder(fault_dsn, spool_dir=tmp_path, options=QUIET)
    await successor.start()
    await successor.replay_orphans()  # the start's replay runs in the background: wait for it
    assert successor.stats().replayed == 82 and not left.exists()
    await successor.close()
    assert await per_call(fault_dsn) == {sid: (list(range(20)), list(range(20)))
                                         for sid in ("RM_down_1", "RM_down_2")}


async def test_a_killed_process_spool_is_replayed_once_by_the_next(pg, fault_dsn, tmp_path, repo_root):
    spool_dir = tmp_path / "spool"
    await asyncio.to_thread(pg.stop)
    producer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.recorder_producer", fault_dsn, str(spool_dir), "4", "50",
        cwd=repo_root, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    line = await asyncio.wait_for(producer.stdout.readline(), 30)
    if not line.startswith(b"SPOOLED"):
        producer.kill()
        pytest.fail(f"the producer failed: {(await producer.communicate())[1].decode()}")
    spooled = int(line.split()[1])
    await asyncio.sleep(0.3)  # it keeps recording into the spool meanwhile
    producer.kill()  # SIGKILL: no cleanup of any kind
    await producer.wait()
    [orphan] = spool_files(spool_dir)
    saved = orphan.read_bytes()
    assert spooled == 4 + 4 * 50 * 2

    await asyncio.to_thread(pg.start)
    rec = Recorder(fault_dsn, spool_dir=spool_dir, options=QUIET)
    await rec.start()
    assert orphan.exists()  # start() returned without replaying it: that runs in the background
    await rec.replay_orphans()  # waits for the start's background replay of the orphan
    replayed = rec.stats()
    assert not orphan.exists() and replayed.orphan_spools_replayed == 1
    assert replayed.replayed > spooled

    rows = await per_call(fault_dsn)
    assert set(rows) == {f"RM_killed_{i}" for i in range(4)}
    for messages, events in rows.values():
        # Each call's rows are a gap-free prefix of what it recorded, in order, at least what
        # was flushed; rows recorded after the last spool write died with the process.
        assert messages == list(range(len(messages))) and len(messages) >= 50
        assert events == list(range(len(events))) and len(events) >= 50
    assert replayed.replayed == 4 + sum(len(m) + len(e) for m, e in rows.values())

    # The same spool again (as if a replay had died before deleting it): nothing new is written.
    (spool_dir / "recorder-999999.spool").write_bytes(saved)
    assert await rec.replay_orphans() == replayed.replayed
    assert await per_call(fault_dsn) == rows
    assert rec.stats().dead_lettered == 0  # every row of the second replay was a no-op
    assert len(spool_files(spool_dir)) == 1  # only the live recorder's own
    await rec.close()
    assert spool_files(spool_dir) == []


async def test_a_poison_row_is_dead_lettered_and_its_neighbours_written(db_dsn, tmp_path):
    rec = Recorder(db_dsn, spool_dir=tmp_path, options=QUIET)
    await rec.start()
    call = rec.start_call(session_id="RM_poison")
    for n in range(50):
        # The database's CHECK rejects a confidence of 5.0; the dataclass does not look.
        rec.message(Message(call_id=call, sequence_number=n, item_id=f"item_{n}", role="user",
                            transcript_confidence=5.0 if n == 17 else 0.9))
        event = Event(id=ids.event_id(call, f"e{n}"), call_id=call, event_type="tool_call", payload={"n": n})
        if n == 33:
            object.__setattr__(event, "severity", "fatal")  # past the dataclass's validation
        rec.event(event)
    assert await rec.flush(10)
    stats = rec.stats()
    await rec.close()

    messages, events = (await per_call(db_dsn))["RM_poison"]
    assert messages == [n for n in range(50) if n != 17]
    assert events == [n for n in range(50) if n != 33]
    entries = [json.loads(line) for line in (tmp_path / "recorder-deadletter.jsonl").read_text().splitlines()]
    assert sorted(e["constraint"] for e in entries) == ["call_events_severity_check",
                                                        "voice_messages_confidence_check"]
    assert stats.dead_lettered == 2 and stats.written == 1 + 98


async def test_a_producer_faster_than_postgres_stays_within_the_queue_bound(db_dsn, tmp_path):
    rec = Recorder(db_dsn, spool_dir=tmp_path,
                   options=RecorderOptions(max_queue=1_000, log_interval=3600))
    await rec.start()
    process = psutil.Process()
    rss_before = process.memory_info().rss
    sids = [f"RM_fast_{i}" for i in range(50)]
    for sid in sids:
        rec.start_call(session_id=sid)
    turns = 1_000  # 50 calls x 1,000 turns x (a message + an event) = 100,000 rows
    for n in range(turns):
        for sid in sids:
            record_turn(rec, sid, n)
        if n % 100 == 0:
            await asyncio.sleep(0)  # the producer rarely lets the writer run
    rss_growth = process.memory_info().rss - rss_before
    stats = rec.stats()
    assert await rec.flush(60)
    await rec.close()

    assert stats.queue_high_water <= 1_000 and stats.spooled > 90_000
    # Holding the 100,000 rows as objects would take well over 100 MB.
    assert rss_growth < 40 * 2**20, rss_growth
    assert await per_call(db_dsn) == {sid: (list(range(turns)), list(range(turns))) for sid in sids}
