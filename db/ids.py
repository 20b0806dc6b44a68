"""Ids every writer derives the same way, so a retried or replayed write is a no-op."""

from __future__ import annotations

import functools
import uuid

# Fixed forever: changing it would give existing calls new ids.
_NAMESPACE = uuid.UUID("6f1b7c1e-3c52-4c43-9d0e-5a0f4f2b8e11")


# Each of a call's rows and webhooks asks again for its call's id (a SHA-1 each time).
@functools.lru_cache(maxsize=4096)
def call_id(session_id: str) -> uuid.UUID:
    """The voice_calls.id of a LiveKit room session (room SID)."""
    return uuid.uuid5(_NAMESPACE, f"call:{session_id}")


def message_id(call: uuid.UUID, item_id: str) -> uuid.UUID:
    """The voice_messages.id of a LiveKit chat item within a call."""
    return uuid.uuid5(call, f"message:{item_id}")


def event_id(call: uuid.UUID, key: str) -> uuid.UUID:
    """A call_events.id from a key unique within the call (e.g. a tool call id)."""
    return uuid.uuid5(call, f"event:{key}")
