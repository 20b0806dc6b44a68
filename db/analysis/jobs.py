"""analysis_jobs: the queue of calls waiting for analysis.

Jobs are queued by a trigger when a call closes (sql/0011) or by `enqueue` for a re-analysis.
Workers on any host `claim` a batch of due jobs with FOR UPDATE SKIP LOCKED and a lease: two
workers never take the same job, and the jobs of a worker that died are claimed again once its
lease ends. A failed attempt is retried later (`retry`, with backoff chosen by the caller); the
last allowed attempt ends the job as failed with its error, kept for a person to read.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from db import errors
from db.calls.calls import CALL_NOT_FOUND
from db.errors import InvalidInput, repository

CONSTRAINTS = errors.constraints({
    "analysis_jobs_call_id_fkey": CALL_NOT_FOUND,
    "analysis_jobs_status_check": (
        InvalidInput, "a job's status is one of queued, running, done, failed"),
})

# Errors are kept to read, not to replay: a bounded piece of the message is enough.
MAX_ERROR_CHARS = 1000


@dataclass(frozen=True)
class Job:
    id: int
    call_id: uuid.UUID
    attempts: int
    reason: str


CLAIM = """
with due as (
    select id from analysis_jobs
     where (status = 'queued' and run_after <= now())
        or (status = 'running' and locked_until < now())
     order by run_after, id
     limit $1
     for update skip locked
)
update analysis_jobs j
   set status = 'running', attempts = j.attempts + 1, locked_by = $3,
       locked_until = now() + make_interval(secs => $2)
  from due
 where j.id = due.id
returning j.id, j.call_id, j.attempts, j.reason
"""


@repository
async def claim(
    conn: asyncpg.Connection, *, limit: int, lease_seconds: float, worker: str
) -> list[Job]:
    """Take up to `limit` due jobs for `worker` for `lease_seconds` (its own transaction)."""
    async with conn.transaction():
        records = await conn.fetch(CLAIM, limit, lease_seconds, worker)
    return [Job(r["id"], r["call_id"], r["attempts"], r["reason"]) for r in records]


FINISH = """
update analysis_jobs set status = 'done', finished_at = now(), locked_until = null, last_error = null
 where id = any($1::bigint[]) and status = 'running'
"""


@repository
async def finish(conn: asyncpg.Connection, *, job_ids: Sequence[int]) -> None:
    await conn.execute(FINISH, list(job_ids))


RETRY = """
update analysis_jobs
   set status = case when attempts >= $3 then 'failed' else 'queued' end,
       finished_at = case when attempts >= $3 then now() end,
       run_after = now() + make_interval(secs => $4 * power(2, greatest(attempts - 1, 0))),
       locked_until = null, last_error = $2
 where id = $1 and status = 'running'
returning status
"""

SUPERSEDED = """
update analysis_jobs set status = 'failed', finished_at = now(), locked_until = null, last_error = $2
 where id = $1
"""


@repository
async def retry(
    conn: asyncpg.Connection, *, job_id: int, error: str, max_attempts: int, backoff_seconds: float
) -> str | None:
    """Record a failed attempt: queued again after backoff_seconds * 2^(attempts-1), or failed
    for good after `max_attempts`. Returns the job's new status (None if it was not running).
    A second job queued for the same call meanwhile makes this one's requeue wait its turn: the
    unique index allows one queued job per call, so this one then ends as failed."""
    try:
        async with conn.transaction():
            return await conn.fetchval(RETRY, job_id, error[:MAX_ERROR_CHARS], max_attempts,
                                       backoff_seconds)
    except asyncpg.UniqueViolationError:
        await conn.execute(SUPERSEDED, job_id, "superseded by a newer job: " + error[:MAX_ERROR_CHARS])
        return "failed"


ENQUEUE = """
insert into analysis_jobs (call_id, reason)
select unnest($1::uuid[]), $2
on conflict (call_id) where status = 'queued' do nothing
"""


@repository
async def enqueue(conn: asyncpg.Connection, *, call_ids: Sequence[uuid.UUID], reason: str) -> int:
    """Queue the calls for (re-)analysis; a call already waiting is not queued twice. Returns how
    many jobs were added."""
    result = await conn.execute(ENQUEUE, list(call_ids), reason)
    return int(result.split()[-1])


@dataclass(frozen=True)
class JobState:
    id: int
    call_id: uuid.UUID
    status: str
    attempts: int
    run_after: datetime
    last_error: str | None


JOBS_OF_CALL = """
select id, call_id, status, attempts, run_after, last_error from analysis_jobs
 where call_id = $1 order by id
"""


@repository
async def jobs_of_call(conn: asyncpg.Connection, *, call_id: uuid.UUID) -> list[JobState]:
    return [JobState(**dict(r)) for r in await conn.fetch(JOBS_OF_CALL, call_id)]


COUNT_BY_STATUS = "select status, count(*) from analysis_jobs group by status"


@repository
async def count_by_status(conn: asyncpg.Connection) -> dict[str, int]:
    return {r["status"]: r["count"] for r in await conn.fetch(COUNT_BY_STATUS)}
