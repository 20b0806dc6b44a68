"""Nothing personal in logs at INFO and above.

LiveKit attaches what a caller said, tool arguments and tool errors (which quote the caller's
words: "we do not offer a service called ...", a pydantic error quoting a name) to its log
records as `lk.pii.*` attributes, and its log formatters print every attribute. This filter drops
them from records at INFO and above, by LiveKit's own rule for what counts as personal; DEBUG
keeps them, for a developer's own machine."""

from __future__ import annotations

import logging

from livekit.agents.telemetry.pii import is_pii_attribute

# Where LiveKit's records are made (a logger's filters see only the records made on it).
LIVEKIT_LOGGER = "livekit.agents"


class DropPersonalAttributes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.INFO:
            for key in [k for k in record.__dict__ if is_pii_attribute(k)]:
                del record.__dict__[key]
        return True


def keep_personal_data_out_of_logs() -> None:
    """Install the filter on LiveKit's logger, once per process."""
    logger = logging.getLogger(LIVEKIT_LOGGER)
    if not any(isinstance(f, DropPersonalAttributes) for f in logger.filters):
        logger.addFilter(DropPersonalAttributes())
