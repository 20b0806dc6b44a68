"""The relay: numbers newly committed outbox events per organisation and fans them out to the
endpoints subscribed to them, in one statement.

Only the delivery service runs it, one relay at a time across every process (an advisory lock,
tried rather than waited for: a busy relay will take what is new on its next pass). The order it
numbers events in is the order it finds them committed, so a call's call.started is always
numbered before its call.ended, and the numbers of an organisation have no gaps.
"""

from __future__ import annotations

import asyncpg

from db.errors import repository

RELAY_LOCK = "select pg_try_advisory_xact_lock(hashtext('outbound_relay'))"

RELAY = """
with batch as (
    select id, organization_id, event_type,
           row_number() over (partition by organization_id order by position) as n,
           count(*) over (partition by organization_id) as per_org
      from (select * from outbound_events where sequence is null order by position limit $1) fresh
), bumped as (
    insert into outbound_sequences as s (organization_id, last_sequence)
    select distinct organization_id, per_org from batch
    on conflict (organization_id) do update set last_sequence = s.last_sequence + excluded.last_sequence
    returning organization_id, last_sequence
), numbered as (
    update outbound_events e set sequence = b.last_sequence - batch.per_org + batch.n, sequenced_at = now()
      from batch join bumped b using (organization_id)
     where e.id = batch.id
    returning e.id, e.organization_id, e.event_type
), fanned as (
    insert into outbound_deliveries (event_id, endpoint_id)
    select n.id, p.id from numbered n
      join outbound_endpoints p on p.organization_id = n.organization_id and p.enabled
       and (p.event_types is null or n.event_type = any (p.event_types))
    on conflict (event_id, endpoint_id) do nothing
    returning 1
)
select (select count(*) from numbered) as events, (select count(*) from fanned) as deliveries
"""


@repository
async def relay(conn: asyncpg.Connection, *, limit: int = 1000) -> tuple[int, int]:
    """Number up to `limit` new events and create their deliveries: (events, deliveries); (0, 0)
    when another relay holds the lock."""
    async with conn.transaction():
        if not await conn.fetchval(RELAY_LOCK):
            return 0, 0
        row = await conn.fetchrow(RELAY, limit)
    return row["events"], row["deliveries"]
