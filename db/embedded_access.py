"""Who may reach the embedded server, and where: its address and passwords, kept in the data
folder (mode 0600), and the roles the superuser creates once, at bootstrap.

The application connects as `frontdesk`, a LOGIN role that is not a superuser and owns the
`frontdesk` database (so the schema its migrations create). Row level security does not apply to
it as the owner of the tables (no FORCE ROW LEVEL SECURITY, no BYPASSRLS attribute): the services
act for every tenant; the policies govern the `authenticated` role that signed-in users meet.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

ACCESS_FILE = "frontdesk-access.json"
SOCKET_DIR = "socket"
SUPERUSER = "postgres"
APP_ROLE = "frontdesk"
APP_DATABASE = "frontdesk"
# sun_path is 108 bytes, the terminating NUL included.
_MAX_SOCKET_PATH = 107

# Run by psql as the superuser, idempotent. Roles the migrations would otherwise create (which a
# role without CREATEROLE cannot) and the one extension they may need that is not trusted, in the
# application's database (btree_gist and pg_trgm are trusted: the database owner creates them).
BOOTSTRAP = r"""
\getenv app_password FRONTDESK_APP_PASSWORD
select not exists (select from pg_roles where rolname = :'app_role') as missing \gset
\if :missing
create role :"app_role" login;
\endif
alter role :"app_role" login nosuperuser nocreatedb nocreaterole nobypassrls password :'app_password';
-- Bounds for a session that sets none of its own (a psql, a script): the services set theirs.
alter role :"app_role" set statement_timeout = '30s';
alter role :"app_role" set lock_timeout = '10s';
alter role :"app_role" set idle_in_transaction_session_timeout = '60s';
select not exists (select from pg_roles where rolname = 'anon') as missing \gset
\if :missing
create role anon nologin noinherit;
\endif
select not exists (select from pg_roles where rolname = 'authenticated') as missing \gset
\if :missing
create role authenticated nologin noinherit;
\endif
grant anon, authenticated to :"app_role" with inherit false, set true;
select not exists (select from pg_database where datname = :'app_database') as missing \gset
\if :missing
create database :"app_database" owner :"app_role";
\endif
\connect :"app_database"
create extension if not exists vector;
"""


class AccessError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Access:
    """The fixed address (port, socket folder) and the passwords of one data folder."""

    port: int
    superuser_password: str
    app_password: str

    @classmethod
    def generate(cls, port: int | None) -> Access:
        return cls(port=port or free_port(), superuser_password=secrets.token_urlsafe(24),
                   app_password=secrets.token_urlsafe(24))

    @classmethod
    def load(cls, data_dir: Path) -> Access | None:
        try:
            return cls(**json.loads((data_dir / ACCESS_FILE).read_text()))
        except FileNotFoundError:
            return None

    def save(self, data_dir: Path, account: tuple[int, int] | None) -> None:
        """Written 0600 from the start (never readable by others, even for an instant)."""
        path = data_dir / ACCESS_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            if account is not None:
                os.fchown(f.fileno(), *account)  # the server's folder, the server's file
            json.dump(asdict(self), f)

    def dsn(self, socket_dir: Path, *, admin: bool = False, database: str | None = None) -> str:
        """A DSN through the Unix socket; the folder is percent-encoded into the host part."""
        user, password = (SUPERUSER, self.superuser_password) if admin else (APP_ROLE, self.app_password)
        database = database or (SUPERUSER if admin else APP_DATABASE)
        host = quote(str(socket_dir), safe="")
        return f"postgresql://{user}:{quote(password, safe='')}@{host}:{self.port}/{database}"


def prepare_socket_dir(data_dir: Path, port: int, account: tuple[int, int] | None) -> Path:
    """data_dir/socket, 0700 and the server's: only its OS user (and root) may connect."""
    folder = data_dir / SOCKET_DIR
    if len(str(folder / f".s.PGSQL.{port}")) > _MAX_SOCKET_PATH:
        raise AccessError(
            f"the socket path under {data_dir} is too long for a Unix socket; "
            "use a shorter EMBEDDED_PG_DIR"
        )
    folder.mkdir(mode=0o700, exist_ok=True)
    folder.chmod(0o700)
    if account is not None:
        os.chown(folder, *account)
    return folder


def bootstrap(psql: Path, access: Access, socket_dir: Path) -> None:
    """Create (or bring up to date) the application role, its database and the Supabase roles."""
    # Passwords through the environment, which only our own user may read (not the arguments).
    env = {**os.environ, "PGHOST": str(socket_dir), "PGPORT": str(access.port),
           "PGUSER": SUPERUSER, "PGDATABASE": SUPERUSER, "PGCONNECT_TIMEOUT": "10",
           "PGPASSWORD": access.superuser_password, "FRONTDESK_APP_PASSWORD": access.app_password}
    result = subprocess.run(
        [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1",
         "-v", f"app_role={APP_ROLE}", "-v", f"app_database={APP_DATABASE}"],
        input=BOOTSTRAP, capture_output=True, text=True, env=env,
    )
    if result.returncode != 0:
        raise AccessError(f"bootstrapping the embedded Postgres roles failed:\n{result.stderr}")
