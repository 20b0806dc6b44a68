-- 0013_outbound_webhooks: signed webhooks out to each organisation's own endpoints (issue 14).
--
-- The outbox pattern: the change a webhook reports and its outbound_events row commit or roll back
-- together, because triggers on the tables that change (voice_calls, appointments, call_events)
-- write the row in the same transaction, whoever the writer is (the agent's recorder by COPY, the
-- webhook service, the API). Nothing else happens in that transaction: no lock is taken beyond
-- the insert, so the call path waits on nobody. The relay in `python -m webhooks` then numbers
-- each organisation's events in the order it sees them committed (`sequence`, gapless, so a
-- receiver can order them and notice a missing one), fans them out to the endpoints subscribed at
-- that moment (outbound_deliveries), and delivers them, recording every attempt.
--
-- Events a writer may report twice (a replayed recorder batch, the same call closed again) carry a
-- dedupe_key, unique: the second report is a no-op.

create table outbound_endpoints (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations (id) on delete cascade,
    url text not null,
    secret text not null,
    previous_secret text,
    previous_secret_expires_at timestamptz,
    event_types text[],
    enabled boolean not null default true,
    disabled_reason text,
    disabled_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint outbound_endpoints_url_check check (url ~ '^https?://[^[:space:]]+$'),
    constraint outbound_endpoints_secret_check check (secret ~ '^whsec_[A-Za-z0-9+/=]{24,}$')
);
comment on table outbound_endpoints is
    'An organisation''s receiver of signed webhooks: URL, signing secret (the previous one keeps '
    'signing too until previous_secret_expires_at, after a rotation), the event types it wants '
    '(null: all). Disabled by hand or on 410 Gone.';
create index idx_outbound_endpoints_org on outbound_endpoints (organization_id) where enabled;
create trigger outbound_endpoints_updated_at_trigger
    before update on outbound_endpoints for each row execute function set_updated_at();

create table outbound_events (
    id uuid primary key default gen_random_uuid(),
    position bigint generated always as identity,
    organization_id uuid not null references organizations (id) on delete cascade,
    event_type text not null,
    payload jsonb not null,
    dedupe_key text,
    occurred_at timestamptz not null default now(),
    sequence bigint,
    sequenced_at timestamptz,
    constraint outbound_events_dedupe_key_key unique (dedupe_key),
    constraint outbound_events_sequence_key unique (organization_id, sequence)
);
comment on table outbound_events is
    'The outbox: one row per event to report, written in the transaction of the change. sequence '
    'is set by the relay, per organisation, in the order it saw the events committed.';
create index idx_outbound_events_unsequenced on outbound_events (position) where sequence is null;
create index idx_outbound_events_org_time on outbound_events (organization_id, occurred_at);

create table outbound_sequences (
    organization_id uuid primary key references organizations (id) on delete cascade,
    last_sequence bigint not null default 0
);
comment on table outbound_sequences is
    'The last sequence number the relay gave an event of each organisation.';

create type outbound_delivery_status as enum ('pending', 'delivered', 'dead');
comment on type outbound_delivery_status is
    'pending: to be (re)tried at next_attempt_at; delivered: a 2xx came back; dead: retries ran '
    'out, or the endpoint answered 410 Gone or was disabled.';

create table outbound_deliveries (
    id uuid primary key default gen_random_uuid(),
    event_id uuid not null references outbound_events (id) on delete cascade,
    endpoint_id uuid not null references outbound_endpoints (id) on delete cascade,
    status outbound_delivery_status not null default 'pending',
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    locked_until timestamptz,
    lease uuid,
    last_attempt_at timestamptz,
    delivered_at timestamptz,
    created_at timestamptz not null default now(),
    constraint outbound_deliveries_event_endpoint_key unique (event_id, endpoint_id)
);
comment on table outbound_deliveries is
    'One event for one endpoint: its state, how many attempts, when the next one is due. A claim '
    'leases it (lease, locked_until); only the holder of the lease records its outcome, so a '
    'replay (which clears the lease) is never undone by an attempt that was in flight.';
create index idx_outbound_deliveries_due on outbound_deliveries (next_attempt_at)
    where status = 'pending';
create index idx_outbound_deliveries_endpoint on outbound_deliveries (endpoint_id, status);

create table outbound_attempts (
    id bigint generated always as identity primary key,
    delivery_id uuid not null references outbound_deliveries (id) on delete cascade,
    attempt integer not null,
    attempted_at timestamptz not null default now(),
    response_status integer,
    latency_ms double precision not null,
    error text
);
comment on table outbound_attempts is
    'Every delivery attempt: HTTP status (null when none came back), latency, error.';
create index idx_outbound_attempts_delivery on outbound_attempts (delivery_id, attempt);

-- Writing to the outbox ---------------------------------------------------------------------------

create function outbound_enqueue(p_organization_id uuid, p_event_type text, p_payload jsonb,
                                 p_dedupe_key text default null) returns uuid
language plpgsql security definer
set search_path = public, pg_temp
as $$
declare
    v_id uuid;
begin
    -- security definer: whoever made the change reports it, RLS on the outbox notwithstanding.
    insert into outbound_events (organization_id, event_type, payload, dedupe_key)
    values (p_organization_id, p_event_type, p_payload, p_dedupe_key)
    on conflict (dedupe_key) do nothing
    returning id into v_id;
    if v_id is not null then
        -- Delivered at commit, once per transaction however many events it wrote.
        perform pg_notify('outbound_events', '');
    end if;
    return v_id;
end
$$;
comment on function outbound_enqueue(uuid, text, jsonb, text) is
    'Write one event to the outbox (a no-op when dedupe_key was seen); its id, or null.';

create function outbound_call_data(c voice_calls) returns jsonb
language sql stable
as $$
    select jsonb_build_object(
        'call_id', c.id, 'session_id', c.session_id, 'room_name', c.room_name,
        'location_id', c.location_id, 'direction', c.direction, 'channel', c.channel,
        'caller_number', c.caller_number, 'dialed_number', c.dialed_number,
        'status', c.status, 'started_at', c.started_at, 'connected_at', c.connected_at)
$$;

create function voice_calls_outbound() returns trigger
language plpgsql
as $$
begin
    if new.organization_id is null then
        return null;
    end if;
    -- call.started once, when the call first belongs to an organisation (often at its insert).
    if tg_op = 'INSERT' or old.organization_id is null then
        perform outbound_enqueue(new.organization_id, 'call.started', outbound_call_data(new),
                                 'call.started:' || new.id);
    end if;
    -- call.ended once per closer: a webhook's verdict, then the agent's if it comes later and
    -- replaces it (the agent knows how the call went). cost is filled at delivery (call_costs).
    if new.status in ('completed', 'failed', 'abandoned') and new.closed_by is not null and (
        tg_op = 'INSERT' or old.organization_id is null
        or old.closed_by is distinct from new.closed_by) then
        perform outbound_enqueue(new.organization_id, 'call.ended',
            outbound_call_data(new) || jsonb_build_object(
                'ended_at', new.ended_at, 'duration_seconds', new.duration_seconds,
                'end_reason', new.end_reason, 'outcome', new.outcome, 'closed_by', new.closed_by,
                'cost', null),
            'call.ended:' || new.id || ':' || new.closed_by);
    end if;
    return null;
end
$$;

create trigger voice_calls_outbound_trigger
    after insert or update of organization_id, status, closed_by on voice_calls
    for each row execute function voice_calls_outbound();

create function outbound_appointment_data(a appointments) returns jsonb
language sql stable
as $$
    select jsonb_build_object(
        'appointment_id', a.id, 'location_id', a.location_id, 'service_id', a.service_id,
        'provider_id', a.provider_id, 'customer_name', a.customer_name,
        'customer_phone', a.customer_phone, 'starts_at', a.starts_at, 'ends_at', a.ends_at,
        'status', a.status, 'confirmation_code', a.confirmation_code,
        'call_id', coalesce(a.last_call_id, a.call_id))
$$;

create function appointments_outbound() returns trigger
language plpgsql
as $$
begin
    if tg_op = 'INSERT' then
        perform outbound_enqueue(new.organization_id, 'appointment.booked',
                                 outbound_appointment_data(new));
    elsif old.status <> 'cancelled' and new.status = 'cancelled' then
        perform outbound_enqueue(new.organization_id, 'appointment.cancelled',
            outbound_appointment_data(new) || jsonb_build_object(
                'cancelled_at', new.cancelled_at, 'reason', new.cancellation_reason));
    elsif new.status = 'confirmed' and (old.starts_at, old.ends_at, old.provider_id)
            is distinct from (new.starts_at, new.ends_at, new.provider_id) then
        perform outbound_enqueue(new.organization_id, 'appointment.rescheduled',
            outbound_appointment_data(new) || jsonb_build_object(
                'previous_starts_at', old.starts_at, 'previous_provider_id', old.provider_id));
    end if;
    return null;
end
$$;

create trigger appointments_outbound_trigger
    after insert or update on appointments
    for each row execute function appointments_outbound();

create function call_events_outbound() returns trigger
language plpgsql
as $$
declare
    c voice_calls;
begin
    -- Only transfers that went through; a failed one is the call's own business.
    select * into c from voice_calls where id = new.call_id;
    if c.organization_id is not null then
        perform outbound_enqueue(c.organization_id, 'call.transferred',
            outbound_call_data(c) || jsonb_build_object(
                'transferred_at', new.occurred_at, 'to', new.payload ->> 'to'),
            'call.transferred:' || new.id);
    end if;
    return null;
end
$$;

create trigger call_events_outbound_trigger
    after insert on call_events
    for each row when (new.event_type = 'transfer' and new.payload ->> 'ok' = 'true')
    execute function call_events_outbound();

-- Row level security: managers of the organisation see its endpoints and their history ---------

alter table outbound_endpoints enable row level security;
alter table outbound_events enable row level security;
alter table outbound_sequences enable row level security;
alter table outbound_deliveries enable row level security;
alter table outbound_attempts enable row level security;

create policy outbound_endpoints_manager_all on outbound_endpoints for all to authenticated
    using (is_org_member(organization_id, '{owner,manager}'))
    with check (is_org_member(organization_id, '{owner,manager}'));
create policy outbound_events_manager_select on outbound_events for select to authenticated
    using (is_org_member(organization_id, '{owner,manager}'));
create policy outbound_deliveries_manager_select on outbound_deliveries for select to authenticated
    using (exists (select 1 from outbound_endpoints e where e.id = endpoint_id
                   and is_org_member(e.organization_id, '{owner,manager}')));
create policy outbound_attempts_manager_select on outbound_attempts for select to authenticated
    using (exists (select 1 from outbound_deliveries d join outbound_endpoints e on e.id = d.endpoint_id
                   where d.id = delivery_id and is_org_member(e.organization_id, '{owner,manager}')));

grant select, insert, update, delete on outbound_endpoints to authenticated;
grant select on outbound_events, outbound_deliveries, outbound_attempts to authenticated;
