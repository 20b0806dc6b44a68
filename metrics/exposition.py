"""Serving the Prometheus text format (what `prometheus_client` renders) over aiohttp."""

from __future__ import annotations

import asyncio
import os

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

PATH = "/metrics"


class _Combined:
    """Every process's metrics from PROMETHEUS_MULTIPROC_DIR, plus this process's own that are
    not in those files: the ones created before the folder was set (LiveKit's worker metrics,
    made at import, before the worker sets PROMETHEUS_MULTIPROC_DIR for its job processes)."""

    def __init__(self, path: str) -> None:
        self._files = multiprocess.MultiProcessCollector(None, path=path)

    def collect(self):
        shared = list(self._files.collect())
        names = {family.name for family in shared}
        yield from shared
        yield from (family for family in REGISTRY.collect() if family.name not in names)


def render(registry: CollectorRegistry | None = None) -> bytes:
    """The metrics of `registry`; by default of this process, with those of every process
    writing to PROMETHEUS_MULTIPROC_DIR when it is set (the agent worker's job processes)."""
    if registry is None and "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        registry.register(_Combined(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
    return generate_latest(registry or REGISTRY)


async def _metrics(_request: web.Request) -> web.Response:
    # Collecting runs callbacks and, in multiprocess mode, reads files: off the event loop.
    body = await asyncio.to_thread(render)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_metrics_route(app: web.Application, path: str = PATH) -> None:
    app.router.add_get(path, _metrics)


async def start_metrics_server(host: str, port: int) -> web.AppRunner:
    """A server of `/metrics` alone (for a process with no HTTP app of its own); the caller
    closes it with `await runner.cleanup()`."""
    app = web.Application()
    add_metrics_route(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
