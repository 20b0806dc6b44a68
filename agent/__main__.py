"""`python -m agent dev | start | console | connect` (LiveKit's CLI) and `python -m agent demo`."""

from __future__ import annotations

import logging
import os
import sys

from agent.providers import MissingSettings, load_factory
from agent.settings import Settings
from db.startup import database


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "demo":
        from agent.demo import main as demo

        return demo(sys.argv[2:])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings()
    try:
        load_factory(settings.providers)(settings)  # fail now, naming every missing variable
    except MissingSettings as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from livekit.agents import cli

    from agent.worker import build_server

    with database(settings.database_url, settings.embedded_pg_dir,
                  migrate=settings.migrate_on_start) as dsn:
        # Job processes are children of this one: they find the database through the environment.
        os.environ["DATABASE_URL"] = dsn
        cli.run_app(build_server(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
