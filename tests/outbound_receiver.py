"""A local receiver of our outbound webhooks for the tests: every request is verified with the
`standardwebhooks` library (the one a customer would use), never with our own signing code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Route:
    secrets: list[str]
    statuses: list[int] = field(default_factory=lambda: [200])  # the last one repeats
    delay_s: float = 0.0
    answered: int = 0


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: dict
    verified_with: tuple[int, ...]  # which of the route's secrets verify it
    at: float


class Receiver:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.received: list[Delivery] = []
        self.rejected: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    def route(self, name: str, secret: str, *, statuses: list[int] | None = None,
              delay_s: float = 0.0) -> str:
        self.routes[f"/{name}"] = Route([secret], statuses or [200], delay_s)
        return self.url(name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def of(self, name: str) -> list[Delivery]:
        return [d for d in self.received if d.path == f"/{name}"]

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        route = self.routes.get(request.path)
        raw = await request.read()
        if route is None:
            return web.Response(status=404)
        headers = dict(request.headers)
        verified, body = [], None
        for i, secret in enumerate(route.secrets):
            try:
                body = Webhook(secret).verify(raw, headers)
                verified.append(i)
            except WebhookVerificationError:
                pass
        if body is None:
            self.rejected.append(request.path)
            return web.Response(status=400)
        if route.delay_s:
            await asyncio.sleep(route.delay_s)
        status = route.statuses[min(route.answered, len(route.statuses) - 1)]
        route.answered += 1
        self.received.append(Delivery(request.path, headers, body, tuple(verified), time.monotonic()))
        return web.Response(status=status)

    async def wait_for(self, done: Callable[[], bool], within_s: float = 20.0) -> None:
        deadline = time.monotonic() + within_s
        while not done():
            if time.monotonic() > deadline:
                got = [(d.path, d.body["type"]) for d in self.received]
                raise AssertionError(f"timed out; received {got}")
            await asyncio.sleep(0.02)
