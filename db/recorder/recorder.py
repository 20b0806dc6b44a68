"""The write-behind recorder: the agent records a call's rows without waiting on Postgres.

Recording a row (start_call, message, event ...) only appends a tuple to an in-memory queue and
returns. One writer task drains the queue in FIFO order, in batches (one transaction each, see
db.recorder.batches), so a call's start is written before its messages and its finish after them.

When Postgres is away (db.errors.is_transient), the failed batch and every row after it go to this
process's spool file (db.recorder.spool) instead, in order, fsync'd per batch; the writer retries with
backoff and, once Postgres answers, replays the spool in order before it goes back to writing
from memory. The queue is bounded: a producer that gets `max_queue` rows ahead of the writer sends
them to the spool too, so memory stays bounded and nothing is dropped. Every row carries an id
chosen by the writer (db.ids), so a row written twice (a replay, a batch whose commit was lost) is
a no-op. A row Postgres rejects for good goes to `<spool_dir>/<name>-deadletter.jsonl`, logged at
ERROR, and the rest of its batch is written.

All methods must be called from the event loop the recorder was started on, in the process that
started it: a forked child would share the parent's spool file and its lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
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
from db.recorder.batches import (
    CONNECTED,
    ENQUEUED_AT,
    EVENT,
    FINISH,
    MESSAGE,
    PARTICIPANT,
    START,
    UPDATE,
    Op,
    init_connection,
    keep_session,
)
from db.recorder.spool import SpoolFile
from db.recorder.spooling import SpoolingMixin
from db.recorder.writer import WriterMixin

log = logging.getLogger(__name__)

_call_id = functools.lru_cache(maxsize=8192)(ids.call_id)


def _keywords(function: Any, *taken: str) -> frozenset[str]:
    return frozenset(inspect.signature(function).parameters) - {"conn", "session_id", *taken}


# What each record call accepts, read off the repository function that will write it.
_START_FIELDS = _keywords(calls.start_call)
_FINISH_FIELDS = _keywords(calls.finish_call, "status", "ended_at", "closed_by")
_PARTICIPANT_FIELDS = _keywords(participants.upsert_participant, "participant_sid", "identity")
_UPDATE_FIELDS = frozenset(calls._UPDATABLE) | {"metadata"}  # update_call takes **values


def _check_fields(what: str, given: dict, allowed: frozenset[str]) -> None:
    unknown = given.keys() - allowed
    if unknown:
        raise InvalidInput(f"{what} cannot set {', '.join(sorted(unknown))}")


class RecorderClosed(RuntimeError):
    pass


@dataclass(frozen=True)
class RecorderStats:
    queued: int  # rows in memory, not yet written or spooled
    written: int  # rows written to Postgres, from memory or from a spool (a no-op replay counts)
    spooled: int  # rows appended to this process's spool
    replayed: int  # rows written from a spool (this process's or a dead one's)
    dead_lettered: int  # rows Postgres rejected for good
    lag_seconds: float  # age of the oldest row recorded but not yet written
    spool_bytes: int  # bytes of this process's spool not yet replayed
    queue_high_water: int  # the most rows the queue ever held (bounded by max_queue)
    failures: int  # batches that failed because Postgres was unavailable
    orphan_spools_replayed: int  # spool files of dead processes replayed and removed
    database_available: bool  # False from a failed batch until a batch succeeds again


class Recorder(WriterMixin, SpoolingMixin):
    def __init__(
        self,
        dsn: str,
        *,
        spool_dir: Path,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.005,
        pool: asyncpg.Pool | None = None,
        name: str = "recorder",
        max_batch_size: int = 2_000,
        retry_interval: float = 0.5,
        retry_max_interval: float = 5.0,
        write_timeout: float = 10.0,
        spool_interval: float = 0.05,
        log_interval: float = 30.0,
        orphan_interval: float = 60.0,
    ) -> None:
        if max_queue < 1 or batch_size < 1:
            raise ValueError("max_queue and batch_size must be positive")
        self.name = name
        self._dsn = dsn
        self._pool = pool
        self._own_pool = pool is None
        # Fresh rows go by COPY straight into the tables only on our own pool, whose connections
        # have the binary jsonb codec that needs; a pool we are given gets the staging path.
        self._fresh = pool is None
        self._spool_dir = Path(spool_dir)
        self._dead_letter_path = self._spool_dir / f"{name}-deadletter.jsonl"
        self._max_queue = max_queue
        self._batch_size = batch_size
        # A writer that is behind (more than batch_size rows waiting, or a spool to replay) writes
        # bigger transactions: each pays a commit and a pass of the tokens trigger over its calls,
        # and paying those less often is what lets a backlog drain (bench/recorder.py).
        self._max_batch_size = max(max_batch_size, batch_size)
        self._flush_interval = flush_interval
        self._retry_interval = self._retry_delay = retry_interval
        self._retry_max = retry_max_interval
        self._write_timeout = write_timeout
        self._spool_interval = spool_interval
        self._log_interval = log_interval
        self._orphan_interval = orphan_interval

        self._queue: deque[Op] = deque()
        self._seq = 0  # the seq of the last op recorded
        self._done = 0  # every op up to this seq is in Postgres (or dead-lettered)
        self._last_seq: dict[uuid.UUID, int] = {}  # call id -> seq of its last op
        self._inflight: Sequence[Op] | None = None  # the batch being written from memory
        self._inflight_spooled = False
        self._idle = False
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._retry_at = 0.0
        self._outage = False
        self._closed = False
        self._writer: asyncio.Task | None = None
        self._maintainer: asyncio.Task | None = None
        self._orphan_lock = asyncio.Lock()
        self._init_spooling()
        self._written = self._replayed = self._dead_lettered = self._failures = 0
        self._high_water = self._orphan_files = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open a small pool of our own (unless one was given), replay the spools of dead
        processes, and start the writer. Works with Postgres down: rows then go to the spool."""
        if self._writer is not None:
            raise RuntimeError(f"recorder {self.name} is already started")
        if self._pool is None:
            # min_size=0: opening the pool does not need the database to be up.
            self._pool = await asyncpg.create_pool(
                self._dsn, min_size=0, max_size=2, init=init_connection, reset=keep_session)
        self._spool = SpoolFile.create(self._spool_dir, self.name)
        try:
            await self.replay_orphans()
        except Exception:
            log.exception("recorder %s: replaying orphan spools failed; will retry", self.name)
        self._writer = asyncio.create_task(self._run(), name=f"{self.name}-writer")
        self._maintainer = asyncio.create_task(self._maintain(), name=f"{self.name}-maintenance")

    async def close(self, deadline: float = 5.0) -> None:
        """Flush within `deadline` seconds, then stop. Whatever could not be written stays in the
        spool file, which the next process to start (or replay_orphans) replays."""
        if self._closed:
            return
        try:
            if self._writer is not None:
                await self.flush(deadline)
        finally:
            self._closed = True
            self._spill_remaining()
            for task in (self._writer, self._maintainer):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            self._close_spool()
            if self._own_pool and self._pool is not None:
                try:
                    await asyncio.wait_for(self._pool.close(), timeout=2.0)
                except TimeoutError:
                    self._pool.terminate()

    # -- recording: enqueue only, no I/O ----------------------------------------------------

    def _put(self, kind: str, key: Any, call: uuid.UUID, payload: Any) -> None:
        if self._closed:
            raise RecorderClosed(f"recorder {self.name} is closed")
        self._seq = seq = self._seq + 1
        self._last_seq[call] = seq
        op = (seq, monotonic(), kind, key, payload)
        queue = self._queue
        if len(queue) >= self._max_queue and self._spool is not None:
            self._overflow(op)
        else:
            queue.append(op)
            if len(queue) > self._high_water:
                self._high_water = len(queue)
        if self._idle:
            self._idle = False
            self._wake.set()

    def start_call(self, *, session_id: str, **fields: Any) -> uuid.UUID:
        """Record the start of a call (db.calls.calls.start_call semantics); returns its id."""
        if not session_id:
            raise InvalidInput("a call needs a session id (the LiveKit room SID)")
        _check_fields("start_call", fields, _START_FIELDS)
        call = _call_id(session_id)
        self._put(START, session_id, call, fields)
        return call

    def mark_connected(self, *, session_id: str, connected_at: datetime) -> None:
        self._put(CONNECTED, session_id, _call_id(session_id), {"connected_at": connected_at})

    def update_call(self, *, session_id: str, **values: Any) -> None:
        """Set descriptive columns (db.calls.calls.update_call semantics)."""
        _check_fields("update_call", values, _UPDATE_FIELDS)
        self._put(UPDATE, session_id, _call_id(session_id), values)

    def finish_call(self, *, session_id: str, status: str, ended_at: datetime,
                    closed_by: str = "agent", **fields: Any) -> None:
        if status not in calls.CLOSED_STATUSES:
            raise InvalidInput(f"a call ends as one of {', '.join(calls.CLOSED_STATUSES)}, not {status!r}")
        if closed_by not in ("agent", "webhook"):
            raise InvalidInput("closed_by must be 'agent' or 'webhook'")
        _check_fields("finish_call", fields, _FINISH_FIELDS)
        payload = {"status": status, "ended_at": ended_at, "closed_by": closed_by, **fields}
        self._put(FINISH, session_id, _call_id(session_id), payload)

    def participant(self, *, session_id: str, participant_sid: str, identity: str, **fields: Any) -> None:
        """Record a participant (db.calls.participants.upsert_participant semantics)."""
        if not participant_sid or not identity:
            raise InvalidInput("a participant needs its SID and identity")
        _check_fields("participant", fields, _PARTICIPANT_FIELDS)
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
        target = self._seq if session_id is None else self._last_seq.get(_call_id(session_id), 0)
        end = monotonic() + deadline
        # Keep time to spool what is left: serialising costs ~10 us a row.
        reserve = min(deadline / 4, 0.05 + 20e-6 * (len(self._queue) + self._batch_size))
        while self._done < target and self._writer is not None and not self._writer.done():
            remaining = end - reserve - monotonic()
            if remaining <= 0:
                break
            if self._outage and self._synced_seq >= target and self._retry_at >= end:
                break  # safe on disk, and no attempt to reach Postgres falls within the deadline
            progress = self._progress
            try:
                await asyncio.wait_for(progress.wait(), remaining)
            except TimeoutError:
                break
        if self._done >= target:
            return True
        if self._synced_seq < target and self._spool is not None:
            try:
                self._spill_all()
                await self._sync_spool()
            except OSError:
                log.exception("recorder %s: could not spool the rows of a flush", self.name)
        return self._done >= target

    def _notify(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    def stats(self) -> RecorderStats:
        oldest = [t for t in (self._spool_head_t,
                              self._inflight[0][ENQUEUED_AT] if self._inflight else None,
                              self._queue[0][ENQUEUED_AT] if self._queue else None) if t is not None]
        return RecorderStats(
            queued=len(self._queue), written=self._written, spooled=self._spooled,
            replayed=self._replayed, dead_lettered=self._dead_lettered,
            lag_seconds=monotonic() - min(oldest) if oldest else 0.0,
            spool_bytes=self._spool.size - self._spool.read_offset if self._spool else 0,
            queue_high_water=self._high_water, failures=self._failures,
            orphan_spools_replayed=self._orphan_files, database_available=not self._outage,
        )
