"""A phone call through the real livekit-server without the SIP bridge: the caller joins as
livekit-sip joins a phone caller, a participant of kind SIP whose token carries the `sip.*`
attributes (who called, which of our numbers, the call's id and status), and speaks over WebRTC
where the bridge would relay RTP. Everything the agent and the webhook service do with a phone
call happens for real; only the SIP leg is missing, so a transfer (SIP REFER, through the
bridge) fails, and must fail out loud.

tests/e2e/test_sip_call.py has the scenarios with livekit-sip itself (they skip without it)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from db.demo.seed import ESCALATION_NUMBER, LOS_ANGELES_NUMBER
from db.desk import locations
from tests.e2e.calls import dial, latency_summary, poll, settled_report
from tests.e2e.conftest import note
from tests.e2e.conversation import ASK_FOR_A_PERSON, CALLER_LINES, QUESTION

pytestmark = pytest.mark.e2e

CALLER_NUMBER = "+12125550143"
# What tool_result records and the scripted model turns into its apology (agent/tools/calls.py).
TRANSFER_FAILED = "the transfer did not go through"


def bridge_attributes(call_id: str) -> dict[str, str]:
    """The attributes livekit-sip sets on an inbound caller (docs.livekit.io/sip, SIP
    participant attributes), for a call to the Santa Monica number: not the default location
    (Midtown, the organisation's first), so only routing by the dialed number can find it."""
    return {"sip.phoneNumber": CALLER_NUMBER, "sip.trunkPhoneNumber": LOS_ANGELES_NUMBER,
            "sip.callID": call_id, "sip.callStatus": "active", "sip.trunkID": "ST_e2e"}


async def test_sip_caller_is_routed_by_the_dialed_number_and_a_failed_transfer_is_spoken(
        live_stack, e2e_conn):
    call_id = f"SCL_{uuid.uuid4().hex[:12]}"
    # As the bridge does: the caller's joining creates the room, the agent is dispatched to it.
    room = f"call-{CALLER_NUMBER}_{uuid.uuid4().hex[:8]}"
    lines = [CALLER_LINES[QUESTION], ASK_FOR_A_PERSON]
    caller = dial(live_stack, room, identity=f"sip_{CALLER_NUMBER}", name=f"Phone {CALLER_NUMBER}",
                  kind="sip", attributes=bridge_attributes(call_id))
    caller.rehearse(lines)
    async with asyncio.timeout(120):  # a stuck turn fails here, not at the CI job's limit
        await caller.join()
        room_sid = await caller.room_sid()
        await caller.hear_reply(within=30)  # the greeting
        await caller.say(lines[0])
        await caller.hear_reply()
        await caller.say(lines[1])
        await caller.hear_reply()  # "let me transfer you", then the apology
        # The apology is on record once it has played (LiveKit adds a reply when it is spoken).
        await poll(lambda: e2e_conn.fetchval(
            "select count(*) from voice_messages m join voice_calls c on c.id = m.call_id"
            " where c.session_id = $1 and m.role = 'assistant' and m.content like $2",
            room_sid, f"%{TRANSFER_FAILED}%"), bool, within=30, what="the apology spoken")
        await caller.hang_up()
        report = await settled_report(e2e_conn, room_sid, status="completed")
    note("sip participant call, " + latency_summary(caller.turns, report))

    # Routed by the number dialled, to Santa Monica, not the default location.
    call = report.call
    santa_monica = await locations.find_location_by_number(e2e_conn, phone_number=LOS_ANGELES_NUMBER)
    assert (call.caller_number, call.dialed_number, call.sip_call_id) == (
        CALLER_NUMBER, LOS_ANGELES_NUMBER, call_id)
    assert await e2e_conn.fetchval("select location_id from voice_calls where id = $1",
                                   call.id) == santa_monica.id
    assert call.metadata["routed_by"] == "dialed_number"

    # The phone caller, as both the agent and LiveKit's webhooks saw it: kind sip, its attributes.
    (phone,) = [p for p in report.participants if p.participant_type == "user"]
    assert (phone.participant_identity, phone.kind) == (f"sip_{CALLER_NUMBER}", "sip")
    assert phone.attributes == bridge_attributes(call_id)
    assert phone.joined_at is not None and phone.left_at is not None

    # Hanging up closed the call.
    assert (call.status, call.end_reason, call.closed_by) == ("completed", "caller_hung_up", "agent")
    assert call.outcome == "information_provided"

    # The transfer was tried for this phone caller, failed without a SIP service, was recorded as
    # failed and spoken as an apology; the call went on until the caller hung up.
    agent_events = [e for e in report.events if not e.payload.get("webhook_event_id")]
    (escalation,) = [e.payload for e in agent_events if e.event_type == "escalation"]
    assert (escalation["to"], escalation["sip"]) == (ESCALATION_NUMBER, True)
    (transfer,) = [e for e in agent_events if e.event_type == "transfer"]
    assert (transfer.payload["to"], transfer.payload["ok"], transfer.severity) == (
        ESCALATION_NUMBER, False, "error")
    # Refused for want of a SIP service to send the REFER (psrpc found no livekit-sip for the
    # call's sip.callID), not for a malformed request: the server took the transfer target.
    assert "no response from servers" in transfer.payload["error"], transfer.payload
    (result,) = [e.payload for e in agent_events
                 if e.event_type == "tool_result" and e.payload["name"] == "transfer_to_human"]
    assert result["is_error"] and TRANSFER_FAILED in result["output"]
    replies = [m.content for m in report.messages if m.role == "assistant"]
    assert replies[-1].startswith(f"I'm sorry, {TRANSFER_FAILED}")
    assert "parking" in [m.content for m in report.messages if m.role == "user"][0]
