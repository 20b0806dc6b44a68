"""agent_configs: versioned receptionist configuration, per organisation or per location.

A scope is an organisation (its default) or one location (an override). Each change is a new
version; exactly one version per scope is active. Activation and rollback lock the organisation row,
so concurrent activations in one organisation apply one after the other, never leaving a scope with
two active versions or none.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

from db import audit, errors
from db.desk.call_limits import DEFAULT_MAX_BOOKINGS
from db.desk.config_text import check_placeholders
from db.desk.phone import normalize_phone
from db.desk.slots import MIN_SLOT_STEP_MINUTES, BookingRules
from db.errors import Conflict, DomainError, InvalidInput, NotFound, repository

log = logging.getLogger(__name__)

INTEGER_POLICIES = ("lead_time_minutes", "max_days_ahead", "buffer_minutes", "max_call_minutes",
                    "silence_timeout_seconds", "slot_step_minutes", "max_bookings_per_call",
                    # how long a pause ends the caller's turn (agent.session.turn_handling)
                    "min_endpointing_delay_ms", "max_endpointing_delay_ms")
DEFAULT_POLICIES = {"max_call_minutes": 15, "silence_timeout_seconds": 20,
                    "max_bookings_per_call": DEFAULT_MAX_BOOKINGS}


class ConfigNotFound(NotFound):
    pass


class InvalidPolicy(DomainError):
    pass


CONSTRAINTS = errors.constraints({
    "agent_configs_organization_id_fkey": (NotFound, "no organisation with this id"),
    "agent_configs_location_fkey": (NotFound, "no such location in this organisation"),
    "agent_configs_created_by_fkey": (NotFound, "no user with this id"),
    "agent_configs_version_check": (InvalidInput, "versions start at 1"),
    "agent_configs_instructions_check": (InvalidInput, "an agent config needs instructions"),
    "agent_configs_greeting_check": (InvalidInput, "an agent config needs a greeting"),
    "agent_configs_script_overrides_check": (InvalidInput, "script overrides must be a JSON object"),
    "agent_configs_policies_check": (
        InvalidInput, "policies must be an object of non-negative numbers and an E.164 escalation_phone"),
    "agent_configs_slot_step_check": (
        InvalidInput, f"policy slot_step_minutes must be at least {MIN_SLOT_STEP_MINUTES}"),
    "agent_configs_scope_version_key": (Conflict, "this version already exists in this scope"),
    "agent_configs_one_active_key": (Conflict, "another version of this scope is active"),
})


@dataclass(frozen=True)
class AgentConfig:
    id: uuid.UUID
    organization_id: uuid.UUID
    location_id: uuid.UUID | None
    version: int
    label: str | None
    instructions: str
    greeting: str
    script_overrides: dict[str, Any]
    policies: dict[str, Any]
    language: str
    stt_model: str | None
    llm_model: str | None
    tts_model: str | None
    tts_voice: str | None
    is_active: bool
    activated_at: datetime | None
    created_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> AgentConfig:
        return cls(**{f.name: record[f.name] for f in fields(cls)})

    @property
    def booking_rules(self) -> BookingRules:
        return BookingRules.from_policies(self.policies)

    def policy(self, name: str, default: Any = None) -> Any:
        return self.policies.get(name, DEFAULT_POLICIES.get(name, default))


_COLUMNS = ", ".join(f.name for f in fields(AgentConfig))


def validate_policies(policies: Mapping[str, Any] | None) -> dict[str, Any]:
    """Policies as stored: known numbers are non-negative integers (slot_step_minutes at least 5),
    escalation_phone is E.164."""
    result = dict(policies or {})
    for key in INTEGER_POLICIES:
        value = result.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidPolicy(f"policy {key} must be a whole number of 0 or more, not {value!r}")
    if result.get("slot_step_minutes") is not None and result["slot_step_minutes"] < MIN_SLOT_STEP_MINUTES:
        raise InvalidPolicy(f"policy slot_step_minutes must be at least {MIN_SLOT_STEP_MINUTES}")
    low, high = result.get("min_endpointing_delay_ms"), result.get("max_endpointing_delay_ms")
    if low is not None and high is not None and low > high:
        raise InvalidPolicy("policy min_endpointing_delay_ms must not exceed max_endpointing_delay_ms")
    if result.get("escalation_phone"):
        number = normalize_phone(str(result["escalation_phone"]))
        if number is None:
            raise InvalidPolicy("policy escalation_phone must be a phone number with its area code")
        result["escalation_phone"] = number
    return result


LOCK_ORGANIZATION = "select id from organizations where id = $1 for no key update"

INSERT_CONFIG = f"""
insert into agent_configs (organization_id, location_id, version, label, instructions, greeting,
                           script_overrides, policies, language, stt_model, llm_model, tts_model,
                           tts_voice, created_by)
select $1, $2, coalesce(max(version), 0) + 1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
  from agent_configs
 where organization_id = $1 and location_id is not distinct from $2
returning {_COLUMNS}
"""


@repository
async def create_config(
    conn: asyncpg.Connection,
    *,
    organization_id: uuid.UUID,
    instructions: str,
    greeting: str,
    location_id: uuid.UUID | None = None,
    script_overrides: Mapping[str, Any] | None = None,
    policies: Mapping[str, Any] | None = None,
    label: str | None = None,
    language: str = "en",
    stt_model: str | None = None,
    llm_model: str | None = None,
    tts_model: str | None = None,
    tts_voice: str | None = None,
    created_by: uuid.UUID | None = None,
    activate: bool = False,
    actor: str = "system",
) -> AgentConfig:
    """The next version of a scope's configuration (inactive unless `activate`)."""
    check_placeholders("greeting", greeting)
    check_placeholders("instructions", instructions)
    values = (label, instructions, greeting, dict(script_overrides or {}), validate_policies(policies),
              language, stt_model, llm_model, tts_model, tts_voice, created_by)
    async with conn.transaction():
        await _lock(conn, organization_id)
        record = await conn.fetchrow(INSERT_CONFIG, organization_id, location_id, *values)
    config = AgentConfig.from_record(record)
    return await activate_config(conn, config_id=config.id, actor=actor) if activate else config


GET_CONFIG = f"select {_COLUMNS} from agent_configs where id = $1"
DEACTIVATE_SCOPE = """
update agent_configs set is_active = false
 where organization_id = $1 and location_id is not distinct from $2 and is_active and id <> $3
"""
ACTIVATE = f"""
update agent_configs set is_active = true, activated_at = now() where id = $1 returning {_COLUMNS}
"""


@repository
async def activate_config(conn: asyncpg.Connection, *, config_id: uuid.UUID,
                          actor: str = "system") -> AgentConfig:
    """Make this version the active one of its scope, atomically (also how a rollback happens),
    with an audit_log row saying who did it."""
    async with conn.transaction():
        target = await _get(conn, config_id)
        await _lock(conn, target.organization_id)
        # Two statements, in this order: the partial unique index is checked row by row.
        await conn.execute(DEACTIVATE_SCOPE, target.organization_id, target.location_id, config_id)
        record = await conn.fetchrow(ACTIVATE, config_id)
        await audit.record(conn, actor=actor, action=audit.CONFIG_ACTIVATION, row_count=1,
                           organization_id=target.organization_id, subject=str(config_id),
                           details={"version": target.version,
                                    "location_id": str(target.location_id) if target.location_id else None})
    log.info("activated agent config v%s of %s", target.version, target.organization_id)
    return AgentConfig.from_record(record)


SCOPE_VERSIONS = f"""
select {_COLUMNS} from agent_configs
 where organization_id = $1 and location_id is not distinct from $2
 order by version desc
"""


@repository
async def list_configs(
    conn: asyncpg.Connection, *, organization_id: uuid.UUID, location_id: uuid.UUID | None = None
) -> list[AgentConfig]:
    """Every version of a scope, newest first."""
    records = await conn.fetch(SCOPE_VERSIONS, organization_id, location_id)
    return [AgentConfig.from_record(r) for r in records]


@repository
async def rollback_config(
    conn: asyncpg.Connection,
    *,
    organization_id: uuid.UUID,
    location_id: uuid.UUID | None = None,
    to_version: int | None = None,
    actor: str = "system",
) -> AgentConfig:
    """Activate `to_version`, or by default the newest version older than the active one."""
    async with conn.transaction():
        await _lock(conn, organization_id)
        versions = await list_configs(conn, organization_id=organization_id, location_id=location_id)
        active = next((c.version for c in versions if c.is_active), None)
        if to_version is None:
            if active is None:
                raise InvalidInput("this scope has no active version to roll back from")
            to_version = max((c.version for c in versions if c.version < active), default=None)
            if to_version is None:
                raise InvalidInput(f"version {active} is the first: there is nothing to roll back to")
        target = next((c for c in versions if c.version == to_version), None)
        if target is None:
            raise ConfigNotFound(f"this scope has no version {to_version}")
        return await activate_config(conn, config_id=target.id, actor=actor)


# The location's own active version wins over the organisation's default.
ACTIVE_FOR_LOCATION = f"""
select {', '.join('c.' + f.name for f in fields(AgentConfig))}
  from locations l
  join agent_configs c on c.organization_id = l.organization_id and c.is_active
                      and (c.location_id = l.id or c.location_id is null)
 where l.id = $1
 order by c.location_id nulls last
 limit 1
"""
ACTIVE_FOR_ORGANIZATION = f"""
select {_COLUMNS} from agent_configs where organization_id = $1 and location_id is null and is_active
"""


@repository
async def active_config(
    conn: asyncpg.Connection, *, location_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
) -> AgentConfig | None:
    """The configuration a call runs with: the location's override, else its organisation's
    default (with only `organization_id`: the default). None when nothing is active."""
    if location_id is not None:
        record = await conn.fetchrow(ACTIVE_FOR_LOCATION, location_id)
    elif organization_id is not None:
        record = await conn.fetchrow(ACTIVE_FOR_ORGANIZATION, organization_id)
    else:
        raise InvalidInput("give a location_id or an organization_id")
    return AgentConfig.from_record(record) if record else None


async def _get(conn: asyncpg.Connection, config_id: uuid.UUID) -> AgentConfig:
    record = await conn.fetchrow(GET_CONFIG, config_id)
    if record is None:
        raise ConfigNotFound(f"no agent config with id {config_id}")
    return AgentConfig.from_record(record)


async def _lock(conn: asyncpg.Connection, organization_id: uuid.UUID) -> None:
    if await conn.fetchval(LOCK_ORGANIZATION, organization_id) is None:
        raise NotFound(f"no organisation with id {organization_id}")
