"""webhooks/events.py reads a body into the WebhookEvent that protobuf's own JSON parser would
give, as far as the service reads it: the same effects, rows and outcome, for every way proto3
JSON may spell the event (field names, int64 and enums), with the fields it skips unread."""

from __future__ import annotations

import json

import pytest
from google.protobuf.json_format import MessageToDict, Parse
from hypothesis import given, settings
from hypothesis import strategies as st
from livekit.protocol.models import (
    ParticipantInfo,
    ParticipantPermission,
    TrackInfo,
    TrackSource,
    TrackType,
)
from livekit.protocol.webhook import WebhookEvent

from tests.livekit_webhooks import T0, egress_ended, realistic_call
from webhooks import effects, fields
from webhooks.errors import InvalidWebhookEvent
from webhooks.events import parse_event


def as_parse_reads(body: str) -> WebhookEvent:
    return Parse(body, WebhookEvent(), ignore_unknown_fields=True)


def what_the_service_reads(event: WebhookEvent) -> dict:
    """Everything webhooks/app.py and webhooks/effects.py take from an event."""
    seen = {"id": event.id, "event": event.event, "room": (event.room.sid, event.room.name),
            "participant_sid": event.participant.sid,
            "egress_room": (event.egress_info.room_id, event.egress_info.room_name)}
    try:
        effects.validate(event)
    except InvalidWebhookEvent as exc:
        return {**seen, "invalid": str(exc)}
    seen["at"] = fields.event_time(event)
    seen["outcome"] = effects.outcome(event)
    if seen["outcome"] == "applied":
        seen["effect"] = effects._effect(event)
    return seen


def spellings(event: WebhookEvent) -> list[str]:
    """The event as proto3 JSON may spell it: camelCase or proto names, enums by name or number."""
    return [json.dumps(MessageToDict(event, preserving_proto_field_name=names,
                                     use_integers_for_enums=numbers))
            for names in (False, True) for numbers in (False, True)]


def rich(event: WebhookEvent) -> WebhookEvent:
    """A participant event with what a real server adds: fields the service never reads."""
    event.room.empty_timeout, event.room.creation_time, event.room.num_participants = 300, T0, 2
    event.room.enabled_codecs.add(mime="audio/opus")
    event.participant.permission.CopyFrom(ParticipantPermission(can_publish=True, can_subscribe=True))
    event.participant.region, event.participant.version = "local", 7
    event.participant.tracks.add(sid="TR_other", type=TrackType.VIDEO, source=TrackSource.CAMERA)
    event.participant.joined_at_ms = event.participant.joined_at * 1000 + 250
    return event


def every_kind_of_event() -> list[WebhookEvent]:
    call = realistic_call("RM_events")
    return [*call.values(), rich(call["caller_joined"]), rich(call["track_published"]),
            egress_ended("RM_events", 70, "s3://bucket/call.ogg"),
            WebhookEvent(event="ingress_started", id="EV_ingress", created_at=T0)]


@pytest.mark.parametrize("event", every_kind_of_event(), ids=lambda e: e.event)
def test_every_spelling_reads_as_protobuf_parses_it(event):
    for body in spellings(event):
        assert what_the_service_reads(parse_event(body)) == what_the_service_reads(as_parse_reads(body))


def test_null_and_unknown_enum_names_and_numbers_as_numbers_read_as_parse_reads_them():
    body = json.loads(spellings(realistic_call("RM_odd")["track_published"])[0])
    body["participant"]["kind"] = "KIND_FROM_A_NEWER_SERVER"
    body["participant"]["name"] = None
    body["createdAt"] = int(body["createdAt"])  # int64 as a JSON number
    body["track"]["source"] = 99  # an enum number this protocol version does not name
    text = json.dumps(body)
    read = parse_event(text)
    assert what_the_service_reads(read) == what_the_service_reads(as_parse_reads(text))
    assert read.participant.kind == ParticipantInfo.Kind.STANDARD and read.track.source == 99


@pytest.mark.parametrize("body", [
    "[]", "not json", '"event"', '{"id": 7, "event": "room_started"}', '{"createdAt": "soon"}',
    '{"createdAt": true}', '{"createdAt": 1.5}', '{"room": "RM_1"}', '{"room": {"sid": ["RM_1"]}}',
    '{"participant": {"kind": {"SIP": 1}}}', '{"participant": {"attributes": {"a": 1}}}',
    '{"track": {"muted": "yes"}}', '{"createdAt": "99999999999999999999999"}',
    '{"egressInfo": {"status": []}}', "[" * 100_000,
])
def test_a_body_that_is_not_an_event_is_refused_as_parse_refuses_it(body):
    with pytest.raises(InvalidWebhookEvent, match="body is not a WebhookEvent"):
        parse_event(body)
    assert refused_before(body)


def refused_before(body: str) -> bool:
    """Whether the service refused it with Parse: a parse error, or no id and event name."""
    try:
        event = as_parse_reads(body)
    except Exception:  # ParseError, RecursionError ...
        return True
    return not (event.id and event.event)


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(["participant_joined", "participant_left", "track_published", "track_unpublished"]),
    sid=names, identity=names, display=names, kind=st.sampled_from(list(ParticipantInfo.Kind.values())),
    joined=st.integers(0, 2**38), joined_ms=st.integers(0, 2**48), created=st.integers(1, 2**38),
    attributes=st.dictionaries(names, names, max_size=4), muted=st.booleans(),
    track_type=st.sampled_from(list(TrackType.values())), source=st.sampled_from(list(TrackSource.values())),
)
def test_generated_participant_and_track_events_read_as_parse_reads_them(
    name, sid, identity, display, kind, joined, joined_ms, created, attributes, muted, track_type, source,
):
    event = WebhookEvent(event=name, id=f"EV_{sid}", created_at=created)
    event.room.sid, event.room.name = f"RM_{sid}", display
    event.participant.CopyFrom(ParticipantInfo(
        sid=sid, identity=identity, name=display, kind=kind, joined_at=joined, joined_at_ms=joined_ms,
        attributes=attributes))
    event.track.CopyFrom(TrackInfo(sid=f"TR_{sid}", type=track_type, source=source, muted=muted))
    for body in spellings(event):
        assert what_the_service_reads(parse_event(body)) == what_the_service_reads(as_parse_reads(body))
