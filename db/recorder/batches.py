"""How the recorder writes a batch: one transaction per batch, every message of the batch in one
statement and every event in another, and, when Postgres rejects a batch for good, bisection down
to the rows it rejects.

A batch is a list of ops, `(seq, enqueued_at, kind, key, payload)`: plain tuples, because building
one is the whole cost the voice loop pays for recording a row. `key` is the session id for
call-level ops and the call id for messages and events.

Rows fresh from memory go by binary COPY straight into voice_messages and call_events: they are
new, almost always, and COPY is the fastest way in. Rows that may be there already (a spool being
replayed, or a fresh batch whose COPY hit a unique key: a row recorded twice) go by COPY into a
temporary staging table, then one `insert ... select ... order by ord on conflict (id,
call_created_at) do nothing`. Either way each row carries its call's created_at, the partition
key (sql/0016), read from voice_calls once per batch (db.calls.partition_keys). Both beat
executemany of the repositories' INSERTs on our tables by far (bench/recorder.py prints the
ratio): executemany runs one statement per row, and voice_messages' tokens trigger,
statement-level, then updates the call once per row instead of once per batch. The conflict
target is the row id (with its partition key) only: a replayed row is skipped, but a different
message that collides on (call_id, sequence_number) is rejected and dead-lettered, not silently
dropped.

Call-level ops (start, connected, update, finish, participant) are few per call; starts go as one
executemany of db.calls.calls.START_CALL, the others through the repository functions of db.calls.calls and
db.calls.participants one by one, so that their merge rules and CallNotFound checks are the ones
everyone else uses.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import operator
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from db import ids
from db.calls import calls, participants
from db.calls.events import COLUMNS as EVENT_COLUMNS
from db.calls.events import Event
from db.calls.messages import COLUMNS as MESSAGE_COLUMNS
from db.calls.messages import Message
from db.calls.partition_keys import call_created_at
from db.errors import Conflict, DatabaseError, InvalidInput, NotFound, Unavailable, is_transient

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
select 0 as ord, {_MESSAGE_STAGE}, call_created_at from voice_messages with no data
"""

INSERT_STAGED_MESSAGES = f"""
insert into voice_messages ({", ".join(MESSAGE_COLUMNS)}, call_created_at)
select {_MESSAGE_SELECT}, call_created_at from recorder_messages order by ord
on conflict (id, call_created_at) do nothing
"""

_EVENT_SELECT = ", ".join(c if c != "payload" else "payload::jsonb" for c in EVENT_COLUMNS)
_EVENT_STAGE = ", ".join(c if c != "payload" else "payload::text as payload" for c in EVENT_COLUMNS)
_PAYLOAD = EVENT_COLUMNS.index("payload")

STAGE_EVENTS = f"""
create temp table if not exists recorder_events on commit delete rows as
select 0 as ord, {_EVENT_STAGE}, call_created_at from call_events with no data
"""

# Ordered by `ord` so that call_events.sequence (an identity) follows the order of recording.
INSERT_STAGED_EVENTS = f"""
insert into call_events ({", ".join(EVENT_COLUMNS)}, call_created_at)
select {_EVENT_SELECT}, call_created_at from recorder_events order by ord
on conflict (id, call_created_at) do nothing
"""


_message_values = operator.attrgetter(*MESSAGE_COLUMNS)
_event_values = operator.attrgetter(*EVENT_COLUMNS)


def _staged_row(ord_: int, row: tuple, json_index: int, key: datetime) -> list:
    values = [ord_, *row, key]
    values[json_index + 1] = json.dumps(values[json_index + 1])
    return values


async def _keys(conn: asyncpg.Connection, rows: Sequence[Message] | Sequence[Event]) -> dict:
    table = "voice_messages" if isinstance(rows[0], Message) else "call_events"
    return await call_created_at(conn, call_ids=(r.call_id for r in rows),
                                 foreign_key=f"{table}_call_id_fkey")


async def merge_messages(conn: asyncpg.Connection, messages: Sequence[Message]) -> None:
    """Insert messages, skipping the ids already stored (staging table, then insert ... select)."""
    keys = await _keys(conn, messages)
    await conn.execute(STAGE_MESSAGES)
    await conn.copy_records_to_table(
        "recorder_messages", columns=("ord", *MESSAGE_COLUMNS, "call_created_at"),
        records=[_staged_row(i, _message_values(m), _METADATA, keys[m.call_id])
                 for i, m in enumerate(messages)],
    )
    await conn.execute(INSERT_STAGED_MESSAGES)


async def merge_events(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    keys = await _keys(conn, events)
    await conn.execute(STAGE_EVENTS)
    await conn.copy_records_to_table(
        "recorder_events", columns=("ord", *EVENT_COLUMNS, "call_created_at"),
        records=[_staged_row(i, _event_values(e), _PAYLOAD, keys[e.call_id])
                 for i, e in enumerate(events)],
    )
    await conn.execute(INSERT_STAGED_EVENTS)


async def copy_messages(conn: asyncpg.Connection, messages: Sequence[Message]) -> None:
    """COPY new messages straight in; a row already stored fails the whole statement."""
    keys = await _keys(conn, messages)
    await conn.copy_records_to_table(
        "voice_messages", columns=(*MESSAGE_COLUMNS, "call_created_at"),
        records=[(*_message_values(m), keys[m.call_id]) for m in messages])


async def copy_events(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    # In order: call_events.sequence, an identity, is assigned as the rows arrive.
    keys = await _keys(conn, events)
    await conn.copy_records_to_table(
        "call_events", columns=(*EVENT_COLUMNS, "call_created_at"),
        records=[(*_event_values(e), keys[e.call_id]) for e in events])


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


def _start_args(op: Op) -> tuple:
    """db.calls.calls.start_call's parameters for START_CALL, in its order."""
    fields, session_id = op[PAYLOAD], op[KEY]
    return (ids.call_id(session_id), session_id, fields.get("room_name"), fields.get("user_id"),
            fields.get("direction"), fields.get("caller_number"), fields.get("dialed_number"),
            fields.get("sip_call_id"), fields.get("started_at"), fields.get("metadata"))


async def _write_call_ops(conn: asyncpg.Connection, ops: Sequence[Op]) -> None:
    for kind, group in itertools.groupby(ops, key=lambda op: op[KIND]):
        if kind == START:  # a start cannot fail for a missing row: run them all in one go
            await conn.executemany(calls.START_CALL, [_start_args(op) for op in group])
        else:
            for op in group:
                await _write_call_op(conn, op)


async def write_batch(conn: asyncpg.Connection, ops: Sequence[Op], *, fresh: bool) -> None:
    """Write `ops` in one transaction: the call-level ops in their order, then every message in
    one statement, then every event in one statement, each in the order recorded. `fresh`: COPY
    straight into the tables (the connection needs init_connection's binary jsonb codec);
    otherwise merge through the staging tables, skipping rows already stored.

    Messages and events do not depend on one another, and nothing outside the transaction can
    see the order inside it; what matters is that a call's row exists before its messages (its
    start runs first) and that events get their `sequence` in recording order. Grouping only
    *consecutive* rows of a kind would give one statement per row for an agent that records a
    message, then an event, then a message (measured: ~50x slower)."""
    call_ops = [op for op in ops if op[KIND] not in (MESSAGE, EVENT)]
    messages = [op[PAYLOAD] for op in ops if op[KIND] == MESSAGE]
    events = [op[PAYLOAD] for op in ops if op[KIND] == EVENT]
    async with conn.transaction():
        await _write_call_ops(conn, call_ops)
        if messages:
            await (copy_messages if fresh else merge_messages)(conn, messages)
        if events:
            await (copy_events if fresh else merge_events)(conn, events)


TRANSIENT, POISON, UNKNOWN = "transient", "poison", "unknown"


def classify(exc: BaseException) -> str:
    """TRANSIENT: the database is away, retry later. POISON: Postgres (or the driver) rejects
    these values, retrying cannot help. UNKNOWN: anything else (a missing table, a permission):
    nothing says the rows are at fault, so they are kept and retried rather than dead-lettered."""
    if isinstance(exc, DatabaseError) and exc.__cause__ is not None:
        # The repositories translate driver errors; judge by what the driver raised (translate()
        # counts every InterfaceError as "unavailable", the client-side DataError included).
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
    fresh: bool,
    write_timeout: float,
    on_written: Callable[[Sequence[Op]], None],
    on_poison: Callable[[Op, BaseException], None],
) -> None:
    """Write `ops` in order, one transaction per segment (see write_batch for `fresh`). A fresh
    segment that fails is retried as a merge (it may hold a row written before); a segment
    Postgres rejects for good is split in two and each half retried, down to single rows, which
    go to `on_poison`: one bad row costs about log2(batch) extra transactions, and its neighbours
    are written. Raises Interrupted when the database is unavailable (or fails in a way we do not
    understand)."""
    todo: deque[tuple[Sequence[Op], bool]] = deque([(ops, fresh)])
    done = 0
    while todo:
        segment, copy = todo.popleft()
        try:
            async with asyncio.timeout(write_timeout):
                async with pool.acquire() as conn:
                    await write_batch(conn, segment, fresh=copy)
        except Exception as exc:  # every failure is sorted below, none is swallowed
            kind = classify(exc)
            if copy and kind != TRANSIENT:
                todo.appendleft((segment, False))
                continue
            if kind != POISON:
                if kind == UNKNOWN:
                    log.error("recorder: unexpected database error, rows kept for a retry: %r", exc)
                raise Interrupted(done, exc) from exc
            if len(segment) == 1:
                on_poison(segment[0], exc)
                done += 1
                continue
            middle = len(segment) // 2
            todo.appendleft((segment[middle:], False))
            todo.appendleft((segment[:middle], False))
            continue
        done += len(segment)
        on_written(segment)
