"""The recorder's backlog: every row recorded and not yet written, in memory or in this process's
spool file (db.recorder.spool), and the rule that keeps them in order.

Rows stay in order if, at every moment, the oldest ones are in the spool file and the newer ones
in memory, and the writer replays the file before it writes from memory again. So rows go to the
file only behind what it holds: a batch that failed, then (during an outage, moved there by the
writer every spool_interval, so that a crash cannot take them) whatever is queued after it; and,
when the producer runs `max_queue` rows ahead of the writer, the oldest queued rows, a chunk at a
time, by the producer itself. A batch the writer holds (in flight) when the spool starts is older
than anything queued, so it is spooled first, in case its write fails; if it succeeds, its replay
is a no-op.

When the spool fails too (disk full, an I/O error), rows wait in memory, up to `max_memory`;
past that a newly recorded row is lost: counted (`lost`), logged without its content, never
allowed to grow memory without bound. The writer keeps trying Postgres meanwhile
(db.recorder.writer): a failed spool never stops rows from going to a database that answers.

The backlog does no I/O but its spool file's, and knows nothing of Postgres: it is tested alone
(tests/test_recorder_backlog.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from time import monotonic

from db.recorder.batches import ENQUEUED_AT, SEQ, Op
from db.recorder.codec import CHUNK, decode_records, encode_op
from db.recorder.spool import SpoolFile

log = logging.getLogger(__name__)


# A run of lost rows is logged at most this often (the count is in stats() all along).
_LOSS_LOG_INTERVAL = 10.0


class Backlog:
    def __init__(self, max_queue: int, *, name: str = "recorder", max_memory: int | None = None) -> None:
        self.name = name
        self.max_queue = max_queue
        self.max_memory = max(max_queue, max_memory or 5 * max_queue)
        self.lost = 0  # rows neither Postgres nor the spool took
        self.spool_ok = True  # False from a failed spool write until one succeeds
        self._loss_logged = -_LOSS_LOG_INTERVAL
        self.queue: deque[Op] = deque()  # the newer rows, the oldest first
        self.spool: SpoolFile | None = None  # the older rows, once open() has made the file
        self.spooled = 0  # rows appended to the spool
        # Every row recorded up to this seq is written or fsync'd in the spool: rows reach the
        # spool in the order they were recorded.
        self.synced_seq = 0
        self._spooled_seq = 0  # seq of the last row appended to the spool
        self._inflight: Sequence[Op] | None = None  # the batch the writer took from the queue
        self._inflight_spooled = False
        self._head_t: float | None = None  # when the oldest row in the spool was recorded
        self._high_water = 0  # the longest the queue was just before rows left it

    def open(self, spool_dir: Path) -> None:
        self.spool = SpoolFile.create(Path(spool_dir), self.name)

    @property
    def on_disk(self) -> bool:
        """Whether the spool holds rows not yet written: they are older than any row in memory."""
        spool = self.spool
        return spool is not None and spool.pending

    # -- in ------------------------------------------------------------------------------------

    def put(self, op: Op) -> None:
        """Queue a row. (Recorder._put does the same inline: it runs for every row recorded.)"""
        if len(self.queue) < self.max_queue:
            self.queue.append(op)
        else:
            self.overflow(op)

    def overflow(self, op: Op) -> None:
        """The queue is full: move its oldest rows (a small chunk, so that the producer pays a
        millisecond or so, not the whole queue) to the spool behind what it holds, and queue `op`."""
        queue = self.queue
        if self.spool is not None:
            self._note_high_water()
            moved = min(len(queue), CHUNK)
            try:
                self._spool_from_queue([queue[i] for i in range(moved)])
            except OSError:
                # Memory past max_queue, up to max_memory, rather than a lost row; the writer
                # retries the spool, and Postgres.
                if len(queue) >= self.max_memory:
                    self._lose(1)
                    return
            else:
                for _ in range(moved):
                    queue.popleft()
        queue.append(op)  # without a spool yet (not started), past the bound too

    # -- out to Postgres, through the writer ----------------------------------------------------

    def take(self, limit: int) -> Sequence[Op]:
        """The oldest `limit` queued rows, for the writer. They are in flight until settle()."""
        queue = self.queue
        self._note_high_water()
        batch = [queue.popleft() for _ in range(min(len(queue), limit))]
        self._inflight, self._inflight_spooled = batch, False
        return batch

    def settle(self, unwritten: Sequence[Op] = ()) -> None:
        """The writer is done with the batch in flight. Its `unwritten` rows go to the spool,
        behind what it holds (unless the whole batch went there already), or, when the spool
        fails, back to the front of the queue."""
        spooled = self._inflight_spooled
        self._inflight, self._inflight_spooled = None, False
        if not unwritten or spooled:
            return
        try:
            self._append(unwritten)
        except OSError:
            queue = self.queue
            queue.extendleft(reversed(unwritten))  # the oldest rows: they keep their place
            excess = len(queue) - self.max_memory
            for _ in range(max(0, excess)):
                queue.pop()  # the newest go first, so that what is kept stays in order
            if excess > 0:
                self._lose(excess)

    async def read(self, limit: int) -> tuple[list[Op], list[int]]:
        """The oldest `limit` rows of the spool, each with the file offset just past it. They
        stay in the spool until consume()d."""
        records, _ = self.spool.read(limit)
        if not records:
            if self.spool.pending:  # only a torn record, which a failed append cuts back: drop it
                self._emptied()
            return [], []
        ops = await decode_records(records)
        self._head_t = ops[0][ENQUEUED_AT]
        return ops, [end for end, _ in records]

    def consume(self, end: int) -> None:
        """The spool's rows up to offset `end` are written; the file is emptied once all are."""
        self.spool.consume(end)
        if not self.spool.pending:
            self._emptied()

    def _emptied(self) -> None:
        self.spool.reset()
        self._head_t = None
        log.info("recorder %s: spool replayed", self.name)

    # -- to disk --------------------------------------------------------------------------------

    def spill(self) -> None:
        """Spool, now, the batch in flight (unless spooled already) and the whole queue, in that
        order: when a flush runs out of time, and at close. Raises OSError, keeping them."""
        if not self.queue and (not self._inflight or self._inflight_spooled):
            return
        self._note_high_water()
        self._spool_from_queue(list(self.queue))
        self.queue.clear()

    async def spool_queue(self) -> None:
        """Move the queue to the spool, a chunk at a time. Raises OSError, keeping what is left."""
        queue = self.queue
        self._note_high_water()
        while queue:
            chunk = [queue.popleft() for _ in range(min(len(queue), CHUNK))]
            try:
                self._spool_from_queue(chunk)
            except OSError:
                queue.extendleft(reversed(chunk))
                raise
            await asyncio.sleep(0)  # serialising is CPU work in the voice loop's thread

    async def sync(self) -> None:
        seq = self._spooled_seq
        await self.spool.sync()
        self.synced_seq = max(self.synced_seq, seq)

    def _spool_from_queue(self, ops: list[Op]) -> None:
        """Append `ops`, from the front of the queue, behind the batch in flight unless it is in
        the spool already: it is older than anything queued."""
        if self._inflight and not self._inflight_spooled:
            self._append([*self._inflight, *ops])
            self._inflight_spooled = True
        elif ops:
            self._append(ops)

    def _append(self, ops: Sequence[Op]) -> None:
        """Append ops (the oldest first) behind whatever the spool holds; raises OSError."""
        spool = self.spool
        first = not spool.pending
        try:
            spool.append([encode_op(op) for op in ops])
        except OSError as exc:
            self.spool_failed(exc)
            raise
        if not self.spool_ok:
            self.spool_ok = True
            log.info("recorder %s: the spool %s takes rows again", self.name, spool.path)
        if first:
            self._head_t = ops[0][ENQUEUED_AT]
        self.spooled += len(ops)
        self._spooled_seq = max(self._spooled_seq, ops[-1][SEQ])

    def close(self) -> None:
        """Spool whatever is still in memory, fsync, and close the file: removed if empty, else
        left for the next process to replay."""
        spool = self.spool
        if spool is None:
            if self.queue:
                log.error("recorder %s was closed without being started; %d rows were not written",
                          self.name, len(self.queue))
            return
        try:
            self.spill()
        except OSError:
            unspooled = len(self.queue)
            if self._inflight and not self._inflight_spooled:
                unspooled += len(self._inflight)
            self.queue.clear()
            self._lose(unspooled, at_close=True)
        try:
            spool.sync_now()
        except OSError as exc:
            self.spool_failed(exc)
        if spool.pending:
            log.warning("recorder %s: %d bytes of rows left in %s; the next recorder to start replays them",
                        self.name, self.spool_bytes, spool.path)
            spool.release()
        else:
            spool.remove()

    # -- when neither Postgres nor the spool takes rows -----------------------------------------

    def spool_failed(self, exc: OSError) -> None:
        """Note a failed spool write or fsync: logged once per run of failures, not per row."""
        if self.spool_ok:
            self.spool_ok = False
            log.error("recorder %s: the spool %s fails (%s); rows wait in memory (up to %d) "
                      "until it or Postgres takes them", self.name, self.spool_path,
                      exc.strerror or exc, self.max_memory)

    def _lose(self, count: int, *, at_close: bool = False) -> None:
        # Only counts: a row may hold what a caller said, and logs must not.
        self.lost += count
        now = monotonic()
        if at_close or now - self._loss_logged >= _LOSS_LOG_INTERVAL:
            self._loss_logged = now
            log.critical("recorder %s: %d rows lost%s (%d in all): neither Postgres nor the spool "
                         "would take them", self.name, count, " at close" if at_close else "",
                         self.lost)

    # -- for stats ------------------------------------------------------------------------------

    def _note_high_water(self) -> None:
        # The queue grows only by puts, so its longest is just before rows leave it (or now):
        # noting it here keeps the cost off the producer's path.
        if len(self.queue) > self._high_water:
            self._high_water = len(self.queue)

    @property
    def high_water(self) -> int:
        return max(self._high_water, len(self.queue))

    @property
    def spool_bytes(self) -> int:
        spool = self.spool
        return spool.size - spool.read_offset if spool is not None else 0

    @property
    def spool_path(self) -> Path | None:
        return self.spool.path if self.spool is not None else None

    def oldest(self) -> float | None:
        """When the oldest row not yet written was recorded (monotonic), None if there is none."""
        inflight, queue = self._inflight, self.queue
        times = (self._head_t, inflight[0][ENQUEUED_AT] if inflight else None,
                 queue[0][ENQUEUED_AT] if queue else None)
        return min((t for t in times if t is not None), default=None)
