"""`python -m db deadletters list|replay`: what the recorders' dead-letter files hold, and another
try at writing it (after the cause was fixed: a migration, a corrected row).

`list` prints one line per entry: when, which recorder, the kind of row, its call or session, and
why Postgres rejected it; never the row itself (it may hold what a caller said: read the file for
that). `replay` writes every entry again through the recorder's own batch path
(db.recorder.batches.write_resilient): rows Postgres takes now leave the file, rows it still
rejects go back into it, and if Postgres goes away midway the rest go back untouched.

A replay takes the file away from the recorders first (renamed under its flock, so that a
recorder appending at that moment writes to a new file instead), replays the renamed copy, and
removes it at the end. A copy left by a replay that died is picked up by the next one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from pydantic_settings import BaseSettings, SettingsConfigDict

from db.recorder.batches import Interrupted, Op, write_resilient
from db.recorder.codec import decode_op
from db.recorder.connections import init_connection, keep_session
from db.recorder.deadletters import append_line, open_locked
from db.settings import DatabaseSettings
from db.startup import database

SUFFIX = "-deadletter.jsonl"
_REPLAYING = ".replaying-"


class SpoolSettings(BaseSettings):
    """Where the recorders spool (the agent's SPOOL_DIR)."""
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")
    spool_dir: Path = Path(".data/spool")


def dead_letter_files(spool_dir: Path) -> list[Path]:
    """The live files and any copy a dead replay left behind."""
    return sorted(spool_dir.glob(f"*{SUFFIX}")) + sorted(spool_dir.glob(f"*{SUFFIX}{_REPLAYING}*"))


def entries(path: Path) -> Iterator[tuple[bytes, dict | None]]:
    """Each line of a dead-letter file with its entry (None for a line that cannot be read)."""
    with open(path, "rb") as f:
        for line in f:
            try:
                yield line, json.loads(line)
            except ValueError:
                yield line, None


def describe(entry: dict | None) -> str:
    if entry is None:
        return "(unreadable line)"
    why = entry.get("constraint") or entry.get("sqlstate") or entry.get("error_type")
    at = entry.get("at")
    at = at.get("$dt") if isinstance(at, dict) else at
    return f"{at}  {entry.get('recorder')}  {entry.get('kind')}  {entry.get('key')}  {why}"


@dataclass
class ReplayResult:
    written: int = 0
    rejected: int = 0  # still rejected: back in the file
    kept: int = 0  # not tried (unreadable, or Postgres went away): back in the file
    files: list[Path] = field(default_factory=list)


async def replay(pool: asyncpg.Pool, spool_dir: Path, *, write_timeout: float = 30.0) -> ReplayResult:
    result = ReplayResult()
    for path in dead_letter_files(spool_dir):
        live = path.with_name(path.name.split(_REPLAYING)[0])
        mine = path if _REPLAYING in path.name else _take(path)
        if mine is None:
            continue
        await _replay_file(pool, mine, live, result, write_timeout)
        result.files.append(live)
    return result


def _take(path: Path) -> Path | None:
    """Rename the live file away from the recorders, under its lock."""
    fd = open_locked(path)
    try:
        if os.fstat(fd).st_size == 0:
            os.unlink(path)
            return None
        taken = path.with_name(f"{path.name}{_REPLAYING}{os.getpid()}")
        os.rename(path, taken)
        return taken
    finally:
        os.close(fd)


async def _replay_file(pool: asyncpg.Pool, path: Path, live: Path, result: ReplayResult,
                       write_timeout: float) -> None:
    ops: list[Op] = []
    lines: dict[int, bytes] = {}  # id(op) -> its entry's line, to put back what is still rejected
    back: list[bytes] = []
    for line, entry in entries(path):
        try:
            op = decode_op(entry["op"].encode())
        except Exception:  # no `op` (an entry from an older version), or unreadable
            back.append(line)
            continue
        ops.append(op)
        lines[id(op)] = line

    def written(done: list[Op]) -> None:
        result.written += len(done)
        for op in done:
            lines.pop(id(op))

    def rejected(op: Op, exc: BaseException) -> None:
        result.rejected += 1
        back.append(lines.pop(id(op)))

    try:
        await write_resilient(pool, ops, fresh=False, write_timeout=write_timeout,
                              on_written=written, on_poison=rejected)
    except Interrupted:
        pass  # Postgres went away: what was not tried stays in `lines`
    result.kept += len(back) - result.rejected + len(lines)
    for line in [*back, *lines.values()]:
        append_line(live, line if line.endswith(b"\n") else line + b"\n", max_bytes=None)
    os.unlink(path)


async def _replay_command(dsn: str, spool_dir: Path) -> int:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2, init=init_connection, reset=keep_session)
    try:
        result = await replay(pool, spool_dir)
    finally:
        await pool.close()
    print(f"written {result.written}, still rejected {result.rejected}, kept untried {result.kept}")
    return 0 if result.rejected == result.kept == 0 else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m db deadletters", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("list", "replay"))
    parser.add_argument("--spool-dir", type=Path, default=None, help="default: SPOOL_DIR or .data/spool")
    args = parser.parse_args(argv)
    spool_dir = args.spool_dir or SpoolSettings().spool_dir
    if args.action == "list":
        count = 0
        for path in dead_letter_files(spool_dir):
            for _, entry in entries(path):
                print(f"{path.name}  {describe(entry)}")
                count += 1
        print(f"{count} dead letters in {spool_dir}")
        return 0
    settings = DatabaseSettings()
    with database(settings.database_url, settings.embedded_pg_dir, migrate=False) as dsn:
        return asyncio.run(_replay_command(dsn, spool_dir))
