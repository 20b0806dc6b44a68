"""`python -m db erase` and `python -m db retention`: the privacy commands of db/__main__.py."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from db.audit import system_actor
from db.desk.phone import InvalidPhone
from db.pool import connect
from db.privacy.erasure import erase
from db.privacy.patterns import person
from db.privacy.retention import run_retention

COMMANDS = ("erase", "retention")


class PrivacySettings(BaseSettings):
    """What `python -m db retention` reads besides the database: the recorder's spool folder on
    this host (the agent's SPOOL_DIR), whose old dead-letter files it deletes."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    spool_dir: Path = Path(".data/spool")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--phone", help="erase: the caller's number, in any format")
    parser.add_argument("--name", help="erase: the caller's name, removed wherever it is written")
    parser.add_argument("--region", default="US", help="erase: how a national --phone is read")
    parser.add_argument("--dry-run", action="store_true",
                        help="erase, retention: count what would change, change nothing")
    parser.add_argument("--yes", action="store_true", help="erase: do not ask for confirmation")
    parser.add_argument("--spool-dir", type=Path, default=PrivacySettings().spool_dir,
                        help="retention: the recorder's spool folder (dead-letter files; SPOOL_DIR)")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.command == "erase" and not args.phone:
        parser.error("erase needs --phone NUMBER")


def _print_rows(rows: dict[str, int]) -> None:
    for what, count in rows.items():
        print(f"{what:40} {count}")


async def erase_command(dsn: str, args: argparse.Namespace) -> int:
    try:
        who = person(args.phone, name=args.name, region=args.region)
    except InvalidPhone as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    conn = await connect(dsn)
    try:
        preview = await erase(conn, person=who, actor=system_actor(), dry_run=True)
        _print_rows(preview.rows)
        print(f"{preview.calls} call(s) made from this number; {preview.total} row(s) to change")
        if args.dry_run:
            print("dry run: nothing changed")
            return 0
        if not args.yes and not _confirmed():
            print("nothing changed")
            return 1
        done = await erase(conn, person=who, actor=system_actor())
    finally:
        await conn.close()
    print(f"erased: {done.total} row(s) changed; audit_log id {done.audit_id}")
    return 0


def _confirmed() -> bool:
    if not sys.stdin.isatty():
        print("refusing to erase without --yes when nobody can confirm", file=sys.stderr)
        return False
    return input("Erase this person everywhere? This cannot be undone. Type 'erase': ") == "erase"


async def retention_command(dsn: str, args: argparse.Namespace) -> int:
    conn = await connect(dsn)
    try:
        report = await run_retention(conn, dry_run=args.dry_run, spool_dir=args.spool_dir)
    finally:
        await conn.close()
    print("kind                                     " + ("to change" if args.dry_run else "changed"))
    _print_rows(report.rows)
    print(f"{'dry run: nothing changed' if args.dry_run else 'done'} in {report.seconds:.2f}s")
    return 0
