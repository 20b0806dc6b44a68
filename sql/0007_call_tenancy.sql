-- 0007_call_tenancy: a call belongs to one tenant, also for a signed-in user under RLS.
--
-- Issue 11. Until now a signed-in user could insert a voice_calls row into any organisation, or
-- re-point one of their calls there, as long as user_id was their own; and a call's location_id
-- could name a location of another organisation.
--
-- * voice_calls' write policies (insert, update) also require membership of the row's
--   organisation, before and after an update (a call without an organisation stays the owner's
--   alone). Participants, messages, events and analyses are written by admins only (0001): no
--   change, tests/test_domain_rls.py keeps it so.
-- * (organization_id, location_id) becomes a composite foreign key to locations(organization_id,
--   id), as appointments, providers, knowledge_base and agent_configs already have. MATCH SIMPLE:
--   a call without an organisation is not checked by it, so the single-column
--   voice_calls_location_id_fkey of 0002 stays (the location at least exists). Deleting a location
--   sets only location_id to null (the call stays its organisation's).
-- * Existing rows whose location belongs to another organisation: the data fix below sets their
--   location_id to null (the organisation they were recorded for is kept; moving a call into the
--   location's organisation would show it to another tenant). A notice tells how many. The
--   constraint is then added validated, in this same transaction.

create function can_write_call(p_user_id uuid, p_organization_id uuid) returns boolean
language sql stable
set search_path = public, pg_temp
as $$
    select p_user_id = auth.uid()
       and (p_organization_id is null or is_org_member(p_organization_id))
$$;
comment on function can_write_call(uuid, uuid) is
    'Whether the current user may write a voice_calls row with this owner and organisation: it is '
    'their own and, when it has an organisation, they are a member of it.';

drop policy voice_calls_insert_own on voice_calls;
drop policy voice_calls_update_own on voice_calls;
create policy voice_calls_insert_own on voice_calls for insert to authenticated
    with check (can_write_call(user_id, organization_id));
create policy voice_calls_update_own on voice_calls for update to authenticated
    using (can_write_call(user_id, organization_id))
    with check (can_write_call(user_id, organization_id));

do $$
declare
    fixed integer;
begin
    update voice_calls c set location_id = null
      from locations l
     where l.id = c.location_id and c.organization_id is distinct from l.organization_id
       and c.organization_id is not null;
    get diagnostics fixed = row_count;
    if fixed > 0 then
        raise notice '0007_call_tenancy: % call(s) named a location of another organisation; '
                     'their location_id is now null', fixed;
    end if;
end
$$;

alter table voice_calls
    add constraint voice_calls_location_org_fkey foreign key (organization_id, location_id)
        references locations (organization_id, id) on delete set null (location_id);
