"""The recorder's writer task (part of db.recorder.recorder.Recorder, kept apart to keep files small).

One task writes everything, in the order it was recorded: batches from memory while Postgres
answers, the spool (db.recorder.spooling) while it holds anything. A batch that fails because
Postgres is away goes to the spool and the task backs off (retry_interval, doubling up to
retry_max_interval); the next attempt is the probe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from time import monotonic

from db.recorder.batches import SEQ, Interrupted, Op, write_resilient

log = logging.getLogger(__name__)


class WriterMixin:
    async def _run(self) -> None:
        while True:
            try:
                if self._spool_mode:
                    await self._replay_step()
                else:
                    await self._write_step()
            except asyncio.CancelledError:
                raise
            except Exception:  # the writer must outlive any bug of ours; rows stay queued
                log.exception("recorder %s: writer error; retrying", self.name)
                await asyncio.sleep(self._retry_interval)

    async def _wait_for_rows(self, seconds: float | None) -> bool:
        """Sleep until a row is recorded or `seconds` pass (None: no limit); True if woken."""
        self._wake.clear()
        self._idle = True
        try:
            if seconds is None:
                await self._wake.wait()
                return True
            try:
                await asyncio.wait_for(self._wake.wait(), seconds)
                return True
            except TimeoutError:
                return False
        finally:
            self._idle = False

    async def _write_step(self) -> None:
        queue = self._queue
        delay = self._retry_at - monotonic()
        if delay > 0:  # the spool could not take a failed batch either (disk full): back off
            await asyncio.sleep(delay)
        if not queue:
            await self._wait_for_rows(None)
            await asyncio.sleep(self._flush_interval)  # let a batch gather
            return
        limit = self._batch_size if len(queue) <= self._batch_size else self._max_batch_size
        batch = [queue.popleft() for _ in range(min(len(queue), limit))]
        self._inflight, self._inflight_spooled = batch, False
        try:
            await write_resilient(
                self._pool, batch, fresh=self._fresh, write_timeout=self._write_timeout,
                on_written=self._on_written, on_poison=self._on_poison,
            )
            self._recovered()
        except Interrupted as exc:
            self._failed(exc.cause)
            if not self._inflight_spooled:
                self._spool_or_requeue(batch[exc.done:])
        except Exception:  # a bug of ours must not lose the batch: writing it again is a no-op
            log.exception("recorder %s: writer error; spooling the batch", self.name)
            self._failed(RuntimeError("writer error"))
            if not self._inflight_spooled:
                self._spool_or_requeue(batch)
        finally:
            self._inflight = None

    def _on_written(self, ops: Sequence[Op], *, replayed: bool = False) -> None:
        self._written += len(ops)
        if replayed:
            self._replayed += len(ops)
        self._done = max(self._done, ops[-1][SEQ])
        self._notify()

    def _on_poison(self, op: Op, exc: BaseException) -> None:
        self._dead_letter(op, exc)
        self._done = max(self._done, op[SEQ])
        self._notify()

    def _failed(self, cause: BaseException) -> None:
        if not self._outage:
            log.warning("recorder %s: database unavailable (%r); spooling rows to %s",
                        self.name, cause, self._spool.path if self._spool else None)
        self._outage = True
        self._failures += 1
        self._retry_at = monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, self._retry_max)

    def _recovered(self) -> None:
        if self._outage:
            log.info("recorder %s: database available again", self.name)
        self._outage = False
        self._retry_delay = self._retry_interval

    async def _maintain(self) -> None:
        last_log = last_orphans = monotonic()
        while True:
            await asyncio.sleep(min(self._log_interval, self._orphan_interval))
            now = monotonic()
            if now - last_log >= self._log_interval:
                last_log = now
                self._log_stats()
            if now - last_orphans >= self._orphan_interval and not self._outage:
                last_orphans = now
                try:
                    await self.replay_orphans()
                except Exception:
                    log.exception("recorder %s: replaying orphan spools failed", self.name)
            # Forget calls whose rows are all written; flush() for them returns at once.
            self._last_seq = {k: v for k, v in self._last_seq.items() if v > self._done}

    def _log_stats(self) -> None:
        s = self.stats()
        log.info("recorder %s: queued=%d written=%d spooled=%d replayed=%d dead_lettered=%d "
                 "lag=%.3fs spool_bytes=%d failures=%d db=%s", self.name, s.queued, s.written,
                 s.spooled, s.replayed, s.dead_lettered, s.lag_seconds, s.spool_bytes, s.failures,
                 "up" if s.database_available else "down")
