"""/v1/knowledge: the knowledge base's facts, created, listed, edited, deleted."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from api.auth import Reader, Writer
from db.desk import knowledge, knowledge_edit
from db.desk.knowledge import Fact

router = APIRouter(prefix="/knowledge", tags=["knowledge base"])

Category = Literal["business_info", "hours", "policies", "services", "faq"]
Title = Annotated[str, Field(min_length=1, max_length=300)]
Content = Annotated[str, Field(min_length=1, max_length=10_000)]
Tags = Annotated[list[Annotated[str, Field(max_length=50)]], Field(max_length=30)]
Topic = Annotated[str | None, Field(max_length=100, pattern=r"^[a-z0-9]+([_-][a-z0-9]+)*$")]
Priority = Annotated[int, Field(ge=0, le=100)]


class NewFact(BaseModel):
    category: Category
    title: Title
    content: Content
    tags: Tags = []
    priority: Priority = 50
    location_id: uuid.UUID | None = None
    topic: Topic = None


class FactChanges(BaseModel):
    category: Category | None = None
    title: Title | None = None
    content: Content | None = None
    tags: Tags | None = None
    priority: Priority | None = None
    topic: Topic = None
    is_active: bool | None = None


@router.get("", response_model=list[Fact], summary="Every fact, active or not")
async def list_facts(caller: Reader, location_id: uuid.UUID | None = None,
                     category: Category | None = None) -> list[Fact]:
    return await knowledge_edit.list_all_facts(caller.conn, organization_id=caller.organization_id,
                                               location_id=location_id, category=category)


@router.post("", response_model=Fact, status_code=201, summary="Add a fact")
async def add_fact(caller: Writer, body: NewFact) -> Fact:
    return await knowledge.add_fact(caller.conn, organization_id=caller.organization_id, **body.model_dump())


@router.get("/{fact_id}", response_model=Fact, summary="One fact")
async def get_fact(caller: Reader, fact_id: uuid.UUID) -> Fact:
    return await knowledge_edit.get_fact(caller.conn, fact_id=fact_id)


@router.patch("/{fact_id}", response_model=Fact, summary="Change some of a fact's fields")
async def update_fact(caller: Writer, fact_id: uuid.UUID, body: FactChanges) -> Fact:
    # null clears the topic; for the other fields (none of which may be empty) it means "unchanged"
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k == "topic"}
    return await knowledge_edit.update_fact(caller.conn, fact_id=fact_id, changes=changes)


@router.delete("/{fact_id}", status_code=204, response_class=Response, summary="Delete a fact")
async def delete_fact(caller: Writer, fact_id: uuid.UUID) -> Response:
    await knowledge_edit.delete_fact(caller.conn, fact_id=fact_id)
    return Response(status_code=204)
