-- 0001_call_schema: who called, what was said, what happened, as LiveKit and the agent saw it.
--
-- Base: seed 001 ("Enhanced" voice calls: voice_calls, voice_messages, call_participants, enums,
-- triggers, views, Supabase RLS). From seed 002: the `abandoned` status, per-turn latency and an
-- error log with severity (here: call_events), the success-rate and error-rate views. From seed
-- 004: one ordered event log per call whose event_type is free text validated in code.
--
-- The same file runs on Supabase and on plain Postgres: the Supabase pieces (anon/authenticated
-- roles, auth.uid(), auth.jwt()) are created only where they are missing.

-- Supabase compatibility -----------------------------------------------------------------------

do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
end
$$;

create schema if not exists auth;

do $$
begin
    -- PostgREST puts the verified JWT claims in request.jwt.claims; Supabase defines these two.
    if to_regprocedure('auth.jwt()') is null then
        create function auth.jwt() returns jsonb
        language sql stable
        as $fn$
            select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb
        $fn$;
    end if;
    if to_regprocedure('auth.uid()') is null then
        create function auth.uid() returns uuid
        language sql stable
        as $fn$
            select nullif(
                coalesce(
                    nullif(current_setting('request.jwt.claim.sub', true), ''),
                    auth.jwt() ->> 'sub'
                ), ''
            )::uuid
        $fn$;
    end if;
end
$$;

grant usage on schema auth to anon, authenticated;

create function is_admin() returns boolean
language sql stable
as $$
    select coalesce(auth.jwt() -> 'app_metadata' ->> 'role', '') = 'admin'
$$;

comment on function is_admin() is
    'True when the JWT of the current request carries app_metadata.role = admin.';

-- Types ---------------------------------------------------------------------------------------

create type call_status as enum ('pending', 'active', 'completed', 'failed', 'abandoned');
comment on type call_status is
    'pending: room exists, caller not yet served; active: caller connected and greeted; '
    'completed: ended normally; failed: ended by an error or a lost agent; '
    'abandoned: the caller left before being served.';

create type call_direction as enum ('inbound', 'outbound');
create type message_role as enum ('user', 'assistant', 'system');
create type participant_type as enum ('user', 'agent', 'admin');

-- Tables ----------------------------------------------------------------------------------------

create table users (
    id uuid primary key default gen_random_uuid(),
    email text unique,
    full_name text,
    role text not null default 'user' check (role in ('user', 'admin')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
comment on table users is
    'People of ours who own or join calls (staff, admins). On Supabase, fill it from auth.users '
    'with the same ids. SIP callers are anonymous and have no row here.';

create table voice_calls (
    id uuid primary key default gen_random_uuid(),
    session_id text not null,
    room_name text,
    user_id uuid references users (id) on delete set null,
    direction call_direction not null default 'inbound',
    channel text not null default 'voice',
    caller_number text,
    dialed_number text,
    sip_call_id text,
    status call_status not null default 'pending',
    end_reason text,
    outcome text,
    closed_by text,
    started_at timestamptz not null default now(),
    connected_at timestamptz,
    ended_at timestamptz,
    duration_seconds integer,
    recording_url text,
    transcript text,
    total_tokens_used integer not null default 0,
    ai_agent_used boolean not null default true,
    stt_model text,
    llm_model text,
    tts_model text,
    session_report jsonb,
    metadata jsonb not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint voice_calls_session_id_key unique (session_id),
    constraint voice_calls_duration_check check (duration_seconds >= 0),
    constraint voice_calls_tokens_check check (total_tokens_used >= 0),
    constraint voice_calls_closed_by_check check (closed_by in ('agent', 'webhook'))
);
comment on table voice_calls is
    'One row per LiveKit room session (session_id = room SID). Written by the agent (content, '
    'outcome) and by the webhook service (lifecycle); both upsert by session_id and converge.';
comment on column voice_calls.closed_by is
    'Who set the final status: the agent (it knows how the call went, so it wins) or the webhook '
    'service (room_finished for a call the agent never closed).';
comment on column voice_calls.id is
    'uuid5 of session_id (db.ids.call_id): every writer derives the same id without a lookup.';
comment on column voice_calls.session_report is
    'LiveKit''s session report (ctx.make_session_report()) stored when the agent closes the call.';

create table call_participants (
    id uuid primary key default gen_random_uuid(),
    call_id uuid not null references voice_calls (id) on delete cascade,
    user_id uuid references users (id) on delete set null,
    participant_identity text not null,
    participant_sid text not null,
    participant_name text,
    participant_type participant_type not null default 'user',
    kind text not null default 'standard',
    attributes jsonb not null default '{}',
    joined_at timestamptz,
    left_at timestamptz,
    duration_seconds integer,
    is_muted boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint call_participants_call_sid_key unique (call_id, participant_sid),
    constraint call_participants_duration_check check (duration_seconds >= 0)
);
comment on table call_participants is
    'Everyone in a call: the caller, the agent, humans after a transfer. kind is LiveKit''s '
    'participant kind (standard, sip, agent, egress, ingress, connector).';

create table voice_messages (
    id uuid primary key default gen_random_uuid(),
    call_id uuid not null references voice_calls (id) on delete cascade,
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
    constraint voice_messages_call_sequence_key unique (call_id, sequence_number),
    constraint voice_messages_call_item_key unique (call_id, item_id),
    constraint voice_messages_sequence_check check (sequence_number >= 0),
    constraint voice_messages_confidence_check
        check (transcript_confidence between 0 and 1),
    constraint voice_messages_latency_check check (
        transcription_delay_ms >= 0 and end_of_turn_delay_ms >= 0 and llm_ttft_ms >= 0
        and tts_ttfb_ms >= 0 and e2e_latency_ms >= 0
    ),
    constraint voice_messages_tokens_check
        check (tokens_used >= 0 and prompt_tokens >= 0 and completion_tokens >= 0)
);
comment on table voice_messages is
    'Every spoken turn of a call in order. item_id is the LiveKit chat item id: writing the same '
    'item twice is a no-op. Latency figures are LiveKit''s ChatMessage.metrics, in milliseconds.';

create table call_events (
    id uuid primary key,
    call_id uuid not null references voice_calls (id) on delete cascade,
    sequence bigint generated always as identity,
    event_type text not null,
    severity text not null default 'info',
    turn_index integer,
    payload jsonb not null default '{}',
    occurred_at timestamptz not null default now(),
    created_at timestamptz not null default now(),
    constraint call_events_severity_check
        check (severity in ('debug', 'info', 'warning', 'error', 'critical'))
);
comment on table call_events is
    'Append-only, ordered log per call: tool calls and results, barge-ins, transfers, '
    'escalations, errors, webhook lifecycle events. event_type is validated in code, not by a '
    'CHECK (seed 004: a CHECK on it broke every new event kind). id is chosen by the writer.';

create table call_analyses (
    call_id uuid primary key references voice_calls (id) on delete cascade,
    summary text,
    intent text,
    sentiment text check (sentiment in ('positive', 'neutral', 'negative', 'mixed')),
    outcome text,
    success boolean,
    quality_score real check (quality_score between 0 and 1),
    extraction jsonb not null default '{}',
    model_used text,
    created_at timestamptz not null default now()
);
comment on table call_analyses is 'What a call was about and how it went, written after it ends.';

create table webhook_events (
    event_id text primary key,
    event text not null,
    room_sid text,
    room_name text,
    participant_sid text,
    payload jsonb not null,
    created_at timestamptz,
    received_at timestamptz not null default now(),
    outcome text not null default 'applied',
    error text
);
comment on table webhook_events is
    'Every verified LiveKit webhook, keyed by its event id (a redelivery is a no-op). '
    'created_at is the event''s own time; outcome says what we did with it.';

-- Indexes: the seed's query shapes and the ones our views and writers need ------------------------

create index idx_voice_calls_user_id on voice_calls (user_id, created_at desc)
    where user_id is not null;
create index idx_voice_calls_active on voice_calls (created_at desc) where status = 'active';
create index idx_voice_calls_ai_agent on voice_calls (created_at desc) where ai_agent_used;
create index idx_voice_calls_started_at on voice_calls (started_at);
create index idx_voice_calls_caller_number on voice_calls (caller_number)
    where caller_number is not null;
create index idx_voice_messages_call_sequence on voice_messages (call_id, sequence_number);
create index idx_call_participants_call_id on call_participants (call_id);
create index idx_call_participants_user_id on call_participants (user_id)
    where user_id is not null;
create index idx_call_events_call_sequence on call_events (call_id, sequence);
create index idx_call_events_errors on call_events (occurred_at) where event_type = 'error';
create index idx_webhook_events_room_sid on webhook_events (room_sid);

-- Triggers ----------------------------------------------------------------------------------------

create function set_updated_at() returns trigger
language plpgsql
as $$
begin
    new.updated_at := now();
    return new;
end
$$;

create trigger voice_calls_updated_at_trigger
    before update on voice_calls for each row execute function set_updated_at();
create trigger call_participants_updated_at_trigger
    before update on call_participants for each row execute function set_updated_at();
create trigger users_updated_at_trigger
    before update on users for each row execute function set_updated_at();

create function voice_calls_calculate_duration() returns trigger
language plpgsql
as $$
begin
    -- From connection when the caller was served, else from the room's start. Clamped at 0:
    -- the agent's clock and the LiveKit server's may disagree by a little.
    if new.ended_at is not null then
        new.duration_seconds := greatest(
            0, round(extract(epoch from new.ended_at - coalesce(new.connected_at, new.started_at)))
        )::integer;
    end if;
    return new;
end
$$;

create trigger voice_calls_calculate_duration_trigger
    before insert or update on voice_calls
    for each row execute function voice_calls_calculate_duration();

create function call_participants_calculate_duration() returns trigger
language plpgsql
as $$
begin
    if new.joined_at is not null and new.left_at is not null then
        new.duration_seconds := greatest(
            0, round(extract(epoch from new.left_at - new.joined_at))
        )::integer;
    end if;
    return new;
end
$$;

create trigger call_participants_calculate_duration_trigger
    before insert or update on call_participants
    for each row execute function call_participants_calculate_duration();

-- Statement-level, so a batch of messages (COPY, executemany) updates each call once. The calls
-- are locked first (in id order, so two writers cannot deadlock here) and summed in a later
-- statement: its fresh snapshot sees what a concurrent writer to the same call committed, which
-- a single UPDATE re-checking the row with its old snapshot would miss. FOR NO KEY UPDATE is the
-- lock the UPDATE takes anyway, so it does not block other writers' foreign key checks. An
-- UPDATE that moves a message to another call recomputes both calls.
create function voice_messages_update_tokens() returns trigger
language plpgsql
as $$
declare
    touched uuid[];
begin
    if tg_op = 'INSERT' then
        select array_agg(distinct call_id) into touched from new_rows;
    elsif tg_op = 'DELETE' then
        select array_agg(distinct call_id) into touched from old_rows;
    else
        select array_agg(distinct call_id) into touched
          from (select call_id from old_rows union all select call_id from new_rows) moved;
    end if;
    perform 1 from voice_calls where id = any(touched) order by id for no key update;
    update voice_calls c
       set total_tokens_used = coalesce(
               (select sum(m.tokens_used) from voice_messages m where m.call_id = c.id), 0)
     where c.id = any(touched);
    return null;
end
$$;

create trigger voice_messages_update_tokens_trigger
    after insert on voice_messages referencing new table as new_rows
    for each statement execute function voice_messages_update_tokens();
create trigger voice_messages_update_tokens_on_update_trigger
    after update on voice_messages referencing old table as old_rows new table as new_rows
    for each statement execute function voice_messages_update_tokens();
create trigger voice_messages_update_tokens_on_delete_trigger
    after delete on voice_messages referencing old table as old_rows
    for each statement execute function voice_messages_update_tokens();

-- Views (security_invoker: a user of a view sees only the rows RLS lets them see) -----------------

create view active_calls_summary with (security_invoker = true) as
select c.id,
       c.session_id,
       c.room_name,
       c.status,
       c.caller_number,
       c.started_at,
       c.connected_at,
       extract(epoch from now() - coalesce(c.connected_at, c.started_at))::integer
           as elapsed_seconds,
       u.full_name as user_name,
       u.email as user_email,
       count(p.id) filter (where p.left_at is null) as participant_count,
       -- [] (not NULL) when nobody is in the call any more
       coalesce(
           array_remove(
               array_agg(coalesce(p.participant_name, p.participant_identity) order by p.joined_at)
                   filter (where p.left_at is null),
               null
           ),
           '{}'
       ) as participant_names
  from voice_calls c
  left join users u on u.id = c.user_id
  left join call_participants p on p.call_id = c.id
 where c.status = 'active'
 group by c.id, u.id;
comment on view active_calls_summary is 'Calls in progress, with who is in them now.';

create view call_analytics with (security_invoker = true) as
select c.id,
       c.session_id,
       c.user_id,
       c.status,
       c.outcome,
       c.created_at,
       c.started_at,
       c.duration_seconds,
       c.total_tokens_used,
       coalesce(m.message_count, 0) as message_count,
       coalesce(m.user_messages, 0) as user_messages,
       coalesce(m.assistant_messages, 0) as assistant_messages,
       coalesce(m.system_messages, 0) as system_messages,
       coalesce(m.interrupted_messages, 0) as interrupted_messages,
       m.avg_e2e_latency_ms,
       m.max_e2e_latency_ms
  from voice_calls c
  left join lateral (
      select count(*) as message_count,
             count(*) filter (where role = 'user') as user_messages,
             count(*) filter (where role = 'assistant') as assistant_messages,
             count(*) filter (where role = 'system') as system_messages,
             count(*) filter (where interrupted) as interrupted_messages,
             avg(e2e_latency_ms) as avg_e2e_latency_ms,
             max(e2e_latency_ms) as max_e2e_latency_ms
        from voice_messages
       where call_id = c.id
  ) m on true;
comment on view call_analytics is 'Per call: messages by role, interruptions, tokens, latency.';

create view conversation_success_rate with (security_invoker = true) as
select date_trunc('day', started_at) as date,
       round(count(*) filter (where status = 'completed') * 100.0 / count(*), 2) as success_rate,
       count(*) as total_conversations,
       count(*) filter (where status = 'completed') as completed,
       count(*) filter (where status = 'failed') as failed,
       count(*) filter (where status = 'abandoned') as abandoned
  from voice_calls
 where started_at >= now() - interval '30 days'
   and status not in ('pending', 'active')
 group by 1;
comment on view conversation_success_rate is
    'Per day over the last 30 days, of the calls that ended: percent completed.';

create view error_rate_by_type with (security_invoker = true) as
select coalesce(payload ->> 'error_type', 'unknown') as error_type,
       count(*) as error_count,
       count(*) filter (where severity = 'critical') as critical_count,
       count(distinct call_id) as calls_affected
  from call_events
 where event_type = 'error'
   and occurred_at >= now() - interval '7 days'
 group by 1;
comment on view error_rate_by_type is 'Errors of the last 7 days by type (payload.error_type).';

-- Row level security --------------------------------------------------------------------------------
-- The services connect as the owner of the tables and are not subject to RLS; these policies
-- govern what a signed-in user (Supabase's authenticated role) may read through PostgREST.

create function can_access_call(p_call_id uuid) returns boolean
language sql stable security definer
set search_path = public, pg_temp
as $$
    -- security definer: reading call_participants from a voice_calls policy (and back) would
    -- otherwise recurse through RLS.
    select is_admin()
        or exists (select 1 from voice_calls where id = p_call_id and user_id = auth.uid())
        or exists (select 1 from call_participants
                    where call_id = p_call_id and user_id = auth.uid())
$$;
comment on function can_access_call(uuid) is
    'Whether the current user may see a call: an admin, its owner, or one of its participants.';

alter table users enable row level security;
alter table voice_calls enable row level security;
alter table call_participants enable row level security;
alter table voice_messages enable row level security;
alter table call_events enable row level security;
alter table call_analyses enable row level security;
alter table webhook_events enable row level security;
alter table schema_migrations enable row level security;

create policy users_select_own on users for select to authenticated
    using (id = auth.uid());
create policy users_admin_all on users for all to authenticated
    using (is_admin()) with check (is_admin());

create policy voice_calls_select_own on voice_calls for select to authenticated
    using (user_id = auth.uid() or can_access_call(id));
create policy voice_calls_insert_own on voice_calls for insert to authenticated
    with check (user_id = auth.uid());
create policy voice_calls_update_own on voice_calls for update to authenticated
    using (user_id = auth.uid()) with check (user_id = auth.uid());
create policy voice_calls_admin_all on voice_calls for all to authenticated
    using (is_admin()) with check (is_admin());

create policy call_participants_select on call_participants for select to authenticated
    using (can_access_call(call_id));
create policy call_participants_admin_all on call_participants for all to authenticated
    using (is_admin()) with check (is_admin());

create policy voice_messages_select on voice_messages for select to authenticated
    using (can_access_call(call_id));
create policy voice_messages_admin_all on voice_messages for all to authenticated
    using (is_admin()) with check (is_admin());

create policy call_events_select on call_events for select to authenticated
    using (can_access_call(call_id));
create policy call_events_admin_all on call_events for all to authenticated
    using (is_admin()) with check (is_admin());

create policy call_analyses_select on call_analyses for select to authenticated
    using (can_access_call(call_id));
create policy call_analyses_admin_all on call_analyses for all to authenticated
    using (is_admin()) with check (is_admin());

create policy webhook_events_admin_select on webhook_events for select to authenticated
    using (is_admin());

grant select, insert, update on users, voice_calls, call_participants, voice_messages,
    call_events, call_analyses to authenticated;
grant select on webhook_events, active_calls_summary, call_analytics,
    conversation_success_rate, error_rate_by_type to authenticated;
