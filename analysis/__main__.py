"""`python -m analysis work [--once] | run --from D --to D [...] | export RUN_ID ... | cleanup`:
post-call analysis workers, manager runs and their reports (docs/analysis.md).

Each command reads its settings, finds the database (the embedded Postgres unless DATABASE_URL
is set), applies pending migrations, does its work, and closes what it opened.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import uuid
from datetime import date
from pathlib import Path

from analysis import build
from analysis.exporting import delete_expired, write_export
from analysis.runs import RunRequest, run_analysis
from analysis.settings import Settings
from analysis.worker import Worker
from db import migrate
from db.errors import DatabaseError
from db.pool import create_pool
from db.startup import database
from metrics import start_metrics_server

log = logging.getLogger("analysis")


async def _work(settings: Settings, dsn: str, args: argparse.Namespace) -> int:
    analyser = build.analyser(settings)
    pool = await create_pool(dsn, min_size=1, max_size=4)
    served = None
    try:
        if settings.analysis_metrics_port is not None:
            served = await start_metrics_server(settings.analysis_metrics_host,
                                                settings.analysis_metrics_port)
            log.info("serving /metrics on %s:%s", settings.analysis_metrics_host,
                     settings.analysis_metrics_port)
        worker = Worker(pool, analyser, build.worker_options(settings))
        log.info("analysis worker %s with the %s analyser", worker.options.name, analyser.name)
        if args.once:
            print(f"analysed {await worker.drain()} job(s) with the {analyser.name} analyser")
            return 0
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await worker.run(stop)
        return 0
    finally:
        if served is not None:
            await served.cleanup()
        await analyser.aclose()
        await pool.close()


async def _run(settings: Settings, dsn: str, args: argparse.Namespace) -> int:
    analyser = build.analyser(settings)
    pool = await create_pool(dsn, min_size=1, max_size=4)
    try:
        request = RunRequest(period_from=args.date_from, period_to=args.date_to,
                             organization_slug=args.organization, location_slug=args.location,
                             config_version=args.config_version)
        run = await run_analysis(pool, analyser, request, batch_size=settings.analysis_batch_size,
                                 concurrency=settings.analysis_concurrency)
        k, response = run.kpis, run.kpis.get("response_ms") or {}
        print(f"run {run.status}: {run.calls_total} call(s), {run.calls_analysed} analysed, "
              f"{run.calls_failed} failed, {run.processing_ms} ms; avg quality "
              f"{k.get('avg_quality', '-')}, response p50/p90 {response.get('p50') or '-'}/"
              f"{response.get('p90') or '-'} ms")
        print(run.id)
        return 0 if run.status in ("completed", "partial") else 1
    finally:
        await analyser.aclose()
        await pool.close()


async def _export(settings: Settings, dsn: str, args: argparse.Namespace) -> int:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            export = await write_export(conn, run_id=args.run_id, format=args.format, out=args.out,
                                        keep_days=settings.analysis_export_days)
        print(f"wrote {export.path} ({export.size_bytes} bytes), "
              f"kept until {export.expires_at:%Y-%m-%d %H:%M %Z}")
        return 0
    finally:
        await pool.close()


async def _cleanup(settings: Settings, dsn: str, args: argparse.Namespace) -> int:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            deleted = await delete_expired(conn)
        print(f"deleted {len(deleted)} expired export(s)")
        return 0
    finally:
        await pool.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    work = commands.add_parser("work", help="analyse closed calls from the queue")
    work.add_argument("--once", action="store_true", help="drain the due jobs, then exit")
    run = commands.add_parser("run", help="analyse a period of calls and compute its KPIs")
    run.add_argument("--from", dest="date_from", type=date.fromisoformat, required=True)
    run.add_argument("--to", dest="date_to", type=date.fromisoformat, required=True)
    run.add_argument("--organization", help="its slug (needed when there is more than one)")
    run.add_argument("--location", help="a location's slug: only its calls")
    run.add_argument("--config-version", type=int, help="only calls that ran with this version")
    export = commands.add_parser("export", help="write a run's report")
    export.add_argument("run_id", type=uuid.UUID)
    export.add_argument("--format", choices=("csv", "pdf"), required=True)
    export.add_argument("--out", type=Path, required=True)
    commands.add_parser("cleanup", help="delete expired exports (files and rows)")
    return parser


COMMANDS = {"work": _work, "run": _run, "export": _export, "cleanup": _cleanup}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    try:
        with database(settings.database_url, settings.embedded_pg_dir,
                      migrate=settings.migrate_on_start) as dsn:
            return asyncio.run(COMMANDS[args.command](settings, dsn, args))
    except (migrate.MigrationError, DatabaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
