"""Group commit: deliveries that arrive together share one transaction, and each is answered
after that transaction commits.

A delivery on its own costs a pool checkout, a round trip and a commit (which waits for the WAL
to reach the disk); under load those, not the work, are most of the time, and each round trip
also waits for the event loop to come back from the HTTP requests it is handling. Here
deliveries go into lanes, one per connection: a lane takes whatever has queued while its
previous group ran, up to `max_group`, and stores them all in one statement, which is one
transaction (sql/0020_webhook_record_events.sql). Events of
one room always go to the same lane (by room SID), so two lanes never lock the same call row and
cannot deadlock each other; a lane keeps arrival order within a room, though nothing depends on
it (the effects merge in any order, webhooks/effects.py).

If a group fails for any reason other than the database being away (a lost race with the agent
on a call row, a deadlock with it, a row Postgres rejects), it is rolled back and its deliveries
are stored one transaction each, with the retries of `store_one`, so that one bad delivery
never fails its neighbours. If the database is away, every delivery of the group gets
Unavailable (the service journals each).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from dataclasses import dataclass

import asyncpg
from livekit.protocol.webhook import WebhookEvent

from db.errors import Conflict, DatabaseError, Unavailable, translated
from webhooks import effects

log = logging.getLogger(__name__)

_ATTEMPTS = 3
_DEADLOCK, _SERIALIZATION_FAILURE = "40P01", "40001"


async def store_one(pool: asyncpg.Pool, event: WebhookEvent, body: str) -> str | None:
    """Store and apply one event in its own transaction, retried when it lost a race with a
    concurrent writer of the same call (the whole transaction rolled back, so a retry is safe):
    two first events of one room both inserting its call, or a deadlock."""
    attempt = 1
    while True:
        try:
            with translated():
                async with pool.acquire() as conn:
                    return await effects.record(conn, event, body=body)
        except DatabaseError as exc:
            if attempt == _ATTEMPTS or not _lost_a_race(exc):
                raise
            log.info("webhook %s (%s) lost a race, retrying: %s", event.id, event.event, exc)
            attempt += 1


def _lost_a_race(exc: DatabaseError) -> bool:
    # Conflict: a unique key taken by a concurrent insert that ON CONFLICT did not arbitrate
    # (voice_calls' primary key when two transactions create the same call).
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    return isinstance(exc, Conflict) or sqlstate in (_DEADLOCK, _SERIALIZATION_FAILURE)


@dataclass
class _Delivery:
    event: WebhookEvent
    body: str  # as LiveKit sent it: JSON text
    answer: asyncio.Future


class GroupCommit:
    def __init__(self, pool: asyncpg.Pool, *, lanes: int, max_group: int = 64) -> None:
        self._lanes = [_Lane(pool, max_group) for _ in range(max(1, lanes))]

    async def store(self, event: WebhookEvent, body: str) -> str | None:
        """Store and apply `event` (its `body` kept as sent): what effects.record says, once the
        transaction has committed."""
        room = event.room.sid or event.egress_info.room_id or event.id
        lane = self._lanes[zlib.crc32(room.encode()) % len(self._lanes)]
        return await lane.submit(event, body)

    async def close(self) -> None:
        for lane in self._lanes:
            await lane.close()


class _Lane:
    def __init__(self, pool: asyncpg.Pool, max_group: int) -> None:
        self._pool = pool
        self._max_group = max_group
        self._queue: list[_Delivery] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        # Kept between groups: giving a connection back to the pool costs a reset round trip.
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None

    async def submit(self, event: WebhookEvent, body: str) -> str | None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="webhook-commits")
        answer = asyncio.get_running_loop().create_future()
        self._queue.append(_Delivery(event, body, answer))
        self._wake.set()
        return await answer

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._release()

    async def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection: the pool replaces it
                await self._pool.release(conn)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Let the requests being handled right now (verified, about to submit) join the group.
            await asyncio.sleep(0)
            while self._queue:
                group, self._queue = self._queue[: self._max_group], self._queue[self._max_group:]
                try:
                    await self._commit(group)
                except Exception as exc:  # a bug of ours must not end the lane
                    log.exception("storing a group of %d webhooks failed", len(group))
                    for delivery in group:
                        _answer(delivery, exc=exc)

    async def _commit(self, group: list[_Delivery]) -> None:
        try:
            with translated():
                if self._conn is None:
                    self._conn = await self._pool.acquire()
                # One statement, so its own transaction: one round trip (sql/0020).
                results = await effects.record_group(self._conn, [(d.event, d.body) for d in group])
        except Unavailable as exc:
            await self._release()
            for delivery in group:
                _answer(delivery, exc=exc)
            return
        except DatabaseError as exc:
            await self._release()
            log.info("a group of %d webhooks was rolled back (%s); storing them one by one",
                     len(group), exc)
        else:
            for delivery, result in zip(group, results, strict=True):
                _answer(delivery, result=result)
            return
        for delivery in group:
            try:
                result = await store_one(self._pool, delivery.event, delivery.body)
            except Exception as exc:
                _answer(delivery, exc=exc)
            else:
                _answer(delivery, result=result)


def _answer(delivery: _Delivery, *, result: str | None = None, exc: BaseException | None = None) -> None:
    if delivery.answer.done():  # its request was cancelled (the client went away)
        return
    if exc is not None:
        delivery.answer.set_exception(exc)
    else:
        delivery.answer.set_result(result)
