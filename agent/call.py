"""The state of one call (the session's userdata) and how a call is opened and closed."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from agent.recording import CallRecording
from db.desk.phone import normalize_phone

log = logging.getLogger(__name__)

SIP_KIND = 3  # livekit.rtc.ParticipantKind.PARTICIPANT_KIND_SIP


@dataclass(frozen=True)
class Caller:
    """Who is calling: a SIP caller's numbers from the bridge's attributes, or a WebRTC
    participant's identity."""

    identity: str | None = None
    sid: str | None = None
    name: str | None = None
    number: str | None = None
    dialed_number: str | None = None
    sip_call_id: str | None = None
    is_sip: bool = False
    attributes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_participant(cls, participant: Any) -> Caller:
        attributes = dict(participant.attributes or {})
        is_sip = participant.kind == SIP_KIND
        return cls(
            identity=participant.identity,
            sid=participant.sid,
            name=participant.name or None,
            number=normalize_phone(attributes.get("sip.phoneNumber")) if is_sip else None,
            dialed_number=normalize_phone(attributes.get("sip.trunkPhoneNumber")) if is_sip else None,
            sip_call_id=attributes.get("sip.callID") if is_sip else None,
            is_sip=is_sip,
            attributes=attributes,
        )


# What a call achieved, strongest last: the outcome stored is the strongest seen.
OUTCOMES = ("no_action", "information_provided", "appointment_cancelled",
            "appointment_rescheduled", "appointment_booked", "transferred")


@dataclass
class FrontDesk:
    """Everything a tool needs, typed: the session's userdata for one call."""

    pool: asyncpg.Pool
    recorder: Any
    recording: CallRecording
    session_id: str
    organization_id: uuid.UUID
    location: Any  # db.desk.locations.Location
    config: Any  # db.desk.configs.AgentConfig | None
    caller: Caller = field(default_factory=Caller)
    room: Any = None  # livekit.agents.JobContext, when there is a room (None in text mode)
    outcome: str = "no_action"
    end_reason: str | None = None
    served: bool = False
    closed: bool = False
    ended_at: datetime | None = None

    @property
    def call_id(self) -> uuid.UUID:
        return self.recording.call_id

    @property
    def location_tz(self) -> ZoneInfo:
        return ZoneInfo(self.location.timezone)

    @property
    def policies(self) -> dict:
        return dict(getattr(self.config, "policies", None) or {})

    def achieved(self, outcome: str) -> None:
        if OUTCOMES.index(outcome) > OUTCOMES.index(self.outcome):
            self.outcome = outcome


def close_status(desk: FrontDesk, reason: str) -> str:
    """How a call ended, from why it ended and whether the caller was served."""
    if reason in ("error", "agent_error"):
        return "failed"
    if not desk.served:
        return "abandoned"
    return "completed"


def close_call(desk: FrontDesk, *, reason: str, session_report: dict | None = None) -> None:
    """Record the end of the call: status, reason, outcome, transcript, through the recorder.
    The first call decides; a later one only adds LiveKit's session report (same ended_at)."""
    if desk.closed and session_report is None:
        return
    if not desk.closed:
        desk.closed = True
        desk.ended_at = datetime.now(UTC)
        desk.end_reason = desk.end_reason or reason
        log.info("call %s closed: %s (%s)", desk.session_id, desk.end_reason, desk.outcome)
    desk.recorder.finish_call(
        session_id=desk.session_id,
        status=close_status(desk, desk.end_reason),
        ended_at=desk.ended_at,
        closed_by="agent",
        end_reason=desk.end_reason,
        outcome=desk.outcome,
        transcript="\n".join(desk.recording.transcript),
        session_report=session_report,
    )
