"""Rows Postgres rejects for good (db.recorder.batches.classify: POISON), kept where an operator
can find them: `<spool_dir>/<name>-deadletter.jsonl`, one JSON line each, logged at ERROR
(without the row). The file is shared by every process of the same name, capped at `max_bytes`
(past it a rejected row is only counted, as lost), and never read back by the recorder:
`python -m db deadletters list|replay` (db.recorder.deadletter_admin) does, each entry carrying
the row as a spool line (`op`) for the replay."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from db.errors import table_constraint
from db.recorder.batches import EVENT, KEY, KIND, MESSAGE, PAYLOAD, Op
from db.recorder.codec import encode_op
from db.recorder.spool import encode

DEFAULT_MAX_BYTES = 64 * 2**20


def deadletter_path(spool_dir: Path, name: str) -> Path:
    return Path(spool_dir) / f"{name}-deadletter.jsonl"

log = logging.getLogger(__name__)


class DeadLetterFull(OSError):
    pass


class DeadLetters:
    def __init__(self, spool_dir: Path, name: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.name = name
        self.path = deadletter_path(spool_dir, name)
        self.max_bytes = max_bytes
        self.count = 0
        self.lost = 0  # rejected rows the file could not take (full, or failing)

    def add(self, op: Op, exc: BaseException) -> None:
        """Keep `op`, which Postgres rejected with `exc`; a callback for write_resilient's on_poison."""
        kind, payload = op[KIND], op[PAYLOAD]
        entry: dict[str, Any] = {
            "recorder": self.name, "kind": kind, "key": op[KEY],
            "error": str(exc), "error_type": type(exc).__name__,
            "sqlstate": getattr(exc, "sqlstate", None) or getattr(exc.__cause__, "sqlstate", None),
            "constraint": table_constraint(getattr(exc, "constraint_name", None)
                                           or getattr(exc.__cause__, "constraint_name", None)),
            "record": vars(payload) if kind in (MESSAGE, EVENT) else payload,
            "op": encode_op(op).decode(),
        }
        self.count += 1
        # The error's words only (a constraint, a type): never the row, which may hold what a
        # caller said.
        log.error("recorder %s: Postgres rejected a %s row for good (%s); kept in %s",
                  self.name, kind, type(exc).__name__, self.path)
        try:
            append_entry(self.path, entry, max_bytes=self.max_bytes)
        except OSError as failure:
            self.lost += 1
            log.critical("recorder %s: could not write %s (%s); a %s row is lost",
                         self.name, self.path, failure.strerror or failure, kind)


def append_entry(path: Path, entry: dict, *, max_bytes: int) -> None:
    """One write(2) of an O_APPEND file, under its flock (which the replay takes to rewrite the
    file): concurrent writers do not interleave inside a line. Raises DeadLetterFull past
    `max_bytes`, or OSError."""
    entry = {"at": datetime.now(UTC), **entry}
    try:
        line = encode(entry)
    except TypeError:
        line = encode({**entry, "record": repr(entry.get("record"))})
    append_line(path, line, max_bytes=max_bytes)


def append_line(path: Path, line: bytes, *, max_bytes: int | None) -> None:
    """Append one whole line (see append_entry); no cap when `max_bytes` is None."""
    fd = open_locked(path)
    try:
        size = os.fstat(fd).st_size
        if max_bytes is not None and size + len(line) > max_bytes:
            raise DeadLetterFull(errno.EFBIG, f"the dead-letter file is at its cap of {max_bytes} bytes")
        written = os.write(fd, line)
        if written < len(line):  # disk full mid-line: cut it back, never leave half an entry
            os.ftruncate(fd, size)
            raise OSError(errno.ENOSPC, "no space left for a whole dead-letter entry")
        os.fsync(fd)
    finally:
        os.close(fd)


def open_locked(path: Path) -> int:
    """The file at `path`, opened for appending and flocked. A replay renames the file away
    under the lock: a writer that opened it before then reopens the new one."""
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
