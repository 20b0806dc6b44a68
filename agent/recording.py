"""One call's recording: AgentSession events in, recorder rows out.

Every handler only builds a row and hands it to the recorder (enqueue, no I/O), so the voice
loop never waits on the database. Ids are derived from LiveKit's own ids (chat item id, tool
call id), so a handler that runs twice writes nothing new."""

from __future__ import annotations

import itertools
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from livekit.agents import llm, metrics
from livekit.agents.voice import events as ev

from db import ids
from db.calls.events import Event
from db.calls.messages import Message
from db.privacy.redaction import Redactor

log = logging.getLogger(__name__)

# ChatMessage.metrics key (seconds) -> voice_messages column (milliseconds)
LATENCY_COLUMNS = {
    "transcription_delay": "transcription_delay_ms",
    "end_of_turn_delay": "end_of_turn_delay_ms",
    "llm_node_ttft": "llm_ttft_ms",
    "tts_node_ttfb": "tts_ttfb_ms",
    "e2e_latency": "e2e_latency_ms",
}


def _at(timestamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp else None


def _latencies(report: dict[str, Any]) -> dict[str, float]:
    return {
        column: round(report[key] * 1000, 3)
        for key, column in LATENCY_COLUMNS.items()
        if isinstance(report.get(key), int | float) and report[key] >= 0
    }


class CallRecording:
    """Attach to an AgentSession; writes its turns and events for the call `session_id`."""

    def __init__(self, recorder: Any, *, session_id: str, llm_model: str | None = None,
                 first_turn: int = 0, redactor: Redactor | None = None) -> None:
        """`first_turn`: the sequence number of this job's first message, after those of the
        jobs that had the call before it (agent.opening.open_call, time_turn). With a
        `redactor` (the organisation's redact_pii), what is stored is redacted: message text,
        event payloads, the transcript and the session report (redact_value); the live
        conversation keeps the real text, which never passes through here."""
        self.recorder = recorder
        self.redactor = redactor
        self.session_id = session_id
        self.call_id = ids.call_id(session_id)
        self.llm_model = llm_model
        self._sequence = itertools.count(first_turn)
        # Events without a natural key are numbered per job: the job's own prefix keeps a second
        # job in the same room from deriving the first one's event ids (and being skipped).
        self._job_key = uuid.uuid4().hex[:12]
        self._event_keys = itertools.count()
        self._turns = first_turn
        self._pending_tokens = (0, 0)  # (prompt, completion) since the last assistant message
        self._started_tools: set[str] = set()
        self.transcript: list[str] = []

    def attach(self, session: Any) -> None:
        session.on("conversation_item_added", self.on_item_added)
        session.on("tool_execution_updated", self.on_tool_update)
        session.on("function_tools_executed", self.on_tools_executed)
        # Token counts come from the model's own metrics events: the session-level
        # metrics_collected event is deprecated in livekit-agents 1.8.
        if isinstance(session.llm, llm.LLM):
            session.llm.on("metrics_collected", self.on_metrics)
        session.on("agent_false_interruption", self.on_false_interruption)
        session.on("error", self.on_error)

    def event(self, event_type: str, payload: dict | None = None, *, key: str | None = None,
              severity: str = "info", occurred_at: datetime | None = None) -> None:
        """Record one call event. `key` (unique within the call) makes a re-record a no-op."""
        self.recorder.event(Event(
            id=ids.event_id(self.call_id, key or f"{event_type}:{self._job_key}:{next(self._event_keys)}"),
            call_id=self.call_id,
            event_type=event_type,
            payload=self.redact_value(payload or {}),
            severity=severity,
            turn_index=self._turns,
            occurred_at=occurred_at or datetime.now(UTC),
        ))

    def _redact(self, text: str) -> tuple[str, list[str]]:
        if self.redactor is None or not text:
            return text, []
        result = self.redactor(text)
        return result.text, sorted(result.kinds)

    def redact_value(self, value: Any) -> Any:
        """A JSON value as it may be stored: redacted when the organisation asks for it, with
        the kinds removed under "redacted" (dicts only) and never the values."""
        if self.redactor is None or value is None:
            return value
        clean, kinds = self.redactor.value(value)
        if kinds and isinstance(clean, dict):
            clean["redacted"] = sorted(kinds)
        return clean

    def on_item_added(self, event: ev.ConversationItemAddedEvent) -> None:
        item = event.item
        if not isinstance(item, llm.ChatMessage) or item.role not in ("user", "assistant", "system"):
            return
        text, redacted = self._redact(item.text_content or "")
        report = dict(item.metrics or {})
        prompt, completion = self._pending_tokens if item.role == "assistant" else (None, None)
        if item.role == "assistant":
            self._pending_tokens = (0, 0)
        self.recorder.message(Message(
            call_id=self.call_id,
            sequence_number=next(self._sequence),
            item_id=item.id,
            role=item.role,
            content=text,
            interrupted=item.interrupted,
            transcript_confidence=item.transcript_confidence,
            started_at=_at(report.get("started_speaking_at")) or _at(item.created_at),
            ended_at=_at(report.get("stopped_speaking_at")),
            prompt_tokens=prompt,
            completion_tokens=completion,
            tokens_used=(prompt or 0) + (completion or 0),
            model_used=self.llm_model if item.role == "assistant" else None,
            metadata={"redacted": redacted} if redacted else {},
            **_latencies(report),
        ))
        self._turns += 1
        if item.role == "assistant" and item.interrupted:
            self.event("interruption", {"item_id": item.id}, key=f"interruption:{item.id}")
        if text:
            speaker = {"user": "Caller", "assistant": "Agent"}.get(item.role, "System")
            self.transcript.append(f"{speaker}: {text}")

    def _tool_call(self, call: llm.FunctionCall) -> None:
        if call.call_id in self._started_tools:
            return
        self._started_tools.add(call.call_id)
        self.event("tool_call", {"name": call.name, "arguments": call.arguments,
                                 "call_id": call.call_id},
                   key=f"tool_call:{call.call_id}", occurred_at=_at(call.created_at))

    def on_tool_update(self, event: ev.ToolExecutionUpdatedEvent) -> None:
        # Recorded when the tool starts, so what the tool itself records follows its call.
        if event.update.type == "tool_call_started":
            self._tool_call(event.update.function_call)

    def on_tools_executed(self, event: ev.FunctionToolsExecutedEvent) -> None:
        for call, output in event.zipped():
            self._tool_call(call)
            if output is not None:
                self.event("tool_result", {"name": call.name, "call_id": call.call_id,
                                           "output": output.output, "is_error": output.is_error},
                           key=f"tool_result:{call.call_id}",
                           severity="warning" if output.is_error else "info",
                           occurred_at=_at(output.created_at))

    def on_metrics(self, report: Any) -> None:
        if isinstance(report, metrics.LLMMetrics):
            prompt, completion = self._pending_tokens
            self._pending_tokens = (prompt + report.prompt_tokens,
                                    completion + report.completion_tokens)

    def on_false_interruption(self, event: ev.AgentFalseInterruptionEvent) -> None:
        self.event("false_interruption", {"resumed": event.resumed},
                   occurred_at=_at(event.created_at))

    def on_error(self, event: ev.ErrorEvent) -> None:
        error = event.error
        recoverable = bool(getattr(error, "recoverable", False))
        source = type(event.source).__name__
        log.warning("session error from %s (recoverable=%s): %r", source, recoverable, error)
        self.event("error", {"error_type": type(error).__name__, "source": source,
                             "recoverable": recoverable, "message": repr(error)[:2000]},
                   severity="warning" if recoverable else "error",
                   occurred_at=_at(event.created_at))
