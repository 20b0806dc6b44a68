"""The recorder's durable spool: rows that could not be written to Postgres yet, kept in an
append-only local file until they can be, then replayed in the order they were recorded.

A spool file belongs to one live process (`<name>-<pid>.spool`) and is held under an exclusive
flock for as long as its recorder runs. The kernel drops that lock when the process dies, however
it dies (kill -9 included), so a spool file that no one holds is an orphan: `SpoolFile.claim`
hands it to exactly one live process, which replays it and deletes it.

A record is one JSON line. Datetimes and UUIDs carry explicit tags (`{"$dt": ...}`,
`{"$uuid": ...}`) so that they come back as themselves (a caller that knows a field's type may
write it as a plain string instead: db.recorder.codec does so for the typed columns of
messages and events, which makes a line several times cheaper to read back). No pickle: a spool
file is data that a newer version of this code may have to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_READ_CHUNK = 1 << 20


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    raise TypeError(f"a {type(value).__name__} cannot be written to the spool")


def _tagged(obj: dict) -> Any:
    if len(obj) == 1:
        if "$dt" in obj:
            return datetime.fromisoformat(obj["$dt"])
        if "$uuid" in obj:
            return uuid.UUID(obj["$uuid"])
    return obj


_ENCODER = json.JSONEncoder(default=_default, separators=(",", ":"))


def encode(record: Any) -> bytes:
    """One spool line. Raises TypeError for a value JSON cannot carry."""
    return _ENCODER.encode(record).encode() + b"\n"


def decode(line: bytes) -> Any:
    # Inside a JSON string a quote is escaped, so `{"$` in the raw line can only open a tag;
    # most lines have none and skip the (slow, per-object) hook.
    if b'{"$' in line:
        return json.loads(line, object_hook=_tagged)
    return json.loads(line)


def _fsync_dir(path: Path) -> None:
    # The new name must survive a crash too, not only the file's content.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolFile:
    """An append-only file of JSON lines that this process holds under an exclusive flock.

    Appends go straight to the kernel (os.write, no buffer of ours), so a record is safe from a
    crash of the process as soon as `append` returns and safe from a crash of the machine once
    `sync` has run. Reading does not remove anything: `consume` moves the read offset once the
    records are in Postgres, and `reset` truncates the file when everything has been read."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.size = os.fstat(fd).st_size
        self.read_offset = 0
        self._synced_size = self.size
        self._truncations = 0  # an fsync that started before a reset says nothing after it

    @classmethod
    def create(cls, spool_dir: Path, name: str) -> SpoolFile:
        """A new, locked spool for this process. It is locked before it gets its `.spool` name,
        so no other process can mistake it for an orphan in between."""
        spool_dir.mkdir(parents=True, exist_ok=True)
        pid, token = os.getpid(), secrets.token_hex(4)
        tmp = spool_dir / f".{name}-{pid}-{token}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            # A dead process with our pid may have left its spool under our name: never replace it.
            for candidate in (f"{name}-{pid}.spool", f"{name}-{pid}-{token}.spool"):
                path = spool_dir / candidate
                try:
                    os.link(tmp, path)
                    break
                except FileExistsError:
                    continue
        finally:
            os.unlink(tmp)
        _fsync_dir(spool_dir)
        return cls(path, fd)

    @classmethod
    def claim(cls, path: Path) -> SpoolFile | None:
        """Lock someone else's spool, or None when its owner is alive (it holds the lock), or
        when another process replayed and deleted it first."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Locked, but it may have been replayed and unlinked while we waited to open it.
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise FileNotFoundError(path)
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            return None
        return cls(path, fd)

    @property
    def pending(self) -> bool:
        """Whether records remain that have not been consumed."""
        return self.read_offset < self.size

    def append(self, lines: list[bytes]) -> None:
        """Append whole records. On a failed write (disk full) the file is cut back to its
        previous end, so it never holds half a record followed by more records."""
        data = memoryview(b"".join(lines))
        written = 0
        try:
            while written < len(data):
                written += os.write(self.fd, data[written:])
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.size)
            raise
        self.size += written

    async def sync(self) -> None:
        """fsync, in a thread: it can take milliseconds and the event loop runs the voice loop."""
        size, truncations = self.size, self._truncations
        if self._synced_size >= size:
            return
        await asyncio.to_thread(os.fsync, self.fd)
        if truncations == self._truncations:
            self._synced_size = max(self._synced_size, size)

    def sync_now(self) -> None:
        if self._synced_size < self.size:
            os.fsync(self.fd)
            self._synced_size = self.size

    def read(self, limit: int) -> tuple[list[tuple[int, bytes]], int]:
        """Up to `limit` records from the read offset, each with the offset just past it, and
        the number of bytes of a torn last record (a write cut short by a crash), if any."""
        records: list[tuple[int, bytes]] = []
        offset, chunk = self.read_offset, _READ_CHUNK
        while len(records) < limit and offset < self.size:
            data = os.pread(self.fd, min(chunk, self.size - offset), offset)
            end = data.rfind(b"\n")
            if end < 0:
                if offset + len(data) >= self.size:
                    return records, self.size - offset
                chunk *= 2  # a record longer than the chunk (a long transcript)
                continue
            for line in data[: end + 1].splitlines(keepends=True):
                offset += len(line)
                records.append((offset, line))
                if len(records) == limit:
                    break
        return records, 0

    def consume(self, offset: int) -> None:
        self.read_offset = max(self.read_offset, offset)

    def reset(self) -> None:
        """Everything was read and written: empty the file."""
        os.ftruncate(self.fd, 0)
        self.size = self.read_offset = self._synced_size = 0
        self._truncations += 1

    def remove(self) -> None:
        """Delete the file, under the lock, then let go of it."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.release()

    def release(self) -> None:
        """Close (and so unlock) the file, leaving it for a live process to replay."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def orphans(spool_dir: Path, *, exclude: Path | None = None) -> Iterator[SpoolFile]:
    """Claim, one at a time, the spool files in `spool_dir` whose owner is gone. The caller
    replays each and then removes it, or releases it to try again later."""
    if not spool_dir.is_dir():
        return
    for path in sorted(spool_dir.glob("*.spool")):
        if exclude is not None and path == exclude:
            continue
        spool = SpoolFile.claim(path)
        if spool is not None:
            yield spool
