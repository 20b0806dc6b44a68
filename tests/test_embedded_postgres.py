"""The embedded server dies with its owner (even on kill -9), restarts on the same data folder,
and a second user of the folder, in this process or another, attaches instead of starting a
second server."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest

from db.embedded import EmbeddedPostgres

pytestmark = pytest.mark.db

OWNER = """
import sys, time
from pathlib import Path
from db.embedded import EmbeddedPostgres
server = EmbeddedPostgres(Path(sys.argv[1]), fsync=False).start()
pid = server.process.pid if server.owned else 0
print(pid, server.port, server.owned, flush=True)
if sys.argv[2] == "stay":
    time.sleep(600)
"""


async def run_owner(data_dir: Path, repo_root: Path, mode: str):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OWNER, str(data_dir), mode, cwd=repo_root,
        stdout=asyncio.subprocess.PIPE,
    )
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    pid, port, owned = line.decode().split()
    return proc, int(pid), int(port), owned == "True"


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


def dsn(port: int) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


async def test_server_dies_with_its_killed_owner_and_the_folder_starts_again(data_dir, repo_root):
    owner, postmaster, port, owned = await run_owner(data_dir, repo_root, "stay")
    try:
        assert owned and postmaster > 0
        conn = await asyncpg.connect(dsn(port))
        await conn.execute("create table survives_the_crash (id int)")
        await conn.close()
        server_processes = [postmaster] + [p.pid for p in psutil.Process(postmaster).children()]
        assert len(server_processes) > 1  # checkpointer, walwriter, ...

        os.kill(owner.pid, signal.SIGKILL)
        await owner.wait()
        await wait_gone(server_processes, within=10)
        with pytest.raises(OSError):
            await asyncpg.connect(dsn(port), timeout=2)
    finally:
        if owner.returncode is None:
            owner.kill()
            await owner.wait()

    with EmbeddedPostgres(data_dir, fsync=False) as server:
        assert server.owned
        conn = await asyncpg.connect(server.dsn)
        assert await conn.fetchval("select to_regclass('survives_the_crash') is not null")
        await conn.close()
    assert gone(postmaster)


async def test_a_second_user_of_the_folder_attaches_to_the_running_server(data_dir, repo_root):
    with EmbeddedPostgres(data_dir, fsync=False) as first:
        postmaster = first.process.pid
        second = EmbeddedPostgres(data_dir).start()
        assert (second.owned, second.port) == (False, first.port)
        # Another process attaches as well, without starting a server of its own.
        proc, pid, port, owned = await run_owner(data_dir, repo_root, "exit")
        assert await proc.wait() == 0
        assert (pid, port, owned) == (0, first.port, False)
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
