"""What we read out of LiveKit's protobuf messages, and how we name it in our rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from livekit.protocol.egress import EgressInfo
from livekit.protocol.models import ParticipantInfo
from livekit.protocol.webhook import WebhookEvent

from db.calls import sip


def event_time(event: WebhookEvent) -> datetime:
    """When LiveKit's server created the event (whole seconds). livekit-server always sets it;
    for a hand-made event without one, the time we received it is the best we have."""
    if event.created_at:
        return datetime.fromtimestamp(event.created_at, UTC)
    return datetime.now(UTC)


def joined_at(p: ParticipantInfo) -> datetime | None:
    """When the participant joined, as LiveKit's server recorded it. Every event about the
    participant carries it, so a lost or late participant_joined does not lose the time."""
    if p.joined_at_ms:
        return datetime.fromtimestamp(p.joined_at_ms / 1000, UTC)
    if p.joined_at:
        return datetime.fromtimestamp(p.joined_at, UTC)
    return None


def kind(p: ParticipantInfo) -> str:
    """The participant's kind as stored: standard, ingress, egress, sip, agent ..."""
    return sip.kind_name(ParticipantInfo.Kind, p.kind)


def enum_name(enum: Any, number: int) -> str:
    # A newer server may send a value this protocol version does not know.
    try:
        return enum.Name(number)
    except ValueError:
        return f"UNKNOWN_{number}"


def recording_location(egress: EgressInfo) -> str | None:
    """Where the recording went: the first file, else the segments' playlist (the deprecated
    single-result fields of older servers included)."""
    for result in egress.file_results:
        if result.location:
            return result.location
    if egress.HasField("file") and egress.file.location:
        return egress.file.location
    for result in egress.segment_results:
        if result.playlist_location:
            return result.playlist_location
    if egress.HasField("segments") and egress.segments.playlist_location:
        return egress.segments.playlist_location
    return None
