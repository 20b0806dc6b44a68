"""What changed between two versions of an agent configuration: a unified diff per field (pure)."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass

from db.desk.configs import AgentConfig

COMPARED = ("label", "instructions", "greeting", "script_overrides", "policies", "language",
            "stt_model", "llm_model", "tts_model", "tts_voice")


@dataclass(frozen=True)
class FieldDiff:
    field: str
    diff: str  # unified diff lines, "" when the field is the same


def _text(value) -> list[str]:
    if isinstance(value, dict):
        return json.dumps(value, indent=2, sort_keys=True).splitlines()
    return ("" if value is None else str(value)).splitlines()


def diff_configs(old: AgentConfig, new: AgentConfig) -> list[FieldDiff]:
    """The fields that differ, in COMPARED order."""
    result = []
    for name in COMPARED:
        before, after = _text(getattr(old, name)), _text(getattr(new, name))
        if before != after:
            lines = difflib.unified_diff(before, after, f"v{old.version}", f"v{new.version}", lineterm="")
            result.append(FieldDiff(field=name, diff="\n".join(lines)))
    return result
