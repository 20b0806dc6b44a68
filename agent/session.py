"""One call's AgentSession: built from the providers, wired to the recording, with the call's
policies (maximum length, silence) and its closing. Shared by the worker and text mode."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

from livekit.agents import AgentSession, EndpointingOptions, TurnHandlingOptions
from livekit.agents.voice.events import CloseReason

from agent.call import FrontDesk, close_call
from agent.log_privacy import keep_personal_data_out_of_logs
from agent.metrics import ToolTimer
from agent.providers import Providers
from agent.tools.calls import hang_up

log = logging.getLogger(__name__)

# When we end a call ourselves (end_call, wrap_up, a transfer) desk.end_reason is set before the
# session closes, and close_call keeps it. USER_INITIATED is then someone else's aclose(): in
# livekit-agents 1.8.9 that is the job shutting down (it closes the primary session with aclose()
# before its shutdown callbacks run), not the agent ending the call.
CLOSE_REASONS = {
    CloseReason.PARTICIPANT_DISCONNECTED: "caller_hung_up",
    CloseReason.USER_INITIATED: "job_shutdown",
    CloseReason.ERROR: "error",
    CloseReason.JOB_SHUTDOWN: "job_shutdown",
    CloseReason.TASK_COMPLETED: "completed",
}


def build_session(desk: FrontDesk, providers: Providers, *, vad: Any = None,
                  record: bool = True) -> AgentSession:
    """`record=False` leaves the recording off (bench/turn_overhead.py measures its cost)."""
    # Here, where every way of running a call (worker, demo, console, tests) builds its session.
    keep_personal_data_out_of_logs()
    silence = desk.policies.get("silence_timeout_seconds")
    # Only what is given: LiveKit tells "not given" (use a default) from None (none at all).
    optional: dict[str, Any] = {}
    if providers.stt is not None:
        optional["stt"] = providers.stt
    if providers.tts is not None:
        optional["tts"] = providers.tts
    session = AgentSession[FrontDesk](
        userdata=desk,
        llm=providers.llm,
        vad=vad,
        user_away_timeout=float(silence) if silence else 15.0,
        turn_handling=turn_handling(desk.policies, providers.turn_detection),
        **optional,
    )
    if record:
        desk.recording.attach(session)
        session.on("close",
                   lambda ev: close_call(desk, reason=CLOSE_REASONS.get(ev.reason, "closed")))
    session.on("user_state_changed", lambda ev: _on_user_state(session, desk, ev))
    ToolTimer().attach(session)
    return session


def turn_handling(policies: dict, turn_detection: Any = None) -> TurnHandlingOptions:
    """When the caller's turn ends, from the call's policies: the end of turn waits at least
    min_endpointing_delay_ms after their last word, at most max_endpointing_delay_ms when the
    turn detector expects more (LiveKit's defaults, 500 and 3000, where not set). The reply is
    generated preemptively, from the final transcript during that wait, and used if the turn
    ends with the same words."""
    handling = TurnHandlingOptions(preemptive_generation={"enabled": True})
    if turn_detection is not None:
        handling["turn_detection"] = turn_detection
    endpointing = EndpointingOptions()
    for policy, option in (("min_endpointing_delay_ms", "min_delay"),
                           ("max_endpointing_delay_ms", "max_delay")):
        value = policies.get(policy)
        # A config written around validate_policies must not keep the call from being answered.
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            endpointing[option] = value / 1000
        elif value is not None:
            log.warning("ignoring policy %s: not a number of milliseconds", policy)
    if endpointing:
        handling["endpointing"] = endpointing
    return handling


async def greet(session: AgentSession, desk: FrontDesk, text: str) -> None:
    """Say the greeting; once it has played, the caller is served and the call is active."""
    handle = session.say(text)
    await handle.wait_for_playout()
    desk.served = True
    desk.recorder.mark_connected(session_id=desk.session_id, connected_at=datetime.now(UTC))


async def wrap_up(session: AgentSession, desk: FrontDesk, *, reason: str, text: str) -> None:
    """End the call from our side, politely: say `text`, then hang up."""
    if desk.closed or desk.end_reason:
        return
    desk.end_reason = reason
    desk.recording.event(reason, {})
    try:
        await session.say(text, allow_interruptions=False).wait_for_playout()
    except RuntimeError:  # the session is already closing
        pass
    await hang_up(session, desk)


def _on_user_state(session: AgentSession, desk: FrontDesk, event: Any) -> None:
    if event.new_state == "away" and desk.served and desk.policies.get("silence_timeout_seconds"):
        asyncio.ensure_future(wrap_up(
            session, desk, reason="silence_timeout",
            text="I haven't heard anything for a while, so I'll end the call now. Goodbye!"))


async def enforce_max_duration(session: AgentSession, desk: FrontDesk) -> None:
    """Run for the call's life: after max_call_minutes, wrap up."""
    minutes = desk.policies.get("max_call_minutes")
    if not minutes:
        return
    await asyncio.sleep(float(minutes) * 60)
    await wrap_up(session, desk, reason="max_duration",
                  text="I'm sorry, we've reached the time limit for this call. "
                       "Please call back if you need anything else. Goodbye!")


def json_safe(report: Any) -> Any:
    """LiveKit's session report as plain JSON (it holds floats, enums and timestamps)."""
    return json.loads(json.dumps(report, default=str))


def record_usage(session: AgentSession, desk: FrontDesk) -> None:
    """LiveKit's usage per model (speech seconds, characters, tokens), in the call's event log and
    on the call itself (voice_calls.model_usage), where call_costs prices it."""
    usage = [u.model_dump(mode="json") for u in session.usage.model_usage]
    desk.recording.event("usage", {"models": usage}, key="usage", occurred_at=datetime.now(UTC))
    desk.recorder.update_call(session_id=desk.session_id, model_usage=usage)
