"""Erasure: one caller removed everywhere (python -m db erase --phone NUMBER [--name NAME]).

Two tables of steps, run in order in one transaction, with an audit_log row in the same
transaction (counts only: never the number or the name):

* OWNED: the rows that are the person's, found by key. Their calls (voice_calls.caller_number)
  stay as anonymous shells, so call counts, durations, tokens and latency keep their history:
  caller number, room name, transcript, session report and recording go; message text and event
  payloads are emptied (an error's type stays, for the error-rate view); the caller's
  participant rows lose identity, name and attributes; LiveKit's webhook payloads for its room
  are removed. The call's analysis, every version of it and its rows in manager runs keep their
  categories and scores (intent, sentiment, success, quality: the KPIs) and lose every free text
  (summary, reasons, fields, follow-ups, the model's raw reply, errors). Outbound events about
  their calls or their appointments keep only what identifies the event. Their appointments
  (cancelled ones too) keep their slot, service and status, and lose the name, number, notes and
  reason. Report files (analysis_exports) of a run that covered one of their calls, or a call
  whose analysis mentions them, are deleted, file and row (after the commit; not in a dry run).
* MENTIONS: every column where the person may be written down by someone else's call (a
  transcript, an event payload, a note), swept with the patterns of db.privacy.patterns: the
  number in any format or spoken as words, and the name; each occurrence becomes [ERASED].

A table another module adds is one entry here: an OWNED step if rows belong to a caller, a
MENTIONS line for each free-text or jsonb column. tests/test_erasure.py checks every text and
jsonb column of every table, so a table missing from here fails it. The big tables'
(voice_calls, voice_messages, outbound_events) listed columns are indexed, joined, by sql/0019's
trigram indexes, so that the sweep reads only the rows that pass the cheap tests: a column
added there needs a migration that indexes it too (the same tests fail otherwise)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from db import audit
from db.errors import repository
from db.privacy.patterns import Person

PLACEHOLDER = "[ERASED]"
ERASED_NAME = "[erased]"

FIND_CALLS = "select id, session_id from voice_calls where caller_number = any($1::text[])"

# An analysis without its free text: what made it and what it found (the KPIs) stay.
_ANONYMOUS_ANALYSIS = """
update {table}
   set summary = null, success_reason = null, quality_reasoning = null, extraction = '{{}}',
       follow_ups = '[]', raw_reply = null, error = null
 where call_id = any($1::uuid[])
   and (summary, success_reason, quality_reasoning, extraction, follow_ups, raw_reply, error)
       is distinct from (null, null, null, '{{}}'::jsonb, '[]'::jsonb, null, null)"""

# (what, by, SQL): $1 is, by `by`, the person's call ids, their calls' session ids (room SIDs) or
# their numbers as stored.
OWNED: tuple[tuple[str, str, str], ...] = (
    ("call_participants", "calls", """
update call_participants
   set participant_identity = 'erased', participant_name = null, attributes = '{}'
 where call_id = any($1::uuid[]) and participant_type = 'user'
   and participant_identity <> 'erased'"""),
    ("voice_messages", "calls", """
update voice_messages set content = '', metadata = '{}'
 where call_id = any($1::uuid[]) and (content <> '' or metadata <> '{}')"""),
    ("call_events", "calls", """
update call_events
   set payload = jsonb_strip_nulls(jsonb_build_object('erased', true,
                                                      'error_type', payload -> 'error_type'))
 where call_id = any($1::uuid[]) and not payload ? 'erased'"""),
    ("call_analyses", "calls", _ANONYMOUS_ANALYSIS.format(table="call_analyses")),
    ("call_analysis_versions", "calls", _ANONYMOUS_ANALYSIS.format(table="call_analysis_versions")),
    ("analysis_run_calls", "calls", """
update analysis_run_calls set error = null where call_id = any($1::uuid[]) and error is not null"""),
    ("outbound_events", "calls", """
update outbound_events
   set payload = jsonb_build_object('erased', true, 'call_id', payload -> 'call_id')
 where payload ->> 'call_id' = any($1::uuid[]::text[]) and not payload ? 'erased'"""),
    ("outbound_events", "numbers", """
update outbound_events
   set payload = jsonb_strip_nulls(jsonb_build_object(
           'erased', true, 'appointment_id', payload -> 'appointment_id',
           'starts_at', payload -> 'starts_at', 'status', payload -> 'status'))
 where payload ->> 'customer_phone' = any($1::text[])"""),
    ("webhook_events", "sessions", """
update webhook_events set payload = '{"erased": true}', room_name = null, error = null
 where room_sid = any($1::text[]) and payload <> '{"erased": true}'"""),
    ("voice_calls", "calls", """
update voice_calls
   set caller_number = null, room_name = null, transcript = null, session_report = null,
       recording_url = null,
       metadata = jsonb_strip_nulls(jsonb_build_object('erased', true,
                                                       'routed_by', metadata -> 'routed_by'))
 where id = any($1::uuid[])"""),
    ("appointments", "numbers", f"""
update appointments
   set customer_name = '{ERASED_NAME}', customer_phone = null, notes = null,
       cancellation_reason = null, erased_at = now()
 where customer_phone = any($1::text[])"""),
)

_ANALYSIS_TEXT = (("summary", False), ("intent", False), ("outcome", False), ("extraction", True),
                  ("success_reason", False), ("quality_reasoning", False), ("follow_ups", True),
                  ("raw_reply", False), ("error", False))

# table -> (column, is_jsonb): where anyone may have written the person down.
MENTIONS: dict[str, tuple[tuple[str, bool], ...]] = {
    "voice_calls": (("caller_number", False), ("room_name", False), ("transcript", False),
                    ("end_reason", False), ("recording_url", False), ("metadata", True),
                    ("session_report", True)),
    "call_participants": (("participant_identity", False), ("participant_name", False),
                          ("attributes", True)),
    "voice_messages": (("content", False), ("metadata", True)),
    "call_events": (("payload", True),),
    "call_analyses": _ANALYSIS_TEXT,
    "call_analysis_versions": _ANALYSIS_TEXT,
    "analysis_run_calls": (("error", False),),
    "analysis_runs": (("error", False), ("filters", True)),
    "outbound_attempts": (("error", False),),
    "webhook_events": (("room_name", False), ("payload", True), ("error", False)),
    "appointments": (("customer_name", False), ("notes", False), ("cancellation_reason", False)),
    "audit_log": (("subject", False), ("details", True)),
    # Issue 14's signed webhooks (call.* carry the caller's number): one not yet delivered goes
    # out erased.
    "outbound_events": (("payload", True),),
}

# The parameters of a sweep: $1 every pattern, $2 the placeholder, $3 the last four digits,
# $4 the digits pattern, $5 the hints of the words, $6 the words pattern, $7 the hints of the
# name, $8 its pattern. Without a name, $8 is null (that test is then null, never true) and $7
# the hints of the words, so that an index still narrows that test.


def _mentions(value: str) -> str:
    """Whether `value` mentions the person: each expression only behind its cheap test (LIKE /
    ILIKE, which sql/0019's trigram indexes answer for the big tables)."""
    return (f"(({value} like '%' || $3 || '%' and {value} ~ $4)"
            f" or ({value} ilike all($5::text[]) and {value} ~* $6)"
            f" or ({value} ilike all($7::text[]) and {value} ~* $8))")


def _sweep(table: str, columns: tuple[tuple[str, bool], ...]) -> str:
    """One pass over `table`, testing each row once (its columns joined by erasure_text, the
    expression sql/0019 indexes for the big tables), then rewriting each listed column that
    mentions the person. Identifiers come from MENTIONS, never from input. [ERASED] has no
    quote or backslash, so a jsonb value stays valid JSON after the replace."""
    sets, values = [], []
    for column, is_jsonb in columns:
        value = f"{column}::text" if is_jsonb else column
        values.append(value)
        replaced = f"replace_patterns({value}, $1::text[], $2){'::jsonb' if is_jsonb else ''}"
        sets.append(f"{column} = case when {_mentions(value)} then {replaced} else {column} end")
    row = f"erasure_text({', '.join(values)})"
    return f"update {table} set {', '.join(sets)} where {_mentions(row)}"


SWEEPS = tuple((table, _sweep(table, columns)) for table, columns in MENTIONS.items())

# Report files cannot be swept: the exports of a run that covered one of the person's calls ($9)
# or a call whose analysis (the version the run made) mentions them go, file and row. Run before
# the steps above change what it reads.
_RUN_TEXT = ("concat_ws(' ', v.summary, v.success_reason, v.quality_reasoning, v.extraction::text,"
             " v.follow_ups::text, v.raw_reply)")
DOOMED_EXPORTS = f"""
delete from analysis_exports e
 where e.run_id in (
       select rc.run_id from analysis_run_calls rc where rc.call_id = any($9::uuid[])
       union
       select rc.run_id from analysis_run_calls rc
         join call_analysis_versions v on v.call_id = rc.call_id and v.version = rc.version
        where {_mentions(_RUN_TEXT)})
   and cardinality($1::text[]) > 0 and $2::text is not null  -- the sweep's own ($1, $2): typed
returning e.path"""


@dataclass
class ErasureReport:
    calls: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # step -> rows changed
    dry_run: bool = False
    audit_id: int | None = None

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back."""


@repository
async def erase(conn: asyncpg.Connection, *, person: Person, actor: str,
                dry_run: bool = False) -> ErasureReport:
    """Erase `person` everywhere (see the module); a dry run does it all and rolls back, so its
    counts are exactly what a real run would change."""
    report = ErasureReport(dry_run=dry_run)
    try:
        async with conn.transaction():
            found = await conn.fetch(FIND_CALLS, list(person.numbers))
            ids = [r["id"] for r in found]
            sessions = [r["session_id"] for r in found]
            report.calls = len(ids)
            keys = {"calls": ids, "sessions": sessions, "numbers": list(person.numbers)}
            sweep = (list(person.patterns), PLACEHOLDER, person.national[-4:], person.digits,
                     list(person.word_hints), person.words, list(person.name_hints or person.word_hints),
                     person.name)
            files = [r["path"] for r in await conn.fetch(DOOMED_EXPORTS, *sweep, ids)]
            report.rows["analysis_exports"] = len(files)
            for what, by, sql in OWNED:
                report.rows[what] = report.rows.get(what, 0) + _count(await conn.execute(sql, keys[by]))
            for table, sql in SWEEPS:
                changed = _count(await conn.execute(sql, *sweep))
                if changed:
                    report.rows[f"mentions:{table}"] = changed
            if dry_run:
                raise _DryRun
            entry = await audit.record(conn, actor=actor, action=audit.ERASURE,
                                       row_count=report.total,
                                       details={"calls": report.calls, "rows": report.rows})
            report.audit_id = entry.id
    except _DryRun:
        return report
    await asyncio.to_thread(_unlink, files)
    return report


def _unlink(paths: list[str]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)

