"""How every call is opened, by the worker, the demo and the tests alike: put on record with who
is calling, routed to the location that answers it, and given its state (agent.call.FrontDesk)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import asyncpg

from agent import metrics
from agent.call import Caller, FrontDesk
from agent.recording import CallRecording
from agent.routing import Route, RouteCache, route_call
from db import ids
from db.calls import messages
from db.desk.call_limits import CallLimits
from db.errors import Unavailable, translated
from db.privacy.redaction import Redactor

if TYPE_CHECKING:
    from livekit.agents import JobContext

    from db.recorder import Recorder

log = logging.getLogger(__name__)

# 2025-01-01T00:00:00Z: time_turn counts seconds from here.
TURN_EPOCH = 1_735_689_600


async def open_call(
    pool: asyncpg.Pool,
    recorder: Recorder,
    *,
    caller: Caller,
    session_id: str,
    room_name: str,
    metadata: Mapping[str, Any] | None = None,
    default_organization_slug: str | None = None,
    models: Mapping[str, str] | None = None,
    room: JobContext | None = None,
    call_metadata: Mapping[str, Any] | None = None,
    routes: RouteCache | None = None,
) -> tuple[FrontDesk, Route]:
    """Record the caller's numbers, route the call (by the number dialled, else the job's and
    room's `metadata`, else `default_organization_slug`), record where it went and which `models`
    answer it (stt_model, llm_model, tts_model), and build the call's state. `call_metadata` is
    stored on the call beside how it was routed. Raises agent.routing.NoRoute, after the call
    is on record, when no location answers.

    With Postgres away, the call is answered with the route `routes` last saw for it (the desk is
    then `offline`: it says it cannot book and offers a message or a transfer; its rows go to
    the recorder's spool as usual); Unavailable only when there is none. A job that is not the
    first in its room numbers its messages after the stored ones (see time_turn)."""
    # On record first: a call that cannot be routed still shows who called which number.
    recorder.start_call(session_id=session_id, room_name=room_name, caller_number=caller.number,
                        dialed_number=caller.dialed_number, sip_call_id=caller.sip_call_id)
    metadata = dict(metadata or {})
    ways = {"caller": caller, "metadata": metadata, "default_organization_slug": default_organization_slug}
    try:
        with translated():
            async with pool.acquire() as conn:
                route = await route_call(conn, **ways)
                stored = await messages.next_sequence(conn, call_id=ids.call_id(session_id))
    except Unavailable:
        route = routes.recall(**ways) if routes is not None else None
        if route is None:
            raise
        log.warning("database unavailable: call %s answered with its cached route", session_id)
        offline, first = True, time_turn()
    else:
        if routes is not None:
            routes.remember(route, **ways)
        offline, first = False, 0 if stored is None else max(stored, time_turn())
    models = dict(models or {})
    recorder.update_call(session_id=session_id, organization_id=route.organization.id,
                         location_id=route.location.id,
                         agent_config_id=route.config.id if route.config else None,
                         metadata={**(call_metadata or {}), "routed_by": route.routed_by,
                                   **({"route": "cached"} if offline else {})}, **models)
    desk = FrontDesk(pool=pool, recorder=recorder, caller=caller, room=room, session_id=session_id,
                     recording=CallRecording(recorder, session_id=session_id, first_turn=first,
                                             llm_model=models.get("llm_model"),
                                             redactor=_redactor(route)),
                     organization_id=route.organization.id, location=route.location,
                     config=route.config, offline=offline,
                     limits=CallLimits.from_policies(route.config.policies if route.config else None))
    metrics.call_opened()
    return desk, route


def _redactor(route: Route) -> Redactor | None:
    """The organisation's choice (organizations.redact_pii): redact before storing, or not."""
    if not route.organization.redact_pii:
        return None
    return Redactor(region=route.location.address.country)


def time_turn() -> int:
    """Where a job numbers its messages from when it cannot count those before it: one a second
    since TURN_EPOCH. A job that is not a call's first starts here (or after the stored ones, if
    more), so it stays clear of earlier jobs' rows even when some are still unwritten (in flight,
    or in a dead job's spool): no job records more than a message a second for its whole length,
    and no earlier job started later. The first job of a call starts at 0. Fits voice_messages'
    integer for 68 years."""
    return int(time.time()) - TURN_EPOCH
