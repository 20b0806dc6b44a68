"""Handing the caller to a human, and ending the call."""

from __future__ import annotations

import logging

from livekit.agents import RunContext, ToolError, function_tool

from agent.call import FrontDesk

log = logging.getLogger(__name__)


@function_tool
async def transfer_to_human(context: RunContext[FrontDesk], reason: str) -> str:
    """Transfer the caller to a member of staff. Use when the caller asks for a person, or when
    you cannot help. Tell the caller you are transferring them before calling this.

    Args:
        reason: why the caller wants a person, in a few words
    """
    desk = context.userdata
    number = desk.policies.get("escalation_phone")
    desk.recording.event("escalation", {"reason": reason, "to": number, "sip": desk.caller.is_sip})
    if not desk.caller.is_sip or desk.room is None:
        raise ToolError("transfers only work on phone calls: apologise, offer to take a message, "
                        "and give the caller the business's phone number instead")
    if not number:
        raise ToolError("no staff number is configured for transfers: offer to take a message")
    await context.wait_for_playout()
    try:
        # LiveKit takes a URI (tel: or sip:); a bare number is refused as invalid_argument.
        await desk.room.transfer_sip_participant(desk.caller.identity, f"tel:{number}")
    except Exception as exc:  # the SIP bridge's error comes back from the LiveKit API
        # Neither the number nor the bridge's message, which may quote it (it is in the event).
        log.warning("transfer of %s failed: %s", desk.session_id, type(exc).__name__)
        desk.recording.event("transfer", {"to": number, "ok": False, "error": str(exc)},
                             severity="error")
        raise ToolError("the transfer did not go through: apologise and offer to take a message") \
            from exc
    desk.recording.event("transfer", {"to": number, "ok": True})
    desk.achieved("transferred")
    desk.end_reason = "transferred"
    return "The caller has been transferred."


@function_tool
async def end_call(context: RunContext[FrontDesk]) -> None:
    """End the call. Say a short goodbye first; use only when the caller has nothing more."""
    desk = context.userdata
    desk.end_reason = desk.end_reason or "agent_ended_call"
    desk.recording.event("call_ended", {"by": "agent"})
    await context.wait_for_playout()
    await hang_up(context.session, desk)


async def hang_up(session, desk: FrontDesk) -> None:
    """Close the call for everyone: delete the room (which disconnects a SIP caller with a BYE);
    without a room (text mode), close the session."""
    if desk.room is not None:
        await desk.room.delete_room()
    else:
        session.shutdown()
