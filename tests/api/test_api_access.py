"""Who may see what: keys, scopes, RLS between organisations, problem+json, the rate limit, and
an access log without phone numbers."""

from __future__ import annotations

import pytest

from api.ratelimit import RateLimiter
from db.pool import connect
from tests.api.conftest import ApiProcess, client

pytestmark = pytest.mark.db

PROBLEM = "application/problem+json"


def test_no_key_or_an_unknown_key_is_401_problem(api_server):
    for key in (None, "fdk_00000000_not-a-real-key"):
        with client(api_server, key) as c:
            response = c.get("/v1/calls")
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"] == "Bearer"
        body = response.json()
        assert body["status"] == 401 and body["title"] == "Unauthorized" and body["instance"] == "/v1/calls"


def test_read_key_cannot_change_anything(api_server, world):
    with client(api_server, world.keys["read"]) as c:
        response = c.post("/v1/configs/rollback", json={})
        keys = c.get("/v1/api-keys")
    assert response.status_code == 403 and response.headers["content-type"] == PROBLEM
    assert "scope write" in response.json()["detail"]
    assert keys.status_code == 403


def test_admin_key_lists_only_its_organisations_keys(api_server, world):
    with client(api_server, world.keys["admin"]) as c:
        keys = c.get("/v1/api-keys").json()
    assert {k["scope"] for k in keys} == {"read", "write", "admin"}
    assert {k["organization_id"] for k in keys} == {str(world.tenant.organization_id)}
    assert all("key_hash" not in k for k in keys)


def test_other_organisations_key_sees_none_of_the_demo(api_server, world):
    with client(api_server, world.keys["other"]) as c:
        assert c.get(f"/v1/calls/{world.demo_call_id}").status_code == 404
        assert c.get(f"/v1/calls/{world.demo_call_id}/transcript").status_code == 404
        calls = c.get("/v1/calls").json()["items"]
        assert [call["id"] for call in calls] == [str(world.other_call_id)]
        midtown = {"location_id": str(world.tenant.midtown_location_id)}
        assert c.get("/v1/calls", params=midtown).json()["items"] == []
        assert c.get(f"/v1/configs/{world.tenant.config_v1_id}").status_code == 404
        assert c.get("/v1/configs").json() == []
        assert c.get("/v1/knowledge").json() == []
        assert c.get(f"/v1/locations/{world.tenant.midtown_location_id}/hours").status_code == 404
        assert c.post(f"/v1/configs/{world.tenant.config_v1_id}/activate").status_code == 404
    with client(api_server, world.keys["read"]) as c:
        assert c.get(f"/v1/calls/{world.other_call_id}").status_code == 404


async def test_requests_run_under_rls_as_the_keys_member(world):
    """Even a query with no tenant filter at all sees one organisation: the database enforces it."""
    from api.auth import ACT_AS, claims
    from db import apikeys

    conn = await connect(world.dsn)
    try:
        key = await apikeys.find_key(conn, secret=world.keys["other"])
        async with conn.transaction():
            await conn.execute(ACT_AS, claims(key))
            assert await conn.fetchval("select current_user") == "authenticated"
            organizations = await conn.fetch("select distinct organization_id from voice_calls")
            messages = await conn.fetchval("select count(*) from voice_messages")
        assert [r["organization_id"] for r in organizations] == [world.other_organization_id]
        assert messages == 5  # the other organisation's one call
        assert await conn.fetchval("select current_user") == "postgres"  # SET LOCAL ended with it
    finally:
        await conn.close()


async def test_a_revoked_key_is_refused_and_loses_its_membership(api_server, world):
    from db import apikeys

    conn = await connect(world.dsn)
    try:
        new = await apikeys.create_key(conn, organization_slug="bright-smile-dental", scope="read")
        with client(api_server, new.secret) as c:
            assert c.get("/v1/calls").status_code == 200
            await apikeys.revoke_key(conn, key=new.key.prefix)
            assert c.get("/v1/calls").status_code == 401
        assert await conn.fetchval("select count(*) from organization_members where user_id = $1",
                                   new.key.user_id) == 0
    finally:
        await conn.close()


def test_validation_errors_are_problems(api_server, world):
    with client(api_server, world.keys["read"]) as c:
        response = c.get("/v1/calls", params={"limit": 0, "status": "nope"})
        bad_cursor = c.get("/v1/calls", params={"cursor": "garbage"})
        bad_number = c.get("/v1/calls", params={"caller_number": "call me"})
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    assert "limit" in response.json()["detail"] and "status" in response.json()["detail"]
    assert bad_cursor.status_code == 422 and "cursor" in bad_cursor.json()["detail"]
    assert bad_number.status_code == 422


def test_openapi_and_docs_are_served_and_cors_is_off(api_server, world):
    with client(api_server, None) as c:
        document = c.get("/openapi.json").json()
        docs = c.get("/docs")
    with client(api_server, world.keys["read"]) as c:
        preflight = c.options("/v1/calls", headers={"Origin": "https://evil.example",
                                                    "Access-Control-Request-Method": "GET"})
        cross = c.get("/v1/calls", headers={"Origin": "https://evil.example"})
    assert document["openapi"].startswith("3.1")
    assert all(path.startswith("/v1/") for path in document["paths"])
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "cdn" not in docs.text and "https://" not in docs.text  # served by us: works offline
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in cross.headers


def test_access_log_has_no_phone_numbers_or_transcript(api_server, world):
    with client(api_server, world.keys["read"]) as c:
        c.get("/v1/calls", params={"caller_number": "+1 212 555 0199"})
        c.get(f"/v1/calls/{world.demo_call_id}/transcript")
    log = api_server.log()
    assert "GET /v1/calls 200" in log
    assert "caller_number" not in log and "5550199" not in log and "555 0199" not in log
    assert "cleaning" not in log


def test_rate_limit_answers_429_with_retry_after(world, tmp_path):
    server = ApiProcess(world.dsn, tmp_path / "api.log", API_RATE_LIMIT_BURST="3",
                        API_RATE_LIMIT_PER_MINUTE="6")
    try:
        with client(server, world.keys["read"]) as c:
            statuses = [c.get("/v1/me").status_code for _ in range(4)]
            limited = c.get("/v1/me")
        with client(server, world.keys["write"]) as c:
            other_key = c.get("/v1/me").status_code
    finally:
        server.stop()
    assert statuses[:3] == [200, 200, 200] and statuses[3] == 429
    assert limited.status_code == 429 and limited.headers["content-type"] == PROBLEM
    assert 1 <= int(limited.headers["retry-after"]) <= 10
    assert other_key == 200  # a bucket per key


def test_rate_limiter_refills_with_time():
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    assert [limiter.take("k"), limiter.take("k")] == [0.0, 0.0]
    assert limiter.take("k") == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.take("k") == 0.0
    assert limiter.take("other") == 0.0
