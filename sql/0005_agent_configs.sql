-- 0005_agent_configs: what the receptionist says and how it behaves, versioned, with rollback.
--
-- From seed 000 (versioned configurations, policies, script overrides, easy rollback). A scope is
-- an organisation (location_id null: its default) or one location (an override). Versions number
-- up per scope; exactly one version per scope is active (a partial unique index), and activating
-- an older version is the rollback (db/configs.py does it in one transaction). Each call records
-- the version it ran with (voice_calls.agent_config_id).

create function agent_policies_valid(p jsonb) returns boolean
language plpgsql immutable parallel safe
as $$
declare
    key text;
begin
    if jsonb_typeof(p) is distinct from 'object' then
        return false;
    end if;
    foreach key in array array['lead_time_minutes', 'max_days_ahead', 'buffer_minutes',
                               'max_call_minutes', 'silence_timeout_seconds', 'slot_step_minutes']
    loop
        if p ? key and (jsonb_typeof(p -> key) <> 'number' or (p ->> key)::numeric < 0) then
            return false;
        end if;
    end loop;
    if p ? 'escalation_phone' and (jsonb_typeof(p -> 'escalation_phone') <> 'string'
                                   or p ->> 'escalation_phone' !~ '^\+[1-9][0-9]{6,14}$') then
        return false;
    end if;
    return true;
end
$$;
comment on function agent_policies_valid(jsonb) is
    'The policies of an agent config: an object whose known numbers are >= 0 and whose '
    'escalation_phone, when present, is E.164. Unknown keys are allowed (new policies need no '
    'migration).';

create table agent_configs (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations (id) on delete cascade,
    location_id uuid,
    version integer not null,
    label text,
    instructions text not null,
    greeting text not null,
    script_overrides jsonb not null default '{}',
    policies jsonb not null default '{}',
    language text not null default 'en',
    stt_model text,
    llm_model text,
    tts_model text,
    tts_voice text,
    is_active boolean not null default false,
    activated_at timestamptz,
    created_by uuid references users (id) on delete set null,
    created_at timestamptz not null default now(),
    constraint agent_configs_location_fkey foreign key (organization_id, location_id)
        references locations (organization_id, id) on delete cascade,
    constraint agent_configs_version_check check (version > 0),
    constraint agent_configs_instructions_check check (btrim(instructions) <> ''),
    constraint agent_configs_greeting_check check (btrim(greeting) <> ''),
    constraint agent_configs_script_overrides_check
        check (jsonb_typeof(script_overrides) = 'object'),
    constraint agent_configs_policies_check check (agent_policies_valid(policies))
);
comment on table agent_configs is
    'Versioned receptionist configuration per organisation (location_id null) or per location '
    '(an override that wins for that location): instructions, greeting, script overrides, policies '
    '(escalation_phone, lead_time_minutes, max_days_ahead, buffer_minutes, max_call_minutes, '
    'silence_timeout_seconds), STT/LLM/TTS choices. Content is never edited: a change is a new '
    'version; only is_active and activated_at move.';

create unique index agent_configs_scope_version_key on agent_configs (
    organization_id, coalesce(location_id, '00000000-0000-0000-0000-000000000000'::uuid), version);
create unique index agent_configs_one_active_key on agent_configs (
    organization_id, coalesce(location_id, '00000000-0000-0000-0000-000000000000'::uuid))
    where is_active;

alter table voice_calls
    add column agent_config_id uuid references agent_configs (id) on delete set null;
create index idx_voice_calls_agent_config on voice_calls (agent_config_id)
    where agent_config_id is not null;

alter table agent_configs enable row level security;

create policy agent_configs_member_select on agent_configs for select to authenticated
    using (is_org_member(organization_id));
create policy agent_configs_manager_all on agent_configs for all to authenticated
    using (is_org_member(organization_id, '{owner,manager}'))
    with check (is_org_member(organization_id, '{owner,manager}'));
create policy agent_configs_admin_all on agent_configs for all to authenticated
    using (is_admin()) with check (is_admin());

grant select, insert, update, delete on agent_configs to authenticated;
