"""Placeholders in configuration text (greeting, instructions) and in our own prompt files.

Configuration text is a literal, never a format string: "Say {0}", "5{" or a JSON example are
spoken or sent as written. Only the names in PLACEHOLDERS, written `{name}`, are replaced, in one
pass, so a value that itself holds braces is never read again. An unknown `{name}` is almost
certainly a typo (`{buisness}`), which the caller would hear read out: create_config refuses it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from db.errors import DomainError

PLACEHOLDERS = ("business", "location", "timezone", "today", "now", "caller_line")
_NAMED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class UnknownPlaceholder(DomainError):
    pass


def fill(text: str, values: Mapping[str, str]) -> str:
    """`text` with each known `{name}` replaced by its value ("" when not given); every other
    brace stays as written."""
    return _NAMED.sub(
        lambda m: values.get(m.group(1), "") if m.group(1) in PLACEHOLDERS else m.group(0), text)


def check_placeholders(field: str, text: str) -> None:
    """Refuse a `{name}` that is not one of PLACEHOLDERS (other braces are fine)."""
    unknown = sorted({m.group(1) for m in _NAMED.finditer(text)} - set(PLACEHOLDERS))
    if unknown:
        raise UnknownPlaceholder(
            f"the {field} has unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
            f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)} (other braces are kept as written)")
