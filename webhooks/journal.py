"""Verified deliveries kept on local disk while Postgres is away, applied once it is back.

LiveKit's server retries a failed delivery only a few times (livekit-server 1.13 through
livekit/protocol's webhook notifier and hashicorp/go-retryablehttp's defaults: one attempt and
4 retries, 1, 2, 4 and 8 s apart, about 15 s in all; an event queued longer than 30 s is
dropped). A `room_finished` lost in a longer outage would leave a crashed agent's call open
forever. So during an outage the service appends each verified delivery's body to this journal,
fsync'd before it answers 200, and a background task applies the journal once Postgres answers.
Replaying is safe in any order and any number of times: each delivery is deduplicated on its
event id, and the effects merge whatever order they come in (webhooks/effects.py).

The file is the recorder's spool format (db.recorder.spool): one JSON line per delivery, under
an exclusive flock held by the live process (`webhooks-<pid>.spool` in the journal folder), so a
journal left by a dead process is claimed and applied by exactly one live one. The journal is
capped (`max_bytes`): past it a delivery is refused (503) and LiveKit retries it, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from db.recorder.spool import SpoolFile, decode, encode, orphans

log = logging.getLogger(__name__)

NAME = "webhooks"
_READ_BATCH = 200


class JournalFull(Exception):
    """The journal is at its size cap: the delivery is not kept (answer 503)."""


class DatabaseAway(Exception):
    """Raised by a replay's `apply` when Postgres is unavailable: stop, keep the rest."""


# Applies one journaled body; raises DatabaseAway to stop the replay with the body kept.
Apply = Callable[[str], Awaitable[None]]


class Journal:
    def __init__(self, folder: Path, *, max_bytes: int) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.kept = self.applied = 0
        self._file: SpoolFile | None = None
        self._replay_lock = asyncio.Lock()

    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._file = SpoolFile.create(self.folder, NAME)

    def close(self) -> None:
        """Fsync and let go of the file: removed if everything was applied, else left for the
        next process to apply."""
        journal, self._file = self._file, None
        if journal is None:
            return
        journal.sync_now()
        if journal.pending:
            log.warning("%d bytes of webhook deliveries not yet applied are left in %s; the next "
                        "service to start applies them", journal.size - journal.read_offset, journal.path)
            journal.release()
        else:
            journal.remove()

    @property
    def pending(self) -> bool:
        return self._file is not None and self._file.pending

    async def keep(self, body: str) -> None:
        """Append one verified delivery and fsync it. Raises JournalFull, or OSError."""
        journal = self._file
        line = encode({"body": body})
        if journal.size + len(line) > self.max_bytes:
            raise JournalFull(f"the webhook journal is at its cap of {self.max_bytes} bytes")
        journal.append([line])
        await journal.sync()
        self.kept += 1

    async def replay(self, apply: Apply) -> int:
        """Apply this process's journal, then those of dead processes, in the order kept;
        returns how many deliveries were applied. Stops when `apply` raises DatabaseAway."""
        async with self._replay_lock:
            count = 0
            try:
                if self._file is not None:
                    count += await self._replay_file(self._file, apply)
                for orphan in orphans(self.folder, exclude=self._file.path if self._file else None):
                    try:
                        count += await self._replay_file(orphan, apply)
                    finally:
                        if orphan.pending:
                            orphan.release()
                        else:
                            orphan.remove()
                            log.info("applied and removed the webhook journal %s", orphan.path)
            except DatabaseAway:
                pass
            self.applied += count
            return count

    async def _replay_file(self, journal: SpoolFile, apply: Apply) -> int:
        count = 0
        while journal.pending:
            records, _ = journal.read(_READ_BATCH)
            if not records:  # only a torn line, left by a crash mid-append: nothing to apply
                journal.consume(journal.size)
                break
            for end, line in records:
                await apply(decode(line)["body"])
                journal.consume(end)
                count += 1
        if journal is self._file and not journal.pending:
            journal.reset()
        return count

    async def keep_replaying(self, apply: Apply, interval: float) -> None:
        """Every `interval` seconds, apply whatever the journals hold (a task for the app's
        lifetime: cancel it to stop)."""
        while True:
            await asyncio.sleep(interval)
            try:
                count = await self.replay(apply)
            except Exception:  # a bug of ours must not end the task: the journal stays on disk
                log.exception("replaying the webhook journal failed; will retry")
                continue
            if count:
                log.info("applied %d journaled webhook deliveries", count)
