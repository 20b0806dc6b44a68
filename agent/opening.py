"""How every call is opened, by the worker, the demo and the tests alike: put on record with who
is calling, routed to the location that answers it, and given its state (agent.call.FrontDesk)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import asyncpg

from agent.call import Caller, FrontDesk
from agent.recording import CallRecording
from agent.routing import Route, route_call
from db.desk.call_limits import CallLimits

if TYPE_CHECKING:
    from livekit.agents import JobContext

    from db.recorder import Recorder


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
) -> tuple[FrontDesk, Route]:
    """Record the caller's numbers, route the call (by the number dialled, else the job's and
    room's `metadata`, else `default_organization_slug`), record where it went and which `models`
    answer it (stt_model, llm_model, tts_model), and build the call's state. `call_metadata` is
    stored on the call beside how it was routed. Raises agent.routing.NoRoute, after the call
    is on record, when no location answers."""
    # On record first: a call that cannot be routed still shows who called which number.
    recorder.start_call(session_id=session_id, room_name=room_name, caller_number=caller.number,
                        dialed_number=caller.dialed_number, sip_call_id=caller.sip_call_id)
    async with pool.acquire() as conn:
        route = await route_call(conn, caller=caller, metadata=dict(metadata or {}),
                                 default_organization_slug=default_organization_slug)
    models = dict(models or {})
    recorder.update_call(session_id=session_id, organization_id=route.organization.id,
                         location_id=route.location.id,
                         agent_config_id=route.config.id if route.config else None,
                         metadata={**(call_metadata or {}), "routed_by": route.routed_by}, **models)
    desk = FrontDesk(pool=pool, recorder=recorder, caller=caller, room=room, session_id=session_id,
                     recording=CallRecording(recorder, session_id=session_id,
                                             llm_model=models.get("llm_model")),
                     organization_id=route.organization.id, location=route.location,
                     config=route.config,
                     limits=CallLimits.from_policies(route.config.policies if route.config else None))
    return desk, route
