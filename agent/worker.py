"""The LiveKit worker: one AgentServer per process tree, one job per call."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from livekit.agents import AgentServer, JobContext, JobProcess

from agent.call import Caller, FrontDesk, close_call, participant_kind
from agent.metrics import serve_metrics_when_started
from agent.opening import open_call
from agent.receptionist import Receptionist, greeting
from agent.resources import Resources
from agent.routing import parse_metadata
from agent.session import build_session, enforce_max_duration, greet, json_safe, record_usage
from agent.settings import Settings

log = logging.getLogger(__name__)


def record_participant(recorder: Any, session_id: str, participant: Any, *,
                       joined: bool, participant_type: str = "user") -> None:
    now = datetime.now(UTC)
    recorder.participant(
        session_id=session_id, participant_sid=participant.sid, identity=participant.identity,
        name=participant.name or None, participant_type=participant_type,
        kind=participant_kind(participant), attributes=dict(participant.attributes or {}),
        joined_at=now if joined else None, left_at=None if joined else now,
    )


def watch_participants(ctx: JobContext, recorder: Any, session_id: str) -> None:
    room = ctx.room
    room.on("participant_connected",
            lambda p: record_participant(recorder, session_id, p, joined=True))
    room.on("participant_disconnected",
            lambda p: record_participant(recorder, session_id, p, joined=False))


async def entrypoint(ctx: JobContext) -> None:
    resources: Resources = await ctx.proc.userdata["resources"].ready()
    settings, recorder = resources.settings, resources.recorder
    await ctx.connect()
    session_id = ctx.job.room.sid or (
        f"console-{ctx.job.id}" if ctx.is_fake_job() else await ctx.room.sid)
    # The call is on record before anyone speaks, even if everything after this fails.
    recorder.start_call(session_id=session_id, room_name=ctx.room.name,
                        metadata={"job_id": ctx.job.id, "agent_name": ctx.job.agent_name})
    local = ctx.room.local_participant
    recorder.participant(session_id=session_id, participant_sid=local.sid, identity=local.identity,
                         participant_type="agent", kind="agent", joined_at=datetime.now(UTC))
    watch_participants(ctx, recorder, session_id)

    caller = Caller.from_participant(await ctx.wait_for_participant())
    record_participant(recorder, session_id, _participant(ctx, caller.identity), joined=True)
    providers = resources.factory(settings)
    desk, route = await open_call(
        resources.pool, recorder, caller=caller, session_id=session_id, room_name=ctx.room.name,
        metadata=parse_metadata(ctx.job.metadata, ctx.room.metadata),
        default_organization_slug=settings.default_organization_slug, models=providers.models,
        room=ctx, routes=resources.routes)
    session = build_session(desk, providers, vad=resources.vad)
    ctx.add_shutdown_callback(lambda: _finish(ctx, session, desk, resources))
    await session.start(agent=Receptionist(desk, business=route.organization.name), room=ctx.room)
    limit = asyncio.create_task(enforce_max_duration(session, desk))
    session.on("close", lambda _: limit.cancel())
    await greet(session, desk, greeting(desk, business=route.organization.name))


def _participant(ctx: JobContext, identity: str | None) -> Any:
    return ctx.room.remote_participants[identity]


async def _finish(ctx: JobContext, session: Any, desk: FrontDesk, resources: Resources) -> None:
    """At job shutdown, whatever ended it: close the call (if the session did not), add LiveKit's
    session report, and wait for the recorder to write this call's rows."""
    close_call(desk, reason="job_shutdown")
    record_usage(session, desk)
    try:
        report = json_safe(ctx.make_session_report(session).to_dict())
    except Exception:  # the report is a nicety: the call is closed without it
        log.exception("could not build the session report of %s", desk.session_id)
        report = None
    if report is not None:
        close_call(desk, reason="job_shutdown", session_report=report)
    written = await resources.recorder.flush(resources.settings.flush_deadline_seconds,
                                             session_id=desk.session_id)
    if not written:
        log.warning("call %s: rows spooled, to be written when Postgres answers", desk.session_id)


def prewarm(proc: JobProcess) -> None:
    settings = Settings()
    proc.userdata["resources"] = Resources.prepare(settings)


def build_server(settings: Settings) -> AgentServer:
    server = AgentServer(ws_url=settings.livekit_url, api_key=settings.livekit_api_key,
                         api_secret=settings.livekit_api_secret, setup_fnc=prewarm,
                         load_threshold=settings.load_threshold, host=settings.health_host,
                         port=settings.health_port,
                         prometheus_multiproc_dir=str(settings.prometheus_dir)
                         if settings.prometheus_port is not None else None)
    if settings.prometheus_port is not None:
        serve_metrics_when_started(server, settings.health_host or "0.0.0.0", settings.prometheus_port)
    server.rtc_session(entrypoint, agent_name=settings.agent_name)
    return server
