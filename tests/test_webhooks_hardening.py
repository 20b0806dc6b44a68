"""The webhook service against a hostile or careless caller: a token nested too deep to parse,
a body that trickles in, a probe of which API keys exist, a readiness probe fishing for driver
details, and the dev key pair on a public address."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import time
import warnings

import asyncpg
import pytest
from jwt.warnings import InsecureKeyLengthWarning

from tests.livekit_webhooks import API_KEY, body_of, realistic_call, sign, webhook_client
from webhooks import __main__ as service
from webhooks.app import WEBHOOK_PATH
from webhooks.settings import refuse_dev_keys

pytestmark = [
    pytest.mark.db,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

BODY = body_of(realistic_call()["room_started"])


@pytest.fixture
async def client(pool):
    async with webhook_client(pool, body_timeout=1.0) as c:
        yield c


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def nested_token(depth: int, *, in_header: bool = False) -> str:
    nested = "[" * depth + "]" * depth
    header = '{"alg":"HS256","typ":"JWT"' + (f',"x":{nested}' if in_header else "") + "}"
    claims = f'"iss":"{API_KEY}","exp":{int(time.time()) + 300}'
    payload = "{" + claims + ("" if in_header else f',"x":{nested}') + "}"
    return f"{_b64(header.encode())}.{_b64(payload.encode())}.{_b64(b'sig')}"


@pytest.mark.parametrize("in_header", [False, True], ids=["payload", "header"])
async def test_a_token_nested_too_deep_to_parse_is_unverified_not_a_crash(client, pool, in_header):
    response = await client.post(WEBHOOK_PATH, data=BODY,
                                 headers={"Authorization": nested_token(2_500, in_header=in_header)})
    assert response.status == 401
    async with pool.acquire() as conn:
        assert await conn.fetchval("select count(*) from webhook_events") == 0


async def test_a_verified_body_nested_too_deep_is_a_400(client):
    nested = b"[" * 100_000 + b"]" * 100_000
    body = b'{"id": "EV_deep", "event": "room_started", "room": {"metadata": ' + nested + b"}}"
    response = await client.post(WEBHOOK_PATH, data=body, headers={"Authorization": sign(body)})
    # Under the 1 MiB limit, signed: parsed after the signature checks out, a 400, not a 500.
    assert response.status == 400


@pytest.mark.parametrize("field", ["createdAt", "joinedAt"])
async def test_a_verified_event_dated_after_the_year_9999_is_a_400_and_writes_nothing(client, pool, field):
    event = json.loads(body_of(realistic_call()["caller_joined"]))
    (event if field == "createdAt" else event["participant"])[field] = str(10**12)
    body = json.dumps(event).encode()
    response = await client.post(WEBHOOK_PATH, data=body, headers={"Authorization": sign(body)})
    assert response.status == 400 and "year 9999" in (await response.json())["error"]
    async with pool.acquire() as conn:
        assert await conn.fetchval("select count(*) from webhook_events") == 0


async def test_a_body_that_trickles_is_cut_within_the_body_timeout(client, pool):
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    started = time.monotonic()
    writer.write(f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: {sign(BODY)}\r\n"
                 "Content-Length: 1000\r\n\r\n".encode() + b"0123456789")
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    assert b" 408 " in status_line
    rest = await asyncio.wait_for(reader.read(), timeout=10)  # EOF: the server closed it
    assert b"Connection: close" in rest
    assert time.monotonic() - started < 10
    writer.close()


async def test_unknown_key_and_bad_signature_answer_alike(client, caplog):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        stranger = sign(BODY, key="APIstranger", secret="whatever")
        forged = sign(BODY, secret="not-the-secret")
    with caplog.at_level(logging.WARNING, logger="webhooks"):
        answers = []
        for token in (stranger, forged):
            response = await client.post(WEBHOOK_PATH, data=BODY, headers={"Authorization": token})
            answers.append((response.status, await response.read(), response.headers.get("Content-Length")))
    assert answers[0] == answers[1] and answers[0][0] == 401
    # The operator still learns why, in the log.
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "unknown API key" in logged and "bad signature" in logged


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_readyz_names_no_driver_detail(caplog):
    port = free_port()
    pool = await asyncpg.create_pool(f"postgresql://secretrole@127.0.0.1:{port}/secretdb", min_size=0)
    try:
        async with webhook_client(pool) as c:
            response = await c.get("/readyz")
            answer = await response.json()
    finally:
        await pool.close()
    assert response.status == 503
    assert answer == {"ready": False, "reason": "database unavailable"}
    assert any(str(port) in r.getMessage() for r in caplog.records)  # the details: in the log


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "frontdesk.example", ""])
def test_the_dev_keys_are_refused_off_loopback(host):
    with pytest.raises(ValueError, match="dev API key pair"):
        refuse_dev_keys({"devkey": "secret"}, host)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_the_dev_keys_are_fine_on_loopback(host):
    refuse_dev_keys({"devkey": "secret"}, host)


def test_real_keys_are_fine_anywhere():
    refuse_dev_keys({"APIabc": "a-long-secret", "devkey": "not-the-dev-secret"}, "0.0.0.0")


def test_the_service_refuses_to_start_with_dev_keys_on_a_public_address(monkeypatch, capsys, tmp_path):
    for name in ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "WEBHOOK_KEYS", "WEBHOOK_ALLOW_DEV_KEYS"):
        monkeypatch.delenv(name, raising=False)
    # A database nobody listens on: the refusal comes before any attempt to reach it.
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    monkeypatch.chdir(tmp_path)
    assert service.main(["--host", "0.0.0.0", "--port", "1"]) == 2
    assert "dev API key pair" in capsys.readouterr().err


def test_the_explicit_flag_lets_the_dev_keys_through(monkeypatch, tmp_path):
    for name in ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "WEBHOOK_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    monkeypatch.setenv("MIGRATE_ON_START", "false")
    monkeypatch.chdir(tmp_path)
    # Past the key check, it goes on to connect, to a port nobody listens on.
    with pytest.raises(OSError):
        service.main(["--host", "0.0.0.0", "--port", str(free_port()), "--allow-dev-keys"])
