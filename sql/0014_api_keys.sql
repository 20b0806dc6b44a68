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
