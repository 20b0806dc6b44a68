-- 0014_api_keys: per-organisation API keys for the admin API, and the indexes its call log uses.
--
-- Issue 15. A key is stored as the SHA-256 of its secret (a key is 256 random bits, so a fast hash
-- is enough: there is nothing to brute-force), with a short prefix kept in clear so a person can
-- tell keys apart in a listing. Each key acts through a service member of its organisation: a
-- users row and an organization_members row made with the key (read -> staff, write -> manager,
-- admin -> owner), so every request runs under the same RLS policies as a signed-in person, with
-- auth.uid() = the key's user. Revoking a key removes that membership: a leaked revoked key can
-- no longer see anything even if the API's own check were bypassed.

create table api_keys (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations (id) on delete cascade,
    user_id uuid not null references users (id) on delete cascade,
    name text,
    prefix text not null,
    key_hash bytea not null,
    scope text not null,
    created_at timestamptz not null default now(),
    last_used_at timestamptz,
    revoked_at timestamptz,
    constraint api_keys_key_hash_key unique (key_hash),
    constraint api_keys_user_id_key unique (user_id),
    constraint api_keys_scope_check check (scope in ('read', 'write', 'admin')),
    constraint api_keys_hash_length_check check (length(key_hash) = 32)
);
comment on table api_keys is
    'Admin API keys, one organisation each: the SHA-256 of the secret, a clear prefix for listings, '
    'a scope (read / write / admin) and the service member (user_id) the key acts as under RLS.';

create index idx_api_keys_organization on api_keys (organization_id, created_at);

alter table api_keys enable row level security;
create policy api_keys_owner_select on api_keys for select to authenticated
    using (is_org_member(organization_id, '{owner}'));
create policy api_keys_admin_all on api_keys for all to authenticated
    using (is_admin()) with check (is_admin());
grant select on api_keys to authenticated;

-- The call log pages by (started_at, id) within an organisation or a location: with id in the
-- index a keyset page is one index range, whatever the filters on top.
create index idx_voice_calls_org_started_id on voice_calls (organization_id, started_at desc, id desc);
create index idx_voice_calls_location_started_id on voice_calls (location_id, started_at desc, id desc)
    where location_id is not null;

-- Reading a call log as a member, fast ---------------------------------------------------------
-- The API reads as an organisation's member (its key's service member), and can_access_call() of
-- 0001/0002, a security definer function, runs per row: 0.1-0.3 ms each, so a page of 50 calls
-- with their analyses spent 15 ms in policies alone. The policies below grant nothing new (a
-- member already sees their organisation's calls through can_access_call); they say the same
-- thing in a form the planner runs once per query: the member's organisations as an array, in a
-- scalar subquery (an InitPlan). Permissive policies are OR'ed in reverse name order (EXPLAIN
-- shows it on Postgres 18), so these names sort after the existing *_select ones and a member's
-- rows pass on the cheap test first; only speed depends on that order, never who sees what.

create function member_organization_ids() returns uuid[]
language sql stable security definer
set search_path = public, pg_temp
as $$
    select coalesce(array_agg(organization_id), '{}') from organization_members where user_id = auth.uid()
$$;
comment on function member_organization_ids() is
    'The organisations the current user belongs to (for policies: wrap it in (select ...) so it '
    'runs once per query).';

create policy voice_calls_select_within_org on voice_calls for select to authenticated
    using (organization_id = any ((select member_organization_ids())::uuid[]));

create policy call_analyses_select_within_org on call_analyses for select to authenticated
    using (exists (select 1 from voice_calls c where c.id = call_id
                    and c.organization_id = any ((select member_organization_ids())::uuid[])));
create policy voice_messages_select_within_org on voice_messages for select to authenticated
    using (exists (select 1 from voice_calls c where c.id = call_id
                    and c.organization_id = any ((select member_organization_ids())::uuid[])));
create policy call_events_select_within_org on call_events for select to authenticated
    using (exists (select 1 from voice_calls c where c.id = call_id
                    and c.organization_id = any ((select member_organization_ids())::uuid[])));
create policy call_participants_select_within_org on call_participants for select to authenticated
    using (exists (select 1 from voice_calls c where c.id = call_id
                    and c.organization_id = any ((select member_organization_ids())::uuid[])));
