"""The state of one call (the session's userdata) and how a call is closed (agent.opening opens it)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import asyncpg
from livekit import rtc

from agent import metrics
from agent.recording import CallRecording
from db.calls import sip
from db.desk.call_limits import CallLimits

if TYPE_CHECKING:
    from livekit.agents import JobContext

    from db.desk.configs import AgentConfig
    from db.desk.locations import Location
    from db.recorder import Recorder

log = logging.getLogger(__name__)


def participant_kind(participant: rtc.Participant) -> str:
    """The participant's kind as stored: standard, sip, agent ..."""
    return sip.kind_name(rtc.ParticipantKind, participant.kind)


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
    def from_participant(cls, participant: rtc.Participant) -> Caller:
        attributes = dict(participant.attributes or {})
        kind = participant_kind(participant)
        numbers = sip.sip_numbers(kind, attributes)
        return cls(
            identity=participant.identity,
            sid=participant.sid,
            name=participant.name or None,
            number=numbers.caller_number,
            dialed_number=numbers.dialed_number,
            sip_call_id=numbers.sip_call_id,
            is_sip=kind == sip.SIP,
            attributes=attributes,
        )


# What a call achieved, strongest last: the outcome stored is the strongest seen.
OUTCOMES = ("no_action", "information_provided", "appointment_cancelled",
            "appointment_rescheduled", "appointment_booked", "transferred")


@dataclass
class FrontDesk:
    """Everything a tool needs, typed: the session's userdata for one call."""

    pool: asyncpg.Pool
    recorder: Recorder
    recording: CallRecording
    session_id: str
    organization_id: uuid.UUID
    location: Location
    config: AgentConfig | None
    caller: Caller = field(default_factory=Caller)
    room: JobContext | None = None  # None in text mode: there is no room
    limits: CallLimits = field(default_factory=CallLimits)  # identity tries and bookings so far
    outcome: str = "no_action"
    end_reason: str | None = None
    served: bool = False
    closed: bool = False
    ended_at: datetime | None = None
    offline: bool = False  # opened while Postgres was away, with the location's cached route

    @property
    def call_id(self) -> uuid.UUID:
        return self.recording.call_id

    @property
    def location_tz(self) -> ZoneInfo:
        return ZoneInfo(self.location.timezone)

    @property
    def policies(self) -> dict:
        return dict(self.config.policies or {}) if self.config is not None else {}

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
    status = close_status(desk, desk.end_reason or reason)
    if not desk.closed:
        desk.closed = True
        desk.ended_at = datetime.now(UTC)
        desk.end_reason = desk.end_reason or reason
        log.info("call %s closed: %s (%s)", desk.session_id, desk.end_reason, desk.outcome)
        metrics.call_closed(status)
    desk.recorder.finish_call(
        session_id=desk.session_id,
        status=status,
        ended_at=desk.ended_at,
        closed_by="agent",
        end_reason=desk.end_reason,
        outcome=desk.outcome,
        transcript="\n".join(desk.recording.transcript),
        session_report=desk.recording.redact_value(session_report),
    )
