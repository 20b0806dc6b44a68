"""audit_log: who did what, when, to how many rows.

Written for every erasure (db.privacy.erasure), configuration activation (db.desk.configs),
export and API read of a call's detail (their modules call `record`). A row never holds the
personal data the action was about: an erasure records counts, not the number or the name.
`record` runs on the caller's connection, inside its transaction when it has one, so the audit
row commits (or not) with the action."""

from __future__ import annotations

import getpass
import os
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

from db import errors
from db.errors import InvalidInput, NotFound, repository

ERASURE, EXPORT, CONFIG_ACTIVATION, CALL_READ = "erasure", "export", "config.activation", "call.read"

CONSTRAINTS = errors.constraints({
    "audit_log_action_check": (InvalidInput, "an audit action is lowercase words joined by '_' or '.'"),
    "audit_log_row_count_check": (InvalidInput, "an audit row count cannot be negative"),
    "audit_log_organization_id_fkey": (NotFound, "no organisation with this id"),
})


@dataclass(frozen=True)
class AuditEntry:
    id: int
    occurred_at: datetime
    actor: str
    action: str
    organization_id: uuid.UUID | None
    subject: str | None
    row_count: int
    details: dict

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> AuditEntry:
        return cls(**{f.name: record[f.name] for f in fields(cls)})


_COLUMNS = ", ".join(f.name for f in fields(AuditEntry))

INSERT = f"""
insert into audit_log (actor, action, organization_id, subject, row_count, details)
values ($1, $2, $3, $4, $5, $6)
returning {_COLUMNS}
"""


def system_actor() -> str:
    """Who runs a command-line action: the OS user and host (no person's data)."""
    return f"{getpass.getuser()}@{os.uname().nodename}"


@repository
async def record(conn: asyncpg.Connection, *, actor: str, action: str, row_count: int = 0,
                 organization_id: uuid.UUID | None = None, subject: str | None = None,
                 details: dict[str, Any] | None = None) -> AuditEntry:
    """One audit row. `subject` names what was acted on (a call's session id, a config id), never
    a person's number or name."""
    if not actor:
        raise InvalidInput("an audit row needs who did it")
    row = await conn.fetchrow(INSERT, actor, action, organization_id, subject, row_count,
                              details or {})
    return AuditEntry.from_record(row)


LIST = f"""
select {_COLUMNS} from audit_log
 where ($1::text is null or action = $1)
 order by occurred_at desc, id desc
 limit $2
"""


@repository
async def recent(conn: asyncpg.Connection, *, action: str | None = None,
                 limit: int = 100) -> list[AuditEntry]:
    return [AuditEntry.from_record(r) for r in await conn.fetch(LIST, action, limit)]
