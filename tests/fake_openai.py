"""A small OpenAI-compatible HTTP server for the analysis tests: it answers
POST /v1/chat/completions from a script, one step per request, and keeps every request body.

Steps: Reply(content) answers 200 with a chat completion whose message is `content`;
Status(code) answers an error (429 with Retry-After: 0, so the client's own retry is quick);
Hang(seconds) answers only after `seconds` (longer than the client's timeout: a timeout).
When the script runs out, the last step repeats."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Reply:
    content: str


@dataclass(frozen=True)
class Status:
    code: int


@dataclass(frozen=True)
class Hang:
    seconds: float


@dataclass
class FakeOpenAI:
    script: list[Reply | Status | Hang]
    requests: list[dict] = field(default_factory=list)
    base_url: str = ""

    def next_step(self) -> Reply | Status | Hang:
        return self.script[min(len(self.requests) - 1, len(self.script) - 1)]

    async def chat(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        step = self.next_step()
        if isinstance(step, Hang):
            await asyncio.sleep(step.seconds)
            step = Reply("{}")
        if isinstance(step, Status):
            return web.json_response(
                {"error": {"message": f"scripted {step.code}", "type": "rate_limit_exceeded",
                           "code": None, "param": None}},
                status=step.code, headers={"retry-after": "0"})
        body = self.requests[-1]
        return web.json_response({
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": step.content}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
        })


@asynccontextmanager
async def fake_openai(script: list[Reply | Status | Hang]) -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI(list(script))
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()  # a free port, picked by the system
    fake.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    try:
        yield fake
    finally:
        await runner.cleanup()


def reply_json(**overrides) -> str:
    """A valid analysis reply for the default configuration, with `overrides` applied."""
    reply = {"summary": "The caller booked a cleaning for Monday.", "intent": "book",
             "journey_stage": "booking", "sentiment": "positive",
             "success": {"passed": True, "reason": "an appointment was booked"},
             "quality": {"score": 9, "reasoning": "quick and clear"}, "confidence": 0.9,
             "fields": {}, "follow_ups": []}
    reply.update(overrides)
    return json.dumps(reply)
