"""CPU a benchmark's processes spend, which a shared machine's load moves far less than the rates
it measures: a server process, and the Postgres sessions of a database."""

from __future__ import annotations

import contextlib

import asyncpg
import psutil


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU the processes have used so far (one that has gone counts 0)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


async def database_sessions(dsn: str) -> list[int]:
    """The server processes of the other connections to `dsn`'s database (a service's pool);
    none when the server is not on this machine (its pids are not ours to read)."""
    conn = await asyncpg.connect(dsn)
    try:
        pids = [r["pid"] for r in await conn.fetch(
            "select pid from pg_stat_activity"
            " where datname = current_database() and pid <> pg_backend_pid()")]
    finally:
        await conn.close()
    return [pid for pid in pids if _is_postgres(pid)]


def _is_postgres(pid: int) -> bool:
    try:
        return psutil.Process(pid).name().startswith("postgres")
    except psutil.Error:
        return False
