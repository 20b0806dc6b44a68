"""The recorder when its disk is full or failing, with the real Postgres stopped and started.

The fault is injected at the OS boundary: os.write (and os.fsync) on the recorder's spool file
fail with ENOSPC / EIO once the file would pass a size, as on a full disk; every other file
descriptor is untouched. Postgres is the restartable embedded server of conftest."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import sys
from pathlib import Path

import pytest

from db.calls.messages import Message
from db.pool import connect
from db.recorder import Recorder, RecorderOptions
from tests.recorder_producer import record_turn
from tests.test_recorder_faults import per_call

pytestmark = [pytest.mark.db, pytest.mark.slow]

_real_write, _real_fsync = os.write, os.fsync


class FullDisk:
    """Files under `folder` (the spool, which is created under a temporary name: /proc shows that
    one) live on a disk with room for `capacity` bytes in any one file."""

    def __init__(self, folder: Path, capacity: int, *, error: int = errno.ENOSPC) -> None:
        self.folder, self.capacity, self.error = str(folder), capacity, error
        self.refused = 0

    def _spool(self, fd: int) -> bool:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return False
        return target.startswith(self.folder)

    def write(self, fd: int, data) -> int:
        if self._spool(fd) and os.fstat(fd).st_size + len(data) > self.capacity:
            self.refused += 1
            raise OSError(self.error, os.strerror(self.error))
        return _real_write(fd, data)

    def fsync(self, fd: int) -> None:
        if self.error == errno.EIO and self._spool(fd) and self.refused:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        _real_fsync(fd)


@pytest.fixture
def full_disk(monkeypatch, tmp_path):
    def install(capacity: int, error: int = errno.ENOSPC) -> FullDisk:
        disk = FullDisk(tmp_path, capacity, error=error)
        monkeypatch.setattr(os, "write", disk.write)
        monkeypatch.setattr(os, "fsync", disk.fsync)
        return disk
    return install


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO], ids=["ENOSPC", "EIO"])
async def test_a_full_spool_does_not_stop_writing_to_postgres_once_it_answers(
        pg, fault_dsn, tmp_path, full_disk, error):
    disk = full_disk(20_000, error)
    rec = Recorder(fault_dsn, spool_dir=tmp_path, options=RecorderOptions(
        retry_interval=0.1, retry_max_interval=0.3, log_interval=3600))
    await rec.start()
    await asyncio.to_thread(pg.stop)
    sids = ["RM_full_1", "RM_full_2"]
    for sid in sids:
        rec.start_call(session_id=sid)
    for n in range(300):
        for sid in sids:
            record_turn(rec, sid, n)
        if n % 20 == 0:
            await asyncio.sleep(0.02)  # the writer spools what fits, then the disk is full
    await asyncio.sleep(0.5)
    during = rec.stats()
    assert disk.refused > 0 and during.spooled > 0  # the spool took some rows, then filled up
    assert not during.database_available and not during.spool_available and during.queued > 0

    await asyncio.to_thread(pg.start)
    assert await rec.flush(30)  # everything reaches Postgres, the spooled rows first
    after = rec.stats()
    await rec.close()
    assert after.database_available and after.lost == 0 and after.queued == 0
    assert await per_call(fault_dsn) == {sid: (list(range(300)), list(range(300))) for sid in sids}


async def test_with_both_out_memory_stays_bounded_and_losses_are_counted_not_logged(
        pg, fault_dsn, tmp_path, full_disk, caplog):
    full_disk(0)  # no room at all
    await asyncio.to_thread(pg.stop)
    rec = Recorder(fault_dsn, spool_dir=tmp_path, options=RecorderOptions(
        max_queue=100, max_memory_rows=500, retry_interval=0.1, retry_max_interval=0.3,
        log_interval=3600))
    await rec.start()
    with caplog.at_level(logging.INFO, logger="db.recorder"):
        rec.start_call(session_id="RM_lost")
        for n in range(1_000):
            record_turn(rec, "RM_lost", n)  # content "turn <n>"
            if n % 100 == 0:
                await asyncio.sleep(0.05)
        stats = rec.stats()
        await rec.close(deadline=0.5)
    closed = rec.stats()

    assert stats.queued <= 500 and stats.spooled == 0
    assert stats.lost > 0 and stats.queued + stats.lost == 1 + 2 * 1_000
    assert closed.lost == 1 + 2 * 1_000  # what memory held could not go anywhere at close
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "rows lost" in text and "turn 9" not in text


async def test_dead_letters_are_capped_listed_and_replayed(db_dsn, tmp_path, repo_root):
    rec = Recorder(db_dsn, spool_dir=tmp_path, options=RecorderOptions(
        max_deadletter_bytes=4_000, log_interval=3600))
    await rec.start()
    call = rec.start_call(session_id="RM_dead")
    for n in range(6):  # the database's CHECK rejects a confidence of 5.0 in every other row
        rec.message(Message(call_id=call, sequence_number=n, item_id=f"item_{n}", role="user",
                            content=f"secret words {n}", transcript_confidence=5.0 if n % 2 else 0.9))
    assert await rec.flush(10)
    stats = rec.stats()
    await rec.close()
    dead = tmp_path / "recorder-deadletter.jsonl"
    kept = dead.read_text().splitlines()
    assert stats.dead_lettered == 3 and 0 < len(kept) < 3  # the cap: the rest counted as lost
    assert stats.lost == 3 - len(kept) and dead.stat().st_size <= 4_000

    env = {**os.environ, "DATABASE_URL": db_dsn}
    listed = await _db_command(repo_root, env, "deadletters", "list", "--spool-dir", str(tmp_path))
    assert f"{len(kept)} dead letters" in listed and "voice_messages_confidence_check" in listed
    assert "secret words" not in listed  # what a caller said stays in the file

    conn = await connect(db_dsn)
    try:  # the operator fixes the cause
        await conn.execute("alter table voice_messages drop constraint voice_messages_confidence_check")
        replayed = await _db_command(repo_root, env, "deadletters", "replay", "--spool-dir", str(tmp_path))
        assert f"written {len(kept)}, still rejected 0" in replayed
        sequences = await conn.fetch("select sequence_number from voice_messages order by 1")
    finally:
        await conn.close()
    assert [r[0] for r in sequences] == sorted([0, 2, 4] + [json.loads(k)["record"]["sequence_number"]
                                                            for k in kept])
    assert not dead.exists() or dead.read_text() == ""


async def _db_command(repo_root: Path, env: dict, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "db", *args, cwd=repo_root, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return output.decode()
