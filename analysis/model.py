"""The analyser that asks an OpenAI-compatible model (the `openai` client, structured outputs),
validating its reply with pydantic against the organisation's configuration.

A reply that fails validation is answered once with the validation error; a second bad reply is
stored as a failed analysis with the raw reply (asking again would cost more without reason to
expect better). Network errors, timeouts and rate limits are the client's to retry (its
max_retries honour 429 Retry-After); what still fails raises, and the job is retried later.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from openai import AsyncOpenAI
from pydantic import ValidationError

from analysis.schema import JOURNEY_STAGES, AnalysisConfig, ModelReply, reply_json_schema
from db.analysis.analyses import Analysis
from db.analysis.facts import CallFacts

PROMPT_VERSION = "analyse-1"
# The transcript is bounded so that a very long call cannot blow the context: its end is kept
# (how a call ended says most about it).
MAX_TRANSCRIPT_CHARS = 24_000
MAX_RAW_REPLY_CHARS = 20_000
SPEAKERS = {"user": "Caller", "assistant": "Receptionist"}


def _system_prompt(config: AnalysisConfig) -> str:
    template = resources.files("analysis.prompts").joinpath("system.md").read_text()
    fields = (f"an object matching this JSON Schema: {json.dumps(config.fields_schema)}"
              if config.fields_schema else "an empty object {}")
    return template.format(intents=", ".join(config.intents),
                           journey_stages=", ".join(JOURNEY_STAGES),
                           rubric=config.success_rubric, fields=fields)


def _call_text(facts: CallFacts) -> str:
    transcript = "\n".join(f"{SPEAKERS[t.role]}: {t.content}" for t in facts.turns
                           if t.role in SPEAKERS and t.content.strip())
    tools = [e.name for e in facts.events if e.event_type == "tool_call" and e.name]
    errors = sum(e.severity in ("error", "critical") for e in facts.events)
    return (f"Call status: {facts.status}; end reason: {facts.end_reason or '-'}; recorded "
            f"outcome: {facts.outcome or '-'}; duration: {facts.duration_seconds or 0}s; tools "
            f"used: {', '.join(tools) or 'none'}; errors: {errors}.\n\nTranscript:\n"
            f"{transcript[-MAX_TRANSCRIPT_CHARS:]}")


class ModelAnalyser:
    name = "model"
    prompt_version = PROMPT_VERSION

    def __init__(self, client: AsyncOpenAI, *, model: str) -> None:
        self.client = client
        self.model = model

    async def aclose(self) -> None:
        await self.client.close()

    async def analyse(self, facts: CallFacts, config: AnalysisConfig) -> Analysis:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": _system_prompt(config)},
            {"role": "user", "content": _call_text(facts)},
        ]
        raw = await self._ask(messages, config)
        try:
            return self._analysis(facts, self._validate(raw, config))
        except ValidationError as first:
            messages += [
                {"role": "assistant", "content": raw},
                {"role": "user", "content": "That reply does not match the schema: "
                 f"{_errors(first)}. Answer again with one corrected JSON object."},
            ]
        raw = await self._ask(messages, config)
        try:
            return self._analysis(facts, self._validate(raw, config))
        except ValidationError as second:
            return Analysis(
                call_id=facts.call_id, status="failed", analyser=self.name, model_used=self.model,
                prompt_version=self.prompt_version, outcome=facts.outcome,
                error=f"the reply failed the schema twice: {_errors(second)}"[:1000],
                raw_reply=raw[:MAX_RAW_REPLY_CHARS],
            )

    async def _ask(self, messages: list[dict[str, Any]], config: AnalysisConfig) -> str:
        response = await self.client.chat.completions.create(
            model=self.model, messages=messages, temperature=0,
            response_format={"type": "json_schema", "json_schema": {
                "name": "call_analysis", "schema": reply_json_schema(config), "strict": False}},
        )
        return response.choices[0].message.content or ""

    @staticmethod
    def _validate(raw: str, config: AnalysisConfig) -> ModelReply:
        return ModelReply.model_validate_json(raw, context={"config": config})

    def _analysis(self, facts: CallFacts, reply: ModelReply) -> Analysis:
        return Analysis(
            call_id=facts.call_id, status="completed", analyser=self.name, model_used=self.model,
            prompt_version=self.prompt_version, summary=reply.summary, intent=reply.intent,
            journey_stage=reply.journey_stage, sentiment=reply.sentiment, outcome=facts.outcome,
            success=reply.success.passed, success_reason=reply.success.reason,
            agent_quality=reply.quality.score, quality_reasoning=reply.quality.reasoning,
            confidence=reply.confidence, extraction=reply.fields, follow_ups=reply.follow_ups,
        )


def _errors(exc: ValidationError) -> str:
    """The validation errors without the input echoed back (it may quote the transcript)."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'reply'}: {e['msg']}" for e in exc.errors())
