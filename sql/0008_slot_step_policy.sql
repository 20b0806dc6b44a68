-- 0008_slot_step_policy: slots are at least 5 minutes apart.
--
-- Issue 11: a policy slot_step_minutes of 0 made slot search loop forever and the call go silent.
-- db/desk/configs.validate_policies and db/desk/slots.BookingRules refuse a step under 5 in code;
-- this CHECK refuses it for every writer. A separate constraint (agent_policies_valid of 0005 is
-- left alone), guarded by the type so a non-number stays agent_configs_policies_check's to refuse.
--
-- Existing rows: configuration content is never edited (0005), but a version with a step under 5
-- cannot run at all; the data fix below raises such steps to 5 (a notice tells how many), then the
-- constraint is added validated in this same transaction.

do $$
declare
    fixed integer;
begin
    update agent_configs set policies = jsonb_set(policies, '{slot_step_minutes}', '5')
     where jsonb_typeof(policies -> 'slot_step_minutes') = 'number'
       and (policies ->> 'slot_step_minutes')::numeric < 5;
    get diagnostics fixed = row_count;
    if fixed > 0 then
        raise notice '0008_slot_step_policy: % config(s) had slot_step_minutes under 5; now 5', fixed;
    end if;
end
$$;

alter table agent_configs
    add constraint agent_configs_slot_step_check check (
        case when jsonb_typeof(policies -> 'slot_step_minutes') = 'number'
             then (policies ->> 'slot_step_minutes')::numeric >= 5
             else true
        end);
