"""Where the database is: the settings every process (agent, webhooks, `python -m db`) shares,
read from the environment or `.env`."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Unset: an embedded Postgres with its data in `embedded_pg_dir`.
    database_url: str | None = None
    embedded_pg_dir: Path = Path(".data/postgres")
    # The embedded server listens on a private Unix socket only; true: also on 127.0.0.1 (with
    # its password, for a tool that cannot use the socket).
    embedded_pg_listen_tcp: bool = False
    # Apply pending migrations when the process starts (`python -m db migrate` does it by hand).
    migrate_on_start: bool = True
