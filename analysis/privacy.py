"""An analysis as an organisation that redacts personal data (organizations.redact_pii) stores
it: every free-text part (summary, reasons, extracted fields, follow-ups, the model's raw reply,
an error quoting it) through the redactor of the call's country. Categories, scores and flags
are not text about anyone and stay as they are, so KPIs read the same."""

from __future__ import annotations

import dataclasses

from db.analysis.analyses import Analysis
from db.privacy.redaction import Redactor

TEXT_FIELDS = ("summary", "success_reason", "quality_reasoning", "error", "raw_reply")
JSON_FIELDS = ("extraction", "follow_ups")


def redacted(analysis: Analysis, redactor: Redactor) -> Analysis:
    changes: dict = {}
    for name in TEXT_FIELDS:
        value = getattr(analysis, name)
        if value:
            changes[name] = redactor(value).text
    for name in JSON_FIELDS:
        changes[name], _ = redactor.value(getattr(analysis, name))
    return dataclasses.replace(analysis, **changes)
