"""analysis_exports: the report files written for a run, each with an expiry."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from db import errors
from db.analysis.runs import RunNotFound
from db.errors import InvalidInput, repository

FORMATS = ("csv", "pdf")

CONSTRAINTS = errors.constraints({
    "analysis_exports_run_id_fkey": (RunNotFound, "no analysis run with this id"),
    "analysis_exports_format_check": (InvalidInput, "an export is csv or pdf"),
})


@dataclass(frozen=True)
class Export:
    id: uuid.UUID
    run_id: uuid.UUID
    format: str
    path: str
    size_bytes: int | None
    created_at: datetime
    expires_at: datetime


_COLUMNS = "id, run_id, format, path, size_bytes, created_at, expires_at"

RECORD_EXPORT = f"""
insert into analysis_exports (run_id, format, path, size_bytes, expires_at)
values ($1, $2, $3, $4, now() + make_interval(days => $5))
returning {_COLUMNS}
"""


@repository
async def record_export(
    conn: asyncpg.Connection, *, run_id: uuid.UUID, format: str, path: str, size_bytes: int,
    keep_days: int,
) -> Export:
    record = await conn.fetchrow(RECORD_EXPORT, run_id, format, path, size_bytes, keep_days)
    return Export(**dict(record))


EXPIRED = f"select {_COLUMNS} from analysis_exports where expires_at <= now() order by expires_at"
DELETE_EXPORT = "delete from analysis_exports where id = $1"
EXPORTS_OF_RUN = f"select {_COLUMNS} from analysis_exports where run_id = $1 order by created_at"


@repository
async def expired(conn: asyncpg.Connection) -> list[Export]:
    return [Export(**dict(r)) for r in await conn.fetch(EXPIRED)]


@repository
async def delete_export(conn: asyncpg.Connection, *, export_id: uuid.UUID) -> None:
    await conn.execute(DELETE_EXPORT, export_id)


@repository
async def exports_of_run(conn: asyncpg.Connection, *, run_id: uuid.UUID) -> list[Export]:
    return [Export(**dict(r)) for r in await conn.fetch(EXPORTS_OF_RUN, run_id)]
