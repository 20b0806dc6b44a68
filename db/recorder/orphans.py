"""Spools of dead processes: a spool file no live process holds under its flock
(db.recorder.spool) is replayed, in order, by whichever live recorder claims it first, then
deleted. A row replayed twice (a replay that died before deleting its file) is a no-op."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import asyncpg

from db.recorder.batches import Interrupted, Op, write_resilient
from db.recorder.codec import decode_records
from db.recorder.spool import SpoolFile, orphans

log = logging.getLogger(__name__)


async def replay_orphan_spools(
    pool: asyncpg.Pool,
    spool_dir: Path,
    *,
    exclude: Path | None,
    name: str,
    batch_size: int,
    write_timeout: float,
    on_written: Callable[[Sequence[Op]], None],
    on_poison: Callable[[Op, BaseException], None],
    on_removed: Callable[[Path], None],
) -> int:
    """Replay, then delete, the spool files in `spool_dir` (but `exclude`, the caller's own)
    whose process is gone; returns the number of rows replayed. Stops at the first file the
    database went away in, leaving it for a later call. `on_written` and `on_poison` are
    write_resilient's; `on_removed` is called for each file replayed and deleted."""
    total = 0
    for spool in orphans(spool_dir, exclude=exclude):
        try:
            count, finished = await _replay(pool, spool, name=name, batch_size=batch_size,
                                            write_timeout=write_timeout, on_written=on_written,
                                            on_poison=on_poison)
        except BaseException:
            spool.release()
            raise
        total += count
        if not finished:
            spool.release()
            break
        spool.remove()
        on_removed(spool.path)
        log.info("recorder %s: replayed %d rows from %s", name, count, spool.path)
    return total


async def _replay(pool: asyncpg.Pool, spool: SpoolFile, *, name: str, batch_size: int,
                  write_timeout: float, on_written: Callable[[Sequence[Op]], None],
                  on_poison: Callable[[Op, BaseException], None]) -> tuple[int, bool]:
    count = 0
    while True:
        records, torn = spool.read(batch_size)
        if not records:
            if torn:
                log.warning("recorder %s: %s ends with %d bytes of a record cut short by a crash",
                            name, spool.path, torn)
            return count, True
        ops = await decode_records(records)
        try:
            await write_resilient(pool, ops, fresh=False, write_timeout=write_timeout,
                                  on_written=on_written, on_poison=on_poison)
        except Interrupted as exc:
            log.warning("recorder %s: database unavailable while replaying %s (%r); will retry",
                        name, spool.path, exc.cause)
            return count, False
        spool.consume(records[-1][0])
        count += len(ops)
