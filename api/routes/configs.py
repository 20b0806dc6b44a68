"""/v1/configs: agent configuration versions; create, activate, roll back, diff."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.auth import Reader, Writer
from api.problems import ApiProblem
from db.desk import configs
from db.desk.config_diff import FieldDiff, diff_configs
from db.desk.configs import AgentConfig

router = APIRouter(prefix="/configs", tags=["configurations"])

Text = Annotated[str, Field(min_length=1, max_length=20_000)]
Model = Annotated[str | None, Field(max_length=200)]


class NewConfig(BaseModel):
    location_id: uuid.UUID | None = None
    label: Annotated[str | None, Field(max_length=200)] = None
    instructions: Text
    greeting: Annotated[str, Field(min_length=1, max_length=2_000)]
    script_overrides: dict[str, Annotated[str, Field(max_length=2_000)]] = {}
    policies: dict[str, Any] = {}
    language: Annotated[str, Field(min_length=2, max_length=10)] = "en"
    stt_model: Model = None
    llm_model: Model = None
    tts_model: Model = None
    tts_voice: Model = None
    activate: bool = False


class Rollback(BaseModel):
    location_id: uuid.UUID | None = None
    to_version: Annotated[int | None, Field(ge=1)] = Field(
        None, description="default: the newest version older than the active one")


class ConfigDiff(BaseModel):
    old: AgentConfig
    new: AgentConfig
    fields: list[FieldDiff]


async def find_config(caller: Reader, config_id: uuid.UUID) -> AgentConfig:
    found = await caller.conn.fetchrow(configs.GET_CONFIG, config_id)
    if found is None:
        raise ApiProblem(404, f"no configuration with id {config_id}")
    return AgentConfig.from_record(found)


@router.get("", response_model=list[AgentConfig], summary="Every version of a scope, newest first")
async def list_configs(caller: Reader, location_id: uuid.UUID | None = None) -> list[AgentConfig]:
    return await configs.list_configs(caller.conn, organization_id=caller.organization_id,
                                      location_id=location_id)


@router.get("/diff", response_model=ConfigDiff, summary="What changed from one version to another")
async def diff(caller: Reader, old: Annotated[uuid.UUID, Query(alias="from")],
               new: Annotated[uuid.UUID, Query(alias="to")]) -> ConfigDiff:
    before, after = await find_config(caller, old), await find_config(caller, new)
    return ConfigDiff(old=before, new=after, fields=diff_configs(before, after))


@router.get("/{config_id}", response_model=AgentConfig, summary="One version")
async def get_config(caller: Reader, config_id: uuid.UUID) -> AgentConfig:
    return await find_config(caller, config_id)


@router.post("", response_model=AgentConfig, status_code=201, summary="A new version of a scope")
async def create_config(caller: Writer, body: NewConfig) -> AgentConfig:
    return await configs.create_config(
        caller.conn, organization_id=caller.organization_id, created_by=caller.key.user_id,
        actor=caller.actor, **body.model_dump())


@router.post("/{config_id}/activate", response_model=AgentConfig, summary="Make a version the active one")
async def activate(caller: Writer, config_id: uuid.UUID) -> AgentConfig:
    await find_config(caller, config_id)  # 404 for a version the caller cannot see
    return await configs.activate_config(caller.conn, config_id=config_id, actor=caller.actor)


@router.post("/rollback", response_model=AgentConfig, summary="Activate an older version of a scope")
async def rollback(caller: Writer, body: Rollback) -> AgentConfig:
    return await configs.rollback_config(caller.conn, organization_id=caller.organization_id,
                                         location_id=body.location_id, to_version=body.to_version,
                                         actor=caller.actor)
