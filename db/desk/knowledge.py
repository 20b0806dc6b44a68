"""knowledge_base: the facts the receptionist answers from, and the search it runs mid-turn.

Search is Postgres full text over title (weight A), content (B) and tags (C). A caller's question
is turned into an OR of its lexemes ("do you have parking" -> 'park'), so a fact need not contain
every word of the question; ts_rank orders the matches, scaled by priority. Of the facts that share
a topic, the location's own replaces the organisation's; beyond that, a location fact gets a small
boost. When full text finds nothing (a misheard word), trigram similarity of the question's words
to the facts is the fallback.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields

import asyncpg

from db import errors
from db.errors import Conflict, InvalidInput, NotFound, repository

CATEGORIES = ("business_info", "hours", "policies", "services", "faq")
TRIGRAM_THRESHOLD = 0.6

CONSTRAINTS = errors.constraints({
    "knowledge_base_organization_id_fkey": (NotFound, "no organisation with this id"),
    "knowledge_base_location_fkey": (NotFound, "no such location in this organisation"),
    "knowledge_base_title_check": (InvalidInput, "a fact needs a title"),
    "knowledge_base_content_check": (InvalidInput, "a fact needs content"),
    "knowledge_base_topic_check": (InvalidInput, "a topic is lowercase letters and digits joined by - or _"),
    "knowledge_base_tags_check": (InvalidInput, "tags cannot be empty strings"),
    "knowledge_base_priority_check": (InvalidInput, "priority is between 0 and 100"),
    "knowledge_base_active_topic_key": (
        Conflict, "this scope already has an active fact on this topic: deactivate it first"),
})


@dataclass(frozen=True)
class Fact:
    id: uuid.UUID
    organization_id: uuid.UUID
    location_id: uuid.UUID | None
    category: str
    topic: str | None
    title: str
    content: str
    tags: tuple[str, ...]
    priority: int
    is_active: bool
    score: float = 0.0

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> Fact:
        values = {f.name: record[f.name] for f in fields(cls) if f.name in record.keys()}
        return cls(**{**values, "tags": tuple(record["tags"])})


_COLUMNS = "id, organization_id, location_id, category::text as category, topic, title, content, tags, " \
    "priority, is_active"

INSERT_FACT = f"""
insert into knowledge_base (id, organization_id, location_id, category, topic, title, content, tags,
                            priority)
values (coalesce($1, gen_random_uuid()), $2, $3, $4::kb_category, $5, $6, $7, $8, $9)
returning {_COLUMNS}
"""


@repository
async def add_fact(
    conn: asyncpg.Connection,
    *,
    organization_id: uuid.UUID,
    category: str,
    title: str,
    content: str,
    tags: Sequence[str] = (),
    priority: int = 50,
    location_id: uuid.UUID | None = None,
    topic: str | None = None,
    id: uuid.UUID | None = None,
) -> Fact:
    """A fact for the organisation, or for one location (which then wins on its topic)."""
    _check_category(category)
    clean_tags = sorted({t.strip().lower() for t in tags if t.strip()})
    record = await conn.fetchrow(INSERT_FACT, id, organization_id, location_id, category, topic,
                                 title.strip(), content.strip(), clean_tags, priority)
    return Fact.from_record(record)


SET_ACTIVE = f"update knowledge_base set is_active = $2 where id = $1 returning {_COLUMNS}"


@repository
async def set_fact_active(conn: asyncpg.Connection, *, fact_id: uuid.UUID, is_active: bool) -> Fact:
    record = await conn.fetchrow(SET_ACTIVE, fact_id, is_active)
    if record is None:
        raise NotFound(f"no fact with id {fact_id}")
    return Fact.from_record(record)


# The facts a location may use, filtered (shared by both searches). Its columns are _COLUMNS.
_SCOPE = f"""
scoped as (
    select {_COLUMNS}, search_vector, title || ' ' || content || ' ' || kb_tags_text(tags) as body
      from knowledge_base
     where organization_id = $1 and is_active
       and (location_id is null or location_id = $3)
       and ($4::kb_category[] is null or category = any ($4))
       and ($5::text[] is null or tags && $5)
)"""

# `relevance` is materialized: on a generic plan (asyncpg prepares statements) the planner guesses
# one row in scope and would re-run the scoring per fact in a nested loop (100x slower).
# Each topic once (the location's version), then best first. `relevance` is the search's own score;
# priority scales it by up to 1.5 and a location fact gets a little more.
_RANKED = f"""
, scored as (
    select s.*, r.relevance * (1 + s.priority / 200.0)
                * case when s.location_id is null then 1.0 else 1.1 end as score
      from scoped s join relevance r using (id)
),
one_per_topic as (
    select distinct on (coalesce(topic, id::text)) *
      from scored
     order by coalesce(topic, id::text), location_id is null, score desc
)
select {_COLUMNS}, score::float8 as score from one_per_topic
 order by score desc, location_id is null, priority desc, title
 limit $6
"""

# ts_rank has no notion of how rare a word is: "open" in a title would beat "thanksgiving" in the
# text. So each query lexeme a fact contains scores its inverse document frequency within the
# facts in scope, times the best place it appears (title 1.0, tags 0.7, text 0.5).
FULL_TEXT = "with q as (" + """
    select nullif(replace(plainto_tsquery('english', $2)::text, ' & ', ' | '), '')::tsquery as query,
           array(select lexeme from unnest(to_tsvector('english', $2))) as lexemes
),""" + _SCOPE + """,
hits as (
    select s.id, t.lexeme,
           case when 'A' = any (t.weights) then 1.0 when 'C' = any (t.weights) then 0.7 else 0.5 end
               as placement
      from scoped s, q, unnest(s.search_vector) t
     where s.search_vector @@ q.query and t.lexeme = any (q.lexemes)
),
idf as (
    select lexeme, ln(1 + ((select count(*) from scoped) - count(*) + 0.5) / (count(*) + 0.5)) as idf
      from hits group by lexeme
),
relevance as materialized (
    select h.id, sum(i.idf * h.placement) as relevance from hits h join idf i using (lexeme) group by h.id
)""" + _RANKED

# Fallback for a word full text cannot match (a misheard "parkin"): the best trigram similarity
# of one of the question's content words to a fact.
TRIGRAM = """
with q as (
    select array(select w from regexp_split_to_table(lower($2), '[^[:alnum:]]+') w
                  where length(w) >= 4 and ts_lexize('english_stem', w) <> '{}') as words
),""" + _SCOPE + f""",
relevance as materialized (
    select s.id, max(word_similarity(w, s.body)) as relevance
      from scoped s, q, unnest(q.words) w
     group by s.id
    having max(word_similarity(w, s.body)) >= {TRIGRAM_THRESHOLD}
)""" + _RANKED


@repository
async def search(
    conn: asyncpg.Connection,
    *,
    organization_id: uuid.UUID,
    query: str,
    location_id: uuid.UUID | None = None,
    categories: Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
    limit: int = 3,
) -> list[Fact]:
    """The facts that best answer `query` (a caller's words), best first: full text, else trigram."""
    if not query or not query.strip():
        raise InvalidInput("a search needs some words")
    for category in categories or ():
        _check_category(category)
    args = (organization_id, query, location_id, list(categories) if categories else None,
            [t.lower() for t in tags] if tags else None, limit)
    records = await conn.fetch(FULL_TEXT, *args)
    if not records:
        records = await conn.fetch(TRIGRAM, *args)
    return [Fact.from_record(r) for r in records]


LIST_FACTS = f"""
select * from (
    select distinct on (coalesce(topic, id::text)) {_COLUMNS}
      from knowledge_base
     where organization_id = $1 and is_active and (location_id is null or location_id = $2)
       and ($3::kb_category[] is null or category = any ($3))
     order by coalesce(topic, id::text), location_id is null
) facts
order by category, priority desc, title
limit $4
"""


@repository
async def list_facts(
    conn: asyncpg.Connection,
    *,
    organization_id: uuid.UUID,
    location_id: uuid.UUID | None = None,
    categories: Sequence[str] | None = None,
    limit: int = 200,
) -> list[Fact]:
    """Every active fact a location uses (its own replacing the organisation's on a topic), by
    category then priority: what an agent may put in its instructions up front."""
    records = await conn.fetch(LIST_FACTS, organization_id, location_id,
                               list(categories) if categories else None, limit)
    return [Fact.from_record(r) for r in records]


def _check_category(category: str) -> None:
    if category not in CATEGORIES:
        raise InvalidInput(f"unknown category {category!r}: use one of {', '.join(CATEGORIES)}")
