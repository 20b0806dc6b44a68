"""outbound_deliveries and outbound_attempts: claiming what is due, recording each attempt, and
replaying events.

A claim is a lease (locked_until), not a transaction held open over HTTP: a delivery service
that dies mid-request leaves the delivery to be claimed again once the lease runs out, so it
is delivered at least once. Several services share the work with SKIP LOCKED.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from db.errors import InvalidInput, repository
from db.outbound.endpoints import signing_secrets


@dataclass(frozen=True)
class Claimed:
    """One delivery to attempt, with what its request needs."""
    delivery_id: uuid.UUID
    lease: uuid.UUID
    attempts: int
    endpoint_id: uuid.UUID
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    event_id: uuid.UUID
    organization_id: uuid.UUID
    event_type: str
    sequence: int
    occurred_at: datetime
    payload: dict[str, Any]

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> Claimed:
        return cls(**{f.name: record[f.name] for f in fields(cls)})

    def signing_secrets(self, now: datetime) -> list[str]:
        return signing_secrets(self.secret, self.previous_secret, self.previous_secret_expires_at, now)


# At most $4 per endpoint per claim, none for the endpoints already at their limit ($3).
CLAIM = """
update outbound_deliveries d set locked_until = now() + $2::interval, lease = gen_random_uuid()
  from (select id from (
            select id, row_number() over (partition by endpoint_id order by next_attempt_at) as k
              from (select id, endpoint_id, next_attempt_at from outbound_deliveries
                     where status = 'pending' and next_attempt_at <= now()
                       and (locked_until is null or locked_until < now())
                       and endpoint_id <> all ($3::uuid[])
                     order by next_attempt_at
                     limit $1 * 4
                     for update skip locked) locked) ranked
         where k <= $4
         limit $1) due,
       outbound_events e, outbound_endpoints p
 where d.id = due.id and e.id = d.event_id and p.id = d.endpoint_id and p.enabled
returning d.id as delivery_id, d.lease, d.attempts, p.id as endpoint_id, p.url, p.secret, p.previous_secret,
          p.previous_secret_expires_at, e.id as event_id, e.organization_id, e.event_type,
          e.sequence, e.occurred_at, e.payload
"""


@repository
async def claim_due(
    conn: asyncpg.Connection, *, limit: int, lease: timedelta, busy_endpoints: list[uuid.UUID],
    per_endpoint: int,
) -> list[Claimed]:
    """Lease up to `limit` due deliveries, at most `per_endpoint` to one endpoint and none to
    the `busy_endpoints`; oldest due first."""
    records = await conn.fetch(CLAIM, limit, lease, busy_endpoints, per_endpoint)
    return [Claimed.from_record(r) for r in records]


RECORD_ATTEMPT = """
with attempt as (
    insert into outbound_attempts (delivery_id, attempt, response_status, latency_ms, error)
    values ($1, $2, $3, $4, $5)
)
update outbound_deliveries set attempts = $2, status = $6::outbound_delivery_status,
       next_attempt_at = coalesce(now() + $7::interval, next_attempt_at), locked_until = null,
       lease = null, last_attempt_at = now(),
       delivered_at = case when $6 = 'delivered' then now() end
 where id = $1 and lease = $8
"""


@repository
async def record_attempt(
    conn: asyncpg.Connection, *, delivery_id: uuid.UUID, lease: uuid.UUID, attempt: int, status: str,
    response_status: int | None, latency_ms: float, error: str | None,
    retry_in: timedelta | None = None,
) -> None:
    """Store one attempt and what follows: 'delivered', 'pending' again `retry_in` from now
    (the database's clock, the one claims compare with), or 'dead'. The attempt is always
    stored; its outcome only while `lease` (from the claim) still holds: a replay or a new
    claim since then wins."""
    if status not in ("delivered", "pending", "dead"):
        raise InvalidInput(f"a delivery is delivered, pending or dead, not {status!r}")
    await conn.execute(RECORD_ATTEMPT, delivery_id, attempt, response_status, latency_ms,
                       error, status, retry_in, lease)


# Fresh deliveries for endpoints subscribed now that lack one; existing ones back to pending.
REPLAY = """
insert into outbound_deliveries as d (event_id, endpoint_id)
select e.id, p.id from outbound_events e
  join outbound_endpoints p on p.organization_id = e.organization_id and p.enabled
   and (p.event_types is null or e.event_type = any (p.event_types))
 where e.organization_id = $1 and e.sequence is not null
   and ($2::uuid is null or e.id = $2)
   and ($3::timestamptz is null or e.occurred_at >= $3)
   and ($4::timestamptz is null or e.occurred_at < $4)
   and ($5::uuid is null or p.id = $5)
on conflict (event_id, endpoint_id) do update
   set status = 'pending', attempts = 0, next_attempt_at = now(), locked_until = null, lease = null
"""


@repository
async def replay(
    conn: asyncpg.Connection, *, organization_id: uuid.UUID, event_id: uuid.UUID | None = None,
    since: datetime | None = None, until: datetime | None = None, endpoint_id: uuid.UUID | None = None,
) -> int:
    """Send an organisation's event (`event_id`) or events in [since, until) again, to every
    enabled endpoint subscribed to them (or `endpoint_id`); how many deliveries were queued."""
    if event_id is None and since is None:
        raise InvalidInput("replay needs an event id or a start time")
    result = await conn.execute(REPLAY, organization_id, event_id, since, until, endpoint_id)
    return int(result.split()[-1])


COUNTS = """
select status::text, count(*) from outbound_deliveries group by status
"""


@repository
async def delivery_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """How many deliveries are pending, delivered and dead (for /metrics)."""
    return {r["status"]: r["count"] for r in await conn.fetch(COUNTS)}
