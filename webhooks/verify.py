"""Prove a webhook came from our LiveKit server, with the checks livekit-api's `WebhookReceiver`
makes, in our own code.

livekit-server signs each delivery with a JWT in the `Authorization` header (the bare token, no
"Bearer"): HS256 with an API secret, `iss` = the API key, valid for five minutes, and a `sha256`
claim holding the base64 SHA-256 of the exact body. The receiver verifies it with PyJWT
(`jwt.decode(token, secret, issuer=key, algorithms=["HS256"], leeway=...)`) and then turns every
claim into livekit's grant dataclasses, which we never read. Both were most of the service's CPU
per delivery (PyJWT alone a sixth, under bench/webhooks.py: it merges option dicts, looks up the
algorithm, prepares the key and checks every registered claim on each call). A webhook token is
one fixed shape, so the checks are made here directly, with the standard library's HMAC:

- three base64url segments; the header a JSON object whose `alg` is exactly HS256 and that names
  no critical extension (`crit`: RFC 7515 says a verifier that does not understand one must
  refuse the token);
- the signature, HMAC-SHA256 with the secret of the key the token names in `iss`, compared in
  constant time over the two first segments as sent;
- the claims a JSON object: `exp` required, an integer, not past; `nbf` and `iat`, if present,
  integers not in the future; no audience (`aud`: PyJWT refuses one it was not told to expect);
  `sub` and `jti` strings if present; a minute of leeway for clock skew, as LiveKit allows;
- then the body: the `sha256` claim must be the hash of exactly these bytes.

Every failure becomes our WebhookVerificationError (401) with a reason that never contains a
secret, or InvalidWebhookEvent (400, a verified body that is not an event). A token that names a
key we do not have is checked against a secret nobody has, so that it costs what a bad
signature costs. Several key pairs may be configured so that keys can be rotated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from datetime import timedelta

from livekit.protocol.webhook import WebhookEvent

from webhooks.errors import InvalidWebhookEvent, WebhookVerificationError
from webhooks.events import parse_event

__all__ = ["InvalidWebhookEvent", "WebhookVerificationError", "WebhookVerifier"]

# LiveKit's own default: tolerates a little clock skew between its server and us.
DEFAULT_LEEWAY = timedelta(minutes=1)


class WebhookVerifier:
    """Verifies deliveries against the configured API key pairs (key -> secret)."""

    def __init__(self, keys: Mapping[str, str], *, leeway: timedelta = DEFAULT_LEEWAY) -> None:
        if not keys or not all(keys.values()):
            raise ValueError("webhook verification needs at least one API key with its secret")
        self._secrets = {key: secret.encode() for key, secret in keys.items()}
        self._leeway = leeway.total_seconds()
        self._decoy = secrets.token_bytes(32)

    @property
    def api_keys(self) -> list[str]:
        return list(self._secrets)

    def verify(self, body: bytes, authorization: str | None) -> WebhookEvent:
        """The event in `body`, once the token proves its origin and covers exactly this body."""
        token = (authorization or "").strip()
        if not token:
            raise WebhookVerificationError("missing Authorization header")
        claims = self._claims(token)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            # livekit's receiver hashes body.encode(): a body that is not UTF-8 cannot match.
            raise WebhookVerificationError("body is not UTF-8") from None
        digest = claims.get("sha256")
        if not digest or not isinstance(digest, str):
            raise WebhookVerificationError("sha256 was not found in the token")
        try:
            claimed = base64.b64decode(digest)
        except (binascii.Error, ValueError):
            raise WebhookVerificationError("malformed sha256 claim") from None
        if not hmac.compare_digest(hashlib.sha256(body).digest(), claimed):
            raise WebhookVerificationError("hash mismatch")
        # Parsing comes after the hash check: the body is LiveKit's, but maybe not an event.
        event = parse_event(text)
        if not event.id or not event.event:
            raise InvalidWebhookEvent("event without an id or an event name")
        return event

    def _claims(self, token: str) -> dict:
        """The token's claims, once its signature and times check out."""
        try:
            header_segment, payload_segment, signature_segment = token.split(".")
            header = _segment(header_segment)
            claims = _segment(payload_segment)
            signature = _decoded(signature_segment)
        except (ValueError, RecursionError):  # binascii.Error, JSONDecodeError, UnicodeDecodeError
            raise WebhookVerificationError("malformed token") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise WebhookVerificationError("malformed token")
        if header.get("alg") != "HS256":
            raise WebhookVerificationError("token signed with an algorithm other than HS256")
        if "crit" in header:
            raise WebhookVerificationError("token needs extensions we do not support (crit)")
        issuer = claims.get("iss")
        if not issuer or not isinstance(issuer, str):
            raise WebhookVerificationError("token names no API key (iss)")
        secret = self._secrets.get(issuer)
        signed = f"{header_segment}.{payload_segment}".encode()
        expected = hmac.digest(secret or self._decoy, signed, "sha256")
        # Compared first, whatever the key: an unknown key costs what a bad signature costs.
        if not hmac.compare_digest(expected, signature) or secret is None:
            raise WebhookVerificationError("unknown API key" if secret is None else "bad signature")
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: dict) -> None:
        now = time.time()
        if claims.get("exp") is None:
            raise WebhookVerificationError("token lacks a required claim (exp)")
        if _seconds(claims, "exp") <= now - self._leeway:
            raise WebhookVerificationError("token expired")
        for claim in ("nbf", "iat"):
            if claim in claims and _seconds(claims, claim) > now + self._leeway:
                raise WebhookVerificationError(f"token not yet valid ({claim})")
        if claims.get("aud"):
            raise WebhookVerificationError("token has an audience (aud) we do not expect")
        for claim in ("sub", "jti"):
            if claim in claims and not isinstance(claims[claim], str):
                raise WebhookVerificationError(f"malformed token ({claim} is not a string)")


def _decoded(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _segment(segment: str) -> object:
    return json.loads(_decoded(segment))


def _seconds(claims: dict, claim: str) -> int:
    """A time claim as whole epoch seconds (PyJWT's reading: int() of what it holds)."""
    try:
        return int(claims[claim])
    except (ValueError, TypeError, OverflowError):
        raise WebhookVerificationError(f"malformed token ({claim} is not an integer)") from None
