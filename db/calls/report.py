"""Everything stored about one call, for people to read (the demo, support)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from db.calls import calls, events, messages, participants
from db.errors import repository


@dataclass(frozen=True)
class CallReport:
    call: calls.Call
    participants: list[participants.Participant]
    messages: list[messages.Message]
    events: list[events.StoredEvent]
    appointments: list[dict]


APPOINTMENTS_OF_CALL = """
select a.confirmation_code, a.status::text as status, a.starts_at, a.customer_name,
       s.name as service, p.name as provider, l.name as location, l.timezone
  from appointments a
  join services s on s.id = a.service_id
  join locations l on l.id = a.location_id
  left join providers p on p.id = a.provider_id
 where a.call_id = $1 or a.last_call_id = $1
 order by a.created_at
"""


@repository
async def call_report(conn: asyncpg.Connection, *, session_id: str) -> CallReport | None:
    call = await calls.get_call(conn, session_id=session_id)
    if call is None:
        return None
    return CallReport(
        call=call,
        participants=await participants.list_participants(conn, session_id=session_id),
        messages=await messages.list_messages(conn, session_id=session_id),
        events=await events.list_events(conn, session_id=session_id),
        appointments=[dict(r) for r in await conn.fetch(APPOINTMENTS_OF_CALL, call.id)],
    )
