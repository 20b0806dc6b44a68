"""The webhook service's own errors, each answered with one HTTP status (webhooks/app.py)."""

from __future__ import annotations


class WebhookVerificationError(Exception):
    """The request is not proven to come from our LiveKit server: 401. `reason` says why in
    words safe to log and to answer with; it never contains a secret or the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidWebhookEvent(Exception):
    """A verified body that is not an event we can record (not a WebhookEvent, no id, no
    event name, a participant event without its participant ...): 400, nothing written."""


class BodyTooLarge(Exception):
    """The request body is over the configured limit: 413, read no further."""
