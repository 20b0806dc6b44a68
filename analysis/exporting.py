"""`python -m analysis export` and `cleanup`: write a run's report to a file and track it in
analysis_exports with an expiry; delete the expired ones, file and row.

`write_export` is the one place an export is written: it records the export and its audit_log
row (action `export`: who, which run, how many calls, the format; never a caller's data) in one
transaction."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import asyncpg

from analysis.reports.csv_report import render_csv
from analysis.reports.data import report_data
from analysis.reports.pdf_report import render_pdf
from db import audit
from db.analysis import exports
from db.analysis.exports import Export

log = logging.getLogger(__name__)

RENDERERS = {"csv": render_csv, "pdf": render_pdf}


def _write(out: Path, content: bytes) -> str:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_bytes(content)
    partial.replace(out)  # a reader never sees half a report
    return str(out.resolve())


async def write_export(conn: asyncpg.Connection, *, run_id: uuid.UUID, format: str, out: Path,
                       keep_days: int, actor: str | None = None) -> Export:
    """Write the run's report to `out` and record it; `actor` (default: the OS user and host)
    is who the audit row names."""
    data = await report_data(conn, run_id=run_id)
    content = await asyncio.to_thread(RENDERERS[format], data)
    path = await asyncio.to_thread(_write, out, content)
    async with conn.transaction():
        export = await exports.record_export(conn, run_id=run_id, format=format, path=path,
                                             size_bytes=len(content), keep_days=keep_days)
        await audit.record(conn, actor=actor or audit.system_actor(), action=audit.EXPORT,
                           organization_id=data.run.organization_id, subject=f"analysis_run:{run_id}",
                           row_count=len(data.rows),
                           details={"export_id": str(export.id), "format": format,
                                    "size_bytes": len(content)})
    log.info("wrote the %s report of run %s (%s bytes)", format, run_id, len(content))
    return export


async def delete_expired(conn: asyncpg.Connection) -> list[Export]:
    """Delete each expired export's file (if still there) and then its row; the ones deleted."""
    deleted = []
    for export in await exports.expired(conn):
        await asyncio.to_thread(Path(export.path).unlink, missing_ok=True)
        await exports.delete_export(conn, export_id=export.id)
        deleted.append(export)
    return deleted
