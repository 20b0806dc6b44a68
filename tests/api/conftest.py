"""Fixtures of the API and console tests: one database per test module (a clone of the migrated
template, the demo tenant seeded, calls of two organisations, keys of each scope) and the real
`python -m api` process serving it on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from db import apikeys
from db.demo.seed import DemoTenant, seed_demo
from db.pool import connect
from tests.api.seed import other_organization, seed_call
from tests.conftest import create_clone, drop_database, with_database


@dataclass(frozen=True)
class World:
    dsn: str
    tenant: DemoTenant
    keys: dict[str, str]  # read / write / admin of the demo organisation, "other" of the second
    demo_call_id: uuid.UUID
    santa_monica_call_id: uuid.UUID
    other_call_id: uuid.UUID
    other_organization_id: uuid.UUID


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiProcess:
    """`python -m api` on a free port, its output in a log file (shown when it fails to start)."""

    def __init__(self, dsn: str, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        environment = {**os.environ, "DATABASE_URL": dsn, "API_PORT": str(self.port), **env}
        self._log = log_path.open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "api"], env=environment, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"python -m api exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.base_url}/openapi.json", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"python -m api did not answer in {timeout}s: {self.log_path.read_text()}")

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


async def build_world(dsn: str) -> World:
    conn = await connect(dsn)
    try:
        tenant = await seed_demo(conn)
        other_org, other_location = await other_organization(conn)
        now = datetime.now(UTC)
        demo_org, midtown = tenant.organization_id, tenant.midtown_location_id
        demo = await seed_call(
            conn, organization_id=demo_org, location_id=midtown, agent_config_id=tenant.config_v2_id,
            started_at=now - timedelta(hours=2), service_id=next(iter(tenant.services.values())),
            confirmation_code="KX7P2M")
        santa_monica = await seed_call(
            conn, organization_id=demo_org, location_id=tenant.santa_monica_location_id,
            agent_config_id=tenant.config_v1_id, started_at=now - timedelta(days=1),
            caller_number="+13105550123", outcome="transferred", sentiment="negative",
            intent="speak_to_person")
        for day in range(2, 8):  # older calls, for paging
            await seed_call(conn, organization_id=demo_org, location_id=midtown,
                            started_at=now - timedelta(days=day), outcome="information_provided",
                            sentiment=None)
        other = await seed_call(conn, organization_id=other_org, location_id=other_location,
                                started_at=now - timedelta(hours=1), caller_number="+13125550111")
        keys = {}
        for name, slug, scope in [*((s, "bright-smile-dental", s) for s in apikeys.SCOPES),
                                  ("other", "other-clinic", "admin")]:
            keys[name] = (await apikeys.create_key(conn, organization_slug=slug, scope=scope)).secret
    finally:
        await conn.close()
    return World(dsn=dsn, tenant=tenant, keys=keys, demo_call_id=demo.id,
                 santa_monica_call_id=santa_monica.id, other_call_id=other.id,
                 other_organization_id=other_org)


@pytest.fixture(scope="module")
async def world(admin_dsn: str, template_dsn: str) -> AsyncIterator[World]:
    name = await create_clone(admin_dsn)
    try:
        yield await build_world(with_database(admin_dsn, name))
    finally:
        await drop_database(admin_dsn, name)


@pytest.fixture(scope="module")
def api_server(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    folder = tmp_path_factory.mktemp("api")
    server = ApiProcess(world.dsn, folder / "api.log", API_EXPORT_DIR=str(folder / "exports"),
                        API_RATE_LIMIT_BURST="100000", API_RATE_LIMIT_PER_MINUTE="1000000")
    yield server
    server.stop()


def client(server: ApiProcess, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=10)
