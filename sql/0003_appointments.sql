-- 0003_appointments: what callers book, and a database that will not double-book a provider.
--
-- From seed 000 (appointments tied to a location) and seed 002 (status, a confirmation code,
-- the conversation that made it). No two confirmed appointments of one provider overlap: the
-- exclusion constraint below enforces it for every writer, whatever the application does.
-- Appointments without a provider are bounded by locations.booking_capacity, which db/appointments.py
-- enforces under a lock on the location row (a count cannot be an exclusion constraint).

create type appointment_status as enum ('confirmed', 'cancelled', 'completed', 'no_show');
comment on type appointment_status is
    'confirmed: holds its slot; cancelled: freed its slot; completed / no_show: after the fact.';

create table appointments (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations (id) on delete cascade,
    location_id uuid not null,
    service_id uuid not null,
    provider_id uuid,
    customer_name text not null,
    customer_phone text not null,
    starts_at timestamptz not null,
    ends_at timestamptz not null,
    status appointment_status not null default 'confirmed',
    confirmation_code text not null,
    notes text,
    call_id uuid references voice_calls (id) on delete set null,
    last_call_id uuid references voice_calls (id) on delete set null,
    cancelled_at timestamptz,
    cancellation_reason text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint appointments_location_fkey foreign key (organization_id, location_id)
        references locations (organization_id, id) on delete cascade,
    constraint appointments_service_fkey foreign key (organization_id, service_id)
        references services (organization_id, id),
    constraint appointments_provider_fkey foreign key (location_id, provider_id)
        references providers (location_id, id),
    constraint appointments_confirmation_code_key unique (confirmation_code),
    -- Easy to say on the phone: no 0/O, 1/I/L.
    constraint appointments_confirmation_code_check
        check (confirmation_code ~ '^[A-HJKMNP-Z2-9]{6}$'),
    constraint appointments_customer_name_check check (btrim(customer_name) <> ''),
    constraint appointments_customer_phone_check check (customer_phone ~ '^\+[1-9][0-9]{6,14}$'),
    constraint appointments_time_check check (ends_at > starts_at),
    constraint appointments_provider_no_overlap exclude using gist (
        provider_id with =, tstzrange(starts_at, ends_at) with &&) where (status = 'confirmed')
);
comment on table appointments is
    'A booking at a location for a service, with a provider or (provider_id null) against the '
    'location''s booking_capacity. Rescheduling updates the row in place (same confirmation code); '
    'call_id is the call that made it, last_call_id the last call that changed it.';

create index idx_appointments_location_time on appointments (location_id, starts_at)
    where status = 'confirmed';
create index idx_appointments_provider_time on appointments (provider_id, starts_at)
    where status = 'confirmed';
create index idx_appointments_customer_phone on appointments (organization_id, customer_phone,
    starts_at);
create index idx_appointments_call on appointments (call_id) where call_id is not null;
create index idx_appointments_last_call on appointments (last_call_id) where last_call_id is not null;

create trigger appointments_updated_at_trigger
    before update on appointments for each row execute function set_updated_at();

alter table appointments enable row level security;

-- Every member books and changes appointments: that is front-desk staff's work.
create policy appointments_member_all on appointments for all to authenticated
    using (is_org_member(organization_id)) with check (is_org_member(organization_id));
create policy appointments_admin_all on appointments for all to authenticated
    using (is_admin()) with check (is_admin());

grant select, insert, update, delete on appointments to authenticated;
