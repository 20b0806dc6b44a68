"""What each record call of the recorder accepts, read off the repository function that will
write it, so that a bad argument fails in the caller, not later in the writer."""

from __future__ import annotations

import inspect
from typing import Any

from db.calls import calls, participants
from db.errors import InvalidInput


def _keywords(function: Any, *taken: str) -> frozenset[str]:
    return frozenset(inspect.signature(function).parameters) - {"conn", "session_id", *taken}


START_FIELDS = _keywords(calls.start_call)
FINISH_FIELDS = _keywords(calls.finish_call, "status", "ended_at", "closed_by")
PARTICIPANT_FIELDS = _keywords(participants.upsert_participant, "participant_sid", "identity")
UPDATE_FIELDS = frozenset(calls._UPDATABLE) | {"metadata"}  # update_call takes **values


def check_fields(what: str, given: dict, allowed: frozenset[str]) -> None:
    unknown = given.keys() - allowed
    if unknown:
        raise InvalidInput(f"{what} cannot set {', '.join(sorted(unknown))}")
