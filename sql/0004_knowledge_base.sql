-- 0004_knowledge_base: the facts the receptionist answers from (parking, prices, policies, ...).
--
-- From seed 000 (categories, tags, priority, an active flag, real-time updates). Full-text search
-- over a generated tsvector (title A, content B, tags C) with a GIN index; a lookup runs mid-turn, so
-- it must stay in single milliseconds (bench/lookups.py). A fact of a location overrides the
-- organisation's fact on the same topic; db/knowledge.py applies that rule when it searches.

create type kb_category as enum ('business_info', 'hours', 'policies', 'services', 'faq');

-- array_to_string is only stable (it calls element output functions); for text[] it is immutable,
-- which a generated column requires.
create function kb_tags_text(p_tags text[]) returns text
language sql immutable parallel safe
as $$ select array_to_string(p_tags, ' ') $$;

create table knowledge_base (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations (id) on delete cascade,
    location_id uuid,
    category kb_category not null,
    topic text,
    title text not null,
    content text not null,
    tags text[] not null default '{}',
    priority smallint not null default 50,
    is_active boolean not null default true,
    metadata jsonb not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    search_vector tsvector generated always as (
        setweight(to_tsvector('english'::regconfig, title), 'A')
        || setweight(to_tsvector('english'::regconfig, content), 'B')
        || setweight(to_tsvector('english'::regconfig, kb_tags_text(tags)), 'C')
    ) stored,
    constraint knowledge_base_location_fkey foreign key (organization_id, location_id)
        references locations (organization_id, id) on delete cascade,
    constraint knowledge_base_title_check check (btrim(title) <> ''),
    constraint knowledge_base_content_check check (btrim(content) <> ''),
    constraint knowledge_base_topic_check check (topic ~ '^[a-z0-9]+([-_][a-z0-9]+)*$'),
    constraint knowledge_base_tags_check check (array_position(tags, '') is null),
    constraint knowledge_base_priority_check check (priority between 0 and 100)
);
comment on table knowledge_base is
    'Facts by category, organisation-wide (location_id null) or for one location. topic is an '
    'optional key: a location''s active fact replaces the organisation''s fact with the same topic '
    'when that location is asked. priority 0..100 breaks near-ties in relevance.';

create index idx_knowledge_base_search on knowledge_base using gin (search_vector);
create index idx_knowledge_base_tags on knowledge_base using gin (tags);
create index idx_knowledge_base_scope on knowledge_base (organization_id, location_id)
    where is_active;
create unique index knowledge_base_active_topic_key on knowledge_base (
    organization_id, coalesce(location_id, '00000000-0000-0000-0000-000000000000'::uuid), topic)
    where is_active and topic is not null;

create trigger knowledge_base_updated_at_trigger
    before update on knowledge_base for each row execute function set_updated_at();

alter table knowledge_base enable row level security;

create policy knowledge_base_member_select on knowledge_base for select to authenticated
    using (is_org_member(organization_id));
create policy knowledge_base_manager_all on knowledge_base for all to authenticated
    using (is_org_member(organization_id, '{owner,manager}'))
    with check (is_org_member(organization_id, '{owner,manager}'));
create policy knowledge_base_admin_all on knowledge_base for all to authenticated
    using (is_admin()) with check (is_admin());

grant select, insert, update, delete on knowledge_base to authenticated;
