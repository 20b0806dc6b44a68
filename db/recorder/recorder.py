"""The write-behind recorder: the agent records a call's rows without waiting on Postgres.

Recording a row (start_call, message, event ...) only appends a tuple to an in-memory queue and
returns. One writer task (db.recorder.writer) drains the queue in FIFO order, in batches (one
transaction each, see db.recorder.batches), so a call's start is written before its messages and
its finish after them.

When Postgres is away (db.errors.is_transient), the failed batch and every row after it go to this
process's spool file (db.recorder.spool) instead, in order, fsync'd per batch; the writer retries with
backoff and, once Postgres answers, replays the spool in order before it goes back to writing
from memory (db.recorder.backlog keeps the oldest rows on disk, the newer in memory). The queue is
bounded: a producer that gets `max_queue` rows ahead of the writer sends them to the spool too, so
memory stays bounded and nothing is dropped. Every row carries an id chosen by the writer (db.ids),
so a row written twice (a replay, a batch whose commit was lost) is a no-op. A row Postgres rejects
for good goes to `<spool_dir>/<name>-deadletter.jsonl` (db.recorder.deadletters), logged at ERROR,
and the rest of its batch is written. Spools of dead processes are replayed at start and every
orphan_interval (db.recorder.orphans), in the background: never in the way of recording.

The Recorder here is the facade: it checks what it is given, numbers the rows, and composes the
backlog, the writer and the dead letters, which own their state.

All methods must be called from the event loop the recorder was started on, in the process that
started it: a forked child would share the parent's spool file and its lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from time import monotonic
from typing import Any

import asyncpg

from db import ids
from db.calls import calls, participants
from db.calls.events import Event
from db.calls.messages import Message
from db.errors import InvalidInput
from db.recorder.backlog import Backlog
from db.recorder.batches import (
    CONNECTED,
    EVENT,
    FINISH,
    MESSAGE,
    PARTICIPANT,
    START,
    UPDATE,
    Op,
)
from db.recorder.connections import init_connection, keep_session, write_bounds
from db.recorder.deadletters import DeadLetters
from db.recorder.fields import FINISH_FIELDS, PARTICIPANT_FIELDS, START_FIELDS, UPDATE_FIELDS, check_fields
from db.recorder.options import RecorderClosed, RecorderOptions, RecorderStats
from db.recorder.orphans import replay_orphan_spools
from db.recorder.writer import State, Writer

log = logging.getLogger(__name__)

_call_id = functools.lru_cache(maxsize=8192)(ids.call_id)
_CLOSED = State.CLOSED  # a global, not an attribute lookup on the enum, for the per-row check
_DEFAULTS = RecorderOptions()


class Recorder:
    def __init__(self, dsn: str, *, spool_dir: Path, name: str = "recorder",
                 pool: asyncpg.Pool | None = None, options: RecorderOptions = _DEFAULTS) -> None:
        self.name = name
        self._dsn = dsn
        self._pool = pool
        self._own_pool = pool is None
        self._spool_dir = Path(spool_dir)
        self._options = options
        self._backlog = Backlog(options.max_queue, name=name, max_memory=options.max_memory_rows)
        self._dead_letters = DeadLetters(self._spool_dir, name, max_bytes=options.max_deadletter_bytes)
        # Fresh rows go by COPY straight into the tables only on our own pool, whose connections
        # have the binary jsonb codec that needs; a pool we are given gets the staging path.
        self._writer = Writer(self._backlog, self._dead_letters, options, name=name, fresh=pool is None)
        self._maintainer: asyncio.Task | None = None
        self._orphan_lock = asyncio.Lock()
        self._seq = 0  # the seq of the last row recorded
        self._last_seq: dict[uuid.UUID, int] = {}  # call id -> seq of its last row
        self._orphan_rows = self._orphan_files = 0
        # Recording a row touches these directly: see _put.
        self._queue = self._backlog.queue
        self._max_queue = options.max_queue
        self._overflow = self._backlog.overflow
        self._wake = self._writer.wake

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open a small pool of our own (unless one was given) and start the writer; the spools
        of dead processes are replayed in the background (await replay_orphans() to wait for
        them). Works with Postgres down: rows then go to the spool."""
        if self._writer.started:
            raise RuntimeError(f"recorder {self.name} is already started")
        if self._pool is None:
            # min_size=0: opening the pool does not need the database to be up.
            self._pool = await asyncpg.create_pool(
                self._dsn, min_size=0, max_size=2, init=init_connection, reset=keep_session,
                **write_bounds(self._options.write_timeout, pooled=self._options.pooled))
        self._backlog.open(self._spool_dir)
        self._writer.start(self._pool)
        self._maintainer = asyncio.create_task(self._maintain(), name=f"{self.name}-maintenance")

    async def close(self, deadline: float = 5.0) -> None:
        """Flush within `deadline` seconds, then stop. Whatever could not be written stays in the
        spool file, which the next process to start (or replay_orphans) replays."""
        if self._writer.state is State.CLOSED:
            return
        try:
            if self._writer.started:
                await self.flush(deadline)
        finally:
            await self._writer.stop()  # from here on, recording a row raises RecorderClosed
            if self._maintainer is not None:
                self._maintainer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._maintainer
            self._backlog.close()  # a batch the writer was writing and the queue go to the spool
            if self._own_pool and self._pool is not None:
                try:
                    await asyncio.wait_for(self._pool.close(), timeout=2.0)
                except TimeoutError:
                    self._pool.terminate()

    # -- recording: enqueue only, no I/O ----------------------------------------------------

    def _put(self, kind: str, key: Any, call: uuid.UUID, payload: Any) -> None:
        # Runs for every row, in the voice loop: Backlog.put inlined, and a wake-up only when the
        # queue was empty, the only time the writer may be asleep waiting for rows.
        if self._writer.state is _CLOSED:
            raise RecorderClosed(f"recorder {self.name} is closed")
        self._seq = seq = self._seq + 1
        self._last_seq[call] = seq
        op = (seq, monotonic(), kind, key, payload)
        queue = self._queue
        if not queue:
            self._wake()
        if len(queue) < self._max_queue:
            queue.append(op)
        else:
            self._overflow(op)

    def start_call(self, *, session_id: str, **fields: Any) -> uuid.UUID:
        """Record the start of a call (db.calls.calls.start_call semantics); returns its id."""
        if not session_id:
            raise InvalidInput("a call needs a session id (the LiveKit room SID)")
        check_fields("start_call", fields, START_FIELDS)
        call = _call_id(session_id)
        self._put(START, session_id, call, fields)
        return call

    def mark_connected(self, *, session_id: str, connected_at: datetime) -> None:
        self._put(CONNECTED, session_id, _call_id(session_id), {"connected_at": connected_at})

    def update_call(self, *, session_id: str, **values: Any) -> None:
        """Set descriptive columns (db.calls.calls.update_call semantics)."""
        check_fields("update_call", values, UPDATE_FIELDS)
        self._put(UPDATE, session_id, _call_id(session_id), values)

    def finish_call(self, *, session_id: str, status: str, ended_at: datetime,
                    closed_by: str = "agent", **fields: Any) -> None:
        if status not in calls.CLOSED_STATUSES:
            raise InvalidInput(f"a call ends as one of {', '.join(calls.CLOSED_STATUSES)}, not {status!r}")
        if closed_by not in ("agent", "webhook"):
            raise InvalidInput("closed_by must be 'agent' or 'webhook'")
        check_fields("finish_call", fields, FINISH_FIELDS)
        payload = {"status": status, "ended_at": ended_at, "closed_by": closed_by, **fields}
        self._put(FINISH, session_id, _call_id(session_id), payload)

    def participant(self, *, session_id: str, participant_sid: str, identity: str, **fields: Any) -> None:
        """Record a participant (db.calls.participants.upsert_participant semantics)."""
        if not participant_sid or not identity:
            raise InvalidInput("a participant needs its SID and identity")
        check_fields("participant", fields, PARTICIPANT_FIELDS)
        kind = fields.get("participant_type")
        if kind is not None and kind not in participants.PARTICIPANT_TYPES:
            raise InvalidInput(f"participant_type must be one of {', '.join(participants.PARTICIPANT_TYPES)}")
        payload = {"participant_sid": participant_sid, "identity": identity, **fields}
        self._put(PARTICIPANT, session_id, _call_id(session_id), payload)

    def message(self, message: Message) -> None:
        self._put(MESSAGE, message.call_id, message.call_id, message)

    def event(self, event: Event) -> None:
        self._put(EVENT, event.call_id, event.call_id, event)

    # -- waiting -------------------------------------------------------------------------------

    async def flush(self, deadline: float, *, session_id: str | None = None) -> bool:
        """Within `deadline` seconds, get everything recorded so far (for the call `session_id`,
        or for all calls) written to Postgres, or else into the spool file (fsync'd). True when
        all of it is in Postgres (or dead-lettered: see the dead-letter file)."""
        writer, backlog = self._writer, self._backlog
        target = self._seq if session_id is None else self._last_seq.get(_call_id(session_id), 0)
        end = monotonic() + deadline
        # Keep time to spool what is left: serialising costs ~10 us a row.
        reserve = min(deadline / 4, 0.05 + 20e-6 * (len(self._queue) + self._options.batch_size))
        while writer.done < target and writer.running:
            remaining = end - reserve - monotonic()
            if remaining <= 0:
                break
            if (writer.state is State.OUTAGE and backlog.synced_seq >= target
                    and writer.backoff.next_attempt >= end):
                break  # safe on disk, and no attempt to reach Postgres falls within the deadline
            if not await writer.wait_for_progress(remaining):
                break
        if writer.done >= target:
            return True
        if backlog.synced_seq < target and backlog.spool is not None:
            try:
                backlog.spill()
                await backlog.sync()
                writer.notify()  # other flushes may be waiting for these rows to be safe on disk
            except OSError as exc:
                backlog.spool_failed(exc)  # logged once per run of failures; the rows wait in memory
        return writer.done >= target

    def stats(self) -> RecorderStats:
        backlog, writer = self._backlog, self._writer
        oldest = backlog.oldest()
        return RecorderStats(
            queued=len(backlog.queue), written=writer.written + self._orphan_rows,
            spooled=backlog.spooled, replayed=writer.replayed + self._orphan_rows,
            dead_lettered=self._dead_letters.count,
            lag_seconds=monotonic() - oldest if oldest is not None else 0.0,
            spool_bytes=backlog.spool_bytes, queue_high_water=backlog.high_water,
            failures=writer.failures, orphan_spools_replayed=self._orphan_files,
            database_available=writer.state is not State.OUTAGE,
            batches_written=writer.batches, batch_write_seconds=writer.batch_seconds,
            lost=backlog.lost + self._dead_letters.lost, spool_available=backlog.spool_ok,
        )

    # -- spools of dead processes, and the periodic chores ------------------------------------

    async def replay_orphans(self) -> int:
        """Replay, then delete, the spool files in spool_dir whose process is gone; returns the
        number of rows replayed. Safe to call from several processes at once: each file is
        replayed by exactly one of them (flock)."""
        if self._pool is None:
            raise RuntimeError(f"recorder {self.name} is not started")
        async with self._orphan_lock:
            return await replay_orphan_spools(
                self._pool, self._spool_dir, exclude=self._backlog.spool_path, name=self.name,
                batch_size=self._options.max_batch_size, write_timeout=self._options.write_timeout,
                on_written=self._count_orphan_rows, on_poison=self._dead_letters.add,
                on_removed=self._count_orphan_file,
            )

    def _count_orphan_rows(self, ops: Sequence[Op]) -> None:
        self._orphan_rows += len(ops)

    def _count_orphan_file(self, path: Path) -> None:
        self._orphan_files += 1

    async def _maintain(self) -> None:
        # The first replay runs here, not in start(): a process answering a call must not wait on
        # other processes' spools (nor, with Postgres away, on failing to replay them).
        try:
            await self.replay_orphans()
        except Exception:
            log.exception("recorder %s: replaying orphan spools failed; will retry", self.name)
        options = self._options
        last_log = last_orphans = monotonic()
        while True:
            await asyncio.sleep(min(options.log_interval, options.orphan_interval))
            now = monotonic()
            if now - last_log >= options.log_interval:
                last_log = now
                self._log_stats()
            if now - last_orphans >= options.orphan_interval and self._writer.state is not State.OUTAGE:
                last_orphans = now
                try:
                    await self.replay_orphans()
                except Exception:
                    log.exception("recorder %s: replaying orphan spools failed", self.name)
            # Forget calls whose rows are all written; flush() for them returns at once.
            done = self._writer.done
            self._last_seq = {k: v for k, v in self._last_seq.items() if v > done}

    def _log_stats(self) -> None:
        s = self.stats()
        log.info("recorder %s: queued=%d written=%d spooled=%d replayed=%d dead_lettered=%d "
                 "lag=%.3fs spool_bytes=%d failures=%d lost=%d db=%s spool=%s", self.name, s.queued,
                 s.written, s.spooled, s.replayed, s.dead_lettered, s.lag_seconds, s.spool_bytes,
                 s.failures, s.lost, "up" if s.database_available else "down",
                 "ok" if s.spool_available else "failing")
