"""What an analysis contains: the organisation's analysis configuration (from its agent
configuration's policies, key `analysis`), and the reply a model must give, validated."""

from __future__ import annotations

from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

DEFAULT_INTENTS = ("book", "reschedule", "cancel", "question", "billing", "complaint", "other")
JOURNEY_STAGES = ("new_enquiry", "booking", "existing_appointment", "after_visit", "other")
DEFAULT_RUBRIC = ("The call succeeded if the caller's need was met during the call (an appointment "
                  "booked, moved or cancelled, or the question answered) or they were handed to "
                  "a person who could meet it.")


class AnalysisConfig(BaseModel):
    """agent_configs.policies["analysis"]: each organisation's own categories, rubric and fields."""

    model_config = ConfigDict(extra="forbid")

    intents: list[str] = Field(default_factory=lambda: list(DEFAULT_INTENTS), min_length=1,
                               max_length=30)
    success_rubric: str = Field(DEFAULT_RUBRIC, max_length=2000)
    # A JSON Schema (type object) of the fields the organisation wants filled from each call.
    fields_schema: dict[str, Any] = Field(default_factory=dict)

    @field_validator("fields_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value:
            jsonschema.Draft202012Validator.check_schema(value)
            if value.get("type") != "object":
                raise ValueError("fields_schema must describe an object")
        return value

    @classmethod
    def of(cls, policies_analysis: dict[str, Any] | None) -> AnalysisConfig:
        return cls.model_validate(policies_analysis or {})


class Success(BaseModel):
    passed: bool
    reason: str = Field(max_length=1000)


class Quality(BaseModel):
    score: int = Field(ge=1, le=10)
    reasoning: str = Field(max_length=1000)


class ModelReply(BaseModel):
    """The JSON the model must answer with. Validated with the organisation's configuration as
    context: the intent must be one of its categories and `fields` must match its schema."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(max_length=2000)
    intent: str
    journey_stage: Literal[JOURNEY_STAGES]  # type: ignore[valid-type]
    sentiment: Literal["positive", "neutral", "negative", "friction"]
    success: Success
    quality: Quality
    confidence: float = Field(ge=0, le=1)
    fields: dict[str, Any] = Field(default_factory=dict)
    follow_ups: list[str] = Field(default_factory=list, max_length=10)

    @field_validator("intent")
    @classmethod
    def _known_intent(cls, value: str, info: ValidationInfo) -> str:
        config: AnalysisConfig = (info.context or {})["config"]
        if value not in config.intents:
            raise ValueError(f"intent must be one of {', '.join(config.intents)}")
        return value

    @field_validator("fields")
    @classmethod
    def _fields_match_schema(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        config: AnalysisConfig = (info.context or {})["config"]
        if config.fields_schema:
            error = jsonschema.exceptions.best_match(
                jsonschema.Draft202012Validator(config.fields_schema).iter_errors(value))
            if error is not None:
                raise ValueError(f"fields: {error.message}")
        return value


def reply_json_schema(config: AnalysisConfig) -> dict[str, Any]:
    """The JSON Schema sent to the model as its response format, with this organisation's intents
    and fields in it."""
    schema = ModelReply.model_json_schema()
    schema["properties"]["intent"] = {"type": "string", "enum": list(config.intents)}
    if config.fields_schema:
        schema["properties"]["fields"] = config.fields_schema
    return schema
