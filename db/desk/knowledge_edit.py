"""Editing the knowledge base (the admin API's CRUD): every fact of an organisation, active or not,
and changes to one fact. Adding and (de)activating are db/desk/knowledge.py's add_fact and
set_fact_active; the constraints are registered there."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from db.desk.knowledge import _COLUMNS, Fact, _check_category
from db.errors import InvalidInput, NotFound, repository

LIST_ALL = f"""
select {_COLUMNS} from knowledge_base
 where organization_id = $1 and ($2::uuid is null or location_id = $2)
   and ($3::text is null or category::text = $3)
 order by category, priority desc, title, id
"""


@repository
async def list_all_facts(
    conn: asyncpg.Connection, *, organization_id: uuid.UUID, location_id: uuid.UUID | None = None,
    category: str | None = None,
) -> list[Fact]:
    return [Fact.from_record(r) for r in await conn.fetch(LIST_ALL, organization_id, location_id, category)]


GET_FACT = f"select {_COLUMNS} from knowledge_base where id = $1"
EDITABLE = ("category", "topic", "title", "content", "tags", "priority", "is_active")
UPDATE_FACT = f"""
update knowledge_base
   set category = $2::kb_category, topic = $3, title = $4, content = $5, tags = $6, priority = $7,
       is_active = $8
 where id = $1
returning {_COLUMNS}
"""


@repository
async def get_fact(conn: asyncpg.Connection, *, fact_id: uuid.UUID) -> Fact:
    record = await conn.fetchrow(GET_FACT, fact_id)
    if record is None:
        raise NotFound(f"no fact with id {fact_id}")
    return Fact.from_record(record)


@repository
async def update_fact(conn: asyncpg.Connection, *, fact_id: uuid.UUID, changes: dict[str, Any]) -> Fact:
    """Change some of a fact's EDITABLE fields; the others keep their values."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))} of a fact")
    current = await get_fact(conn, fact_id=fact_id)
    values = {name: changes.get(name, getattr(current, name)) for name in EDITABLE}
    _check_category(values["category"])
    values["tags"] = sorted({t.strip().lower() for t in values["tags"] if t.strip()})
    values["title"], values["content"] = values["title"].strip(), values["content"].strip()
    record = await conn.fetchrow(UPDATE_FACT, fact_id, *(values[name] for name in EDITABLE))
    return Fact.from_record(record)


DELETE_FACT = "delete from knowledge_base where id = $1 returning id"


@repository
async def delete_fact(conn: asyncpg.Connection, *, fact_id: uuid.UUID) -> None:
    if await conn.fetchval(DELETE_FACT, fact_id) is None:
        raise NotFound(f"no fact with id {fact_id}")
