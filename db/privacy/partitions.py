"""Retention by the month: voice_messages, call_events and webhook_events are partitioned by
month (sql/0016), and a month whose every row is past its kind's longest period (of every
organisation, and the default) is dropped whole, where deleting its rows would take minutes.

The rows of a month's partition are those of the calls created that month (webhook_events: the
events LiveKit stamped that month), while a kind's period counts from each row's own time
(created_at, received_at), which can be later: a month is dropped only when its range is past
the cutoff and none of its rows is on the near side of it. What it holds is then exactly what
retention's rule would delete row by row; what is left for the rule is the rest.

Retention also creates the months ahead (create_partitions_ahead), so that the rows of next
month have their partition before it starts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg

from db.errors import repository

log = logging.getLogger(__name__)

MONTHS_AHEAD = 3
LOCK_TIMEOUT = "2s"  # dropping waits this long for the writers' locks, then leaves it to the rows


@dataclass(frozen=True)
class Monthly:
    kind: str
    table: str
    age: str  # the column its kind's period counts from, as in retention's rule


MONTHLY: dict[str, Monthly] = {m.kind: m for m in (
    Monthly("messages", "voice_messages", "created_at"),
    Monthly("event_payloads", "call_events", "created_at"),
    Monthly("webhook_payloads", "webhook_events", "received_at"),
)}

MONTHS = r"""
select c.relname as name, to_date(substring(c.relname from '_p(\d{6})$'), 'YYYYMM') as month
  from pg_inherits i join pg_class c on c.oid = i.inhrelid
 where i.inhparent = $1::regclass and c.relname ~ '_p\d{6}$'
 order by month
"""
# The longest period of the kind: the default, or an organisation's that is longer.
LONGEST = "select greatest($1::int, max((retention ->> $2)::int)) from organizations"


def _month_end(month: date) -> datetime:
    year, index = divmod(month.year * 12 + month.month, 12)  # the month after, 0-based
    return datetime(year, index + 1, 1, tzinfo=UTC)


@repository
async def create_months_ahead(conn: asyncpg.Connection, *, months: int = MONTHS_AHEAD) -> int:
    """This month's partitions and the next `months`' (those missing); how many were made."""
    return await conn.fetchval("select create_partitions_ahead($1)", months)


async def _holds_recent(conn: asyncpg.Connection, monthly: Monthly, name: str,
                        cutoff: datetime) -> bool:
    return await conn.fetchval(
        f"select exists (select 1 from {name} where {monthly.age} >= $1)", cutoff)


async def _cutoff(conn: asyncpg.Connection, kind: str, now: datetime, default_days: int) -> datetime:
    return now - timedelta(days=await conn.fetchval(LONGEST, default_days, kind))


@repository
async def past_months(conn: asyncpg.Connection, *, kind: str, now: datetime,
                      default_days: int) -> list[str]:
    """The partitions of `kind`'s table that hold only rows past every period."""
    monthly = MONTHLY[kind]
    cutoff = await _cutoff(conn, kind, now, default_days)
    past = []
    for row in await conn.fetch(MONTHS, monthly.table):
        if _month_end(row["month"]) > cutoff:
            break
        if not await _holds_recent(conn, monthly, row["name"], cutoff):
            past.append(row["name"])
    return past


@repository
async def drop_past_months(conn: asyncpg.Connection, *, kind: str, now: datetime,
                           default_days: int) -> int:
    """Drop each partition of `kind` that past_months finds; the rows they held. A partition
    another host dropped meanwhile, or one the writers keep locked, is left alone (the rule's
    batches, or the next run, take its rows). `conn` must not be in a transaction."""
    monthly = MONTHLY[kind]
    cutoff = await _cutoff(conn, kind, now, default_days)
    dropped = 0
    # Names come from the catalog (MONTHS), never from input.
    for name in await past_months(conn, kind=kind, now=now, default_days=default_days):
        try:
            # Counted before the lock, which stops every reader and writer of the table: a row
            # arriving meanwhile (a late replay into a month past every period) goes uncounted.
            rows = await conn.fetchval(f"select count(*) from {name}")
            async with conn.transaction():
                await conn.execute(f"set local lock_timeout = '{LOCK_TIMEOUT}'")
                # The table first, as DROP locks them: a writer holds the table, then the month.
                await conn.execute(f"lock table {monthly.table}, {name} in access exclusive mode")
                if await _holds_recent(conn, monthly, name, cutoff):  # a row arrived meanwhile
                    continue
                await conn.execute(f"drop table {name}")
        except (asyncpg.UndefinedTableError, asyncpg.LockNotAvailableError) as exc:
            log.info("retention: partition %s left for now (%s)", name, type(exc).__name__)
            continue
        log.info("retention: dropped partition %s (%d rows)", name, rows)
        dropped += rows
    return dropped
