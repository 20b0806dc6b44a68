"""The effects of LiveKit webhooks on the call record, a group of them in one statement.

The webhook service (webhooks/effects.py) says what each event does; webhook_apply_effects
(sql/0017_webhook_effects.sql) does it, with the merge rules of calls, participants, events and
lifecycle here, in a round trip per group instead of 4-5 per event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from db.calls import lifecycle
from db.errors import repository

# Passed as text: the same statement whatever json codecs the connection has.
APPLY_WEBHOOK_EFFECTS = "select webhook_apply_effects($1::text::jsonb, $2::text[])"


@repository
async def apply_webhook_effects(conn: asyncpg.Connection, *, effects: Sequence[dict[str, Any]]) -> None:
    """Apply the effects in order (objects as sql/0017_webhook_effects.sql describes them; times
    and ids may be datetimes and UUIDs). The caller owns the transaction."""
    if effects:
        await conn.execute(APPLY_WEBHOOK_EFFECTS, json.dumps(list(effects), default=str),
                           list(lifecycle.VERDICT_REASONS))
