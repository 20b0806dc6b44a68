"""`python -m db endpoints add | list | disable | rotate | replay`: an organisation's outbound
webhook endpoints. `add` and `rotate` print the new secret on their last line (and nowhere
else: it is shown once)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from datetime import datetime

from db.desk.organizations import get_organization
from db.errors import DatabaseError
from db.outbound import deliveries, endpoints
from db.outbound.outbox import EVENT_TYPES
from db.pool import connect
from db.settings import DatabaseSettings
from db.startup import database


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m db endpoints", description=__doc__)
    sub = p.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="a new endpoint; prints its secret last")
    add.add_argument("org")
    add.add_argument("url")
    add.add_argument("--events", nargs="+", choices=EVENT_TYPES, metavar="TYPE",
                     help=f"only these event types (default: all): {', '.join(EVENT_TYPES)}")
    sub.add_parser("list", help="the organisation's endpoints").add_argument("org")
    for name, text in (("disable", "stop delivering to an endpoint"),
                       ("rotate", "a new secret (the old one signs too for 24 h); prints it last")):
        action = sub.add_parser(name, help=text)
        action.add_argument("org")
        action.add_argument("endpoint_id", type=uuid.UUID)
    replay = sub.add_parser("replay", help="send events again, by id or time range")
    replay.add_argument("org")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--event", type=uuid.UUID, help="one event id (the webhook-id header)")
    which.add_argument("--since", type=datetime.fromisoformat, help="ISO time, with its offset")
    replay.add_argument("--until", type=datetime.fromisoformat, help="ISO time (default: now)")
    replay.add_argument("--endpoint", type=uuid.UUID, help="only to this endpoint")
    return p


async def run(dsn: str, args: argparse.Namespace) -> list[str]:
    """The lines to print for one command."""
    conn = await connect(dsn)
    try:
        org = await get_organization(conn, slug=args.org)
        if org is None:
            raise SystemExit(f"error: no organisation with slug {args.org!r}")
        if args.action == "add":
            ep = await endpoints.add_endpoint(conn, organization_id=org.id, url=args.url,
                                              event_types=args.events)
            return [*_describe(ep), ep.secret]
        if args.action == "list":
            return [line for ep in await endpoints.list_endpoints(conn, organization_id=org.id)
                    for line in _describe(ep)]
        if args.action == "disable":
            ep = await endpoints.disable_endpoint(conn, endpoint_id=args.endpoint_id,
                                                  reason="disabled by hand", organization_id=org.id)
            return _describe(ep)
        if args.action == "rotate":
            ep = await endpoints.rotate_secret(conn, endpoint_id=args.endpoint_id, organization_id=org.id)
            return [*_describe(ep), ep.secret]
        queued = await deliveries.replay(conn, organization_id=org.id, event_id=args.event,
                                         since=args.since, until=args.until, endpoint_id=args.endpoint)
        return [f"{queued} deliveries queued again"]
    finally:
        await conn.close()


def _describe(ep: endpoints.Endpoint) -> list[str]:
    state = "enabled" if ep.enabled else f"disabled ({ep.disabled_reason})"
    types = ", ".join(ep.event_types) if ep.event_types else "all events"
    return [f"{ep.id}  {ep.url}  {state}  {types}"]


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    settings = DatabaseSettings()
    try:
        with database(settings.database_url, settings.embedded_pg_dir) as dsn:
            lines = asyncio.run(run(dsn, args))
    except DatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0
