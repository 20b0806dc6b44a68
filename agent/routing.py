"""Which location answers a call: the number dialled, else the room's or job's metadata, else
the organisation's default location."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Literal

import asyncpg

from agent.call import Caller
from db.desk import configs, locations, organizations
from db.desk.configs import AgentConfig
from db.desk.locations import Location
from db.desk.organizations import Organization

log = logging.getLogger(__name__)


class NoRoute(RuntimeError):
    """Nothing to answer this call with: no location matched and no default is configured."""


@dataclass(frozen=True)
class Route:
    organization: Organization
    location: Location
    config: AgentConfig | None
    routed_by: Literal["dialed_number", "metadata", "default"]


def parse_metadata(*blobs: str | None) -> dict:
    """Merge JSON metadata strings (job first, then room); anything that is not a JSON object
    is ignored with a log line."""
    merged: dict = {}
    for blob in blobs:
        if not blob:
            continue
        try:
            value = json.loads(blob)
        except json.JSONDecodeError:
            log.info("ignoring metadata that is not JSON (%d characters)", len(blob))
            continue
        if isinstance(value, dict):
            merged = {**value, **merged}
    return merged


async def _by_metadata(conn: asyncpg.Connection, metadata: dict) -> Location | None:
    location_id = metadata.get("location_id")
    if location_id:
        try:
            return await locations.get_location(conn, location_id=uuid.UUID(str(location_id)))
        except (ValueError, locations.LocationNotFound):
            log.warning("metadata names an unknown location %r", location_id)
    number = metadata.get("location_number") or metadata.get("dialed_number")
    if number:
        return await locations.find_location_by_number(conn, phone_number=str(number))
    return None


async def _default(conn: asyncpg.Connection, slug: str | None) -> Location | None:
    if not slug:
        return None
    organization = await organizations.get_organization(conn, slug=slug)
    if organization is None:
        raise NoRoute(f"DEFAULT_ORGANIZATION_SLUG={slug!r} matches no organisation")
    found = await locations.list_locations(conn, organization_id=organization.id)
    return found[0] if found else None


async def route_call(conn: asyncpg.Connection, *, caller: Caller, metadata: dict,
                     default_organization_slug: str | None) -> Route:
    location, routed_by = None, "dialed_number"
    if caller.dialed_number:
        location = await locations.find_location_by_number(conn, phone_number=caller.dialed_number)
    if location is None:
        location, routed_by = await _by_metadata(conn, metadata), "metadata"
    if location is None:
        location, routed_by = await _default(conn, default_organization_slug), "default"
    if location is None:
        raise NoRoute("no location answers this call: set DEFAULT_ORGANIZATION_SLUG, give the room "
                      "a location in its metadata, or seed one with `python -m db seed --demo`")
    organization = await organizations.get_organization(conn, id=location.organization_id)
    config = await configs.active_config(conn, location_id=location.id)
    return Route(organization=organization, location=location, config=config, routed_by=routed_by)


class RouteCache:
    """The route each way of reaching us last took, kept per process, so that a call arriving
    while Postgres is away is still answered with its location's last known configuration
    (agent.opening.open_call). Filled on every successful route, keyed by everything route_call
    reads (the number dialled, the metadata that routes, the default): only a call that would
    route the same way is answered from it, never another business's line by the default."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str | None, ...], Route] = {}

    def remember(self, route: Route, *, caller: Caller, metadata: dict,
                 default_organization_slug: str | None) -> None:
        self._routes[_key(caller, metadata, default_organization_slug)] = route

    def recall(self, *, caller: Caller, metadata: dict,
               default_organization_slug: str | None) -> Route | None:
        return self._routes.get(_key(caller, metadata, default_organization_slug))


def _key(caller: Caller, metadata: dict, slug: str | None) -> tuple[str | None, ...]:
    number = metadata.get("location_number") or metadata.get("dialed_number")
    return tuple(str(v) if v else None
                 for v in (caller.dialed_number, metadata.get("location_id"), number, slug))
