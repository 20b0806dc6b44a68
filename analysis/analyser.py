"""The Analyser protocol, and what every analysis goes through whichever analyser makes it."""

from __future__ import annotations

import logging
from typing import Protocol

from pydantic import ValidationError

from analysis.schema import AnalysisConfig
from db.analysis.analyses import Analysis
from db.analysis.facts import CallFacts

log = logging.getLogger(__name__)


class Analyser(Protocol):
    name: str  # stored with each analysis: "model" or "rules"
    model: str | None
    prompt_version: str | None

    async def analyse(self, facts: CallFacts, config: AnalysisConfig) -> Analysis:
        """An analysis of a call in which the caller spoke. Raises when it could not be made
        this time (the model unreachable, too slow): the job is retried later."""
        ...

    async def aclose(self) -> None:
        """Release what it holds (the model client's connections)."""
        ...


def config_of(facts: CallFacts) -> AnalysisConfig:
    """The call's analysis configuration; the defaults when the stored one is unusable (it is
    checked again here because it may predate the checks)."""
    try:
        return AnalysisConfig.of(facts.analysis_config)
    except ValidationError:
        log.warning("call %s: its agent configuration's analysis settings are invalid; using the "
                    "defaults", facts.call_id)
        return AnalysisConfig()


async def analyse_call(analyser: Analyser, facts: CallFacts) -> Analysis:
    """The call's analysis: 'no_conversation' without asking anyone when the caller never spoke."""
    if not facts.caller_turns:
        return Analysis(
            call_id=facts.call_id, status="no_conversation", analyser=analyser.name,
            model_used=None, prompt_version=None, outcome=facts.outcome,
            summary=f"No conversation: the caller never spoke (call {facts.status}, "
                    f"{facts.end_reason or 'no end reason'}).",
        )
    return await analyser.analyse(facts, config_of(facts))
