"""How the recorder writes a batch: one transaction per batch, consecutive rows of one kind in one
statement, and, when Postgres rejects a batch for good, bisection down to the rows it rejects.

A batch is a list of ops, `(seq, enqueued_at, kind, key, payload)`: plain tuples, because building
one is the whole cost the voice loop pays for recording a row. `key` is the session id for
call-level ops and the call id for messages and events.

Messages and events go through a staging table: COPY (binary, the fastest way in) into a temporary
table, then one `insert ... select ... order by ord on conflict (id) do nothing`. Measured against
executemany of the repositories' INSERTs on our tables (bench/recorder.py, 12k messages in batches
of 500): staging ~10.6k rows/s, executemany ~3k rows/s. executemany runs one statement per row, and
voice_messages' statement-level tokens trigger then updates the call once per row instead of once
per batch. The conflict target is the row id only: a replayed row is skipped, but a different
message that collides on (call_id, sequence_number) is rejected and dead-lettered, not dropped.

Call-level ops (start, connected, update, finish, participant) are few per call; they go through
the repository functions of db.calls and db.participants one by one, so their merge rules and
their CallNotFound checks are the same as everywhere else.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import astuple
from typing import Any

import asyncpg

from db import calls, participants
from db.errors import Conflict, DatabaseError, InvalidInput, NotFound, Unavailable, is_transient
from db.events import COLUMNS as EVENT_COLUMNS
from db.events import Event
from db.messages import COLUMNS as MESSAGE_COLUMNS
from db.messages import Message

log = logging.getLogger(__name__)

Op = tuple[int, float, str, Any, Any]
SEQ, ENQUEUED_AT, KIND, KEY, PAYLOAD = range(5)

START, CONNECTED, UPDATE, FINISH, PARTICIPANT, MESSAGE, EVENT = (
    "start", "connected", "update", "finish", "participant", "message", "event")
# An op the spool could not encode; it is kept in its place in the order and dead-lettered there.
UNSPOOLABLE = "unspoolable"

# json/jsonb travel as text into the staging table: binary COPY has no codec for our jsonb.
_MESSAGE_SELECT = ", ".join(c if c != "metadata" else "metadata::jsonb" for c in MESSAGE_COLUMNS)
_MESSAGE_STAGE = ", ".join(c if c != "metadata" else "metadata::text as metadata" for c in MESSAGE_COLUMNS)
_METADATA = MESSAGE_COLUMNS.index("metadata")

STAGE_MESSAGES = f"""
create temp table if not exists recorder_messages on commit delete rows as
select 0 as ord, {_MESSAGE_STAGE} from voice_messages with no data
"""

INSERT_STAGED_MESSAGES = f"""
insert into voice_messages ({", ".join(MESSAGE_COLUMNS)})
select {_MESSAGE_SELECT} from recorder_messages order by ord
on conflict (id) do nothing
"""

_EVENT_SELECT = ", ".join(c if c != "payload" else "payload::jsonb" for c in EVENT_COLUMNS)
_EVENT_STAGE = ", ".join(c if c != "payload" else "payload::text as payload" for c in EVENT_COLUMNS)
_PAYLOAD = EVENT_COLUMNS.index("payload")

STAGE_EVENTS = f"""
create temp table if not exists recorder_events on commit delete rows as
select 0 as ord, {_EVENT_STAGE} from call_events with no data
"""

# Ordered by `ord` so that call_events.sequence (an identity) follows the order of recording.
INSERT_STAGED_EVENTS = f"""
insert into call_events ({", ".join(EVENT_COLUMNS)})
select {_EVENT_SELECT} from recorder_events order by ord
on conflict (id) do nothing
"""


def _staged_row(ord_: int, row: tuple, json_index: int) -> tuple:
    values = list(row)
    values[json_index] = json.dumps(values[json_index])
    return (ord_, *values)


async def write_messages(conn: asyncpg.Connection, messages: Sequence[Message]) -> None:
    await conn.execute(STAGE_MESSAGES)
    await conn.copy_records_to_table(
        "recorder_messages", columns=("ord", *MESSAGE_COLUMNS),
        records=[_staged_row(i, astuple(m), _METADATA) for i, m in enumerate(messages)],
    )
    await conn.execute(INSERT_STAGED_MESSAGES)


async def write_events(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    await conn.execute(STAGE_EVENTS)
    await conn.copy_records_to_table(
        "recorder_events", columns=("ord", *EVENT_COLUMNS),
        records=[_staged_row(i, astuple(e), _PAYLOAD) for i, e in enumerate(events)],
    )
    await conn.execute(INSERT_STAGED_EVENTS)


class UnspoolableOp(InvalidInput):
    pass


async def _write_call_op(conn: asyncpg.Connection, op: Op) -> None:
    kind, key, payload = op[KIND], op[KEY], op[PAYLOAD]
    if kind == START:
        await calls.start_call(conn, session_id=key, **payload)
    elif kind == CONNECTED:
        await calls.mark_connected(conn, session_id=key, **payload)
    elif kind == UPDATE:
        await calls.update_call(conn, session_id=key, **payload)
    elif kind == FINISH:
        await calls.finish_call(conn, session_id=key, **payload)
    elif kind == PARTICIPANT:
        await participants.upsert_participant(conn, session_id=key, **payload)
    elif kind == UNSPOOLABLE:
        raise UnspoolableOp(payload.get("error", "this row could not be spooled"))
    else:
        raise InvalidInput(f"unknown recorder op {kind!r}")


async def write_batch(conn: asyncpg.Connection, ops: Sequence[Op]) -> None:
    """Write `ops` in order in one transaction; consecutive messages (or events) go as one
    statement."""
    async with conn.transaction():
        for kind, group in itertools.groupby(ops, key=lambda op: op[KIND]):
            if kind == MESSAGE:
                await write_messages(conn, [op[PAYLOAD] for op in group])
            elif kind == EVENT:
                await write_events(conn, [op[PAYLOAD] for op in group])
            else:
                for op in group:
                    await _write_call_op(conn, op)


TRANSIENT, POISON, UNKNOWN = "transient", "poison", "unknown"


def classify(exc: BaseException) -> str:
    """TRANSIENT: the database is away, retry later. POISON: Postgres (or the driver) rejects
    these values, retrying cannot help. UNKNOWN: anything else (a missing table, a permission):
    nothing says the rows are at fault, so they are kept and retried rather than dead-lettered."""
    if isinstance(exc, DatabaseError) and exc.__cause__ is not None:
        # The repositories translate, and translate() calls the driver's client-side DataError
        # (an InterfaceError) "unavailable"; look at what the driver actually raised.
        return classify(exc.__cause__)
    if isinstance(exc, Unavailable):
        return TRANSIENT
    if isinstance(exc, (NotFound, InvalidInput, Conflict)):
        return POISON
    if isinstance(exc, asyncpg.PostgresError):
        if (getattr(exc, "sqlstate", "") or "").startswith(("22", "23")):
            return POISON
        return TRANSIENT if is_transient(exc) else UNKNOWN
    if isinstance(exc, (TypeError, ValueError)) and not isinstance(exc, OSError):
        return POISON  # the driver could not encode a value (its DataError is a ValueError)
    return TRANSIENT if is_transient(exc) else UNKNOWN


class Interrupted(Exception):
    """The database went away during a batch: the first `done` ops are written (or dead-lettered),
    the rest are not."""

    def __init__(self, done: int, cause: BaseException) -> None:
        super().__init__(f"interrupted after {done} ops: {cause!r}")
        self.done = done
        self.cause = cause


async def write_resilient(
    pool: asyncpg.Pool,
    ops: Sequence[Op],
    *,
    write_timeout: float,
    on_written: Callable[[Sequence[Op]], None],
    on_poison: Callable[[Op, BaseException], None],
) -> None:
    """Write `ops` in order, one transaction per segment. A segment Postgres rejects for good is
    split in two and each half retried, down to single rows, which go to `on_poison`; so one bad
    row costs about log2(batch) extra transactions and its neighbours are written. Raises
    Interrupted when the database is unavailable (or fails in a way we do not understand)."""
    todo: deque[Sequence[Op]] = deque([ops])
    done = 0
    while todo:
        segment = todo.popleft()
        try:
            async with asyncio.timeout(write_timeout):
                async with pool.acquire() as conn:
                    await write_batch(conn, segment)
        except Exception as exc:  # every failure is sorted below, none is swallowed
            kind = classify(exc)
            if kind != POISON:
                if kind == UNKNOWN:
                    log.error("recorder: unexpected database error, rows kept for a retry: %r", exc)
                raise Interrupted(done, exc) from exc
            if len(segment) == 1:
                on_poison(segment[0], exc)
                done += 1
                continue
            middle = len(segment) // 2
            todo.appendleft(segment[middle:])
            todo.appendleft(segment[:middle])
            continue
        done += len(segment)
        on_written(segment)
