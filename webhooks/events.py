"""A verified body read into a WebhookEvent: only the fields the service uses, in C-speed steps.

protobuf's JSON parser (`json_format.Parse`) is pure Python even over the upb backend: it walks
every field of the body, and took ~40 us on a minimal participant event, more than the token's
verification (bench/webhooks.py). The service reads a dozen fields (webhooks/effects.py,
webhooks/fields.py), so here the body is decoded by the json module and just those fields are
converted, with protobuf's JSON mapping (proto3 JSON, as livekit-server's protojson writes it):
either name (`createdAt` or `created_at`), int64 as a string or a number, enums by name or number
(a name this protocol version does not know is skipped, as `ignore_unknown_fields` does), null
as absent. Other fields are skipped unread, as unknown ones are by Parse(ignore_unknown_fields).
`egress_info` (rare, and read in depth by fields.recording_location) goes through protobuf's own
parser. The message built is the one Parse would build, projected onto those fields
(tests/test_webhooks_events.py compares the effects both give).
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.json_format import ParseDict, ParseError
from google.protobuf.message_factory import GetMessageClass
from livekit.protocol.webhook import WebhookEvent

from webhooks.errors import InvalidWebhookEvent

# The fields read, by message type; a message field absent here is converted by ParseDict.
READ_FIELDS: dict[str, tuple[str, ...]] = {
    "livekit.WebhookEvent": ("event", "id", "created_at", "room", "participant", "track", "egress_info"),
    "livekit.Room": ("sid", "name"),
    "livekit.ParticipantInfo": ("sid", "identity", "name", "kind", "attributes", "joined_at", "joined_at_ms"),
    "livekit.TrackInfo": ("sid", "type", "source", "muted", "mime_type"),
}

_INTEGERS = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_INT32,
             FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SINT32}


def parse_event(text: str | bytes) -> WebhookEvent:
    """The event in a verified body; InvalidWebhookEvent when the body is not a WebhookEvent."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise InvalidWebhookEvent(f"body is not a WebhookEvent: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidWebhookEvent("body is not a WebhookEvent: not a JSON object")
    try:
        return WebhookEvent(**_EVENT.read(data))
    except (ValueError, TypeError, ParseError, RecursionError) as exc:
        raise InvalidWebhookEvent(f"body is not a WebhookEvent: {exc}") from None


class _Reader:
    """Reads one message type's READ_FIELDS out of a decoded JSON object, as constructor kwargs."""

    def __init__(self, descriptor: Descriptor) -> None:
        self._fields: dict[str, tuple[str, Any]] = {}
        for name in READ_FIELDS[descriptor.full_name]:
            field = descriptor.fields_by_name[name]
            convert = _converter(field)
            self._fields[field.json_name] = self._fields[field.name] = (name, convert)

    def read(self, data: dict) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in data.items():
            spec = self._fields.get(key)
            if spec is None or value is None:
                continue
            name, convert = spec
            value = convert(value)
            if value is not _SKIP:
                found[name] = value
        return found


_SKIP = object()


def _converter(field: FieldDescriptor):
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        message = field.message_type
        if message.GetOptions().map_entry:
            return _string_map
        if message.full_name in READ_FIELDS:
            return _message(_Reader(message))
        whole = GetMessageClass(message)
        return lambda value: ParseDict(value, whole(), ignore_unknown_fields=True)
    if field.is_repeated:
        raise TypeError(f"{field.full_name}: repeated fields are not read here")
    if kind == FieldDescriptor.TYPE_STRING:
        return _string
    if kind == FieldDescriptor.TYPE_BOOL:
        return _bool
    if kind in _INTEGERS:
        return _integer
    if kind == FieldDescriptor.TYPE_ENUM:
        return _enum(field.enum_type.values_by_name)
    raise TypeError(f"{field.full_name}: no conversion for its type")


def _message(reader: _Reader):
    def convert(value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueError("a message is not a JSON object")
        return reader.read(value)
    return convert


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected a boolean, got {type(value).__name__}")
    return value


def _integer(value: object) -> int:
    # proto3 JSON: int64 as a string ("1760000000") or a number, never a boolean.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip() == value and value:
        return int(value)
    raise ValueError(f"expected an integer, got {value!r}"[:80])


def _enum(values_by_name):
    def convert(value: object) -> int | object:
        if isinstance(value, str):
            number = values_by_name.get(value)
            return _SKIP if number is None else number.number
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError(f"expected an enum name or number, got {type(value).__name__}")
    return convert


def _string_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError("expected a map of strings")
    return value


_EVENT = _Reader(WebhookEvent.DESCRIPTOR)
