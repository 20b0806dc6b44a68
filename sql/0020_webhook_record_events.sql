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
