-- 0018_api_audit: the admin API writes audit_log rows as the organisation member its key acts as.
--
-- Issue 15 meets issue 16. Every API request runs as the `authenticated` role with its key's
-- service member in the JWT claims (api/auth.py), so what the API audits (a configuration
-- activated, a call's detail read, an export made) is inserted under RLS. 0015 lets owners and
-- managers read their organisation's rows but lets no member write one.
--
-- * A member may insert a row for an organisation they belong to, naming themselves as the actor
--   ('member:' || their user id): no one writes rows in another organisation's name or another
--   person's. The table stays append-only: no update or delete for anyone but its owner.
-- * A member may read the rows they wrote (INSERT ... RETURNING needs it, and a staff member
--   could not read them otherwise); others' rows stay as 0015 says: owners and managers of the
--   organisation, and admins.

grant insert on audit_log to authenticated;

create policy audit_log_member_insert on audit_log for insert to authenticated
    with check (organization_id = any ((select member_organization_ids())::uuid[])
                and actor = 'member:' || auth.uid()::text);

create policy audit_log_member_own_select on audit_log for select to authenticated
    using (actor = 'member:' || auth.uid()::text
           and organization_id = any ((select member_organization_ids())::uuid[]));
