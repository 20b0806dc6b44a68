-- The effects of a group of LiveKit webhooks on the call record, in one statement (issue 12,
-- throughput). The webhook service (webhooks/effects.py) reads each event's protobuf and passes
-- what the effect needs as one jsonb object per event, in arrival order; this applies them one
-- after the other. Until now the service made these steps one repository call each (4-5 round
-- trips per event): the call upsert of calls.start_call, the participant upsert of
-- participants.upsert_participant, the call's log entry, routing, connected_at, the recording,
-- the verdict on a call nobody closed, and closing it as calls.finish_call does for closed_by
-- 'webhook'. The merge rules are those of db/calls (earliest start, join and connection; latest
-- leave and end; the first writer fills a blank; a closed call never reopens; the agent's closing
-- outranks ours), so the same events give the same rows in any order, in any grouping, and
-- interleaved with the agent's own writes (tests/test_webhooks_convergence.py).
--
-- An event object: kind (the webhook's event name), call_id, session_id, room_name, at (the
-- event's time), caller_number, dialed_number, sip_call_id (a SIP participant's, else null),
-- participant (sid, identity, name, type, kind, attributes, joined_at, left_at; null for room
-- and egress events), route_number (the normalised dialed number of a SIP participant's join),
-- connect (an agent's join: fill connected_at), log (an entry for call_events: id, payload) and
-- recording (egress_ended: take the latest recording's location); keys may be absent. `reasons`
-- are db/calls/lifecycle.py's VERDICT_REASONS: agent never joined, caller left first, agent left.

create function webhook_unattended_verdict(call_uuid uuid, reasons text[],
                                           out status call_status, out end_reason text)
language sql stable as $$
    -- The verdict on a call the agent did not close: no agent ever in the room (nor a connection
    -- reported): failed; a caller (standard or SIP participant) who left no later than the
    -- agent's arrival: abandoned; otherwise the agent went away without closing it: failed.
    select case when not f.agent_present then 'failed'
                when f.caller_left_first then 'abandoned'
                else 'failed' end::call_status,
           case when not f.agent_present then reasons[1]
                when f.caller_left_first then reasons[2]
                else reasons[3] end
      from (
        select (c.connected_at is not null or a.agent_rows > 0) as agent_present,
               exists (
                   select 1 from call_participants u
                    where u.call_id = c.id
                      and u.participant_type = 'user' and u.kind in ('standard', 'sip')
                      and u.left_at <= least(c.connected_at, a.first_agent_join)
               ) as caller_left_first
          from voice_calls c
         cross join lateral (
             select count(*) as agent_rows, min(p.joined_at) as first_agent_join
               from call_participants p
              where p.call_id = c.id and p.participant_type = 'agent'
         ) a
         where c.id = call_uuid
      ) f
$$;

create function webhook_apply_effects(effects jsonb, reasons text[]) returns void
language plpgsql as $$
declare
    e jsonb;
    p jsonb;
    occurred timestamptz;
    call_uuid uuid;
    closed_by_before text;
    call_created timestamptz;
    -- Issue 16 may partition call_events by its call's created_at (a call_created_at column, part
    -- of its key); this function is written to work with either table, which it looks up once.
    events_by_call_created boolean := exists (
        select 1 from pg_attribute
         where attrelid = 'call_events'::regclass and attname = 'call_created_at' and not attisdropped);
    verdict record;
    muted boolean;
    place record;
    recording text;
begin
    for e in select value from jsonb_array_elements(effects) loop
        occurred := (e ->> 'at')::timestamptz;
        p := e -> 'participant';
        -- The call, created or merged (calls.start_call); its row lock serialises its events.
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
        -- closed_by as this event found the call: the upsert does not change it.
        returning c.id, c.closed_by, c.created_at into call_uuid, closed_by_before, call_created;

        -- Written once: its id derives from the webhook's (whatever the table's unique key).
        if e -> 'log' is not null and events_by_call_created then
            insert into call_events (id, call_id, event_type, payload, occurred_at, call_created_at)
            values ((e -> 'log' ->> 'id')::uuid, call_uuid, e ->> 'kind', e -> 'log' -> 'payload',
                    occurred, call_created)
            on conflict do nothing;
        elsif e -> 'log' is not null then
            insert into call_events (id, call_id, event_type, payload, occurred_at)
            values ((e -> 'log' ->> 'id')::uuid, call_uuid, e ->> 'kind', e -> 'log' -> 'payload', occurred)
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
