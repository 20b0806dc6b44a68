"""Changes through the API: configuration versions (create, diff, activate, roll back), the
knowledge base, hours exceptions; the console's cookie session and its CSRF check; and the
`python -m db apikeys` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import httpx
import pytest

from api.auth import csrf_token
from tests.api.conftest import client
from tests.clock import today

pytestmark = pytest.mark.db


def test_config_versions_create_diff_activate_and_roll_back(api_server, world):
    with client(api_server, world.keys["write"]) as c:
        versions = c.get("/v1/configs").json()
        active = next(v for v in versions if v["is_active"])
        copied = {name: active[name] for name in ("greeting", "policies", "script_overrides", "language",
                                                  "stt_model", "llm_model", "tts_model", "tts_voice")}
        created = c.post("/v1/configs", json={
            **copied, "instructions": active["instructions"] + "\nAlways offer the earliest slot first.",
            "label": "earliest first", "activate": True})
        assert created.status_code == 201
        new = created.json()
        assert new["version"] == max(v["version"] for v in versions) + 1 and new["is_active"]
        diff = c.get("/v1/configs/diff", params={"from": active["id"], "to": new["id"]}).json()
        fields = {f["field"]: f["diff"] for f in diff["fields"]}
        assert set(fields) == {"label", "instructions"}
        assert "+Always offer the earliest slot first." in fields["instructions"]
        rolled = c.post("/v1/configs/rollback", json={}).json()
        assert rolled["id"] == active["id"] and rolled["is_active"]
        again = c.post(f"/v1/configs/{new['id']}/activate").json()
        assert again["is_active"] and again["version"] == new["version"]
        assert [v["id"] for v in c.get("/v1/configs").json() if v["is_active"]] == [new["id"]]
        bad = c.post("/v1/configs", json={"instructions": "x", "greeting": "Hi {nope}"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


def test_knowledge_base_crud(api_server, world):
    with client(api_server, world.keys["write"]) as c:
        created = c.post("/v1/knowledge", json={"category": "faq", "title": "Parking for bikes",
                                                "content": "Bike racks are by the front door.",
                                                "tags": ["Parking", " bikes "], "priority": 60})
        assert created.status_code == 201
        fact = created.json()
        assert fact["tags"] == ["bikes", "parking"]
        changed = c.patch(f"/v1/knowledge/{fact['id']}", json={"content": "Racks by the side door.",
                                                               "is_active": False}).json()
        assert changed["content"] == "Racks by the side door." and changed["is_active"] is False
        assert changed["title"] == "Parking for bikes"
        assert fact["id"] in [f["id"] for f in c.get("/v1/knowledge", params={"category": "faq"}).json()]
        assert c.delete(f"/v1/knowledge/{fact['id']}").status_code == 204
        assert c.get(f"/v1/knowledge/{fact['id']}").status_code == 404
        assert c.delete(f"/v1/knowledge/{fact['id']}").status_code == 404


def test_hours_exception_added_and_listed(api_server, world):
    day = (today() + timedelta(days=400)).isoformat()
    location = world.tenant.santa_monica_location_id
    with client(api_server, world.keys["write"]) as c:
        added = c.post(f"/v1/locations/{location}/exceptions", json={"on_date": day, "reason": "Staff day"})
        hours = c.get(f"/v1/locations/{location}/hours", params={"since": day}).json()
    assert added.status_code == 201
    assert [e["on_date"] for e in hours["exceptions"]] == [day]
    assert hours["exceptions"][0]["opens_at"] is None and hours["weekly"]


def test_console_session_cookie_needs_csrf_for_changes(api_server, world):
    with httpx.Client(base_url=api_server.base_url, timeout=10) as c:
        assert c.post("/console/session", json={"key": "fdk_wrong_wrong-wrong"}).status_code == 401
        signed_in = c.post("/console/session", json={"key": world.keys["write"]})
        assert signed_in.status_code == 204
        cookie = signed_in.headers.get_list("set-cookie")
        session = next(h for h in cookie if h.startswith("fd_key="))
        assert "HttpOnly" in session and "SameSite=strict" in session
        assert c.get("/v1/me").json()["scope"] == "write"
        no_token = c.post("/v1/configs/rollback", json={})
        wrong_token = c.post("/v1/configs/rollback", json={}, headers={"X-CSRF-Token": "0" * 64})
        assert no_token.status_code == 403 and wrong_token.status_code == 403
        token = c.cookies["fd_csrf"]
        assert token == csrf_token(world.keys["write"])
        with_token = c.post("/v1/knowledge", json={"category": "faq", "title": "CSRF", "content": "ok"},
                            headers={"X-CSRF-Token": token})
        assert with_token.status_code == 201
        page = c.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'src="/static/console.js"' in page.text and "http" not in page.text.replace("http-equiv", "")


def test_apikeys_commands_create_list_revoke(world):
    env = {**os.environ, "DATABASE_URL": world.dsn}

    def db(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "db", "apikeys", *args], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    created = db("create", "other-clinic", "--scope", "write", "--name", "reporting")
    secret = created.strip().splitlines()[-1].split()[-1]
    assert secret.startswith("fdk_")
    prefix = secret.split("_")[1]
    listed = db("list", "other-clinic")
    assert prefix in listed and "write" in listed and secret not in listed
    assert "revoked" in db("revoke", prefix)
    assert "revoked" in next(line for line in db("list", "other-clinic").splitlines() if prefix in line)
    failed = subprocess.run([sys.executable, "-m", "db", "apikeys", "create", "no-such-org"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1 and "no-such-org" in failed.stderr
