"""Retention: what is past its period (db.privacy.policy) leaves, per organisation and kind.

`run_retention` is what `python -m db retention` and the webhook service's schedule run. Each
rule works in batches of rows claimed with FOR UPDATE SKIP LOCKED, each batch its own
transaction: several hosts may run it at once (each takes rows the others have not locked), an
interrupted run loses at most its current batch, and a second run finds nothing left to do.
A dry run counts, per kind, what a run would change and changes nothing.

Text past its period inside a call that is kept (message_text) is redacted, not deleted, so
KPIs keep their history: the messages keep their timing and tokens, the call its counts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from db.errors import repository
from db.privacy.policy import DEFAULTS
from db.privacy.redaction import Redactor

log = logging.getLogger(__name__)

BATCH = 2000
TEXT_BATCH = 100  # calls whose text is redacted per transaction (the redactor runs in Python)


@dataclass(frozen=True)
class Rule:
    """Rows of `table` (alias t) older than `age` by the kind's period, in the organisation
    `org` (an expression over t, or over the call c that `join` adds) or, without one, by the
    default; `change` deletes them ("delete") or is the SET list that empties them; `pending`
    says a row still has something to change (so a second run finds nothing)."""

    kind: str
    table: str
    key: str
    age: str
    org: str
    change: str = "delete"
    pending: str = "true"
    join: str = ""  # how `org` reaches the call (alias c), for a table that has no org column
    due: str = ""  # rows that go whatever their age (an export past its own expiry)
    files: str = ""  # a column naming a file that goes with its row
    then: Rule | None = None  # the same kind of data in another table, applied after this one

    def _doomed(self, limit: bool) -> str:
        return f"""
select t.{self.key} as k from {self.table} t {self.join}
  left join organizations o on o.id = {self.org}
 where (t.{self.age} < $1::timestamptz
                      - make_interval(days => coalesce((o.retention ->> '{self.kind}')::int, $2::int))
   -- the shortest period of any organisation, computed once: lets an index on age find the rows
   and t.{self.age} < (select $1::timestamptz - make_interval(days => least(
           $2::int, min((retention ->> '{self.kind}')::int))) from organizations)
   {f"or {self.due}" if self.due else ""})
   and {self.pending}
{"limit $3 for update of t skip locked" if limit else ""}"""

    @property
    def count_sql(self) -> str:
        own = f"select count(*) from ({self._doomed(False)}) doomed"
        return f"select ({own}) + ({self.then.count_sql})" if self.then else own

    @property
    def batch_sql(self) -> str:
        if self.change == "delete":
            return (f"with doomed as ({self._doomed(True)}) "
                    f"delete from {self.table} t using doomed where t.{self.key} = doomed.k")
        return (f"with doomed as ({self._doomed(True)}) "
                f"update {self.table} t set {self.change} from doomed where t.{self.key} = doomed.k")


_BY_CALL = "left join voice_calls c on c.id = t.call_id"
_BY_ROOM = "left join voice_calls c on c.session_id = t.room_sid"

RULES: tuple[Rule, ...] = (
    Rule("failed_calls", "voice_calls", "id", "started_at", "t.organization_id",
         pending="t.status in ('failed', 'abandoned')"),
    Rule("calls", "voice_calls", "id", "started_at", "t.organization_id",
         pending="t.status not in ('pending', 'active')"),
    Rule("messages", "voice_messages", "id", "created_at", "c.organization_id", join=_BY_CALL),
    Rule("event_payloads", "call_events", "id", "created_at", "c.organization_id", join=_BY_CALL),
    Rule("webhook_payloads", "webhook_events", "event_id", "received_at", "c.organization_id",
         join=_BY_ROOM),
    Rule("session_reports", "voice_calls", "id", "started_at", "t.organization_id",
         change="session_report = null", pending="t.session_report is not null"),
    Rule("recordings", "voice_calls", "id", "started_at", "t.organization_id",
         change="recording_url = null", pending="t.recording_url is not null"),
    # The current analysis, then every version of it (summary, fields, the model's raw reply) by
    # each one's age; that table's key is (call_id, version): a row is named by its ctid.
    Rule("analyses", "call_analyses", "call_id", "created_at", "c.organization_id", join=_BY_CALL,
         then=Rule("analyses", "call_analysis_versions", "ctid", "created_at", "c.organization_id",
                   join=_BY_CALL)),
    # A run's report files: past the period, or past the expiry they were written with.
    Rule("exports", "analysis_exports", "id", "created_at", "c.organization_id",
         join="left join analysis_runs c on c.id = t.run_id", due="t.expires_at <= $1::timestamptz",
         files="path"),
)

# message_text: calls whose text is past its period and not yet redacted.
TEXT_RULE = Rule("message_text", "voice_calls", "id", "started_at", "t.organization_id",
                 pending="t.pii_redacted_at is null and t.status not in ('pending', 'active')")
CALL_TEXT = """
select c.id, c.transcript, coalesce(l.country, 'US') as country
  from voice_calls c left join locations l on l.id = c.location_id
 where c.id = any($1::uuid[])
"""
CALL_MESSAGES = """
select id, call_id, content from voice_messages where call_id = any($1::uuid[]) and content <> ''
"""
SET_MESSAGE = """
update voice_messages set content = $2,
       metadata = metadata || jsonb_build_object('redacted', $3::text[])
 where id = $1
"""
SET_TRANSCRIPT = "update voice_calls set transcript = $2, pii_redacted_at = $3 where id = $1"


@dataclass
class RetentionReport:
    rows: dict[str, int] = field(default_factory=dict)  # kind -> rows (counted or changed)
    dry_run: bool = False
    seconds: float = 0.0


async def _batches(conn: asyncpg.Connection, rule: Rule, now: datetime, batch: int) -> int:
    total = 0
    while True:
        async with conn.transaction():
            if rule.files:
                paths = [r[0] for r in await conn.fetch(
                    f"{rule.batch_sql} returning t.{rule.files}", now, DEFAULTS[rule.kind], batch)]
                # Unlinked with the rows: a failed commit leaves rows naming missing files, which
                # the next run deletes; never a file no row names.
                await asyncio.to_thread(_unlink, paths)
                changed = len(paths)
            else:
                status = await conn.execute(rule.batch_sql, now, DEFAULTS[rule.kind], batch)
                changed = int(status.rsplit(" ", 1)[-1])
        total += changed
        if changed < batch:
            return total + (await _batches(conn, rule.then, now, batch) if rule.then else 0)


async def _redact_texts(conn: asyncpg.Connection, now: datetime, batch: int) -> int:
    """message_text: redact each claimed call's messages and transcript in one transaction, with
    the redactor of the call's country (how its national numbers are written)."""
    redactors: dict[str, Redactor] = {}
    total = 0
    while True:
        async with conn.transaction():
            claimed = [r["k"] for r in await conn.fetch(
                TEXT_RULE._doomed(True), now, DEFAULTS["message_text"], batch)]
            regions = {}
            for call in await conn.fetch(CALL_TEXT, claimed):
                redact = redactors.setdefault(call["country"], Redactor(region=call["country"]))
                regions[call["id"]] = redact
                transcript = redact(call["transcript"]).text if call["transcript"] else None
                await conn.execute(SET_TRANSCRIPT, call["id"], transcript, now)
            changes = []
            for message in await conn.fetch(CALL_MESSAGES, claimed):
                result = regions[message["call_id"]](message["content"])
                if result.kinds:
                    changes.append((message["id"], result.text, sorted(result.kinds)))
            await conn.executemany(SET_MESSAGE, changes)
        total += len(claimed)
        if len(claimed) < batch:
            return total


def _unlink(paths: list[str]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


def _old_files(folder: Path, days: int, now: datetime) -> list[Path]:
    if not folder.is_dir():
        return []
    cutoff = (now - timedelta(days=days)).timestamp()
    return [p for p in folder.glob("*-deadletter.jsonl") if p.stat().st_mtime < cutoff]


@repository
async def run_retention(conn: asyncpg.Connection, *, now: datetime | None = None,
                        dry_run: bool = False, spool_dir: Path | None = None,
                        batch: int = BATCH,
                        on_kind: Callable[[str, int], None] | None = None) -> RetentionReport:
    """Apply every rule (see the module); with `dry_run`, count instead. `spool_dir`: the
    recorder's folder, whose dead-letter files past spool_files (the default period: files
    belong to a host, not an organisation) are deleted. `conn` must not be in a transaction."""
    now = now or datetime.now(UTC)
    started = time.monotonic()
    report = RetentionReport(dry_run=dry_run)
    for rule in (*RULES[:2], TEXT_RULE, *RULES[2:]):
        if dry_run:
            count = await conn.fetchval(rule.count_sql, now, DEFAULTS[rule.kind])
        elif rule is TEXT_RULE:
            count = await _redact_texts(conn, now, TEXT_BATCH)
        else:
            count = await _batches(conn, rule, now, batch)
        report.rows[rule.kind] = count
        if on_kind:
            on_kind(rule.kind, count)
    files = _old_files(spool_dir, DEFAULTS["spool_files"], now) if spool_dir else []
    if not dry_run:
        for path in files:
            path.unlink(missing_ok=True)
    report.rows["spool_files"] = len(files)
    report.seconds = time.monotonic() - started
    log.info("retention%s: %s", " (dry run)" if dry_run else "",
             ", ".join(f"{k}={v}" for k, v in report.rows.items()))
    return report
