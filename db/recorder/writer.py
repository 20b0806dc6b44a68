"""The recorder's writer: one task writes everything, in the order it was recorded.

While Postgres answers, it writes batches from memory (State.WRITING) or, while the spool holds
the oldest rows (db.recorder.backlog), replays the spool first (State.REPLAYING). A batch that
fails because Postgres is away goes to the spool, fsync'd, and the writer is in State.OUTAGE: it
moves the rows recorded meanwhile to the spool every spool_interval, so that a crash cannot take
them (one fsync for many), and backs off (Backoff); the next attempt is the probe. Rows written
twice (a replayed batch that had been written, a commit whose answer was lost) are no-ops: every
row carries an id (db.ids). A spool that fails (disk full, an I/O error) never stops the probe:
rows then wait in memory (bounded, db.recorder.backlog) and go to Postgres as soon as it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Sequence
from time import monotonic

import asyncpg

from db.recorder.backlog import Backlog
from db.recorder.batches import SEQ, Interrupted, Op, write_resilient
from db.recorder.deadletters import DeadLetters
from db.recorder.options import RecorderOptions

log = logging.getLogger(__name__)


class State(enum.Enum):
    WRITING = "writing from memory"  # nothing in the spool: batches come from the queue
    REPLAYING = "replaying the spool"  # the oldest rows are in the spool: they go first
    OUTAGE = "outage"  # Postgres is away: rows go to the spool, attempts back off
    CLOSED = "closed"  # no more rows; what was left is in the spool


class Backoff:
    """When to try Postgres again: `first` seconds after a failure, doubling with each failure
    in a row up to `most`; a success starts again from `first`."""

    def __init__(self, first: float, most: float) -> None:
        self.first, self.most = first, most
        self.next_attempt = 0.0  # monotonic time
        self._delay = first

    def failed(self) -> None:
        self.next_attempt = monotonic() + self._delay
        self._delay = min(self._delay * 2, self.most)

    def succeeded(self) -> None:
        self._delay = self.first

    def remaining(self) -> float:
        return self.next_attempt - monotonic()


class Writer:
    def __init__(self, backlog: Backlog, dead_letters: DeadLetters, options: RecorderOptions, *,
                 name: str, fresh: bool) -> None:
        self.name = name
        self.state = State.WRITING
        self.done = 0  # every row up to this seq is in Postgres (or dead-lettered)
        self.written = self.replayed = self.failures = 0
        self.batches, self.batch_seconds = 0, 0.0  # batches written, and their time summed
        self.backoff = Backoff(options.retry_interval, options.retry_max_interval)
        self._backlog = backlog
        self._dead_letters = dead_letters
        self._options = options
        self._fresh = fresh  # COPY fresh rows straight in: see db.recorder.batches.write_batch
        self._pool: asyncpg.Pool | None = None
        self._task: asyncio.Task | None = None
        self._progress = asyncio.Event()
        self._rows = asyncio.Event()
        # For the recorder to call when a row lands in an empty queue, the only time the writer
        # may be asleep waiting for rows: the event's own method, no layer of ours per row.
        self.wake = self._rows.set

    @property
    def started(self) -> bool:
        return self._task is not None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-writer")

    async def stop(self) -> None:
        """Stop now. A batch being written stays in the backlog, in flight, for it to spool."""
        self.state = State.CLOSED
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_for_progress(self, seconds: float) -> bool:
        """Wait until rows are written or synced to the spool; False after `seconds`."""
        try:
            await asyncio.wait_for(self._progress.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def notify(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    # -- the task ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # the writer must outlive any bug of ours; rows stay in the backlog
                log.exception("recorder %s: writer error; retrying", self.name)
                await asyncio.sleep(self._options.retry_interval)

    async def _step(self) -> None:
        if self.state is State.OUTAGE:
            await self._outage_step()
        elif self._backlog.on_disk:
            self.state = State.REPLAYING
            await self._sync()  # rows the producer spooled, fsync'd a batch at a time
            await self._replay_batch()
        else:
            self.state = State.WRITING
            await self._write_batch()

    async def _outage_step(self) -> None:
        backlog = self._backlog
        if backlog.on_disk:
            # Rows recorded during an outage go to disk now, so that a crash cannot take them.
            # While Postgres answers they may wait in memory: they come after the spool anyway.
            try:
                await backlog.spool_queue()
            except OSError:
                pass  # noted by the backlog; they wait in memory, and the probe below still runs
            await self._sync()
        delay = self.backoff.remaining()
        if delay > 0:
            if not backlog.on_disk:
                await asyncio.sleep(delay)  # the spool could not take the failed batch (disk full)
            elif await self._wait_for_rows(delay):
                await asyncio.sleep(self._options.spool_interval)  # gather rows: one fsync for many
            return
        if backlog.on_disk:  # the next attempt is the probe
            await self._replay_batch()
        else:
            await self._write_batch()

    async def _wait_for_rows(self, seconds: float | None) -> bool:
        """Sleep until a row is queued or `seconds` pass (None: no limit); True if there is one."""
        if self._backlog.queue:
            return True
        self._rows.clear()
        try:
            await asyncio.wait_for(self._rows.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _write_batch(self) -> None:
        backlog, options = self._backlog, self._options
        queue = backlog.queue
        if not queue:
            await self._wait_for_rows(None)
            await asyncio.sleep(options.flush_interval)  # let a batch gather
            return
        limit = options.batch_size if len(queue) <= options.batch_size else options.max_batch_size
        batch = backlog.take(limit)
        started = monotonic()
        try:
            await write_resilient(
                self._pool, batch, fresh=self._fresh, write_timeout=options.write_timeout,
                on_written=self._on_written, on_poison=self._on_poison,
            )
        except Interrupted as exc:
            self._failed(exc.cause)
            backlog.settle(batch[exc.done:])
        except Exception:  # a bug of ours must not lose the batch: writing it again is a no-op
            log.exception("recorder %s: writer error; spooling the batch", self.name)
            self._failed(RuntimeError("writer error"))
            backlog.settle(batch)
        else:
            backlog.settle()
            self._succeeded(started)

    async def _replay_batch(self) -> None:
        backlog = self._backlog
        ops, ends = await backlog.read(self._options.max_batch_size)
        if not ops:
            return
        started = monotonic()
        try:
            await write_resilient(
                self._pool, ops, fresh=False, write_timeout=self._options.write_timeout,
                on_written=self._on_replayed, on_poison=self._on_poison,
            )
        except Interrupted as exc:
            if exc.done:
                backlog.consume(ends[exc.done - 1])
            self._failed(exc.cause)
            return
        backlog.consume(ends[-1])
        self._succeeded(started)

    async def _sync(self) -> None:
        try:
            await self._backlog.sync()
        except OSError as exc:
            self._backlog.spool_failed(exc)  # the rows stay in the file: Postgres may take them
            return
        self.notify()

    # -- what happened -------------------------------------------------------------------------

    def _on_written(self, ops: Sequence[Op]) -> None:
        self.written += len(ops)
        self.done = max(self.done, ops[-1][SEQ])
        self.notify()

    def _on_replayed(self, ops: Sequence[Op]) -> None:
        self.replayed += len(ops)
        self._on_written(ops)

    def _on_poison(self, op: Op, exc: BaseException) -> None:
        self._dead_letters.add(op, exc)
        self.done = max(self.done, op[SEQ])
        self.notify()

    def _failed(self, cause: BaseException) -> None:
        if self.state is not State.OUTAGE:
            log.warning("recorder %s: database unavailable (%r); spooling rows to %s",
                        self.name, cause, self._backlog.spool_path)
        self.state = State.OUTAGE
        self.failures += 1
        self.backoff.failed()

    def _succeeded(self, started: float) -> None:
        self.batches += 1
        self.batch_seconds += monotonic() - started
        if self.state is State.OUTAGE:
            log.info("recorder %s: database available again", self.name)
            self.backoff.succeeded()
        self.state = State.REPLAYING if self._backlog.on_disk else State.WRITING
