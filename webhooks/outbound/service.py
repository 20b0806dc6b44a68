"""The delivery loop as a part of `python -m webhooks`: started with the service, stopped with
it (in-flight requests get `timeout_s` to finish; leases bring back any cut short)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg

from webhooks.outbound.dispatcher import Dispatcher, OutboundOptions
from webhooks.settings import Settings

log = logging.getLogger(__name__)


def options(settings: Settings) -> OutboundOptions:
    return OutboundOptions(
        timeout_s=settings.outbound_timeout_s, per_endpoint=settings.outbound_per_endpoint,
        max_in_flight=settings.outbound_max_in_flight, poll_interval_s=settings.outbound_poll_interval_s)


@contextlib.asynccontextmanager
async def delivering(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[Dispatcher]:
    dispatcher = Dispatcher(pool, options=options(settings))
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    log.info("delivering outbound webhooks (up to %s at a time, %s per endpoint)",
             settings.outbound_max_in_flight, settings.outbound_per_endpoint)
    try:
        yield dispatcher
    finally:
        stop.set()
        await task
