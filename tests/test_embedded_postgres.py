"""The embedded server dies with its owner (even on kill -9), restarts on the same data folder,
and a second user of the folder, in this process or another, attaches instead of starting a
second server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import psutil
import pytest

from db.embedded import EmbeddedPostgres
from db.embedded_access import ACCESS_FILE, APP_ROLE
from db.migrate import migrate_dsn

pytestmark = pytest.mark.db

OWNER = """
import sys, time
from pathlib import Path
from db.embedded import EmbeddedPostgres
from db.embedded_access import ACCESS_FILE, APP_ROLE
from db.migrate import migrate_dsn
server = EmbeddedPostgres(Path(sys.argv[1]), fsync=False).start()
pid = server.process.pid if server.owned else 0
print(pid, server.port, server.owned, server.admin_dsn, flush=True)
if sys.argv[2] == "stay":
    time.sleep(600)
"""


async def run_owner(data_dir: Path, repo_root: Path, mode: str):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OWNER, str(data_dir), mode, cwd=repo_root,
        stdout=asyncio.subprocess.PIPE,
    )
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    pid, port, owned, admin_dsn = line.decode().split()
    return proc, int(pid), int(port), owned == "True", admin_dsn


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def wait_gone(pids: list[int], within: float) -> float:
    start = time.monotonic()
    while not all(gone(pid) for pid in pids):
        if time.monotonic() - start > within:
            alive = [pid for pid in pids if not gone(pid)]
            raise AssertionError(f"still running {within}s after the owner died: {alive}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data folder outside pytest's tmp_path: another pytest session starting meanwhile resets
    /tmp/pytest-of-<user> to 0700, which would race with the server's start when we are root."""
    base = Path(tempfile.mkdtemp(prefix="frontdesk-embedded-test-"))
    yield base / "data"
    shutil.rmtree(base, ignore_errors=True)


async def test_server_dies_with_its_killed_owner_and_the_folder_starts_again(data_dir, repo_root):
    owner, postmaster, port, owned, admin_dsn = await run_owner(data_dir, repo_root, "stay")
    try:
        assert owned and postmaster > 0
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute("create table survives_the_crash (id int)")
        await conn.close()
        server_processes = [postmaster] + [p.pid for p in psutil.Process(postmaster).children()]
        assert len(server_processes) > 1  # checkpointer, walwriter, ...

        os.kill(owner.pid, signal.SIGKILL)
        await owner.wait()
        await wait_gone(server_processes, within=10)
        with pytest.raises(OSError):
            await asyncpg.connect(admin_dsn, timeout=2)
    finally:
        if owner.returncode is None:
            owner.kill()
            await owner.wait()

    with EmbeddedPostgres(data_dir, fsync=False) as server:
        assert server.owned
        conn = await asyncpg.connect(server.admin_dsn)
        assert await conn.fetchval("select to_regclass('survives_the_crash') is not null")
        await conn.close()
    assert gone(postmaster)


async def test_a_second_user_of_the_folder_attaches_to_the_running_server(data_dir, repo_root):
    with EmbeddedPostgres(data_dir, fsync=False) as first:
        postmaster = first.process.pid
        second = EmbeddedPostgres(data_dir).start()
        assert (second.owned, second.port) == (False, first.port)
        # Another process attaches as well, without starting a server of its own.
        proc, pid, port, owned, admin_dsn = await run_owner(data_dir, repo_root, "exit")
        assert await proc.wait() == 0
        assert (pid, port, owned, admin_dsn) == (0, first.port, False, first.admin_dsn)
        postmasters = [p for p in psutil.process_iter(["cmdline"])
                       if str(data_dir.resolve()) in (p.info["cmdline"] or [])]
        assert [p.pid for p in postmasters] == [postmaster]
        # Only the owner stops the server.
        second.stop()
        conn = await asyncpg.connect(second.dsn)
        assert await conn.fetchval("select 1") == 1
        await conn.close()
    await wait_gone([postmaster], within=10)


def test_the_folder_starts_again_after_its_parent_was_made_private(data_dir):
    """As root the server runs as a service user, who must traverse every ancestor of the folder;
    one tightened after the first start (pytest does it to its temp root) must not stop the next."""
    EmbeddedPostgres(data_dir, fsync=False).start().stop()
    data_dir.parent.chmod(0o700)
    with EmbeddedPostgres(data_dir, fsync=False) as server:
        assert server.owned


# Locked down: only the owner's OS user reaches the server, with a password, as a role that is
# not a superuser; the address is fixed with the data folder.

# Run as `nobody` by the system Python (the project's is under /root): the socket, then TCP with
# the superuser's name and no password. Prints what each attempt got.
INTRUDER = r"""
import socket, struct, sys
socket_path, port = sys.argv[1], int(sys.argv[2])
params = b"user\0postgres\0database\0postgres\0\0"
startup = struct.pack("!ii", 8 + len(params), 196608) + params
def answer(family, address):
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(address)
            s.sendall(startup)
            reply = s.recv(9)
    except OSError as exc:
        return type(exc).__name__
    if reply[:1] != b"R":
        return "error-reply"
    return {0: "trusted", 10: "password-required"}.get(struct.unpack("!i", reply[5:9])[0], "other")
print(answer(socket.AF_UNIX, socket_path), answer(socket.AF_INET, ("127.0.0.1", port)))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="runs a command as `nobody`, which needs root")
def test_another_os_user_cannot_connect(data_dir):
    with EmbeddedPostgres(data_dir, fsync=False, listen_tcp=True) as server:
        socket_path = server.socket_dir / f".s.PGSQL.{server.port}"
        assert socket_path.is_socket()
        result = subprocess.run(
            ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", INTRUDER,
             str(socket_path), str(server.port)],
            capture_output=True, text=True, timeout=30, cwd="/",
        )
    assert result.returncode == 0, result.stderr
    # The socket's folder is closed to other users; TCP asks for a password it does not have.
    assert result.stdout.split() == ["PermissionError", "password-required"]


async def test_files_are_private_and_no_connection_goes_without_a_password(data_dir):
    with EmbeddedPostgres(data_dir, fsync=False) as server:
        modes = {path.name: stat.S_IMODE(path.stat().st_mode)
                 for path in (server.data_dir, server.socket_dir, server.log_path,
                              server.data_dir / ACCESS_FILE)}
        assert modes == {"data": 0o700, "socket": 0o700, "data.log": 0o600, ACCESS_FILE: 0o600}
        for dsn in (server.dsn, server.admin_dsn):
            password = urlsplit(dsn).password
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(dsn.replace(f":{password}@", "@"))
        admin = await asyncpg.connect(server.admin_dsn)
        try:
            methods = {r[0] for r in await admin.fetch("select auth_method from pg_hba_file_rules")}
            listening = await admin.fetchval("show listen_addresses")
        finally:
            await admin.close()
        assert (methods, listening) == ({"scram-sha-256"}, "")


async def test_the_application_role_is_not_a_superuser_and_owns_the_schema(data_dir):
    with EmbeddedPostgres(data_dir, fsync=False) as server:
        assert await migrate_dsn(server.dsn)  # the extensions and the Supabase roles included
        conn = await asyncpg.connect(server.dsn)
        try:
            role = await conn.fetchrow(
                "select rolname, rolsuper, rolbypassrls, rolcreaterole from pg_roles "
                "where rolname = current_user")
            owners = {r[0] for r in await conn.fetch(
                "select distinct tableowner from pg_tables where schemaname = 'public'")}
            bounds = [await conn.fetchval(f"show {name}") for name in
                      ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")]
            extensions = {r[0] for r in await conn.fetch("select extname from pg_extension")}
            forced = await conn.fetchval(
                "select count(*) from pg_class "
                "where relforcerowsecurity and relnamespace = 'public'::regnamespace")
        finally:
            await conn.close()
    assert tuple(role) == (APP_ROLE, False, False, False)
    assert owners == {APP_ROLE}
    # Trusted ones created by the owner's migrations; vector (not trusted) by the superuser.
    assert {"btree_gist", "pg_trgm", "vector"} <= extensions
    assert bounds == ["30s", "10s", "1min"]  # the role's own, for a session that sets none
    assert forced == 0  # the owner is not subject to RLS: the README says why


async def test_a_restarted_owner_comes_back_at_the_same_address_and_others_reconnect(data_dir, repo_root):
    first, _, port, _, _ = await run_owner(data_dir, repo_root, "stay")
    # Another process of the folder (as the webhook service would be): attached, not owner.
    attached = EmbeddedPostgres(data_dir).start()
    assert not attached.owned and attached.port == port
    pool = await asyncpg.create_pool(attached.dsn, min_size=1, max_size=1)
    try:
        assert await pool.fetchval("select 1") == 1
        first.kill()
        await first.wait()
        second, _, again, owned, _ = await run_owner(data_dir, repo_root, "stay")
        try:
            assert (owned, again) == (True, port)
            # The broken connection is replaced on the next acquire, at the same address.
            with contextlib.suppress(asyncpg.ConnectionDoesNotExistError, OSError):
                await pool.fetchval("select 1")
            assert await pool.fetchval("select current_user") == APP_ROLE
        finally:
            second.kill()
            await second.wait()
    finally:
        pool.terminate()
