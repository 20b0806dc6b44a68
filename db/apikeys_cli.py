"""`python -m db apikeys create ORG_SLUG --scope read | list [ORG_SLUG] | revoke ID_OR_PREFIX`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from db import apikeys
from db.errors import DatabaseError
from db.pool import connect
from db.settings import DatabaseSettings
from db.startup import database


async def _create(conn, args: argparse.Namespace) -> None:
    new = await apikeys.create_key(conn, organization_slug=args.org, scope=args.scope, name=args.name)
    print(f"created {new.key.scope} key {new.key.prefix} ({new.key.id}) for {args.org}")
    print("store it now, it is not shown again:")
    print(new.secret)  # the last word of the last line, for scripts


async def _list(conn, args: argparse.Namespace) -> None:
    keys = await apikeys.list_keys(conn, organization_slug=args.org)
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
        print(f"{key.id}  {key.prefix}  {key.scope:5}  {state:18} used {used}  {key.name or ''}")
    print(f"{len(keys)} key(s)")


async def _revoke(conn, args: argparse.Namespace) -> None:
    key = await apikeys.revoke_key(conn, key=args.key)
    print(f"revoked key {key.prefix} ({key.id})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m db apikeys", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="a new key for an organisation (printed once)")
    create.add_argument("org", metavar="ORG_SLUG")
    create.add_argument("--scope", choices=apikeys.SCOPES, default="read")
    create.add_argument("--name", help="what the key is for")
    create.set_defaults(run=_create)
    listing = sub.add_parser("list", help="keys, of one organisation when given")
    listing.add_argument("org", metavar="ORG_SLUG", nargs="?")
    listing.set_defaults(run=_list)
    revoke = sub.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key", metavar="ID_OR_PREFIX")
    revoke.set_defaults(run=_revoke)
    return parser


async def _run(dsn: str, args: argparse.Namespace) -> None:
    conn = await connect(dsn)
    try:
        await args.run(conn, args)
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    settings = DatabaseSettings()
    with database(settings.database_url, settings.embedded_pg_dir,
                  migrate=settings.migrate_on_start) as dsn:
        try:
            asyncio.run(_run(dsn, args))
        except DatabaseError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0
