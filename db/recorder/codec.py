"""How a recorder op becomes a spool line (db.recorder.spool) and comes back.

The columns of messages and events that are UUIDs or datetimes go as plain strings (their type
is known from the dataclass); only free-form values (metadata, call-level fields) need the spool's
tags. That makes a line several times cheaper to read back. Both ways are CPU work in the voice
loop's thread (~10 us a row), so callers do it CHUNK rows at a time.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from time import monotonic

from db.calls.events import Event
from db.calls.messages import Message
from db.recorder.batches import EVENT, MESSAGE, UNSPOOLABLE, Op
from db.recorder.spool import decode, encode

# Rows serialised or parsed in one go, in the voice loop's thread.
CHUNK = 100

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


def _decode_or_dead_letter(line: bytes) -> Op:
    try:
        return decode_op(line)
    except Exception as exc:  # a line we cannot read is dead-lettered in its place
        text = line.decode(errors="replace")
        return (0, monotonic(), UNSPOOLABLE, None, {"error": f"unreadable spool line: {exc!r}", "row": text})


async def decode_records(records: list[tuple[int, bytes]]) -> list[Op]:
    """The ops of spool records (SpoolFile.read), a line that cannot be read as an UNSPOOLABLE op."""
    ops = []
    for i in range(0, len(records), CHUNK):
        ops.extend(_decode_or_dead_letter(line) for _, line in records[i:i + CHUNK])
        await asyncio.sleep(0)  # let the voice loop run between chunks
    return ops
