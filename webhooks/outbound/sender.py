"""One HTTP POST of a signed delivery, with a hard timeout, reported as a plain result.

Redirects are not followed (a receiver that moved must be updated, not guessed at), and the
response body is not read beyond a little, so a slow or huge answer costs one timeout at most.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class Response:
    status: int | None
    latency_ms: float
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        return self.status == 410


class Sender:
    """Owns one aiohttp session; `close` it when done."""

    def __init__(self, *, timeout_s: float, max_connections: int = 100) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections), timeout=self._timeout)

    async def post(self, url: str, *, headers: dict[str, str], body: bytes) -> Response:
        started = time.perf_counter()
        try:
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                await resp.content.read(1024)
                error = None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
                return Response(resp.status, _ms(started), error)
        except TimeoutError:
            return Response(None, _ms(started), f"no answer within {self._timeout.total:g} s")
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            return Response(None, _ms(started), f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])

    async def close(self) -> None:
        await self._session.close()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
