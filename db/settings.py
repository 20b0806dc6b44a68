"""Where the database is: the settings every process (agent, webhooks, `python -m db`) shares,
read from the environment or `.env`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Unset: an embedded Postgres with its data in `embedded_pg_dir`.
    database_url: str | None = None
    embedded_pg_dir: Path = Path(".data/postgres")
    # The embedded server listens on a private Unix socket only; true: also on 127.0.0.1 (with
    # its password, for a tool that cannot use the socket).
    embedded_pg_listen_tcp: bool = False
    # Every connection (agent, webhook service, recorder, `python -m db`) is bounded: a query
    # gives up after statement_timeout_ms and a wait for a lock after lock_timeout_ms (server
    # settings, with asyncpg's command_timeout as the backstop), so that a booking stuck behind
    # another transaction's lock is "the booking system is slow", not silence; connecting gives up
    # after connect_timeout_seconds, so that a Postgres that is away is noticed quickly.
    statement_timeout_ms: int = Field(3000, gt=0)
    lock_timeout_ms: int = Field(2000, gt=0)
    connect_timeout_seconds: float = Field(3.0, gt=0)
    # Migrations may rewrite a large table, or wait for another process's migrations: both bounds.
    migration_timeout_ms: int = Field(600_000, gt=0)
    # `transaction`: DATABASE_URL is a transaction-mode pooler (PgBouncer, Supabase's pooler on
    # port 6543), which hands each transaction to any server connection: no prepared statement
    # cache, no startup parameters, and what needs a session (the migrations' advisory lock)
    # goes to DATABASE_DIRECT_URL, the database itself.
    database_pool_mode: Literal["session", "transaction"] = "session"
    database_direct_url: str | None = None
    # Apply pending migrations when the process starts (`python -m db migrate` does it by hand).
    migrate_on_start: bool = True

    @property
    def pooled(self) -> bool:
        return self.database_pool_mode == "transaction"

    def session_url(self, dsn: str) -> str:
        """Where to open a connection that needs a session of its own (migrations): `dsn`
        itself unless it is a transaction-mode pooler."""
        if not self.pooled:
            return dsn
        if not self.database_direct_url:
            raise ValueError("DATABASE_POOL_MODE=transaction needs DATABASE_DIRECT_URL (the database "
                             "itself, not the pooler) for migrations")
        return self.database_direct_url
