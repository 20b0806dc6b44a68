-- 0020_webhook_record_events: a group of LiveKit webhooks stored and applied in one statement.
--
-- Issue 12 (throughput). The webhook service's group commit took four round trips per group:
-- BEGIN, the webhook_events insert, webhook_apply_effects (0017), COMMIT. On a busy service each
-- round trip also waits for the event loop to come back to it from the HTTP requests it is
-- handling, so a group spent ~12 ms in flight for ~2 ms of work (bench/webhooks.py). This does the
-- insert and the effects in one statement, which the service sends on its own: one round trip,
-- committed as one transaction (a caller's open transaction, if it has one, owns it instead).
--
-- The arguments are aligned arrays, one element per delivery in arrival order: the row of
-- webhook_events (the body as JSON text) and `effects`, a jsonb array holding each delivery's
-- effect object (0017's format) or null for an event that is only stored. A delivery's effect
-- applies only if its row is new: a redelivery, or a second copy in the same group, changes
-- nothing. Returns the ids that were new.

create function webhook_record_events(
    event_ids text[], event_names text[], room_sids text[], room_names text[],
    participant_sids text[], bodies text[], created timestamptz[], outcomes text[],
    effects jsonb, reasons text[]
) returns text[]
language plpgsql as $$
declare
    fresh text[];
    applied jsonb;
begin
    with stored as (
        insert into webhook_events (
            event_id, event, room_sid, room_name, participant_sid, payload, created_at, outcome
        )
        select e.event_id, e.event, e.room_sid, e.room_name, e.participant_sid, e.body::jsonb,
               e.created_at, e.outcome
          from unnest(event_ids, event_names, room_sids, room_names, participant_sids, bodies,
                      created, outcomes)
               as e(event_id, event, room_sid, room_name, participant_sid, body, created_at, outcome)
        on conflict (event_id, created_at) do nothing
        returning event_id
    )
    select coalesce(array_agg(event_id), '{}') into fresh from stored;

    -- The first copy of each new event, in arrival order.
    select jsonb_agg(f.effect order by f.n) into applied
      from (select distinct on (d.event_id) d.n, effects -> (d.n::int - 1) as effect
              from unnest(event_ids) with ordinality as d(event_id, n)
             where d.event_id = any(fresh)
             order by d.event_id, d.n) f
     where jsonb_typeof(f.effect) = 'object';
    if applied is not null then
        perform webhook_apply_effects(applied, reasons);
    end if;
    return fresh;
end
$$;

comment on function webhook_record_events(text[], text[], text[], text[], text[], text[], timestamptz[],
                                          text[], jsonb, text[]) is
    'Store a group of LiveKit webhooks in webhook_events and apply the effects of the new ones '
    '(webhook_apply_effects) in one statement; returns the new event ids. Used by the webhook '
    'service (db/calls/webhook_events.py record_webhook_events).';

-- webhook_apply_effects (0017) again, with two changes. The call's upsert no longer rewrites a row
-- it does not change: it did for every event (most of a call's events add nothing to its row),
-- and each new row version ran voice_calls' update triggers. call_events is partitioned by its
-- call's created_at since 0016, so the look-up that let the function work before that is gone.
create or replace function webhook_apply_effects(effects jsonb, reasons text[]) returns void
language plpgsql as $$
declare
    e jsonb;
    p jsonb;
    occurred timestamptz;
    call_uuid uuid;
    closed_by_before text;
    call_created timestamptz;
    verdict record;
    muted boolean;
    place record;
    recording text;
begin
    for e in select value from jsonb_array_elements(effects) loop
        occurred := (e ->> 'at')::timestamptz;
        p := e -> 'participant';
        -- The call, created or merged (calls.start_call); its row lock serialises its events.
        -- Most of a call's events change none of these columns: then the row is left as it is
        -- (ON CONFLICT locks it all the same) and read back, with no new row version to write
        -- and no update triggers to run.
        insert into voice_calls as c (id, session_id, room_name, caller_number, dialed_number,
                                      sip_call_id, started_at)
        values ((e ->> 'call_id')::uuid, e ->> 'session_id', e ->> 'room_name',
                e ->> 'caller_number', e ->> 'dialed_number', e ->> 'sip_call_id', occurred)
        on conflict (id) do update set
            room_name = coalesce(c.room_name, excluded.room_name),
            caller_number = coalesce(c.caller_number, excluded.caller_number),
            dialed_number = coalesce(c.dialed_number, excluded.dialed_number),
            sip_call_id = coalesce(c.sip_call_id, excluded.sip_call_id),
            started_at = least(c.started_at, excluded.started_at)
        where (c.room_name, c.caller_number, c.dialed_number, c.sip_call_id, c.started_at)
              is distinct from
              (coalesce(c.room_name, excluded.room_name), coalesce(c.caller_number, excluded.caller_number),
               coalesce(c.dialed_number, excluded.dialed_number), coalesce(c.sip_call_id, excluded.sip_call_id),
               least(c.started_at, excluded.started_at))
        -- closed_by as this event found the call: the upsert does not change it.
        returning c.id, c.closed_by, c.created_at into call_uuid, closed_by_before, call_created;
        if not found then
            select c.id, c.closed_by, c.created_at into call_uuid, closed_by_before, call_created
              from voice_calls c where c.id = (e ->> 'call_id')::uuid;
        end if;

        -- Written once: its id derives from the webhook's (whatever the table's unique key).
        if e -> 'log' is not null then
            insert into call_events (id, call_id, event_type, payload, occurred_at, call_created_at)
            values ((e -> 'log' ->> 'id')::uuid, call_uuid, e ->> 'kind', e -> 'log' -> 'payload',
                    occurred, call_created)
            on conflict do nothing;
        end if;

        if e ->> 'kind' in ('track_published', 'track_unpublished') then
            -- Mute state is the latest audio track event's, whatever order they came in.
            select (payload ->> 'muted')::boolean into muted from call_events
             where call_id = call_uuid and event_type in ('track_published', 'track_unpublished')
               and payload ->> 'participant_sid' = p ->> 'sid' and payload ->> 'track_type' = 'AUDIO'
             order by occurred_at desc, id desc
             limit 1;
        else
            muted := null;
        end if;

        if p is not null then
            insert into call_participants as cp (
                call_id, participant_sid, participant_identity, participant_name, participant_type,
                kind, attributes, joined_at, left_at, is_muted
            ) values (
                call_uuid, p ->> 'sid', p ->> 'identity', p ->> 'name', (p ->> 'type')::participant_type,
                p ->> 'kind', coalesce(nullif(p -> 'attributes', 'null'), '{}'),
                (p ->> 'joined_at')::timestamptz, (p ->> 'left_at')::timestamptz, coalesce(muted, false)
            )
            on conflict (call_id, participant_sid) do update set
                participant_identity = excluded.participant_identity,
                participant_name = coalesce(excluded.participant_name, cp.participant_name),
                participant_type = excluded.participant_type,
                kind = excluded.kind,
                attributes = cp.attributes || excluded.attributes,
                joined_at = least(cp.joined_at, excluded.joined_at),
                left_at = greatest(cp.left_at, excluded.left_at),
                is_muted = case when muted is null then cp.is_muted else excluded.is_muted end;
        end if;

        if e ->> 'route_number' is not null then
            select l.id, l.organization_id into place from locations l
             where l.phone_number = e ->> 'route_number' and l.is_active
               and exists (select 1 from organizations o where o.id = l.organization_id and o.is_active);
            if found then
                update voice_calls set location_id = place.id,
                                       organization_id = coalesce(organization_id, place.organization_id)
                 where id = call_uuid and location_id is null;
            end if;
        end if;

        if (e ->> 'connect')::boolean then
            update voice_calls
               set connected_at = least(coalesce(connected_at, (p ->> 'joined_at')::timestamptz),
                                        (p ->> 'joined_at')::timestamptz)
             where id = call_uuid;
        end if;

        if (e ->> 'recording')::boolean then
            select payload ->> 'location' into recording from call_events
             where call_id = call_uuid and event_type = 'egress_ended' and payload ->> 'location' <> ''
             order by occurred_at desc, id desc
             limit 1;
            if recording is not null then
                update voice_calls set recording_url = recording where id = call_uuid;
            end if;
        end if;

        if e ->> 'kind' = 'room_finished' then
            -- calls.finish_call by the webhook: fills only a call nobody closed.
            verdict := webhook_unattended_verdict(call_uuid, reasons);
            update voice_calls c set
                ended_at = greatest(c.ended_at, occurred),
                status = case when c.status not in ('completed', 'failed', 'abandoned')
                              then verdict.status else c.status end,
                end_reason = case when c.status not in ('completed', 'failed', 'abandoned')
                                  then verdict.end_reason else c.end_reason end,
                closed_by = case when c.status not in ('completed', 'failed', 'abandoned')
                                 then 'webhook' else c.closed_by end
             where c.id = call_uuid;
        end if;

        if closed_by_before = 'webhook' then
            -- This event may change who was in the room: judge the unattended call again.
            verdict := webhook_unattended_verdict(call_uuid, reasons);
            update voice_calls set status = verdict.status, end_reason = verdict.end_reason
             where id = call_uuid and closed_by = 'webhook'
               and (status <> verdict.status or end_reason is distinct from verdict.end_reason);
        end if;
    end loop;
end
$$;

-- The KPI triggers on voice_calls (0012) fire after every statement that touches calls, rows or
-- none: the upsert above fires both the insert and the update one. While a call is open they
-- find nothing to fold but still called kpi_fold_calls (security definer, its own search_path).
-- The same trigger, calling it only with calls to fold. Together with the upsert's guard: ~12%
-- less database CPU per webhook (one connection storing groups of 12, side by side).
create or replace function kpi_fold_changed_calls() returns trigger
language plpgsql
as $$
declare
    ids uuid[];
begin
    if tg_op = 'INSERT' then
        select array_agg(id) into ids from new_rows
         where status in ('completed', 'failed', 'abandoned');
    elsif tg_op = 'UPDATE' then
        select array_agg(distinct id) into ids
          from (select id, status from new_rows union all select id, status from old_rows) r
         where status in ('completed', 'failed', 'abandoned');
    else
        select array_agg(id) into ids from old_rows;
    end if;
    if ids is not null then
        perform kpi_fold_calls(ids);
    end if;
    return null;
end
$$;
