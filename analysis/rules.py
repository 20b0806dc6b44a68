"""The offline analyser: rules over the stored outcome, events, latencies and caller turns, for
when no model is configured (the keyless demo, a machine without network). Cruder than a model,
and its confidence says so; every analysis it makes is stamped analyser = "rules"."""

from __future__ import annotations

import re

from analysis.schema import AnalysisConfig
from db.analysis.analyses import Analysis
from db.analysis.facts import CallFacts

RULES_VERSION = "rules-1"

# What the call did, when it did something: the strongest evidence of what the caller wanted.
OUTCOME_INTENTS = {"appointment_booked": "book", "appointment_rescheduled": "reschedule",
                   "appointment_cancelled": "cancel", "information_provided": "question"}
# Otherwise what the caller said, first match wins (complaints before anything they complain of).
KEYWORD_INTENTS = (
    ("complaint", re.compile(r"\b(complain\w*|unacceptable|rude|terrible|awful|disappointed)\b")),
    ("billing", re.compile(r"\b(bill\w*|invoice|payment|pay|charge\w*|refund|insurance|cost|price)\b")),
    ("cancel", re.compile(r"\bcancel\w*\b")),
    ("reschedule", re.compile(r"\b(reschedul\w*|move|change) (my|the|our)?\s*appointment|\breschedul\w*")),
    ("book", re.compile(r"\b(book\w*|appointment|schedule|available|slot|opening)\b")),
    ("question", re.compile(r"\?|\b(what|when|where|how|which|do you|are you|is there)\b")),
)
JOURNEY = {"book": "booking", "reschedule": "existing_appointment", "cancel": "existing_appointment",
           "billing": "after_visit", "complaint": "after_visit", "question": "new_enquiry"}
NEGATIVE = re.compile(r"\b(angry|frustrat\w*|ridiculous|terrible|awful|upset|useless|annoy\w*|"
                      r"unacceptable|hate)\b")
POSITIVE = re.compile(r"\b(thanks?|thank you|great|perfect|wonderful|excellent|appreciate\w*|lovely)\b")
REPAIR = re.compile(r"\b(i said|that's not what|no,? i|you're not listening|what\?|sorry\?)")
SUCCESS_OUTCOMES = {"appointment_booked": "an appointment was booked",
                    "appointment_rescheduled": "the appointment was moved",
                    "appointment_cancelled": "the appointment was cancelled",
                    "information_provided": "the caller's question was answered",
                    "transferred": "the caller was handed to a person"}
SLOW_P90_MS, VERY_SLOW_P90_MS = 1500.0, 2500.0


def _percentile_90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


class RulesAnalyser:
    name = "rules"
    model = None
    prompt_version = RULES_VERSION

    async def aclose(self) -> None:
        pass

    async def analyse(self, facts: CallFacts, config: AnalysisConfig) -> Analysis:
        said = " ".join(t.content for t in facts.caller_turns).lower()
        intent, confidence = self._intent(facts, said, config)
        passed, reason = self._success(facts)
        quality, reasoning = self._quality(facts)
        return Analysis(
            call_id=facts.call_id, status="completed", analyser=self.name, model_used=None,
            prompt_version=self.prompt_version, intent=intent,
            journey_stage=JOURNEY.get(intent, "other"), sentiment=self._sentiment(facts, said),
            outcome=facts.outcome, success=passed, success_reason=reason, agent_quality=quality,
            quality_reasoning=reasoning, confidence=confidence,
            summary=(f"{intent.capitalize()} call, {len(facts.caller_turns)} caller turn(s), "
                     f"{facts.duration_seconds or 0}s; outcome {facts.outcome or 'none'}; "
                     f"ended: {facts.end_reason or facts.status}. (Offline rules analysis.)"),
            follow_ups=self._follow_ups(facts, intent, passed),
        )

    @staticmethod
    def _intent(facts: CallFacts, said: str, config: AnalysisConfig) -> tuple[str, float]:
        intent, confidence = OUTCOME_INTENTS.get(facts.outcome or ""), 0.7
        if intent is None:
            intent, confidence = next(((name, 0.4) for name, pattern in KEYWORD_INTENTS
                                       if pattern.search(said)), ("other", 0.2))
        if intent in config.intents:
            return intent, confidence
        # The organisation's own list lacks this category: its catch-all, or its last.
        return ("other" if "other" in config.intents else config.intents[-1]), 0.1

    @staticmethod
    def _sentiment(facts: CallFacts, said: str) -> str:
        if NEGATIVE.search(said):
            return "negative"
        errors = sum(e.severity in ("error", "critical") for e in facts.events)
        interruptions = sum(t.interrupted for t in facts.turns)
        if errors or interruptions >= 2 or REPAIR.search(said) or facts.status == "failed":
            return "friction"
        return "positive" if POSITIVE.search(said) else "neutral"

    @staticmethod
    def _success(facts: CallFacts) -> tuple[bool, str]:
        if facts.status != "completed":
            return False, f"the call {facts.status}: {facts.end_reason or 'no reason recorded'}"
        reason = SUCCESS_OUTCOMES.get(facts.outcome or "")
        if reason is None:
            return False, "the call ended without the caller's need being met"
        return True, reason

    @staticmethod
    def _quality(facts: CallFacts) -> tuple[int, str]:
        score, notes = 10, []
        errors = sum(e.severity in ("error", "critical") for e in facts.events)
        if errors:
            score -= min(4, 2 * errors)
            notes.append(f"{errors} error(s) during the call")
        p90 = _percentile_90([t.e2e_latency_ms for t in facts.turns
                              if t.role == "assistant" and t.e2e_latency_ms is not None])
        if p90 is not None and p90 > SLOW_P90_MS:
            score -= 2 if p90 > VERY_SLOW_P90_MS else 1
            notes.append(f"slow replies (p90 {p90:.0f} ms)")
        interruptions = sum(t.interrupted for t in facts.turns)
        if interruptions >= 2:
            score -= 1
            notes.append(f"interrupted {interruptions} times")
        if facts.status == "failed":
            score -= 3
            notes.append("the call failed")
        return max(1, score), ("; ".join(notes) or "no errors, prompt replies") + "."

    @staticmethod
    def _follow_ups(facts: CallFacts, intent: str, passed: bool) -> list[str]:
        follow_ups = []
        if facts.status == "failed":
            follow_ups.append("Call the caller back: the call failed.")
        elif not passed:
            follow_ups.append("Call the caller back: their need was not met.")
        if facts.outcome == "transferred":
            follow_ups.append("Check that the transfer reached someone.")
        if intent == "complaint":
            follow_ups.append("A manager should follow up on the complaint.")
        return follow_ups
