"""Prove a webhook came from our LiveKit server, as livekit-api's `WebhookReceiver` does.

livekit-server signs each delivery with a JWT in the `Authorization` header (the bare token, no
"Bearer"): HS256 with an API secret, `iss` = the API key, valid for five minutes, and a `sha256`
claim holding the base64 SHA-256 of the exact body. We make the receiver's checks ourselves, with
the same PyJWT call its TokenVerifier makes, because the receiver also turns every claim into
livekit's grant dataclasses (regular expressions over each key), which we never read: that was a
third of the verification's time, paid on every delivery. Every failure becomes our
WebhookVerificationError (401) or InvalidWebhookEvent (400, a verified body that is not an event),
with a reason that never contains a secret (the receiver's own words where it had some).

Several key pairs may be configured so that keys can be rotated: the token's `iss` picks the one
to verify with.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from datetime import timedelta

import jwt
from google.protobuf.json_format import Parse, ParseError
from livekit.protocol.webhook import WebhookEvent

from webhooks.errors import InvalidWebhookEvent, WebhookVerificationError

__all__ = ["InvalidWebhookEvent", "WebhookVerificationError", "WebhookVerifier"]

# LiveKit's own default: tolerates a little clock skew between its server and us.
DEFAULT_LEEWAY = timedelta(minutes=1)

# PyJWT's failures, most specific first (several derive from one another).
_JWT_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.MissingRequiredClaimError, "token lacks a required claim (exp)"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAlgorithmError, "token signed with an algorithm other than HS256"),
    (jwt.InvalidIssuerError, "token issuer does not match its key"),
    (jwt.DecodeError, "malformed token"),
    (jwt.InvalidTokenError, "invalid token"),
)


class WebhookVerifier:
    """Verifies deliveries against the configured API key pairs (key -> secret)."""

    def __init__(self, keys: Mapping[str, str], *, leeway: timedelta = DEFAULT_LEEWAY) -> None:
        if not keys or not all(keys.values()):
            raise ValueError("webhook verification needs at least one API key with its secret")
        self._secrets = dict(keys)
        self._leeway = leeway.total_seconds()
        # A token naming a key we do not have is checked against a secret nobody has, so that it
        # costs what a bad signature costs: neither the answer nor its timing says which keys exist.
        self._decoy = secrets.token_urlsafe(32)

    @property
    def api_keys(self) -> list[str]:
        return list(self._secrets)

    def verify(self, body: bytes, authorization: str | None) -> WebhookEvent:
        """The event in `body`, once the token proves its origin and covers exactly this body."""
        token = (authorization or "").strip()
        if not token:
            raise WebhookVerificationError("missing Authorization header")
        issuer = _issuer(token)
        secret = self._secrets.get(issuer)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            # livekit's receiver hashes body.encode(): a body that is not UTF-8 cannot match.
            raise WebhookVerificationError("body is not UTF-8") from None
        if secret is None:
            with contextlib.suppress(Exception):
                self._receive(body, token, "unknown", self._decoy)
            raise WebhookVerificationError("unknown API key")
        self._receive(body, token, issuer, secret)
        try:
            # Parsing comes after the hash check: the body is LiveKit's, but maybe not an event.
            event = Parse(text, WebhookEvent(), ignore_unknown_fields=True)
        except (ParseError, RecursionError) as exc:
            raise InvalidWebhookEvent(f"body is not a WebhookEvent: {exc}") from None
        if not event.id or not event.event:
            raise InvalidWebhookEvent("event without an id or an event name")
        return event

    def _receive(self, body: bytes, token: str, key: str, secret: str) -> None:
        """LiveKit's checks: the token is HS256-signed with `secret`, issued by `key`, not
        expired (an `exp` is required), and its `sha256` claim is the hash of `body`."""
        try:
            claims = jwt.decode(token, key=secret, issuer=key, algorithms=["HS256"],
                                leeway=self._leeway,
                                options={"verify_signature": True, "require": ["exp"]})
        except jwt.InvalidTokenError as exc:
            raise WebhookVerificationError(_jwt_reason(exc)) from None
        digest = claims.get("sha256")
        if not digest or not isinstance(digest, str):
            raise WebhookVerificationError("sha256 was not found in the token")
        try:
            claimed = base64.b64decode(digest)
        except (binascii.Error, ValueError):
            raise WebhookVerificationError("malformed sha256 claim") from None
        if not hmac.compare_digest(hashlib.sha256(body).digest(), claimed):
            raise WebhookVerificationError("hash mismatch")


def _issuer(token: str) -> str:
    """The API key the token claims to be signed with; `_receive` checks the claim after.

    Read straight from the payload segment: PyJWT's unverified decode costs as much again as the
    verification itself, and this runs on every delivery. The header is parsed here too, so that
    a segment nested too deep for the JSON parser (RecursionError) is a malformed token, here,
    and never an error inside PyJWT."""
    try:
        header, payload = token.split(".")[:2]
        _segment(header)
        claims = _segment(payload)
    except (ValueError, RecursionError):  # binascii.Error, JSONDecodeError, UnicodeDecodeError
        raise WebhookVerificationError("malformed token") from None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    if not issuer or not isinstance(issuer, str):
        raise WebhookVerificationError("token names no API key (iss)")
    return issuer


def _segment(segment: str) -> object:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _jwt_reason(exc: jwt.InvalidTokenError) -> str:
    return next(reason for kind, reason in _JWT_REASONS if isinstance(exc, kind))
