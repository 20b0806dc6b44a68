"""Analysis runs and their exports as the admin API lists them: run under RLS as the caller
(members read their organisation's runs and exports, sql/0011), newest first."""

from __future__ import annotations

import uuid
from dataclasses import fields

import asyncpg

from db.analysis.exports import Export
from db.analysis.runs import Run
from db.errors import repository

LIST_RUNS = f"""
select {', '.join(f.name for f in fields(Run))} from analysis_runs
 where organization_id = $1 and ($2::text is null or status = $2)
 order by created_at desc, id desc
 limit $3
"""


@repository
async def list_runs(conn: asyncpg.Connection, *, organization_id: uuid.UUID, status: str | None = None,
                    limit: int = 50) -> list[Run]:
    return [Run(**dict(r)) for r in await conn.fetch(LIST_RUNS, organization_id, status, limit)]


GET_EXPORT = f"select {', '.join(f.name for f in fields(Export))} from analysis_exports where id = $1"


@repository
async def get_export(conn: asyncpg.Connection, *, export_id: uuid.UUID) -> Export | None:
    record = await conn.fetchrow(GET_EXPORT, export_id)
    return Export(**dict(record)) if record else None


EXPORTS_OF_RUN = f"""
select {', '.join(f.name for f in fields(Export))} from analysis_exports where run_id = $1
 order by created_at desc, id desc
"""


@repository
async def exports_of_run(conn: asyncpg.Connection, *, run_id: uuid.UUID) -> list[Export]:
    return [Export(**dict(r)) for r in await conn.fetch(EXPORTS_OF_RUN, run_id)]
