"""What each verified LiveKit webhook does to the call record.

The effects merge as the repositories the agent uses do (db.calls: calls, participants, events):
the earliest start, join and connection win, the latest leave and end win, the first writer fills
a blank, a closed call never reopens. Times come from the event (`created_at`, or the
participant's own `joined_at`), never from our clock, so the same events give the same rows in
any arrival order. What depends on several events (the verdict on a call the agent never closed,
mute state, the recording) is recomputed from stored rows each time one of them arrives.

Here each event becomes an object that says what it does (`_effect`); Postgres stores a group of
events and applies the effects of the new ones in one statement (sql/0020_webhook_record_events.sql
over sql/0017_webhook_effects.sql, through db.calls.webhook_events), where doing them one
repository call at a time cost 4-5 round trips per event and most of the service's CPU. On its
own that statement is its own transaction; inside a caller's, it commits or rolls back with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from livekit.protocol.egress import EgressStatus
from livekit.protocol.models import ParticipantInfo, TrackSource, TrackType
from livekit.protocol.webhook import WebhookEvent

from db import ids
from db.calls import sip, webhook_events
from db.desk.phone import DEFAULT_REGION, normalize_phone
from webhooks import fields
from webhooks.errors import InvalidWebhookEvent

PARTICIPANT_EVENTS = ("participant_joined", "participant_left", "participant_connection_aborted")
TRACK_EVENTS = ("track_published", "track_unpublished")
ROOM_EVENTS = ("room_started", "room_finished", *PARTICIPANT_EVENTS, *TRACK_EVENTS)
APPLIED_EVENTS = (*ROOM_EVENTS, "egress_ended")
# Times past this (the last second of year 9999, as epoch seconds) are no time at all.
_LAST_SECOND = 253_402_300_799


def validate(event: WebhookEvent) -> None:
    """Reject, before anything is written, an event whose effect would need what it lacks."""
    if event.event in ROOM_EVENTS and not event.room.sid:
        raise InvalidWebhookEvent(f"{event.event} without a room SID")
    if event.event in PARTICIPANT_EVENTS + TRACK_EVENTS and not (
        event.participant.sid and event.participant.identity
    ):
        raise InvalidWebhookEvent(f"{event.event} without a participant SID and identity")
    if event.event in TRACK_EVENTS and not event.track.sid:
        raise InvalidWebhookEvent(f"{event.event} without a track SID")
    p = event.participant
    if max(event.created_at, p.joined_at, p.joined_at_ms // 1000) > _LAST_SECOND:
        raise InvalidWebhookEvent(f"{event.event} with a time after the year 9999")


def outcome(event: WebhookEvent) -> str:
    """'applied' when the event changes the call record, 'ignored' when it is only stored."""
    if event.event == "egress_ended":
        return "applied" if event.egress_info.room_id else "ignored"
    return "applied" if event.event in APPLIED_EVENTS else "ignored"


async def record(conn: asyncpg.Connection, event: WebhookEvent, *, body: str) -> str | None:
    """Store `event` and apply its effect; None when it was stored before (a redelivery), which
    changes nothing. `body` is the event as LiveKit sent it (JSON text), kept in webhook_events."""
    return (await record_group(conn, [(event, body)]))[0]


async def record_group(
    conn: asyncpg.Connection, deliveries: list[tuple[WebhookEvent, str]]
) -> list[str | None]:
    """`record` for several (event, body as JSON text) at once, in one statement: their
    webhook_events rows, then the effects of the new ones, in order. An event given twice is
    applied once; its second copy is a duplicate (None)."""
    for event, _ in deliveries:
        validate(event)
    rows = [_row(event, body) for event, body in deliveries]
    fresh = await webhook_events.record_webhook_events(conn, events=rows)
    results: list[str | None] = []
    for event, _ in deliveries:
        if event.id in fresh:
            fresh.discard(event.id)
            results.append(outcome(event))
        else:
            results.append(None)
    return results


def _row(event: WebhookEvent, body: str) -> webhook_events.NewWebhookEvent:
    result = outcome(event)
    return webhook_events.NewWebhookEvent(
        event_id=event.id, event=event.event, body=body, created_at=fields.event_time(event),
        room_sid=event.room.sid or event.egress_info.room_id or None,
        room_name=event.room.name or event.egress_info.room_name or None,
        participant_sid=event.participant.sid or None, outcome=result,
        effect=_effect(event) if result == "applied" else None)


# --- what each event does, as the object sql/0017_webhook_effects.sql reads -----------------------


def _effect(event: WebhookEvent) -> dict[str, Any]:
    """The event's effect: its call (created if this is the first we hear of it: webhooks may
    arrive before room_started), the participant it merges, the entry it adds to the call's log,
    and the steps its kind takes (route, connect, recording; room_finished closes an open call).
    Times come from the event, never from our clock."""
    at = fields.event_time(event)
    if event.event == "egress_ended":
        egress = event.egress_info
        effect = _call(event, egress.room_id, egress.room_name, at)
        return _given({**effect, "recording": True, "log": _log(effect, event, {
            "egress_id": egress.egress_id, "status": fields.enum_name(EgressStatus, egress.status),
            "location": fields.recording_location(egress), "error": egress.error or None,
        })})
    p = event.participant
    kind = fields.kind(p)
    effect = _call(event, event.room.sid, event.room.name, at)
    numbers = sip.sip_numbers(kind, p.attributes)
    effect.update(numbers.given())  # a SIP participant brings the caller's and the dialed number
    if event.event in PARTICIPANT_EVENTS:
        joined = event.event == "participant_joined"
        effect["participant"] = _participant(
            p, kind, joined_at=fields.joined_at(p) or (at if joined else None),
            left_at=None if joined else at,
            # The attributes at join describe the participant; later events carry attributes that
            # changed since (agent state ...) and would make the merge depend on arrival order.
            attributes=dict(p.attributes) if joined else None,
        )
        if joined and kind == sip.SIP:
            # Routed on the SIP participant's join only: one lookup per call, the same in any order.
            effect["route_number"] = _route_number(numbers.dialed_number)
        # The agent's arrival connects the caller to the front desk. Only the agent itself marks
        # the call active, once it has greeted: the webhook fills connected_at, nothing more.
        effect["connect"] = joined and kind == sip.AGENT
    elif event.event in TRACK_EVENTS:
        track = event.track
        effect["log"] = _log(effect, event, {
            "participant_sid": p.sid, "identity": p.identity, "track_sid": track.sid,
            "track_type": fields.enum_name(TrackType, track.type),
            "source": fields.enum_name(TrackSource, track.source),
            "muted": track.muted, "mime_type": track.mime_type or None,
        })
        # Mute state: the latest audio track event's, whatever order they came in.
        effect["participant"] = _participant(p, kind, joined_at=fields.joined_at(p), left_at=None,
                                             attributes=None)
    return _given(effect)


def _call(event: WebhookEvent, session_id: str, room_name: str, at: datetime) -> dict[str, Any]:
    return {"kind": event.event, "call_id": ids.call_id(session_id), "session_id": session_id,
            "room_name": room_name or None, "at": at}


def _participant(p: ParticipantInfo, kind: str, *, joined_at: datetime | None,
                 left_at: datetime | None, attributes: dict | None) -> dict[str, Any]:
    return {"sid": p.sid, "identity": p.identity, "name": p.name or None,
            "type": "agent" if kind == sip.AGENT else "user", "kind": kind,
            "attributes": attributes, "joined_at": joined_at, "left_at": left_at}


def _log(effect: dict[str, Any], event: WebhookEvent, payload: dict) -> dict[str, Any]:
    """The event in the call's own log; its id derives from the webhook's, so it is written once."""
    return {"id": ids.event_id(effect["call_id"], event.id),
            "payload": {"webhook_event_id": event.id, **payload}}


def _route_number(dialed_number: str | None) -> str | None:
    """The number as locations store it; None when it is not a phone number (a PBX extension)."""
    return normalize_phone(dialed_number, region=DEFAULT_REGION) if dialed_number else None


def _given(effect: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in effect.items() if value is not None and value is not False}
