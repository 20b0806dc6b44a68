"""Rows Postgres rejects for good (db.recorder.batches.classify: POISON), kept where an operator
can find them: `<spool_dir>/<name>-deadletter.jsonl`, one JSON line each, logged at ERROR. The
file is shared by every process of the same name and never read back by the recorder."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from db.recorder.batches import EVENT, KEY, KIND, MESSAGE, PAYLOAD, Op
from db.recorder.spool import encode

log = logging.getLogger(__name__)


class DeadLetters:
    def __init__(self, spool_dir: Path, name: str) -> None:
        self.name = name
        self.path = Path(spool_dir) / f"{name}-deadletter.jsonl"
        self.count = 0

    def add(self, op: Op, exc: BaseException) -> None:
        """Keep `op`, which Postgres rejected with `exc`; a callback for write_resilient's on_poison."""
        kind, payload = op[KIND], op[PAYLOAD]
        entry: dict[str, Any] = {
            "recorder": self.name, "kind": kind, "key": op[KEY],
            "error": str(exc), "error_type": type(exc).__name__,
            "sqlstate": getattr(exc, "sqlstate", None) or getattr(exc.__cause__, "sqlstate", None),
            "constraint": getattr(exc, "constraint_name", None)
            or getattr(exc.__cause__, "constraint_name", None),
            "record": vars(payload) if kind in (MESSAGE, EVENT) else payload,
        }
        self.count += 1
        log.error("recorder %s: Postgres rejected a %s row for good (%s); kept in %s",
                  self.name, kind, exc, self.path)
        try:
            _append(self.path, entry)
        except OSError:
            # Not the row itself: it may hold what a caller said.
            log.critical("recorder %s: could not write %s; a %s row of %s is lost",
                         self.name, self.path, kind, op[KEY])


def _append(path: Path, entry: dict) -> None:
    """One write(2) of an O_APPEND file: concurrent writers do not interleave inside a line."""
    entry = {"at": datetime.now(UTC), **entry}
    try:
        line = encode(entry)
    except TypeError:
        line = encode({**entry, "record": repr(entry.get("record"))})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
