"""What a worker process prepares once and every call in it shares: settings, the database
pool, the recorder, the VAD and the provider factory."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from agent.metrics import RecorderSampler
from agent.providers import ProviderFactory, load_factory
from agent.routing import RouteCache
from agent.settings import Settings
from db.desk import public_holidays
from db.pool import connection_options, create_pool
from db.recorder import Recorder, RecorderOptions

log = logging.getLogger(__name__)


@dataclass
class Resources:
    settings: Settings
    factory: ProviderFactory
    vad: Any = None
    pool: asyncpg.Pool | None = None
    recorder: Recorder | None = None
    routes: RouteCache = field(default_factory=RouteCache)  # answers calls while Postgres is away
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _sampler: asyncio.Task | None = None  # copies the recorder's stats into /metrics

    @classmethod
    def prepare(cls, settings: Settings, *, load_vad: bool = True) -> Resources:
        """The synchronous part, run in the process's setup hook (no event loop yet)."""
        public_holidays.load_calendars()
        vad = None
        if load_vad:
            from livekit.plugins import silero

            vad = silero.VAD.load(min_silence_duration=settings.vad_min_silence_seconds)
        return cls(settings=settings, factory=load_factory(settings.providers), vad=vad)

    async def ready(self) -> Resources:
        """Open the pool and start the recorder on the process's event loop, once."""
        async with self._lock:
            if self.pool is None:
                dsn = self.settings.database_url or os.environ["DATABASE_URL"]
                # min_size=0: a worker whose Postgres is away still starts and answers calls.
                self.pool = await create_pool(dsn, min_size=0, max_size=5,
                                              **connection_options(self.settings))
                options = RecorderOptions(flush_interval=self.settings.recorder_flush_seconds,
                                          pooled=self.settings.pooled)
                self.recorder = Recorder(dsn, spool_dir=self.settings.spool_dir, name="agent",
                                         options=options)
                await self.recorder.start()
                self._sampler = asyncio.create_task(RecorderSampler(self.recorder).run())
        return self

    async def close(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        if self.recorder is not None:
            await self.recorder.close(deadline=self.settings.flush_deadline_seconds)
            self.recorder = None
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
