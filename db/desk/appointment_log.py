"""The appointments of an organisation as a list to browse (the admin API): filtered by location,
status and time, paged by (starts_at, id)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from db.desk.appointments import _SELECT, Appointment
from db.errors import repository

LIST_APPOINTMENTS = _SELECT.format(source="appointments") + """
 where a.organization_id = $1
   and ($2::uuid is null or a.location_id = $2)
   and ($3::text is null or a.status::text = $3)
   and ($4::timestamptz is null or a.starts_at >= $4)
   and ($5::timestamptz is null or a.starts_at < $5)
   and ($6::timestamptz is null or (a.starts_at, a.id) > ($6, $7))
 order by a.starts_at, a.id
 limit $8
"""


@repository
async def list_appointments(
    conn: asyncpg.Connection,
    *,
    organization_id: uuid.UUID,
    location_id: uuid.UUID | None = None,
    status: str | None = None,
    starts_from: datetime | None = None,
    starts_before: datetime | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
) -> list[Appointment]:
    """Appointments by start time, after the row `after` (starts_at, id) when given."""
    after_at, after_id = after or (None, None)
    records = await conn.fetch(LIST_APPOINTMENTS, organization_id, location_id, status, starts_from,
                               starts_before, after_at, after_id, limit)
    return [Appointment.from_record(r) for r in records]
