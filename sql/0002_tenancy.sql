-- 0002_tenancy: the businesses we answer for, their branches, opening hours, services and staff.
--
-- From seed 000 (multi-branch organisations, structured addresses, location-specific hours,
-- services and providers). A location's phone_number is the E.164 number callers dial: an inbound
-- SIP call is routed to the active location that owns it. Row level security extends to the
-- members of an organisation (organization_members); can_access_call() keeps 0001's rules and adds
-- "a member of the call's organisation".

create extension if not exists btree_gist;
create extension if not exists pg_trgm;

-- Types -----------------------------------------------------------------------------------------

-- Opening intervals are times of day; a range type lets an exclusion constraint refuse overlaps.
create type timerange as range (subtype = time);

-- Helpers ---------------------------------------------------------------------------------------

create function assert_time_zones(p_names text[], p_constraint text) returns void
language plpgsql stable
as $$
declare
    unknown text;
begin
    -- pg_timezone_names reads every zone file (tens of ms), so this runs once per statement.
    select n into unknown
      from unnest(p_names) n
     where n is not null
       and not exists (select 1 from pg_timezone_names z where z.name = n)
     limit 1;
    if found then
        raise exception 'unknown time zone "%": use an IANA name such as America/New_York', unknown
            using errcode = 'check_violation', constraint = p_constraint;
    end if;
end
$$;
comment on function assert_time_zones(text[], text) is
    'Raises a check_violation named p_constraint unless every name is an IANA time zone '
    '(exact spelling: Python''s zoneinfo is case-sensitive, Postgres is not).';

-- Tables ----------------------------------------------------------------------------------------

create table organizations (
    id uuid primary key default gen_random_uuid(),
    name text not null,
    slug text not null,
    default_timezone text not null default 'UTC',
    is_active boolean not null default true,
    metadata jsonb not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint organizations_slug_key unique (slug),
    constraint organizations_slug_check check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    constraint organizations_name_check check (btrim(name) <> '')
);
comment on table organizations is
    'A business we answer the phone for (a clinic group, a salon chain). Owns locations, services, '
    'knowledge and agent configurations.';

create table organization_members (
    organization_id uuid not null references organizations (id) on delete cascade,
    user_id uuid not null references users (id) on delete cascade,
    role text not null default 'staff',
    created_at timestamptz not null default now(),
    primary key (organization_id, user_id),
    constraint organization_members_role_check check (role in ('owner', 'manager', 'staff'))
);
comment on table organization_members is
    'Who works for an organisation. Members see its rows (calls included); owners and managers '
    'may change them; owners manage membership.';

create table locations (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations (id) on delete cascade,
    slug text not null,
    name text not null,
    timezone text not null,
    phone_number text,
    address_line1 text not null,
    address_line2 text,
    city text not null,
    region text,
    postal_code text,
    country text not null default 'US',
    booking_capacity integer not null default 1,
    is_active boolean not null default true,
    metadata jsonb not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint locations_org_id_key unique (organization_id, id),
    constraint locations_org_slug_key unique (organization_id, slug),
    constraint locations_slug_check check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    constraint locations_name_check check (btrim(name) <> ''),
    constraint locations_phone_number_check check (phone_number ~ '^\+[1-9][0-9]{6,14}$'),
    constraint locations_address_line1_check check (btrim(address_line1) <> ''),
    constraint locations_city_check check (btrim(city) <> ''),
    constraint locations_country_check check (country ~ '^[A-Z]{2}$'),
    constraint locations_region_check check (
        country not in ('US', 'CA') or coalesce(region ~ '^[A-Z]{2}$', false)),
    constraint locations_postal_code_check check (
        case country
            when 'US' then coalesce(postal_code ~ '^[0-9]{5}(-[0-9]{4})?$', false)
            when 'CA' then coalesce(postal_code ~ '^[A-Z][0-9][A-Z] ?[0-9][A-Z][0-9]$', false)
            else postal_code is null or postal_code ~ '^[A-Za-z0-9][A-Za-z0-9 -]{1,10}$'
        end),
    constraint locations_booking_capacity_check check (booking_capacity >= 0)
);
comment on table locations is
    'A branch: its IANA time zone, the E.164 number callers dial (routes inbound SIP calls; unique '
    'among active locations), a structured address (US/CA: two-letter region and a postal code of '
    'the country''s form). booking_capacity: how many appointments WITHOUT a provider may overlap '
    'at this location (chairs, rooms); db/appointments.py enforces it under a lock on this row. '
    'Bookings with a provider are limited by the provider''s own calendar instead.';
comment on column locations.booking_capacity is
    'Concurrent provider-less confirmed appointments allowed (0: only bookings with a provider).';

create unique index locations_phone_number_active_key on locations (phone_number)
    where is_active and phone_number is not null;

create table business_hours (
    id uuid primary key default gen_random_uuid(),
    location_id uuid not null references locations (id) on delete cascade,
    day_of_week smallint not null,
    opens_at time not null,
    closes_at time not null,
    constraint business_hours_day_of_week_check check (day_of_week between 1 and 7),
    constraint business_hours_interval_check check (closes_at > opens_at and closes_at < '24:00'),
    constraint business_hours_no_overlap exclude using gist (
        location_id with =, day_of_week with =, timerange(opens_at, closes_at) with &&)
);
comment on table business_hours is
    'Weekly opening intervals in the location''s local time; several per day (a lunch break is two '
    'intervals). day_of_week is ISO: 1 = Monday .. 7 = Sunday. An interval past midnight is two rows.';

create table business_hour_exceptions (
    id uuid primary key default gen_random_uuid(),
    location_id uuid not null references locations (id) on delete cascade,
    on_date date not null,
    opens_at time,
    closes_at time,
    reason text,
    constraint business_hour_exceptions_interval_check check (
        (opens_at is null and closes_at is null)
        or (closes_at > opens_at and closes_at < '24:00')),
    constraint business_hour_exceptions_no_overlap exclude using gist (
        location_id with =, on_date with =,
        timerange(coalesce(opens_at, '00:00'), coalesce(closes_at, '24:00')) with &&)
);
comment on table business_hour_exceptions is
    'Dated exceptions in local time. Any row for a date replaces that date''s weekly hours: a row '
    'without times means closed all day (a holiday), rows with times are the special hours.';

create table services (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations (id) on delete cascade,
    name text not null,
    description text,
    duration_minutes integer not null,
    price numeric(10, 2),
    currency text not null default 'USD',
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint services_org_id_key unique (organization_id, id),
    constraint services_org_name_key unique (organization_id, name),
    constraint services_name_check check (btrim(name) <> ''),
    constraint services_duration_check check (duration_minutes between 5 and 720),
    constraint services_price_check check (price >= 0),
    constraint services_currency_check check (currency ~ '^[A-Z]{3}$')
);
comment on table services is
    'What can be booked, organisation-wide: duration and price (null price: on request).';

create table providers (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null,
    location_id uuid not null,
    name text not null,
    title text,
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint providers_org_id_key unique (organization_id, id),
    constraint providers_location_id_key unique (location_id, id),
    constraint providers_location_fkey foreign key (organization_id, location_id)
        references locations (organization_id, id) on delete cascade,
    constraint providers_name_check check (btrim(name) <> '')
);
comment on table providers is 'Staff who can be booked at one location (a dentist, a hygienist).';

create table provider_services (
    organization_id uuid not null,
    provider_id uuid not null,
    service_id uuid not null,
    primary key (provider_id, service_id),
    constraint provider_services_provider_fkey foreign key (organization_id, provider_id)
        references providers (organization_id, id) on delete cascade,
    constraint provider_services_service_fkey foreign key (organization_id, service_id)
        references services (organization_id, id) on delete cascade
);
comment on table provider_services is
    'Which services each provider performs (both of the same organisation, by the foreign keys).';

create index idx_locations_organization on locations (organization_id);
create index idx_organization_members_user on organization_members (user_id, organization_id);
create index idx_business_hour_exceptions_date on business_hour_exceptions (location_id, on_date);
create index idx_providers_location on providers (location_id) where is_active;
create index idx_provider_services_service on provider_services (service_id);

-- voice_calls belongs to an organisation and a location (agent_config_id: 0005) -----------------

alter table voice_calls
    add column organization_id uuid references organizations (id) on delete set null,
    add column location_id uuid references locations (id) on delete set null;
create index idx_voice_calls_organization on voice_calls (organization_id, started_at desc)
    where organization_id is not null;
create index idx_voice_calls_location on voice_calls (location_id, started_at desc)
    where location_id is not null;

-- Triggers --------------------------------------------------------------------------------------

-- Statement-level with transition tables: a bulk insert checks its zones in one pass, and an
-- update checks only zones it introduces (a column list is not allowed with transition tables).
create function locations_check_time_zones() returns trigger
language plpgsql
as $$
begin
    if tg_op = 'INSERT' then
        perform assert_time_zones(array(select distinct timezone from new_rows),
                                  'locations_timezone_check');
    else
        perform assert_time_zones(array(select timezone from new_rows
                                        except select timezone from old_rows),
                                  'locations_timezone_check');
    end if;
    return null;
end
$$;

create function organizations_check_time_zones() returns trigger
language plpgsql
as $$
begin
    if tg_op = 'INSERT' then
        perform assert_time_zones(array(select distinct default_timezone from new_rows),
                                  'organizations_timezone_check');
    else
        perform assert_time_zones(array(select default_timezone from new_rows
                                        except select default_timezone from old_rows),
                                  'organizations_timezone_check');
    end if;
    return null;
end
$$;

create trigger locations_timezone_insert_trigger
    after insert on locations referencing new table as new_rows
    for each statement execute function locations_check_time_zones();
create trigger locations_timezone_update_trigger
    after update on locations referencing old table as old_rows new table as new_rows
    for each statement execute function locations_check_time_zones();
create trigger organizations_timezone_insert_trigger
    after insert on organizations referencing new table as new_rows
    for each statement execute function organizations_check_time_zones();
create trigger organizations_timezone_update_trigger
    after update on organizations referencing old table as old_rows new table as new_rows
    for each statement execute function organizations_check_time_zones();

create trigger organizations_updated_at_trigger
    before update on organizations for each row execute function set_updated_at();
create trigger locations_updated_at_trigger
    before update on locations for each row execute function set_updated_at();
create trigger services_updated_at_trigger
    before update on services for each row execute function set_updated_at();
create trigger providers_updated_at_trigger
    before update on providers for each row execute function set_updated_at();

-- Row level security ------------------------------------------------------------------------------

create function is_org_member(p_organization_id uuid, p_roles text[] default null) returns boolean
language sql stable security definer
set search_path = public, pg_temp
as $$
    -- security definer: organization_members has RLS of its own, which would recurse.
    select exists (
        select 1 from organization_members
         where organization_id = p_organization_id
           and user_id = auth.uid()
           and (p_roles is null or role = any (p_roles)))
$$;
comment on function is_org_member(uuid, text[]) is
    'Whether the current user belongs to the organisation (with one of p_roles, when given).';

create function can_access_location(p_location_id uuid, p_roles text[] default null) returns boolean
language sql stable security definer
set search_path = public, pg_temp
as $$
    select exists (select 1 from locations
                    where id = p_location_id and is_org_member(organization_id, p_roles))
$$;
comment on function can_access_location(uuid, text[]) is
    'is_org_member() for the organisation of a location.';

create or replace function can_access_call(p_call_id uuid) returns boolean
language sql stable security definer
set search_path = public, pg_temp
as $$
    select is_admin()
        or exists (select 1 from voice_calls where id = p_call_id and user_id = auth.uid())
        or exists (select 1 from call_participants
                    where call_id = p_call_id and user_id = auth.uid())
        or exists (select 1 from voice_calls c
                     join organization_members m on m.organization_id = c.organization_id
                    where c.id = p_call_id and m.user_id = auth.uid())
$$;
comment on function can_access_call(uuid) is
    'Whether the current user may see a call: an admin, its owner, one of its participants, or a '
    'member of the call''s organisation.';

alter table organizations enable row level security;
alter table organization_members enable row level security;
alter table locations enable row level security;
alter table business_hours enable row level security;
alter table business_hour_exceptions enable row level security;
alter table services enable row level security;
alter table providers enable row level security;
alter table provider_services enable row level security;

create policy organizations_member_select on organizations for select to authenticated
    using (is_org_member(id));
create policy organizations_manager_update on organizations for update to authenticated
    using (is_org_member(id, '{owner,manager}')) with check (is_org_member(id, '{owner,manager}'));
create policy organizations_admin_all on organizations for all to authenticated
    using (is_admin()) with check (is_admin());

create policy organization_members_select on organization_members for select to authenticated
    using (user_id = auth.uid() or is_org_member(organization_id));
create policy organization_members_owner_all on organization_members for all to authenticated
    using (is_org_member(organization_id, '{owner}'))
    with check (is_org_member(organization_id, '{owner}'));
create policy organization_members_admin_all on organization_members for all to authenticated
    using (is_admin()) with check (is_admin());

create policy locations_member_select on locations for select to authenticated
    using (is_org_member(organization_id));
create policy locations_manager_all on locations for all to authenticated
    using (is_org_member(organization_id, '{owner,manager}'))
    with check (is_org_member(organization_id, '{owner,manager}'));
create policy locations_admin_all on locations for all to authenticated
    using (is_admin()) with check (is_admin());

create policy business_hours_member_select on business_hours for select to authenticated
    using (can_access_location(location_id));
create policy business_hours_manager_all on business_hours for all to authenticated
    using (can_access_location(location_id, '{owner,manager}'))
    with check (can_access_location(location_id, '{owner,manager}'));
create policy business_hours_admin_all on business_hours for all to authenticated
    using (is_admin()) with check (is_admin());

create policy business_hour_exceptions_member_select on business_hour_exceptions
    for select to authenticated using (can_access_location(location_id));
create policy business_hour_exceptions_manager_all on business_hour_exceptions
    for all to authenticated
    using (can_access_location(location_id, '{owner,manager}'))
    with check (can_access_location(location_id, '{owner,manager}'));
create policy business_hour_exceptions_admin_all on business_hour_exceptions
    for all to authenticated using (is_admin()) with check (is_admin());

create policy services_member_select on services for select to authenticated
    using (is_org_member(organization_id));
create policy services_manager_all on services for all to authenticated
    using (is_org_member(organization_id, '{owner,manager}'))
    with check (is_org_member(organization_id, '{owner,manager}'));
create policy services_admin_all on services for all to authenticated
    using (is_admin()) with check (is_admin());

create policy providers_member_select on providers for select to authenticated
    using (is_org_member(organization_id));
create policy providers_manager_all on providers for all to authenticated
    using (is_org_member(organization_id, '{owner,manager}'))
    with check (is_org_member(organization_id, '{owner,manager}'));
create policy providers_admin_all on providers for all to authenticated
    using (is_admin()) with check (is_admin());

create policy provider_services_member_select on provider_services for select to authenticated
    using (is_org_member(organization_id));
create policy provider_services_manager_all on provider_services for all to authenticated
    using (is_org_member(organization_id, '{owner,manager}'))
    with check (is_org_member(organization_id, '{owner,manager}'));
create policy provider_services_admin_all on provider_services for all to authenticated
    using (is_admin()) with check (is_admin());

grant select, insert, update, delete on organizations, organization_members, locations,
    business_hours, business_hour_exceptions, services, providers, provider_services
    to authenticated;
