"""How long each kind of data is kept: defaults (seed 000's retention periods), overridden per
organisation by organizations.retention ({"calls": 365, ...}, in days)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import asyncpg

from db import errors
from db.errors import InvalidInput, NotFound, repository

# kind -> (default days, what happens past it)
KINDS: dict[str, tuple[int, str]] = {
    "calls": (730, "the call row and everything under it are deleted (seed 000: 2 years)"),
    "failed_calls": (90, "failed and abandoned calls are deleted (seed 000: 3 months)"),
    # Seed 000 keeps turn data a year, but deleting a kept call's turns zeroes its token total
    # (0001's trigger sums what is left): turns leave with their call unless this is shortened.
    "messages": (730, "turn rows are deleted (their text is redacted after message_text)"),
    "message_text": (90, "personal data in message text and the transcript is redacted "
                         "(seed 000: transcripts sanitised after 3 months)"),
    "event_payloads": (180, "call events are deleted (seed 000: call events 6 months)"),
    "webhook_payloads": (30, "received LiveKit webhooks are deleted"),
    "session_reports": (90, "LiveKit's session report is removed from the call"),
    "recordings": (90, "the recording URL is removed (seed 001: delete after 90 days)"),
    "analyses": (730, "the call's analysis and each version of it (raw reply included) are deleted"),
    "exports": (30, "analysis exports are deleted, file and row (also once past their own expiry)"),
    "spool_files": (30, "dead-letter files of the recorder's spool folder are deleted"),
}

DEFAULTS: dict[str, int] = {kind: days for kind, (days, _) in KINDS.items()}

CONSTRAINTS = errors.constraints({
    "organizations_retention_check": (
        InvalidInput, "retention periods are whole days between 1 and 36500"),
})


def check(periods: Mapping[str, int]) -> dict[str, int]:
    """`periods` as stored: known kinds, whole days from 1 to 36500."""
    unknown = sorted(set(periods) - set(KINDS))
    if unknown:
        raise InvalidInput(f"unknown kind(s) of data: {', '.join(unknown)}; "
                           f"known: {', '.join(KINDS)}")
    for kind, days in periods.items():
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 36500:
            raise InvalidInput(f"{kind}: a period is whole days between 1 and 36500")
    return dict(periods)


SET_RETENTION = """
update organizations set retention = $2, redact_pii = coalesce($3, redact_pii) where id = $1
returning retention
"""


@repository
async def set_policy(conn: asyncpg.Connection, *, organization_id: uuid.UUID,
                     retention: Mapping[str, int] | None = None,
                     redact_pii: bool | None = None) -> dict[str, int]:
    """Replace an organisation's retention overrides (None: keep them) and, when given, its
    redact_pii. Returns its effective periods."""
    current = await conn.fetchval("select retention from organizations where id = $1",
                                  organization_id)
    if current is None:
        raise NotFound("no organisation with this id")
    stored = await conn.fetchval(SET_RETENTION, organization_id,
                                 check(retention) if retention is not None else current, redact_pii)
    return {**DEFAULTS, **stored}


@repository
async def periods(conn: asyncpg.Connection, *, organization_id: uuid.UUID) -> dict[str, int]:
    """The organisation's effective periods: its overrides over the defaults."""
    stored = await conn.fetchval("select retention from organizations where id = $1",
                                 organization_id)
    if stored is None:
        raise NotFound("no organisation with this id")
    return {**DEFAULTS, **stored}
