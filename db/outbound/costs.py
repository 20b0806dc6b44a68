"""The cost of a call for its call.ended webhook, from the `call_costs` view (issue 14's cost
per call) when the database has it: read at delivery, not in the trigger, because the view may
land after this migration and a call's usage may be priced after it closed."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from db.errors import repository

HAS_COSTS = "select to_regclass('call_costs') is not null"
# Every column of the view but the key, whatever the view's columns turn out to be.
CALL_COST = "select to_jsonb(c) - 'call_id' from call_costs c where c.call_id = $1"


@repository
async def call_cost(conn: asyncpg.Connection, *, call_id: uuid.UUID) -> dict[str, Any] | None:
    """The call's row of call_costs as an object (None without the view or a row)."""
    if not await conn.fetchval(HAS_COSTS):
        return None
    return await conn.fetchval(CALL_COST, call_id)
