"""The recorder's spool mode (part of db.recorder.recorder.Recorder, kept apart to keep files small).

Rows stay in order if, at every moment, the oldest ones are in the spool file and the newer ones
in memory, and the writer replays the file before it writes from memory again. So rows go to the
file only behind what it holds: a batch that failed, then (during an outage, moved there by the
writer every spool_interval, so that a crash cannot take them) whatever is queued after it; and,
when the producer runs `max_queue` rows ahead of the writer, the oldest queued rows, a chunk at a
time, by the producer itself. A batch the writer holds (in flight) when the spool starts is older
than anything queued, so it is spooled first, in case its write fails; if it succeeds, its replay
is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from time import monotonic
from typing import Any

from db.calls.events import Event
from db.calls.messages import Message
from db.recorder.batches import (
    ENQUEUED_AT,
    EVENT,
    KEY,
    KIND,
    MESSAGE,
    PAYLOAD,
    SEQ,
    UNSPOOLABLE,
    Interrupted,
    Op,
    write_resilient,
)
from db.recorder.spool import SpoolFile, append_dead_letter, decode, encode, orphans

log = logging.getLogger(__name__)

# Rows serialised to the spool in one go, in the voice loop's thread (~10 us each).
_OVERFLOW_CHUNK = 100


# The columns of messages and events that are UUIDs or datetimes go as plain strings (their type
# is known from the dataclass); only free-form values (metadata, call-level fields) need tags.
_TYPED = {
    MESSAGE: (("id", "call_id"), ("started_at", "ended_at")),
    EVENT: (("id", "call_id"), ("occurred_at",)),
}


def _flat(kind: str, row: Message | Event) -> dict:
    uuids, times = _TYPED[kind]
    values = dict(vars(row))
    for name in uuids:
        values[name] = str(values[name])
    for name in times:
        if values[name] is not None:
            values[name] = values[name].isoformat()
    return values


def _typed(kind: str, values: dict) -> Message | Event:
    uuids, times = _TYPED[kind]
    for name in uuids:
        values[name] = uuid.UUID(values[name])
    for name in times:
        if values[name] is not None:
            values[name] = datetime.fromisoformat(values[name])
    return Message(**values) if kind == MESSAGE else Event(**values)


def encode_op(op: Op) -> bytes:
    """A spool line for `op`. An op JSON cannot carry (a value of an unknown type in its
    metadata) keeps its place as an UNSPOOLABLE record and is dead-lettered when replayed."""
    seq, enqueued_at, kind, key, payload = op
    try:
        if kind in _TYPED:
            return encode([seq, enqueued_at, kind, None, _flat(kind, payload)])
        return encode([seq, enqueued_at, kind, key, payload])
    except (TypeError, ValueError, AttributeError) as exc:
        return encode([seq, enqueued_at, UNSPOOLABLE, str(key),
                       {"error": f"could not spool a {kind} row: {exc}", "row": repr(payload)}])


def decode_op(line: bytes) -> Op:
    seq, enqueued_at, kind, key, payload = decode(line)
    if kind in _TYPED:
        payload = _typed(kind, payload)
        key = payload.call_id
    return seq, enqueued_at, kind, key, payload


class SpoolingMixin:
    def _init_spooling(self) -> None:
        self._spool: SpoolFile | None = None
        self._spool_mode = False  # the spool holds rows older than anything in memory
        self._spooled = 0
        self._spooled_seq = 0  # seq of the last op appended to the spool
        self._synced_seq = 0  # every op up to this seq is in Postgres or fsync'd in the spool
        self._spool_head_t: float | None = None  # enqueue time of the oldest unreplayed spool row

    # -- into the spool ------------------------------------------------------------------------

    def _append_spool(self, ops: Sequence[Op]) -> None:
        """Append ops (the oldest first) behind whatever the spool holds; raises OSError."""
        self._spool.append([encode_op(op) for op in ops])
        if not self._spool_mode:
            self._spool_mode = True
            self._spool_head_t = ops[0][ENQUEUED_AT]
        self._spooled += len(ops)
        self._spooled_seq = max(self._spooled_seq, ops[-1][SEQ])

    def _spill_all(self) -> None:
        """Spool, now, the batch in flight (unless spooled already) and the whole queue, in that
        order: when a flush runs out of time, and at close."""
        ops: list[Op] = []
        inflight = self._inflight is not None and not self._inflight_spooled
        if inflight:
            ops.extend(self._inflight)
        ops.extend(self._queue)
        if not ops:
            return
        self._append_spool(ops)
        self._queue.clear()
        self._inflight_spooled = self._inflight_spooled or inflight

    def _overflow(self, op: Op) -> None:
        """The queue is full: move its oldest rows (a small chunk, so that the producer pays a
        millisecond or so, not the whole queue) to the spool behind what it holds, and queue `op`.
        Order holds because the spool is replayed before the queue; a batch in flight is older
        than the queue, so it is spooled first (once), in case its write fails."""
        queue = self._queue
        chunk: list[Op] = []
        if self._inflight is not None and not self._inflight_spooled:
            chunk.extend(self._inflight)
        moved = min(len(queue), _OVERFLOW_CHUNK)
        chunk.extend(queue[i] for i in range(moved))
        try:
            self._append_spool(chunk)
        except OSError:
            # Memory past the bound rather than a lost row; the writer retries the spool.
            log.exception("recorder %s: the queue is full and the spool failed", self.name)
        else:
            self._inflight_spooled = self._inflight is not None
            for _ in range(moved):
                queue.popleft()
        queue.append(op)

    def _spool_or_requeue(self, ops: Sequence[Op]) -> None:
        try:
            self._append_spool(ops)
        except OSError:
            log.exception("recorder %s: cannot spool %d rows; keeping them in memory", self.name, len(ops))
            self._queue.extendleft(reversed(ops))

    async def _move_queue_to_spool(self) -> None:
        queue = self._queue
        while queue:
            chunk = [queue.popleft() for _ in range(min(len(queue), _OVERFLOW_CHUNK))]
            try:
                self._append_spool(chunk)
            except OSError:
                queue.extendleft(reversed(chunk))
                raise
            await asyncio.sleep(0)  # serialising is CPU work in the voice loop's thread

    async def _sync_spool(self) -> None:
        seq = self._spooled_seq
        await self._spool.sync()
        self._synced_seq = max(self._synced_seq, seq)
        self._notify()

    def _spill_remaining(self) -> None:
        """At close: whatever is still in memory goes to the spool."""
        if self._spool is None:
            if self._queue:
                log.error("recorder %s was closed without being started; %d rows were not written",
                          self.name, len(self._queue))
            return
        try:
            self._spill_all()
        except OSError:
            log.critical("recorder %s: %d rows could not be spooled at close and are lost",
                         self.name, len(self._queue))

    def _close_spool(self) -> None:
        spool = self._spool
        if spool is None:
            return
        spool.sync_now()
        if spool.pending:
            log.warning("recorder %s: %d bytes of rows left in %s; the next recorder to start replays them",
                        self.name, spool.size - spool.read_offset, spool.path)
            spool.release()
        else:
            spool.remove()

    # -- out of the spool ----------------------------------------------------------------------

    async def _replay_step(self) -> None:
        if self._outage:
            # Rows queued during an outage go to disk now, so that a crash cannot take them.
            # While Postgres answers they may wait in memory: they come after the spool anyway.
            await self._move_queue_to_spool()
        await self._sync_spool()
        delay = self._retry_at - monotonic()
        if delay > 0:
            if await self._wait_for_rows(delay):
                await asyncio.sleep(self._spool_interval)  # gather rows: one fsync for many
            return
        spool = self._spool
        records, _ = spool.read(self._max_batch_size)
        if not records:
            spool.reset()
            self._spool_mode = False
            self._spool_head_t = None
            log.info("recorder %s: spool replayed, writing from memory again", self.name)
            return
        ops = await self._decode_all(records)
        self._spool_head_t = ops[0][ENQUEUED_AT]
        try:
            await write_resilient(
                self._pool, ops, fresh=False, write_timeout=self._write_timeout,
                on_written=lambda written: self._on_written(written, replayed=True),
                on_poison=self._on_poison,
            )
        except Interrupted as exc:
            if exc.done:
                spool.consume(records[exc.done - 1][0])
            self._failed(exc.cause)
            return
        spool.consume(records[-1][0])
        self._recovered()

    async def _decode_all(self, records: list[tuple[int, bytes]]) -> list[Op]:
        ops = []
        for i in range(0, len(records), _OVERFLOW_CHUNK):
            ops.extend(self._decode(line) for _, line in records[i:i + _OVERFLOW_CHUNK])
            await asyncio.sleep(0)  # parsing is CPU work in the voice loop's thread
        return ops

    def _decode(self, line: bytes) -> Op:
        try:
            return decode_op(line)
        except Exception as exc:  # a line we cannot read is dead-lettered in its place
            text = line.decode(errors="replace")
            error = f"unreadable spool line: {exc!r}"
            return (0, monotonic(), UNSPOOLABLE, None, {"error": error, "row": text})

    def _dead_letter(self, op: Op, exc: BaseException) -> None:
        kind, payload = op[KIND], op[PAYLOAD]
        entry: dict[str, Any] = {
            "recorder": self.name, "kind": kind, "key": op[KEY],
            "error": str(exc), "error_type": type(exc).__name__,
            "sqlstate": getattr(exc, "sqlstate", None) or getattr(exc.__cause__, "sqlstate", None),
            "constraint": getattr(exc, "constraint_name", None)
            or getattr(exc.__cause__, "constraint_name", None),
            "record": vars(payload) if kind in (MESSAGE, EVENT) else payload,
        }
        self._dead_lettered += 1
        log.error("recorder %s: Postgres rejected a %s row for good (%s); kept in %s",
                  self.name, kind, exc, self._dead_letter_path)
        try:
            append_dead_letter(self._dead_letter_path, entry)
        except OSError:
            log.critical("recorder %s: could not write the dead-letter file; the row was: %r",
                         self.name, entry)

    # -- spools of dead processes ------------------------------------------------------------

    async def replay_orphans(self) -> int:
        """Replay, then delete, the spool files in spool_dir whose process is gone; returns the
        number of rows replayed. Safe to call from several processes at once: each file is
        replayed by exactly one of them (flock)."""
        if self._pool is None:
            raise RuntimeError(f"recorder {self.name} is not started")
        total = 0
        async with self._orphan_lock:
            own = self._spool.path if self._spool else None
            for spool in orphans(self._spool_dir, exclude=own):
                try:
                    count, finished = await self._replay_orphan(spool)
                except BaseException:
                    spool.release()
                    raise
                total += count
                if not finished:
                    spool.release()
                    break  # the database went away; the next call will try again
                spool.remove()
                self._orphan_files += 1
                log.info("recorder %s: replayed %d rows from %s", self.name, count, spool.path)
        return total

    async def _replay_orphan(self, spool: SpoolFile) -> tuple[int, bool]:
        count = 0
        while True:
            records, torn = spool.read(self._max_batch_size)
            if not records:
                if torn:
                    log.warning("recorder %s: %s ends with %d bytes of a record cut short by a crash",
                                self.name, spool.path, torn)
                return count, True
            ops = await self._decode_all(records)
            try:
                await write_resilient(self._pool, ops, fresh=False, write_timeout=self._write_timeout,
                                      on_written=self._count_orphan_rows, on_poison=self._dead_letter)
            except Interrupted as exc:
                log.warning("recorder %s: database unavailable while replaying %s (%r); will retry",
                            self.name, spool.path, exc.cause)
                return count, False
            spool.consume(records[-1][0])
            count += len(ops)

    def _count_orphan_rows(self, ops: Sequence[Op]) -> None:
        self._written += len(ops)
        self._replayed += len(ops)
