"""`python -m api [--host H] [--port P]`: the admin API and web console.

Reads its settings, finds the database (embedded Postgres unless DATABASE_URL is set), applies
pending migrations, opens a pool, serves with uvicorn until SIGINT/SIGTERM, then closes the pool
and stops the embedded server it started.
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn
import uvloop

from api.app import create_app
from api.settings import ApiSettings
from db import migrate
from db.pool import create_pool
from db.settings import DatabaseSettings
from db.startup import database

log = logging.getLogger("api")


async def serve(settings: ApiSettings, dsn: str) -> None:
    pool = await create_pool(dsn, min_size=1, max_size=settings.db_pool_size)
    try:
        app = create_app(pool=pool, settings=settings)
        # uvicorn's own access log prints query strings (phone numbers): ours (api.app) does not.
        # httptools parses HTTP in C; the loop is uvloop (main), which asyncpg is fastest on.
        config = uvicorn.Config(app, host=settings.host, port=settings.port, access_log=False,
                                log_config=None, lifespan="off", http="httptools")
        log.info("serving the admin API and console on http://%s:%s/", settings.host, settings.port)
        await uvicorn.Server(config).serve()
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    settings = ApiSettings()
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args(argv)
    settings = settings.model_copy(update={"host": args.host, "port": args.port})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    db_settings = DatabaseSettings()
    try:
        with database(db_settings.database_url, db_settings.embedded_pg_dir,
                      migrate=db_settings.migrate_on_start) as dsn:
            uvloop.run(serve(settings, dsn))
    except migrate.MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
