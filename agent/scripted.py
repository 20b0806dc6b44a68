"""A scripted stand-in for the LLM: it follows a fixed policy instead of thinking.

Used by `python -m agent demo` when no OPENAI_API_KEY is set (the demo says so plainly) and by
the tests, where a real model is out of reach. It speaks LiveKit's LLM interface, so the rest
of the agent (tools, recording, metrics) runs exactly as with a real model."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import APIConnectOptions, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr


@dataclass
class Step:
    """What the model does next: say `text`, and/or call tools [(name, arguments)]."""

    text: str | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


Policy = Callable[[llm.ChatContext], Step]


def last_user_text(chat_ctx: llm.ChatContext) -> str:
    for item in reversed(chat_ctx.items):
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            return item.text_content or ""
    return ""


def pending_tool_outputs(chat_ctx: llm.ChatContext) -> list[llm.FunctionCallOutput]:
    """Tool outputs that arrived after the last user or assistant message."""
    outputs = []
    for item in reversed(chat_ctx.items):
        if isinstance(item, llm.FunctionCallOutput):
            outputs.append(item)
        elif isinstance(item, llm.ChatMessage) and item.role in ("user", "assistant"):
            break
    return list(reversed(outputs))


def tool_outputs(chat_ctx: llm.ChatContext, name: str) -> list[str]:
    """What the tool `name` answered so far in the conversation (not its errors), oldest first."""
    return [item.output for item in chat_ctx.items
            if isinstance(item, llm.FunctionCallOutput) and item.name == name and not item.is_error]


def offered_times(availability: str) -> list[tuple[str, str]]:
    """(spoken, ISO) of each free time in a check_availability answer, whose lines read
    '<spoken> = <ISO>[ with <provider>]'."""
    offered = []
    for line in availability.splitlines():
        if " = " in line:
            spoken, iso = line.split(" = ", 1)
            offered.append((spoken, iso.split(" ")[0]))
    return offered


def first_offered(chat_ctx: llm.ChatContext) -> tuple[str, str] | None:
    """(spoken, ISO) of the first free time the last availability check offered."""
    for output in reversed(tool_outputs(chat_ctx, "check_availability")):
        if offered := offered_times(output):
            return offered[0]
    return None


class ScriptedLLM(llm.LLM):
    def __init__(self, policy: Policy, *, model: str = "scripted", delay: float = 0.0) -> None:
        super().__init__()
        self.policy = policy
        self._model = model
        self.delay = delay
        self._ids = itertools.count(1)
        self._last_prompt_tokens = 0

    def _cached(self, prompt_tokens: int) -> int:
        """Tokens of this prompt a provider would serve from its cache: the previous prompt,
        which this one extends."""
        prefix = min(prompt_tokens, self._last_prompt_tokens)
        self._last_prompt_tokens = prompt_tokens
        return prefix // CACHE_STEP * CACHE_STEP if prefix >= CACHE_MINIMUM else 0

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return "scripted"

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        return _ScriptedStream(self, chat_ctx=chat_ctx, tools=tools or [],
                               conn_options=conn_options)


class _ScriptedStream(llm.LLMStream):
    async def _run(self) -> None:
        scripted: ScriptedLLM = self._llm  # type: ignore[assignment]
        step = scripted.policy(self._chat_ctx)
        request_id = f"scripted-{next(scripted._ids)}"
        if scripted.delay:
            await asyncio.sleep(scripted.delay)
        words = (step.text or "").split(" ") if step.text else []
        for i, word in enumerate(words):
            chunk = word if i == 0 else " " + word
            self._event_ch.send_nowait(llm.ChatChunk(
                id=request_id, delta=llm.ChoiceDelta(role="assistant", content=chunk)))
        if step.calls:
            self._event_ch.send_nowait(llm.ChatChunk(id=request_id, delta=llm.ChoiceDelta(
                role="assistant",
                tool_calls=[
                    llm.FunctionToolCall(name=name, arguments=json.dumps(arguments),
                                         call_id=f"{request_id}-call-{n}")
                    for n, (name, arguments) in enumerate(step.calls)
                ],
            )))
        prompt_tokens = _tokens(_prompt_text(self._chat_ctx, self._tools))
        completion_tokens = max(1, _tokens((step.text or "") + json.dumps(step.calls)))
        cached = scripted._cached(prompt_tokens)
        self._event_ch.send_nowait(llm.ChatChunk(id=request_id, usage=llm.CompletionUsage(
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            prompt_cached_tokens=cached, total_tokens=prompt_tokens + completion_tokens)))


# Usage as an OpenAI model would report it, so that costs computed from it look like a real
# call's: about four characters a token, and the prompt prefix of the previous request served
# from the cache in steps of 128 tokens once it reaches 1,024 (OpenAI's prompt caching).
CHARS_PER_TOKEN = 4
CACHE_MINIMUM, CACHE_STEP = 1024, 128


def _tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def _prompt_text(chat_ctx: llm.ChatContext, tools: list[Any]) -> str:
    parts = []
    for item in chat_ctx.items:
        if isinstance(item, llm.ChatMessage):
            parts.append(item.text_content or "")
        elif isinstance(item, llm.FunctionCall):
            parts.append(item.name + item.arguments)
        elif isinstance(item, llm.FunctionCallOutput):
            parts.append(item.output)
    for tool in tools:  # the tool schemas are part of every request
        info = getattr(tool, "info", None)
        parts.append(getattr(info, "name", "") + (getattr(info, "description", None) or ""))
    return "".join(parts)
