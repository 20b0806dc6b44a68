-- 0016_monthly_partitions: voice_messages, call_events and webhook_events partitioned by month, so
-- that retention drops a month instead of deleting its rows one batch at a time.
--
-- Issue 16 (seed 001: a retention-friendly call schema).
--
-- The partition key. A unique key of a partitioned table must include its partition key, and
-- our writes are idempotent through unique keys (a message's chat item, an event's id, a
-- webhook's event id): so the key must be the same every time a row is written again, by any
-- writer, and never change afterwards.
-- * voice_messages and call_events: call_created_at, the created_at of the row's call (when we
--   first recorded the call; nothing updates it). Not the call's started_at: that one moves to
--   an earlier time when LiveKit's room_started arrives after the agent's start (db.calls.calls:
--   the earliest wins), which would put a replayed turn in another partition, next to itself.
--   The writers read it from voice_calls (db/calls/partition_keys.py); a BEFORE INSERT trigger
--   cannot fill it: Postgres routes a row to its partition before any row trigger runs.
-- * webhook_events: created_at, LiveKit's own time of the event, the same on every retry of a
--   delivery. An event without one (null) goes to the default partition; (created_at, event_id)
--   is unique with nulls not distinct, so its redelivery is still found.
--
-- Partitions are named <table>_pYYYYMM (a month in UTC) and <table>_default; the indexes of a
-- partition are named after its table's (voice_messages_p202612_call_item_key), which is how
-- db.errors maps a violation in a partition to the table's constraint. create_month_partition
-- makes one month (moving its rows out of the default partition if some landed there first);
-- create_partitions_ahead makes the current month and the next ones for the three tables: this
-- migration calls it, and so does every retention run (python -m db retention, the webhook
-- service's schedule). The default partition takes any row whose month has no partition yet, so
-- an insert never fails for want of one.
--
-- Migration: each table is renamed, its replacement created under the old name with the same
-- columns (plus the key), constraints, indexes, triggers, row level security and grants, the
-- rows copied (call_events keep their `sequence`), the views that read it re-pointed, and the
-- old table dropped. No foreign key points into these tables.

create function create_month_partition(p_table regclass, p_month date) returns boolean
language plpgsql
as $$
declare
    parent text := (select relname from pg_class where oid = p_table);
    part text := format('%s_p%s', parent, to_char(p_month, 'YYYYMM'));
    fallback text := parent || '_default';
    lo timestamptz := make_timestamptz(extract(year from p_month)::int,
                                       extract(month from p_month)::int, 1, 0, 0, 0, 'UTC');
    hi timestamptz := make_timestamptz(extract(year from p_month + interval '1 month')::int,
                                       extract(month from p_month + interval '1 month')::int,
                                       1, 0, 0, 0, 'UTC');
    key text;
    stranded boolean;
begin
    -- Several hosts may run this at once: one creates the month, the others find it.
    perform pg_advisory_xact_lock(hashtext('create_month_partition'), p_table::oid::int);
    if to_regclass(part) is not null then
        return false;
    end if;
    select a.attname into strict key
      from pg_partitioned_table t
      join pg_attribute a on a.attrelid = t.partrelid and a.attnum = t.partattrs[0]
     where t.partrelid = p_table;
    execute format('select exists (select 1 from %I where %I >= $1 and %I < $2)',
                   fallback, key, key) into stranded using lo, hi;
    if stranded then
        -- Rows of this month reached the default partition before their month existed: the
        -- month cannot be created while they are there, so they move into it.
        execute format('alter table %I detach partition %I', parent, fallback);
        execute format('create table %I partition of %I for values from (%L) to (%L)',
                       part, parent, lo, hi);
        execute format('insert into %I overriding system value '
                       'select * from %I where %I >= $1 and %I < $2',
                       part, fallback, key, key) using lo, hi;
        execute format('delete from %I where %I >= $1 and %I < $2', fallback, key, key)
            using lo, hi;
        execute format('alter table %I attach partition %I default', parent, fallback);
    else
        execute format('create table %I partition of %I for values from (%L) to (%L)',
                       part, parent, lo, hi);
    end if;
    perform finish_partition(part::regclass);
    return true;
end
$$;
comment on function create_month_partition(regclass, date) is
    'Create the partition <table>_pYYYYMM of p_month (UTC) unless it exists; false if it did.';

create function finish_partition(p_partition regclass) returns void
language plpgsql
as $$
declare
    part text := (select relname from pg_class where oid = p_partition);
    parent text := (select p.relname from pg_inherits i join pg_class p on p.oid = i.inhparent
                     where i.inhrelid = p_partition);
    item record;
    wanted text;
begin
    -- Postgres names them itself (voice_messages_p202612_call_id_call_created_at_key,
    -- voice_messages_call_id_fkey1); they become voice_messages_p202612_call_item_key,
    -- voice_messages_p202612_call_id_fkey and idx_voice_messages_created_at_p202612.
    for item in
        select 'index' as kind, c.relname as child, p.relname as of_parent
          from pg_index x
          join pg_class c on c.oid = x.indexrelid
          join pg_inherits i on i.inhrelid = x.indexrelid
          join pg_class p on p.oid = i.inhparent
         where x.indrelid = p_partition
        union all
        select 'foreign key', c.conname, p.conname
          from pg_constraint c join pg_constraint p on p.oid = c.conparentid
         where c.conrelid = p_partition and c.contype = 'f'
    loop
        wanted := case when starts_with(item.of_parent, parent || '_')
                       then part || substr(item.of_parent, length(parent) + 1)
                       else item.of_parent || substr(part, length(parent) + 1) end;
        if item.child = wanted then
            continue;
        elsif item.kind = 'index' then
            execute format('alter index %I rename to %I', item.child, wanted);
        else
            execute format('alter table %I rename constraint %I to %I', part, item.child, wanted);
        end if;
    end loop;
    -- Read through its table, whose policies apply; read directly, it shows nothing to anyone
    -- but the owner (and no role but the owner has a grant on it either).
    execute format('alter table %I enable row level security', part);
end
$$;
comment on function finish_partition(regclass) is
    'Name the indexes and foreign keys of a new partition after its table''s (see db.errors) '
    'and enable row level security on it.';

create function create_partitions_ahead(p_months integer default 3) returns integer
language plpgsql
as $$
declare
    this_month date := date_trunc('month', now() at time zone 'UTC')::date;
    t regclass;
    i integer;
    created integer := 0;
begin
    foreach t in array array['voice_messages', 'call_events', 'webhook_events']::regclass[] loop
        for i in 0 .. p_months loop
            if create_month_partition(t, (this_month + make_interval(months => i))::date) then
                created := created + 1;
            end if;
        end loop;
    end loop;
    return created;
end
$$;
comment on function create_partitions_ahead(integer) is
    'Create the monthly partitions of voice_messages, call_events and webhook_events for this '
    'month (UTC) and the p_months after it; returns how many were missing.';

create function call_partition_key(p_call_id uuid) returns timestamptz
language sql stable
as $$ select created_at from voice_calls where id = p_call_id $$;
comment on function call_partition_key(uuid) is
    'The call_created_at of a call''s messages and events, for SQL that inserts them by hand '
    '(the services read it in db/calls/partition_keys.py).';

-- The views that read these tables, to re-point at the new ones ----------------------------------

create temporary table partitioning_views on commit drop as
select distinct v.oid::regclass::text as name, pg_get_viewdef(v.oid) as definition,
       coalesce(array_to_string(v.reloptions, ', '), '') as options
  from pg_depend d
  join pg_rewrite r on r.oid = d.objid
  join pg_class v on v.oid = r.ev_class
 where d.refobjid in ('voice_messages'::regclass, 'call_events'::regclass,
                      'webhook_events'::regclass)
   and v.relkind = 'v';

-- voice_messages ---------------------------------------------------------------------------------

alter table voice_messages rename to voice_messages_unpartitioned;
alter table voice_messages_unpartitioned
    drop constraint voice_messages_pkey,
    drop constraint voice_messages_call_item_key,
    drop constraint voice_messages_call_sequence_key;
drop index idx_voice_messages_call_sequence, idx_voice_messages_created_at;

create table voice_messages (
    id uuid not null default gen_random_uuid(),
    call_id uuid not null,
    sequence_number integer not null,
    item_id text not null,
    role message_role not null,
    content text not null default '',
    interrupted boolean not null default false,
    transcript_confidence real,
    started_at timestamptz,
    ended_at timestamptz,
    transcription_delay_ms real,
    end_of_turn_delay_ms real,
    llm_ttft_ms real,
    tts_ttfb_ms real,
    e2e_latency_ms real,
    prompt_tokens integer,
    completion_tokens integer,
    tokens_used integer not null default 0,
    model_used text,
    audio_url text,
    metadata jsonb not null default '{}',
    created_at timestamptz not null default now(),
    call_created_at timestamptz not null,
    -- Named: the old table's foreign key still holds the default name while this one is made.
    constraint voice_messages_call_id_fkey
        foreign key (call_id) references voice_calls (id) on delete cascade,
    constraint voice_messages_pkey primary key (id, call_created_at),
    constraint voice_messages_call_sequence_key unique (call_id, sequence_number, call_created_at),
    constraint voice_messages_call_item_key unique (call_id, item_id, call_created_at),
    constraint voice_messages_sequence_check check (sequence_number >= 0),
    constraint voice_messages_confidence_check
        check (transcript_confidence between 0 and 1),
    constraint voice_messages_latency_check check (
        transcription_delay_ms >= 0 and end_of_turn_delay_ms >= 0 and llm_ttft_ms >= 0
        and tts_ttfb_ms >= 0 and e2e_latency_ms >= 0
    ),
    constraint voice_messages_tokens_check
        check (tokens_used >= 0 and prompt_tokens >= 0 and completion_tokens >= 0)
) partition by range (call_created_at);
comment on table voice_messages is
    'Every spoken turn of a call in order. item_id is the LiveKit chat item id: writing the same '
    'item twice is a no-op. Latency figures are LiveKit''s ChatMessage.metrics, in milliseconds. '
    'Partitioned by month of call_created_at (the call''s created_at).';
comment on column voice_messages.call_created_at is
    'voice_calls.created_at of the call: the partition key, the same for every write of the row.';
create index idx_voice_messages_call_sequence on voice_messages (call_id, sequence_number);
create index idx_voice_messages_created_at on voice_messages (created_at);

-- call_events ------------------------------------------------------------------------------------

alter table call_events rename to call_events_unpartitioned;
alter table call_events_unpartitioned drop constraint call_events_pkey;
alter table call_events_unpartitioned alter column sequence drop identity;
drop index idx_call_events_call_sequence, idx_call_events_errors, idx_call_events_created_at;

create table call_events (
    id uuid not null,
    call_id uuid not null,
    sequence bigint generated always as identity,
    event_type text not null,
    severity text not null default 'info',
    turn_index integer,
    payload jsonb not null default '{}',
    occurred_at timestamptz not null default now(),
    created_at timestamptz not null default now(),
    call_created_at timestamptz not null,
    constraint call_events_call_id_fkey
        foreign key (call_id) references voice_calls (id) on delete cascade,
    constraint call_events_pkey primary key (id, call_created_at),
    constraint call_events_severity_check
        check (severity in ('debug', 'info', 'warning', 'error', 'critical'))
) partition by range (call_created_at);
comment on table call_events is
    'Append-only, ordered log per call: tool calls and results, barge-ins, transfers, '
    'escalations, errors, webhook lifecycle events. event_type is validated in code, not by a '
    'CHECK (seed 004: a CHECK on it broke every new event kind). id is chosen by the writer. '
    'Partitioned by month of call_created_at (the call''s created_at).';
comment on column call_events.call_created_at is
    'voice_calls.created_at of the call: the partition key, the same for every write of the row.';
create index idx_call_events_call_sequence on call_events (call_id, sequence);
create index idx_call_events_errors on call_events (occurred_at) where event_type = 'error';
create index idx_call_events_created_at on call_events (created_at);

-- webhook_events ---------------------------------------------------------------------------------

alter table webhook_events rename to webhook_events_unpartitioned;
alter table webhook_events_unpartitioned drop constraint webhook_events_pkey;
drop index idx_webhook_events_room_sid, idx_webhook_events_received_at;

create table webhook_events (
    event_id text not null,
    event text not null,
    room_sid text,
    room_name text,
    participant_sid text,
    payload jsonb not null,
    created_at timestamptz,
    received_at timestamptz not null default now(),
    outcome text not null default 'applied',
    error text,
    constraint webhook_events_event_key unique nulls not distinct (event_id, created_at)
) partition by range (created_at);
comment on table webhook_events is
    'Every verified LiveKit webhook, keyed by its event id and LiveKit''s time of the event (a '
    'redelivery is a no-op). created_at is the event''s own time, the partition key (by month); '
    'outcome says what we did with it.';
create index idx_webhook_events_room_sid on webhook_events (room_sid);
create index idx_webhook_events_received_at on webhook_events (received_at);

-- Partitions: a default one each, every month that has rows, and the months ahead ----------------

create table voice_messages_default partition of voice_messages default;
create table call_events_default partition of call_events default;
create table webhook_events_default partition of webhook_events default;
select finish_partition(p::regclass)
  from unnest(array['voice_messages_default', 'call_events_default', 'webhook_events_default']) p;

select create_month_partition('voice_messages', month)
  from (select distinct date_trunc('month', c.created_at at time zone 'UTC')::date as month
          from voice_calls c
         where exists (select 1 from voice_messages_unpartitioned m where m.call_id = c.id)) months;
select create_month_partition('call_events', month)
  from (select distinct date_trunc('month', c.created_at at time zone 'UTC')::date as month
          from voice_calls c
         where exists (select 1 from call_events_unpartitioned e where e.call_id = c.id)) months;
select create_month_partition('webhook_events', month)
  from (select distinct date_trunc('month', created_at at time zone 'UTC')::date as month
          from webhook_events_unpartitioned where created_at is not null) months;
select create_partitions_ahead(3);

-- The rows ---------------------------------------------------------------------------------------

insert into voice_messages
select m.*, c.created_at from voice_messages_unpartitioned m join voice_calls c on c.id = m.call_id;

insert into call_events (id, call_id, sequence, event_type, severity, turn_index, payload,
                         occurred_at, created_at, call_created_at)
overriding system value
select e.id, e.call_id, e.sequence, e.event_type, e.severity, e.turn_index, e.payload,
       e.occurred_at, e.created_at, c.created_at
  from call_events_unpartitioned e join voice_calls c on c.id = e.call_id;
select setval(pg_get_serial_sequence('call_events', 'sequence'),
              coalesce((select max(sequence) from call_events), 0) + 1, false);

insert into webhook_events select * from webhook_events_unpartitioned;

do $$
declare
    v record;
begin
    for v in select * from partitioning_views loop
        execute format('create or replace view %s with (%s) as %s',
                       v.name, v.options, v.definition);
    end loop;
end
$$;

drop table voice_messages_unpartitioned, call_events_unpartitioned, webhook_events_unpartitioned;

-- Triggers (created after the copy: the rows are not new, their calls' totals already count
-- them, and no transfer is announced twice) ------------------------------------------------------

create trigger voice_messages_update_tokens_trigger
    after insert on voice_messages referencing new table as new_rows
    for each statement execute function voice_messages_update_tokens();
create trigger voice_messages_update_tokens_on_update_trigger
    after update on voice_messages referencing old table as old_rows new table as new_rows
    for each statement execute function voice_messages_update_tokens();
create trigger voice_messages_update_tokens_on_delete_trigger
    after delete on voice_messages referencing old table as old_rows
    for each statement execute function voice_messages_update_tokens();

create trigger call_events_outbound_trigger
    after insert on call_events
    for each row when (new.event_type = 'transfer' and new.payload ->> 'ok' = 'true')
    execute function call_events_outbound();

-- Row level security and grants, as 0001 and 0014 set them --------------------------------------

alter table voice_messages enable row level security;
alter table call_events enable row level security;
alter table webhook_events enable row level security;

create policy voice_messages_select on voice_messages for select to authenticated
    using (can_access_call(call_id));
create policy voice_messages_admin_all on voice_messages for all to authenticated
    using (is_admin()) with check (is_admin());
create policy voice_messages_select_within_org on voice_messages for select to authenticated
    using (exists (select 1 from voice_calls c where c.id = call_id
                    and c.organization_id = any ((select member_organization_ids())::uuid[])));

create policy call_events_select on call_events for select to authenticated
    using (can_access_call(call_id));
create policy call_events_admin_all on call_events for all to authenticated
    using (is_admin()) with check (is_admin());
create policy call_events_select_within_org on call_events for select to authenticated
    using (exists (select 1 from voice_calls c where c.id = call_id
                    and c.organization_id = any ((select member_organization_ids())::uuid[])));

create policy webhook_events_admin_select on webhook_events for select to authenticated
    using (is_admin());

grant select, insert, update on voice_messages, call_events to authenticated;
grant select on webhook_events to authenticated;
