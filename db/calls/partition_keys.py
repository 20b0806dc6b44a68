"""The partition key of a call's messages and events: the call's created_at (sql/0016).

voice_messages and call_events are partitioned by month of `call_created_at`, a copy of their
call's created_at, which nothing changes after the call's row is inserted: so every writer,
and every replay of a row, finds the same key, and ON CONFLICT (..., call_created_at) still
recognises a row written before. Postgres routes a row to its partition before any trigger
runs, so the writer supplies the key; it reads it here, once per batch."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import asyncpg

from db.calls.calls import CALL_NOT_FOUND
from db.errors import repository

CALL_CREATED_AT = "select id, created_at from voice_calls where id = any($1::uuid[])"


@repository
async def call_created_at(conn: asyncpg.Connection, *, call_ids: Iterable[uuid.UUID],
                          foreign_key: str) -> dict[uuid.UUID, datetime]:
    """call id -> the call's created_at, for each of `call_ids`; raises CallNotFound, as
    `foreign_key` (the writer's table's) would, when one of the calls does not exist."""
    wanted = set(call_ids)
    if not wanted:
        return {}
    keys = {r["id"]: r["created_at"] for r in await conn.fetch(CALL_CREATED_AT, list(wanted))}
    missing = wanted - keys.keys()
    if missing:
        cls, message = CALL_NOT_FOUND
        raise cls(f"{message} ({foreign_key}: {len(missing)} call(s), e.g. {min(missing)})")
    return keys
