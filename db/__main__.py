"""`python -m db migrate | status | seed --demo | erase | retention | endpoints ... | apikeys ...`:
the database admin commands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from db import apikeys_cli
from db import migrate as migrations
from db.demo.seed import describe, seed_demo
from db.outbound import cli as endpoints_cli
from db.pool import connect, connection_options, migration_options
from db.privacy import cli as privacy
from db.recorder import deadletter_admin
from db.settings import DatabaseSettings
from db.startup import database


async def _connect(dsn: str):
    """A connection with the bounds of DatabaseSettings (statement and lock timeouts)."""
    return await connect(dsn, **connection_options(DatabaseSettings()))


async def _migrate(dsn: str) -> None:
    settings = DatabaseSettings()
    applied = await migrations.migrate_dsn(settings.session_url(dsn), **migration_options(settings))
    if applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print("nothing to do: the database is up to date")


async def _status(dsn: str) -> None:
    conn = await _connect(dsn)
    try:
        rows = await migrations.status(conn)
    finally:
        await conn.close()
    for row in rows:
        when = row.applied_at.isoformat(timespec="seconds") if row.applied_at else "pending"
        print(f"{row.name:50} {when}")
    print(f"{sum(r.applied for r in rows)} applied, {sum(not r.applied for r in rows)} pending")


async def _seed(dsn: str) -> None:
    """The demo tenant (--demo), after any pending migration: a new user runs just this."""
    await _migrate(dsn)
    conn = await _connect(dsn)
    try:
        tenant = await seed_demo(conn)
    finally:
        await conn.close()
    for line in describe(tenant):
        print(line)


COMMANDS = {"migrate": _migrate, "status": _status, "seed": _seed,
            "erase": privacy.erase_command, "retention": privacy.retention_command}
FAMILIES = {"endpoints": endpoints_cli.main, "apikeys": apikeys_cli.main,
            "deadletters": deadletter_admin.main}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in FAMILIES:  # a family of subcommands, with a parser of its own
        return FAMILIES[argv[0]](argv[1:])
    parser = argparse.ArgumentParser(prog="python -m db", description=__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--demo", action="store_true", help="seed: the demo tenant (idempotent)")
    privacy.add_arguments(parser)
    args = parser.parse_args(argv)
    privacy.check(parser, args)
    if args.command == "seed" and not args.demo:
        parser.error("seed needs --demo (the demo tenant is the only seed)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = DatabaseSettings()
    try:
        # Migrating is what these commands do (or, for status, report), saying so on stdout.
        with database(settings.database_url, settings.embedded_pg_dir, migrate=False) as dsn:
            if args.command in privacy.COMMANDS:
                return asyncio.run(COMMANDS[args.command](dsn, args))
            asyncio.run(COMMANDS[args.command](dsn))
    except (migrations.MigrationError, ValueError) as exc:  # ValueError: settings (pool mode)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
