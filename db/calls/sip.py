"""What LiveKit tells us about a call's participants: each one's kind, as call_participants.kind
stores it, and the numbers LiveKit's SIP bridge (livekit-sip) sets on a phone caller. The agent
reads live participants (livekit.rtc), the webhook service ParticipantInfo; both read them here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from db.desk.phone import normalize_phone

# The attributes livekit-sip sets on the participant it bridges in.
CALLER_NUMBER = "sip.phoneNumber"  # who called
DIALED_NUMBER = "sip.trunkPhoneNumber"  # which of our numbers they dialled
CALL_ID = "sip.callID"

SIP = "sip"
AGENT = "agent"


def kind_name(kinds: Any, number: int) -> str:
    """The kind in lower case (standard, ingress, egress, sip, agent, connector ...) from LiveKit's
    protobuf enum: livekit.rtc.ParticipantKind in the agent ('PARTICIPANT_KIND_SIP'),
    ParticipantInfo.Kind in the server's messages ('SIP'). The two number the kinds after agent
    differently, so each side passes its own enum. A kind newer than ours is 'unknown_<number>'."""
    try:
        name = kinds.Name(number)
    except ValueError:
        return f"unknown_{number}"
    return name.removeprefix("PARTICIPANT_KIND_").lower()


@dataclass(frozen=True)
class SipNumbers:
    """A phone caller's numbers, named as voice_calls' columns."""

    caller_number: str | None = None
    dialed_number: str | None = None
    sip_call_id: str | None = None

    def given(self) -> dict[str, str]:
        return {column: value for column, value in vars(self).items() if value}


def sip_numbers(kind: str, attributes: Mapping[str, str]) -> SipNumbers:
    """The numbers of a participant of `kind` (as kind_name names it): only a SIP participant's
    attributes say who called and which number they dialled. Numbers come back as E.164, or None
    when the trunk sent something that is not one ('anonymous', a PBX extension); the stored
    attributes keep what it sent."""
    if kind != SIP:
        return SipNumbers()
    return SipNumbers(caller_number=normalize_phone(attributes.get(CALLER_NUMBER)),
                      dialed_number=normalize_phone(attributes.get(DIALED_NUMBER)),
                      sip_call_id=attributes.get(CALL_ID) or None)
