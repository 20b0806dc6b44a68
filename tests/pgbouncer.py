"""A real PgBouncer (Debian's `pgbouncer`) in transaction mode in front of the test server, as
Supabase's pooler is: started from a config of its own in a temporary folder, stopped after."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from db.embedded import service_account

BINARY = "pgbouncer"

CONFIG = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {folder}/userlist.txt
pool_mode = transaction
max_client_conn = 200
default_pool_size = 20
logfile = {folder}/pgbouncer.log
"""


def missing_reason() -> str | None:
    if shutil.which(BINARY) is None:
        return "pgbouncer is not installed (apt-get install -y pgbouncer; .ci/run does it)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgBouncer:
    def __init__(self, server_dsn: str) -> None:
        """In front of the server of `server_dsn`, accepting its user and password."""
        parts = urlsplit(server_dsn)
        self.user, self.password = unquote(parts.username or ""), unquote(parts.password or "")
        # The host may be a socket folder, percent-encoded (db.embedded_access): not .hostname.
        host, _, port = parts.netloc.rsplit("@", 1)[-1].rpartition(":")
        self.backend = (unquote(host), int(port))
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="frontdesk-pgbouncer-"))
        self.process: subprocess.Popen | None = None

    def dsn(self, server_dsn: str) -> str:
        """`server_dsn` (same user and database) through the pooler."""
        parts = urlsplit(server_dsn)
        credentials = parts.netloc.rsplit("@", 1)[0]
        return urlunsplit(parts._replace(netloc=f"{credentials}@127.0.0.1:{self.port}"))

    def start(self, timeout: float = 15.0) -> PgBouncer:
        host, port = self.backend
        (self.folder / "pgbouncer.ini").write_text(
            CONFIG.format(host=host, port=port, listen_port=self.port, folder=self.folder))
        (self.folder / "userlist.txt").write_text(f'"{self.user}" "{self.password}"\n')
        args = [BINARY, str(self.folder / "pgbouncer.ini")]
        account = service_account()
        if account is not None:
            # PgBouncer refuses to run as root; the server's own user may reach its socket.
            for path in (self.folder, *self.folder.iterdir()):
                os.chown(path, *account)
            args[1:1] = ["-u", pwd.getpwuid(account[0]).pw_name]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen within {timeout}s: {self.log()}")

    def log(self) -> str:
        path = self.folder / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)
