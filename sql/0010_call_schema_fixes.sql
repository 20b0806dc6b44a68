-- 0010_call_schema_fixes: fixes to 0001 found by its tests. total_tokens_used stays exact under
-- concurrent writers and when a message moves to another call; active_calls_summary gives an
-- empty participant list rather than NULL.
--
-- 0001's statement trigger recomputed the sum inside one UPDATE. When two transactions add messages
-- to the same call, the second UPDATE waits for the first's row lock and then re-checks the row
-- with its old snapshot, which does not see the first's messages: their tokens were lost
-- (tests/test_triggers.py). Here the trigger locks the calls first and recomputes in a later
-- statement, whose fresh snapshot (read committed) sees what the other writer committed. The lock
-- is FOR NO KEY UPDATE, the one the UPDATE takes anyway, so it does not block the foreign key
-- checks of other writers' message inserts. An UPDATE that changes call_id now also recomputes
-- the call the message left (0001 only looked at the new rows).

create or replace function voice_messages_update_tokens() returns trigger
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
    -- In id order, so two writers touching the same calls cannot deadlock here.
    perform 1 from voice_calls where id = any(touched) order by id for no key update;
    update voice_calls c
       set total_tokens_used = coalesce(
               (select sum(m.tokens_used) from voice_messages m where m.call_id = c.id), 0)
     where c.id = any(touched);
    return null;
end
$$;

drop trigger voice_messages_update_tokens_trigger on voice_messages;
drop trigger voice_messages_update_tokens_on_update_trigger on voice_messages;
drop trigger voice_messages_update_tokens_on_delete_trigger on voice_messages;

create trigger voice_messages_update_tokens_trigger
    after insert on voice_messages referencing new table as new_rows
    for each statement execute function voice_messages_update_tokens();
create trigger voice_messages_update_tokens_on_update_trigger
    after update on voice_messages referencing old table as old_rows new table as new_rows
    for each statement execute function voice_messages_update_tokens();
create trigger voice_messages_update_tokens_on_delete_trigger
    after delete on voice_messages referencing old table as old_rows
    for each statement execute function voice_messages_update_tokens();

-- active_calls_summary.participant_names was [] for a call nobody had joined but NULL for one
-- everybody had left (array_agg over no rows); it is [] for both now. Same columns as in 0001.
create or replace view active_calls_summary with (security_invoker = true) as
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
