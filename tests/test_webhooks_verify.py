"""Every way a delivery is refused: unverified (401), too large (413), wrong method (405), verified
but not an event (400). A refused delivery writes nothing and logs one line without secrets."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
import warnings
from datetime import timedelta

import jwt
import pytest
from jwt.warnings import InsecureKeyLengthWarning
from livekit.api import AccessToken

from tests.livekit_webhooks import (
    API_KEY,
    API_SECRET,
    OLD_KEY,
    OLD_SECRET,
    body_of,
    post,
    realistic_call,
    sign,
    webhook_client,
)
from webhooks.app import UNVERIFIED as UNVERIFIED_ANSWER
from webhooks.app import WEBHOOK_PATH

pytestmark = [
    pytest.mark.db,
    # livekit-server --dev's secret is short; PyJWT says so on every token.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

LIMIT = 4096


@pytest.fixture
async def client(pool):
    async with webhook_client(pool, max_body_bytes=LIMIT) as c:
        yield c


async def nothing_written(pool) -> bool:
    async with pool.acquire() as conn:
        counts = await conn.fetchrow(
            "select (select count(*) from webhook_events) as events, "
            "(select count(*) from voice_calls) as calls, "
            "(select count(*) from call_participants) as participants"
        )
    return tuple(counts) == (0, 0, 0)


def _digest(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


BODY = body_of(realistic_call()["caller_joined"])
OTHER_BODY = body_of(realistic_call()["room_started"])


def _unsigned_claims(**extra) -> dict:
    return {"iss": API_KEY, "sub": "", "nbf": int(time.time()), "exp": int(time.time()) + 300, **extra}


# The cases' tokens are made when the tests are collected, maybe many minutes before their case
# runs: they expire in six hours (AccessToken's default ttl), and their future is a day away.
EXPIRES, A_DAY_AHEAD = int(time.time()) + 6 * 3600, int(time.time()) + 24 * 3600


def _signed(*, algorithm: str = "HS256", headers: dict | None = None, **claims) -> str:
    """A token signed with the right key and secret, with other claims than livekit-server's."""
    lasting = {**_unsigned_claims(), "exp": EXPIRES}
    return jwt.encode({**lasting, **claims}, API_SECRET, algorithm=algorithm, headers=headers)


def _unverified_cases() -> list[tuple]:
    """(case, body, Authorization header or None, reason in the answer)"""
    return [
        ("missing header", BODY, None, "missing Authorization header"),
        ("empty header", BODY, "", "missing Authorization header"),
        ("not a JWT", BODY, "not-a-token", "malformed token"),
        ("Bearer prefix (livekit-server sends the bare token)", BODY, "Bearer " + sign(BODY),
         "malformed token"),
        ("wrong secret for a known key", BODY, sign(BODY, secret="not-the-secret"), "bad signature"),
        ("unknown API key", BODY, sign(BODY, key="APIstranger", secret="whatever"), "unknown API key"),
        ("token names no key", BODY, jwt.encode({"exp": int(time.time()) + 300, "sha256": _digest(BODY)},
                                                API_SECRET, algorithm="HS256"), "names no API key"),
        ("expired token", BODY, sign(BODY, ttl=timedelta(minutes=-2)), "token expired"),
        ("token without exp", BODY,
         jwt.encode({"iss": API_KEY, "sha256": _digest(BODY)}, API_SECRET, algorithm="HS256"),
         "required claim"),
        ("alg none", BODY, jwt.encode(_unsigned_claims(sha256=_digest(BODY)), None, algorithm="none"),
         "algorithm other than HS256"),
        ("HS512, the right secret", BODY, _signed(sha256=_digest(BODY), algorithm="HS512"),
         "algorithm other than HS256"),
        ("a critical extension", BODY, _signed(sha256=_digest(BODY), headers={"crit": ["exp"]}),
         "extensions we do not support"),
        ("not valid before a time to come", BODY, _signed(sha256=_digest(BODY), nbf=A_DAY_AHEAD),
         "not yet valid (nbf)"),
        ("issued in the future", BODY, _signed(sha256=_digest(BODY), iat=A_DAY_AHEAD),
         "not yet valid (iat)"),
        ("exp not a number", BODY, _signed(sha256=_digest(BODY), exp="soon"), "exp is not an integer"),
        ("an audience", BODY, _signed(sha256=_digest(BODY), aud="someone-else"), "audience"),
        ("sub not a string", BODY, _signed(sha256=_digest(BODY), sub=7), "sub is not a string"),
        ("signature of another token", BODY,
         sign(BODY).rsplit(".", 1)[0] + "." + sign(OTHER_BODY).rsplit(".", 1)[1], "bad signature"),
        ("four segments", BODY, sign(BODY) + ".x", "malformed token"),
        ("body hash mismatch", BODY, sign(OTHER_BODY), "hash mismatch"),
        ("token without a body hash", BODY, AccessToken(API_KEY, API_SECRET).to_jwt(),
         "sha256 was not found"),
        ("body not UTF-8", b"\xff\xfe" + BODY, sign(b"\xff\xfe" + BODY), "body is not UTF-8"),
    ]


with warnings.catch_warnings():
    # livekit-server --dev's secret is short; PyJWT warns about it on every token.
    warnings.simplefilter("ignore", InsecureKeyLengthWarning)
    UNVERIFIED = _unverified_cases()


@pytest.mark.parametrize(("body", "authorization", "reason"),
                         [case[1:] for case in UNVERIFIED], ids=[case[0] for case in UNVERIFIED])
async def test_unverified_delivery_is_refused_with_401_and_writes_nothing(
    client, pool, caplog, body, authorization, reason
):
    headers = {} if authorization is None else {"Authorization": authorization}
    with caplog.at_level(logging.WARNING, logger="webhooks"):
        response = await client.post(WEBHOOK_PATH, data=body, headers=headers)
    # One answer whatever went wrong (it must not tell which API keys exist); the log says why.
    assert response.status == 401
    assert (await response.json())["error"] == UNVERIFIED_ANSWER
    assert await nothing_written(pool)
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("webhooks")]
    assert len(logged) == 1 and reason in logged[0]
    for secret in (API_SECRET, OLD_SECRET, "not-the-secret", authorization or "\0"):
        assert secret not in logged[0]


async def test_a_delivery_signed_with_a_rotated_key_pair_is_accepted(client):
    response = await post(client, realistic_call()["room_started"], key=OLD_KEY, secret=OLD_SECRET)
    assert response.status == 200
    assert (await response.json())["status"] == "applied"


async def test_a_token_within_a_minute_of_our_clock_is_accepted(client):
    body = body_of(realistic_call()["room_started"])
    now = int(time.time())
    # A server clock 30 s ahead of ours; a token that expired 20 s ago by our clock.
    for nbf, exp in ((now + 30, now + 330), (now - 300, now - 20)):
        token = jwt.encode({"iss": API_KEY, "nbf": nbf, "iat": nbf, "exp": exp, "sha256": _digest(body)},
                           API_SECRET, algorithm="HS256")
        response = await client.post(WEBHOOK_PATH, data=body, headers={"Authorization": token})
        assert response.status == 200


@pytest.mark.parametrize(("body", "reason"), [
    (b"this is not json", "not a WebhookEvent"),
    (b"[1, 2, 3]", "not a WebhookEvent"),
    (b'{"id": "EV_x", "event": "room_started", "createdAt": "yesterday"}', "not a WebhookEvent"),
    (b"{}", "without an id"),
    (b'{"event": "room_started", "room": {"sid": "RM_1"}}', "without an id"),
    (b'{"id": "EV_x", "event": "room_started"}', "without a room SID"),
    (b'{"id": "EV_x", "event": "participant_joined", "room": {"sid": "RM_1"}}',
     "without a participant"),
    (b'{"id": "EV_x", "event": "track_published", "room": {"sid": "RM_1"}, '
     b'"participant": {"sid": "PA_1", "identity": "x"}}', "without a track SID"),
], ids=["not json", "json list", "wrong field type", "empty object", "no id", "room event no room",
        "participant event no participant", "track event no track"])
async def test_a_verified_body_that_is_not_an_event_is_refused_with_400(
    client, pool, caplog, body, reason
):
    with caplog.at_level(logging.WARNING, logger="webhooks"):
        response = await client.post(WEBHOOK_PATH, data=body, headers={"Authorization": sign(body)})
    assert response.status == 400
    assert reason in (await response.json())["error"]
    assert await nothing_written(pool)
    assert any(reason in r.getMessage() for r in caplog.records if r.name.startswith("webhooks"))


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_methods_on_the_webhook_path_get_405(client, method):
    response = await client.request(method, WEBHOOK_PATH, data=BODY, headers={"Authorization": sign(BODY)})
    assert response.status == 405
    assert "POST" in response.headers["Allow"]


async def test_a_body_over_the_limit_by_content_length_gets_413(client, pool):
    body = b"x" * (LIMIT + 1)
    response = await client.post(WEBHOOK_PATH, data=body, headers={"Authorization": sign(body)})
    assert response.status == 413
    assert await nothing_written(pool)


async def _open(client) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(client.server.host, client.server.port)


async def test_a_huge_declared_body_is_refused_without_waiting_for_it(client, pool):
    reader, writer = await _open(client)
    # Announces 1 GiB and sends 10 bytes: the answer must come from the header alone.
    writer.write(
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: {sign(b'')}\r\n"
        f"Content-Length: {1 << 30}\r\n\r\n".encode() + b"0123456789"
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    assert b" 413 " in status_line
    headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    # Not kept alive: aiohttp discards (never buffers) what is in flight for a short lingering
    # time, so the client reads the 413 instead of a reset, then closes.
    assert b"Connection: close" in headers
    writer.close()
    assert await nothing_written(pool)


async def test_a_streamed_body_is_refused_once_it_passes_the_limit(client, pool):
    reader, writer = await _open(client)
    writer.write(
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: {sign(b'')}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    chunk = b"y" * 1024
    for _ in range(LIMIT // len(chunk) + 2):
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    await writer.drain()
    # The body never ends (no terminating chunk): only a server that stops at the limit answers.
    status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    assert b" 413 " in status_line
    writer.close()
    assert await nothing_written(pool)


async def test_a_body_at_the_limit_is_read_and_verified(client):
    body = b" " * (LIMIT - len(OTHER_BODY)) + OTHER_BODY  # JSON allows the leading whitespace
    assert len(body) == LIMIT
    response = await client.post(WEBHOOK_PATH, data=body, headers={"Authorization": sign(body)})
    assert response.status == 200
