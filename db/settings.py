"""Where the database is: the settings every process (agent, webhooks, `python -m db`) shares,
read from the environment or `.env`."""

from __future__ import annotations

from pathlib import Path

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
    # Apply pending migrations when the process starts (`python -m db migrate` does it by hand).
    migrate_on_start: bool = True
