-- 0012_costs_and_kpis: what a call cost, and the daily numbers a business runs on.
--
-- Issue 14 (cost per call, KPIs in SQL).
--
-- Costs. model_prices is a price table we own, versioned by effective date: one row per kind
-- (stt, llm, tts, telephony, analysis), provider and model (or '*': any model of the provider),
-- with a price per audio minute, per million input / cached-input / output tokens, per million
-- characters, per call minute and per analysis. The price of a call is the newest row in effect
-- when the call started. voice_calls.model_usage holds LiveKit's session usage
-- (AgentSession.usage.model_usage, one object per model) written by the agent when the call ends.
-- call_usage_lines prices each line of usage (models, SIP minutes, analyses); a quantity without a
-- price makes its line's cost null and lists it in unpriced_usage: never a silent 0. call_costs
-- sums them per call (null wherever a line is unpriced).
--
-- Seeded list prices are those published on 2025-06-01 (USD), for the default models of
-- agent/providers.py: Deepgram nova-3 streaming STT, OpenAI gpt-4o-mini, OpenAI gpt-4o-mini-tts
-- (OpenAI's per-minute figure: LiveKit reports its characters and audio, not its tokens) and
-- Deepgram aura-2; SIP minutes at Twilio's US local rates (billed per started minute); an analysis
-- at an estimate (about 4,000 input and 500 output tokens of gpt-4o-mini). Edit them with an insert
-- of a newer row (see README).
--
-- KPIs. The turns of a call are folded once, when the call closes, into call_kpi_facts (one row
-- per closed call: counters, cost, latency histograms with fixed buckets) and from there, by
-- difference, into call_kpis_rollup (day x organisation x location x agent config). A later change
-- re-folds the call: an update of a closed call (late messages update voice_calls' token total),
-- an appointment booked, moved or cancelled later, an analysis written. Nothing here triggers on
-- voice_messages, call_events or webhook_events (they are being partitioned). call_kpis_daily
-- reads only the rollup, whose percentiles are kept up to date on each change of its row.
-- A price edited after the fact does not re-price folded calls: kpi_refold(from, to) does.

-- Prices and usage ----------------------------------------------------------------------------------

create table model_prices (
    id uuid primary key default gen_random_uuid(),
    kind text not null,
    provider text not null,
    model text not null,
    effective_from timestamptz not null,
    currency text not null default 'USD',
    per_audio_minute numeric,
    per_million_input_tokens numeric,
    per_million_cached_input_tokens numeric,
    per_million_output_tokens numeric,
    per_million_characters numeric,
    per_call_minute numeric,
    per_analysis numeric,
    source text,
    created_at timestamptz not null default now(),
    constraint model_prices_version_key unique (kind, provider, model, effective_from),
    constraint model_prices_kind_check
        check (kind in ('stt', 'llm', 'tts', 'telephony', 'analysis')),
    constraint model_prices_provider_check check (provider = lower(provider) and provider <> ''),
    constraint model_prices_model_check check (model <> ''),
    constraint model_prices_currency_check check (currency ~ '^[A-Z]{3}$'),
    constraint model_prices_amounts_check check (
        per_audio_minute >= 0 and per_million_input_tokens >= 0
        and per_million_cached_input_tokens >= 0 and per_million_output_tokens >= 0
        and per_million_characters >= 0 and per_call_minute >= 0 and per_analysis >= 0)
);
comment on table model_prices is
    'What each kind of usage costs, per provider (lower case, as LiveKit reports it) and model '
    '(''*'': any model of that provider), from effective_from on. A null price is "unknown", not '
    'free: usage it would price is listed in unpriced_usage. A change of price is a new row.';

insert into model_prices (kind, provider, model, effective_from, per_audio_minute,
                          per_million_input_tokens, per_million_cached_input_tokens,
                          per_million_output_tokens, per_million_characters, per_call_minute,
                          per_analysis, source) values
    ('stt', 'deepgram', 'nova-3', '2025-06-01', 0.0077, null, null, null, null, null, null,
     'deepgram.com/pricing, Nova-3 streaming, pay as you go'),
    ('stt', 'deepgram', 'nova-2', '2025-06-01', 0.0058, null, null, null, null, null, null,
     'deepgram.com/pricing, Nova-2 streaming, pay as you go'),
    ('llm', 'api.openai.com', 'gpt-4o-mini', '2025-06-01', null, 0.15, 0.075, 0.60, null, null,
     null, 'openai.com/api/pricing'),
    ('llm', 'api.openai.com', 'gpt-4o', '2025-06-01', null, 2.50, 1.25, 10.00, null, null, null,
     'openai.com/api/pricing'),
    ('tts', 'api.openai.com', 'gpt-4o-mini-tts', '2025-06-01', 0.015, null, null, null, 0, null,
     null, 'openai.com/api/pricing: estimated cost per minute of audio'),
    ('tts', 'api.openai.com', 'tts-1', '2025-06-01', 0, null, null, null, 15.00, null, null,
     'openai.com/api/pricing'),
    ('tts', 'deepgram', 'aura-2-andromeda-en', '2025-06-01', 0, null, null, null, 30.00, null,
     null, 'deepgram.com/pricing, Aura-2, $0.030 per 1,000 characters'),
    ('telephony', 'sip', 'inbound', '2025-06-01', null, null, null, null, null, 0.0085, null,
     'twilio.com/voice/pricing/us, local number, receive'),
    ('telephony', 'sip', 'outbound', '2025-06-01', null, null, null, null, null, 0.0140, null,
     'twilio.com/voice/pricing/us, local number, make'),
    ('analysis', 'analysis', '*', '2025-06-01', null, null, null, null, null, null, 0.001,
     'estimate: ~4,000 input and ~500 output tokens of gpt-4o-mini'),
    ('analysis', 'analysis', 'rules', '2025-06-01', null, null, null, null, null, null, 0,
     'the offline rules analyser runs on our own machine: no model is called');

alter table voice_calls add column model_usage jsonb;
comment on column voice_calls.model_usage is
    'LiveKit''s AgentSession.usage.model_usage as JSON (one object per model: type, provider, '
    'model, audio_duration, input_tokens, input_cached_tokens, output_tokens, characters_count '
    '...), written by the agent when the call ends.';

create function usage_line_cost(p model_prices, audio_seconds numeric, input_tokens bigint,
                                cached_input_tokens bigint, output_tokens bigint,
                                characters bigint, call_minutes numeric, analyses integer)
returns numeric
language sql immutable
as $$
    -- A quantity of 0 costs 0 whatever its price; any other quantity times a null price is null,
    -- and so is the line's cost (null + x is null).
    select case when p.id is null then null else
          (case when audio_seconds = 0 then 0 else audio_seconds / 60 * p.per_audio_minute end)
        + (case when input_tokens - cached_input_tokens = 0 then 0
                else (input_tokens - cached_input_tokens) / 1e6 * p.per_million_input_tokens end)
        + (case when cached_input_tokens = 0 then 0
                else cached_input_tokens / 1e6 * p.per_million_cached_input_tokens end)
        + (case when output_tokens = 0 then 0
                else output_tokens / 1e6 * p.per_million_output_tokens end)
        + (case when characters = 0 then 0 else characters / 1e6 * p.per_million_characters end)
        + (case when call_minutes = 0 then 0 else call_minutes * p.per_call_minute end)
        + (case when analyses = 0 then 0 else analyses * p.per_analysis end)
    end
$$;

create view call_usage_lines with (security_invoker = true) as
select c.id as call_id,
       u.kind, u.provider, u.model,
       u.audio_seconds, u.input_tokens, u.cached_input_tokens, u.output_tokens, u.characters,
       u.call_minutes, u.analyses,
       p.id as price_id,
       p.currency,
       usage_line_cost(p, u.audio_seconds, u.input_tokens, u.cached_input_tokens,
                       u.output_tokens, u.characters, u.call_minutes, u.analyses) as cost
  from voice_calls c
 cross join lateral (
     select case e ->> 'type' when 'stt_usage' then 'stt' when 'llm_usage' then 'llm'
                 else 'tts' end as kind,
            lower(coalesce(e ->> 'provider', '')) as provider,
            coalesce(e ->> 'model', '') as model,
            coalesce((e ->> 'audio_duration')::numeric, 0) as audio_seconds,
            coalesce((e ->> 'input_tokens')::bigint, 0) as input_tokens,
            coalesce((e ->> 'input_cached_tokens')::bigint, 0) as cached_input_tokens,
            coalesce((e ->> 'output_tokens')::bigint, 0) as output_tokens,
            coalesce((e ->> 'characters_count')::bigint, 0) as characters,
            0::numeric as call_minutes, 0 as analyses
       from jsonb_array_elements(
                case when jsonb_typeof(c.model_usage) = 'array' then c.model_usage
                     else '[]'::jsonb end) e
      -- interruption_usage / eot_usage: LiveKit's turn detector runs in the worker, no bill.
      where e ->> 'type' in ('stt_usage', 'llm_usage', 'tts_usage')
     union all
     -- Phone minutes: only a call that came through the SIP bridge, per started minute (one at least).
     select 'telephony', 'sip', c.direction::text, 0, 0, 0, 0, 0,
            greatest(1, ceil(c.duration_seconds / 60.0)), 0
      where c.duration_seconds is not null
        and (c.sip_call_id is not null
             or exists (select 1 from call_participants s
                         where s.call_id = c.id and s.kind = 'sip'))
     union all
     select 'analysis', 'analysis', coalesce(a.model_used, a.analyser, '*'), 0, 0, 0, 0, 0, 0, 1
       from call_analyses a
      where a.call_id = c.id
     union all
     -- An answered call whose agent never wrote its usage cost something unknown, not nothing.
     select 'usage', 'agent', 'not recorded', 0, 0, 0, 0, 0, 0, 0
      where c.model_usage is null and (c.connected_at is not null or c.status = 'completed')
 ) u
  left join lateral (
      select * from model_prices mp
       where mp.kind = u.kind and mp.provider = u.provider and mp.model in (u.model, '*')
         and mp.effective_from <= c.started_at
       order by mp.model = u.model desc, mp.effective_from desc
       limit 1
  ) p on true;
comment on view call_usage_lines is
    'Each call''s usage, one line per model (LiveKit''s usage), SIP minutes and analyses, priced '
    'at the model_prices row in effect when the call started. cost is null when unpriced.';

create view unpriced_usage with (security_invoker = true) as
select call_id, kind, provider, model, audio_seconds, input_tokens, cached_input_tokens,
       output_tokens, characters, call_minutes, analyses,
       case when kind = 'usage' then 'the agent did not record the call''s usage'
            when price_id is null then 'no price for this provider and model'
            else 'a price for a quantity used is missing' end as reason
  from call_usage_lines
 where cost is null;
comment on view unpriced_usage is
    'Usage that no price covers: add a model_prices row for it (the cost of its call is null).';

create view call_costs with (security_invoker = true) as
select c.id as call_id,
       c.organization_id,
       c.location_id,
       c.started_at,
       k.stt, k.llm, k.tts, k.telephony, k.analysis,
       case when k.unpriced is null and k.currencies <= 1 then
           k.stt + k.llm + k.tts + k.telephony + k.analysis end as total,
       k.currency,
       k.unpriced,
       t.turns,
       case when k.unpriced is null and k.currencies <= 1 then
           round((k.stt + k.llm + k.tts + k.telephony + k.analysis) / nullif(t.turns, 0), 8)
       end as cost_per_turn
  from voice_calls c
 cross join lateral (
     select case when bool_or(l.kind = 'stt' and l.cost is null) then null
                 else coalesce(sum(l.cost) filter (where l.kind = 'stt'), 0) end as stt,
            case when bool_or(l.kind = 'llm' and l.cost is null) then null
                 else coalesce(sum(l.cost) filter (where l.kind = 'llm'), 0) end as llm,
            case when bool_or(l.kind = 'tts' and l.cost is null) then null
                 else coalesce(sum(l.cost) filter (where l.kind = 'tts'), 0) end as tts,
            case when bool_or(l.kind = 'telephony' and l.cost is null) then null
                 else coalesce(sum(l.cost) filter (where l.kind = 'telephony'), 0) end
                as telephony,
            case when bool_or(l.kind = 'analysis' and l.cost is null) then null
                 else coalesce(sum(l.cost) filter (where l.kind = 'analysis'), 0) end
                as analysis,
            coalesce(min(l.currency), 'USD') as currency,
            count(distinct l.currency) as currencies,
            array_agg(distinct l.kind || ':' || l.provider || '/' || l.model)
                filter (where l.cost is null) as unpriced
       from call_usage_lines l
      where l.call_id = c.id
 ) k
 cross join lateral (
     select count(*) as turns from voice_messages m
      where m.call_id = c.id and m.role = 'assistant'
 ) t;
comment on view call_costs is
    'One row per call: its cost by kind and in total (currency), null where usage is unpriced '
    '(listed in unpriced, as kind:provider/model), and per turn of the agent.';

-- Latency histograms: fixed buckets ----------------------------------------------------------------
-- 40 buckets: 1 is below 20 ms, bucket b >= 2 is [20 * 1.2^(b-2), 20 * 1.2^(b-1)) ms, 40 is from
-- about 20 s up. A percentile read from them is its bucket's upper bound: at most 20% above the
-- exact value, and the same whatever the history, because buckets add.

-- Null in, null out (greatest() would skip a null), written as a case rather than declared strict
-- so that the planner still inlines it.
create function kpi_latency_bucket(ms real) returns integer
language sql immutable parallel safe
as $$
    select case when ms is not null then
        least(40, greatest(1, floor(ln(greatest(ms, 1) / 20.0) / ln(1.2))::integer + 2)) end
$$;

create function kpi_bucket_upper(bucket integer) returns real
language sql immutable parallel safe
as $$ select (20 * power(1.2, bucket - 1))::real $$;

create function kpi_counts(indexes integer[], size integer) returns integer[]
language plpgsql immutable parallel safe
as $$
declare
    counts integer[] := array_fill(0, array[size]);
    x integer;
begin
    foreach x in array coalesce(indexes, '{}') loop
        counts[x] := counts[x] + 1;
    end loop;
    return counts;
end
$$;
comment on function kpi_counts(integer[], integer) is
    'How many times each of 1..size occurs in indexes, as an array of size counts.';

-- plpgsql loops: a fold computes five histograms per call and adds them up per day, and these
-- run over ten times faster than the same as set-returning SQL (bench/kpis.py).
create function kpi_histogram(latencies real[]) returns integer[]
language plpgsql immutable parallel safe
as $$
declare
    h integer[] := array_fill(0, array[40]);
    b integer;
    v real;
begin
    foreach v in array coalesce(latencies, '{}') loop
        if v is not null then
            b := kpi_latency_bucket(v);
            h[b] := h[b] + 1;
        end if;
    end loop;
    return h;
end
$$;

create function kpi_hist_add(a integer[], b integer[]) returns integer[]
language plpgsql immutable parallel safe
as $$
begin
    if a is null then
        return b;
    elsif b is null then
        return a;
    end if;
    for i in 1 .. array_length(a, 1) loop
        a[i] := a[i] + b[i];
    end loop;
    return a;
end
$$;

create aggregate kpi_hist_sum(integer[]) (sfunc = kpi_hist_add, stype = integer[]);

create function kpi_hist_scale(h integer[], k integer) returns integer[]
language plpgsql immutable parallel safe
as $$
begin
    for i in 1 .. coalesce(array_length(h, 1), 0) loop
        h[i] := h[i] * k;
    end loop;
    return h;
end
$$;

create function kpi_hist_percentiles(h integer[]) returns real[]
language plpgsql immutable parallel safe
as $$
declare
    targets float8[] := array[0.5, 0.9, 0.95];
    result real[] := array[null, null, null]::real[];
    total bigint;
    cum bigint := 0;
    j integer := 1;
begin
    select sum(x) into total from unnest(h) x;
    if total is null or total <= 0 then
        return result;
    end if;
    for i in 1 .. array_length(h, 1) loop
        cum := cum + h[i];
        -- The rank of percentile p is ceil(p * n), as percentile_disc counts it.
        while j <= 3 and cum >= greatest(1, ceil(targets[j] * total)) loop
            result[j] := kpi_bucket_upper(i);
            j := j + 1;
        end loop;
        exit when j > 3;
    end loop;
    return result;
end
$$;
comment on function kpi_hist_percentiles(integer[]) is
    'p50, p90 and p95 (ms) of a latency histogram: the upper bound of the bucket holding each.';

-- Per call facts, and the daily rollup they add up to ---------------------------------------------

create table call_kpi_facts (
    call_id uuid primary key,
    organization_id uuid not null,
    location_id uuid,
    agent_config_id uuid,
    day date not null,
    hour smallint not null,
    answered boolean not null,
    abandoned boolean not null,
    failed boolean not null,
    transferred boolean not null,
    contained boolean not null,
    bookings integer not null,
    reschedules integer not null,
    cancellations integer not null,
    turns integer not null,
    interruptions integer not null,
    tool_results integer not null,
    tool_errors integer not null,
    cost numeric,
    hist_e2e integer[] not null,
    hist_transcription integer[] not null,
    hist_end_of_turn integer[] not null,
    hist_llm_ttft integer[] not null,
    hist_tts_ttfb integer[] not null
);
comment on table call_kpi_facts is
    'One row per closed call of an organisation: what it adds to call_kpis_rollup (day and hour '
    'in its location''s time zone). No foreign key: deleting a call folds it out by trigger. '
    'cost is null when the call has unpriced usage.';
create index idx_call_kpi_facts_org_day on call_kpi_facts (organization_id, day);

create table call_kpis_rollup (
    day date not null,
    organization_id uuid not null references organizations (id) on delete cascade,
    location_id uuid,
    agent_config_id uuid,
    calls integer not null default 0,
    answered integer not null default 0,
    abandoned integer not null default 0,
    failed integer not null default 0,
    transferred integer not null default 0,
    contained integer not null default 0,
    booked_calls integer not null default 0,
    bookings integer not null default 0,
    reschedules integer not null default 0,
    cancellations integer not null default 0,
    turns integer not null default 0,
    interruptions integer not null default 0,
    tool_results integer not null default 0,
    tool_errors integer not null default 0,
    priced_calls integer not null default 0,
    cost numeric not null default 0,
    calls_by_hour integer[] not null default array_fill(0, array[24]),
    hist_e2e integer[] not null default array_fill(0, array[40]),
    hist_transcription integer[] not null default array_fill(0, array[40]),
    hist_end_of_turn integer[] not null default array_fill(0, array[40]),
    hist_llm_ttft integer[] not null default array_fill(0, array[40]),
    hist_tts_ttfb integer[] not null default array_fill(0, array[40]),
    pct_e2e real[],
    pct_transcription real[],
    pct_end_of_turn real[],
    pct_llm_ttft real[],
    pct_tts_ttfb real[],
    constraint call_kpis_rollup_key unique nulls not distinct
        (organization_id, day, location_id, agent_config_id)
);
comment on table call_kpis_rollup is
    'Sums of call_kpi_facts per day x organisation x location x agent config, maintained by '
    'difference as calls are folded (kpi_fold_calls). pct_* are p50/p90/p95 of each histogram, '
    'recomputed whenever the row changes. cost sums the priced calls only (priced_calls).';

create function call_kpis_rollup_percentiles() returns trigger
language plpgsql
as $$
begin
    new.pct_e2e := kpi_hist_percentiles(new.hist_e2e);
    new.pct_transcription := kpi_hist_percentiles(new.hist_transcription);
    new.pct_end_of_turn := kpi_hist_percentiles(new.hist_end_of_turn);
    new.pct_llm_ttft := kpi_hist_percentiles(new.hist_llm_ttft);
    new.pct_tts_ttfb := kpi_hist_percentiles(new.hist_tts_ttfb);
    return new;
end
$$;

create trigger call_kpis_rollup_percentiles_trigger
    before insert or update on call_kpis_rollup
    for each row execute function call_kpis_rollup_percentiles();

create function kpi_call_facts(p_call_ids uuid[]) returns setof call_kpi_facts
language sql stable
as $$
    select c.id, c.organization_id, c.location_id, c.agent_config_id,
           (c.started_at at time zone z.tz)::date,
           extract(hour from c.started_at at time zone z.tz)::smallint,
           -- answered: greeted (connected), or closed as completed, which the agent says only of
           -- a caller it served (agent/call.py close_status)
           c.connected_at is not null or c.status = 'completed',
           c.status = 'abandoned',
           c.status = 'failed',
           coalesce(c.outcome = 'transferred', false),
           -- contained: served to the end without a human
           c.status = 'completed' and c.outcome is distinct from 'transferred',
           (select count(*) from appointments a where a.call_id = c.id)::integer,
           e.reschedules,
           (select count(*) from appointments a
             where a.last_call_id = c.id and a.status = 'cancelled')::integer,
           m.turns, m.interruptions, e.tool_results, e.tool_errors,
           (select cc.total from call_costs cc where cc.call_id = c.id),
           kpi_histogram(m.e2e), kpi_histogram(m.transcription), kpi_histogram(m.end_of_turn),
           kpi_histogram(m.llm_ttft), kpi_histogram(m.tts_ttfb)
      from voice_calls c
      left join locations l on l.id = c.location_id
      join organizations o on o.id = c.organization_id
     cross join lateral (select coalesce(l.timezone, o.default_timezone) as tz) z
     cross join lateral (
         select count(*) filter (where v.role = 'assistant')::integer as turns,
                count(*) filter (where v.interrupted)::integer as interruptions,
                array_agg(v.e2e_latency_ms) as e2e,
                array_agg(v.transcription_delay_ms) as transcription,
                array_agg(v.end_of_turn_delay_ms) as end_of_turn,
                array_agg(v.llm_ttft_ms) as llm_ttft,
                array_agg(v.tts_ttfb_ms) as tts_ttfb
           from voice_messages v where v.call_id = c.id
     ) m
     cross join lateral (
         select count(*) filter (where ev.event_type = 'appointment_rescheduled')::integer
                    as reschedules,
                count(*) filter (where ev.event_type = 'tool_result')::integer as tool_results,
                count(*) filter (where ev.event_type = 'tool_result'
                                   and ev.payload ->> 'is_error' = 'true')::integer as tool_errors
           from call_events ev where ev.call_id = c.id
     ) e
     where c.id = any (p_call_ids)
       and c.status in ('completed', 'failed', 'abandoned')
$$;
comment on function kpi_call_facts(uuid[]) is
    'The facts of the given calls that are closed and belong to an organisation, from their rows.';

create function kpi_apply(p_facts call_kpi_facts[], p_sign integer) returns void
language sql
as $$
    insert into call_kpis_rollup as r (
        day, organization_id, location_id, agent_config_id, calls, answered, abandoned, failed,
        transferred, contained, booked_calls, bookings, reschedules, cancellations, turns,
        interruptions, tool_results, tool_errors, priced_calls, cost, calls_by_hour, hist_e2e,
        hist_transcription, hist_end_of_turn, hist_llm_ttft, hist_tts_ttfb)
    select f.day, f.organization_id, f.location_id, f.agent_config_id,
           p_sign * count(*), p_sign * count(*) filter (where f.answered),
           p_sign * count(*) filter (where f.abandoned), p_sign * count(*) filter (where f.failed),
           p_sign * count(*) filter (where f.transferred),
           p_sign * count(*) filter (where f.contained),
           p_sign * count(*) filter (where f.bookings > 0),
           p_sign * sum(f.bookings), p_sign * sum(f.reschedules), p_sign * sum(f.cancellations),
           p_sign * sum(f.turns), p_sign * sum(f.interruptions), p_sign * sum(f.tool_results),
           p_sign * sum(f.tool_errors),
           p_sign * count(f.cost), p_sign * coalesce(sum(f.cost), 0),
           kpi_hist_scale(kpi_counts(array_agg(f.hour + 1), 24), p_sign),
           kpi_hist_scale(kpi_hist_sum(f.hist_e2e), p_sign),
           kpi_hist_scale(kpi_hist_sum(f.hist_transcription), p_sign),
           kpi_hist_scale(kpi_hist_sum(f.hist_end_of_turn), p_sign),
           kpi_hist_scale(kpi_hist_sum(f.hist_llm_ttft), p_sign),
           kpi_hist_scale(kpi_hist_sum(f.hist_tts_ttfb), p_sign)
      from unnest(p_facts) f
     -- An organisation being deleted takes its rollup rows with it (the foreign key cascades)
     -- while its calls are re-folded (organization_id set null): nothing to take away then.
     where exists (select 1 from organizations o where o.id = f.organization_id)
     group by f.organization_id, f.day, f.location_id, f.agent_config_id
     -- one order for every writer: two folds cannot deadlock on rollup rows
     order by f.organization_id, f.day, f.location_id, f.agent_config_id
    on conflict on constraint call_kpis_rollup_key do update set
        calls = r.calls + excluded.calls,
        answered = r.answered + excluded.answered,
        abandoned = r.abandoned + excluded.abandoned,
        failed = r.failed + excluded.failed,
        transferred = r.transferred + excluded.transferred,
        contained = r.contained + excluded.contained,
        booked_calls = r.booked_calls + excluded.booked_calls,
        bookings = r.bookings + excluded.bookings,
        reschedules = r.reschedules + excluded.reschedules,
        cancellations = r.cancellations + excluded.cancellations,
        turns = r.turns + excluded.turns,
        interruptions = r.interruptions + excluded.interruptions,
        tool_results = r.tool_results + excluded.tool_results,
        tool_errors = r.tool_errors + excluded.tool_errors,
        priced_calls = r.priced_calls + excluded.priced_calls,
        cost = r.cost + excluded.cost,
        calls_by_hour = kpi_hist_add(r.calls_by_hour, excluded.calls_by_hour),
        hist_e2e = kpi_hist_add(r.hist_e2e, excluded.hist_e2e),
        hist_transcription = kpi_hist_add(r.hist_transcription, excluded.hist_transcription),
        hist_end_of_turn = kpi_hist_add(r.hist_end_of_turn, excluded.hist_end_of_turn),
        hist_llm_ttft = kpi_hist_add(r.hist_llm_ttft, excluded.hist_llm_ttft),
        hist_tts_ttfb = kpi_hist_add(r.hist_tts_ttfb, excluded.hist_tts_ttfb)
$$;
comment on function kpi_apply(call_kpi_facts[], integer) is
    'Add (p_sign 1) or take away (-1) the facts of some calls to / from call_kpis_rollup.';

create function kpi_fold_calls(p_call_ids uuid[]) returns void
language plpgsql security definer
set search_path = public, pg_temp
as $$
declare
    gone call_kpi_facts[];
    came call_kpi_facts[];
begin
    -- security definer: a member who moves an appointment re-folds its calls into tables that
    -- only this function writes. The facts of a call are replaced, and the rollup moves by the
    -- difference: what the call added before is taken away, what it adds now is added.
    if coalesce(cardinality(p_call_ids), 0) = 0 then
        return;
    end if;
    -- One fold of a call at a time (the recorder closing it, a booking moved in another call):
    -- the second waits, then reads what the first wrote.
    perform 1 from voice_calls where id = any (p_call_ids) order by id for no key update;
    with d as (delete from call_kpi_facts where call_id = any (p_call_ids) returning *)
    select array_agg(row(d.*)::call_kpi_facts) into gone from d;
    with i as (insert into call_kpi_facts select * from kpi_call_facts(p_call_ids) returning *)
    select array_agg(row(i.*)::call_kpi_facts) into came from i;
    if gone is not null then
        perform kpi_apply(gone, -1);
    end if;
    if came is not null then
        perform kpi_apply(came, 1);
    end if;
end
$$;
comment on function kpi_fold_calls(uuid[]) is
    'Re-fold these calls into the KPI rollup from their rows (closed calls of an organisation '
    'only; a call that is gone or open is folded out).';

create function kpi_refold(p_from timestamptz, p_to timestamptz) returns integer
language plpgsql security definer
set search_path = public, pg_temp
as $$
declare
    ids uuid[];
begin
    select array_agg(id) into ids from voice_calls
     where started_at >= p_from and started_at < p_to
       and status in ('completed', 'failed', 'abandoned');
    perform kpi_fold_calls(ids);
    return coalesce(cardinality(ids), 0);
end
$$;
comment on function kpi_refold(timestamptz, timestamptz) is
    'Re-fold the closed calls started in [p_from, p_to), e.g. after a price was corrected; '
    'returns how many.';

-- What re-folds a call -----------------------------------------------------------------------------
-- Statement-level with transition tables: a batch of calls (the recorder's, a bulk load) is folded
-- in one pass.

create function kpi_fold_changed_calls() returns trigger
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
    perform kpi_fold_calls(ids);
    return null;
end
$$;

create trigger voice_calls_kpi_insert_trigger
    after insert on voice_calls referencing new table as new_rows
    for each statement execute function kpi_fold_changed_calls();
create trigger voice_calls_kpi_update_trigger
    after update on voice_calls referencing old table as old_rows new table as new_rows
    for each statement execute function kpi_fold_changed_calls();
create trigger voice_calls_kpi_delete_trigger
    after delete on voice_calls referencing old table as old_rows
    for each statement execute function kpi_fold_changed_calls();

-- An appointment counts for the call that booked it (call_id) and the one that last changed it
-- (last_call_id); an analysis for its call's cost.
create function kpi_fold_calls_of_rows() returns trigger
language plpgsql
as $$
declare
    ids uuid[];
begin
    if tg_table_name = 'appointments' then
        if tg_op in ('INSERT', 'UPDATE') then
            select array_agg(x) into ids
              from (select call_id from new_rows union select last_call_id from new_rows) n(x)
             where x is not null;
        end if;
        if tg_op in ('UPDATE', 'DELETE') then
            select array_agg(distinct x) into ids
              from (select unnest(ids)
                    union select call_id from old_rows union select last_call_id from old_rows) o(x)
             where x is not null;
        end if;
    else
        if tg_op in ('INSERT', 'UPDATE') then
            select array_agg(call_id) into ids from new_rows;
        end if;
        if tg_op in ('UPDATE', 'DELETE') then
            select array_agg(distinct x) into ids
              from (select unnest(ids) union select call_id from old_rows) o(x);
        end if;
    end if;
    -- Only closed calls have facts to change: during a call its bookings wait for its close.
    select array_agg(id) into ids from voice_calls
     where id = any (ids) and status in ('completed', 'failed', 'abandoned');
    perform kpi_fold_calls(ids);
    return null;
end
$$;

create trigger appointments_kpi_insert_trigger
    after insert on appointments referencing new table as new_rows
    for each statement execute function kpi_fold_calls_of_rows();
create trigger appointments_kpi_update_trigger
    after update on appointments referencing old table as old_rows new table as new_rows
    for each statement execute function kpi_fold_calls_of_rows();
create trigger appointments_kpi_delete_trigger
    after delete on appointments referencing old table as old_rows
    for each statement execute function kpi_fold_calls_of_rows();
create trigger call_analyses_kpi_insert_trigger
    after insert on call_analyses referencing new table as new_rows
    for each statement execute function kpi_fold_calls_of_rows();
create trigger call_analyses_kpi_update_trigger
    after update on call_analyses referencing old table as old_rows new table as new_rows
    for each statement execute function kpi_fold_calls_of_rows();
create trigger call_analyses_kpi_delete_trigger
    after delete on call_analyses referencing old table as old_rows
    for each statement execute function kpi_fold_calls_of_rows();

-- The KPI views --------------------------------------------------------------------------------------

create view call_kpis_daily with (security_invoker = true) as
select r.day,
       r.organization_id,
       r.location_id,
       r.agent_config_id,
       cfg.version as agent_config_version,
       r.calls, r.answered, r.abandoned, r.failed, r.transferred,
       r.bookings, r.reschedules, r.cancellations,
       round(r.contained::numeric / nullif(r.answered, 0), 4) as containment_rate,
       round(r.booked_calls::numeric / nullif(r.answered, 0), 4) as booking_conversion,
       r.pct_e2e[1] as voice_to_voice_p50_ms,
       r.pct_e2e[2] as voice_to_voice_p90_ms,
       r.pct_e2e[3] as voice_to_voice_p95_ms,
       r.pct_transcription[1] as transcription_p50_ms,
       r.pct_transcription[2] as transcription_p90_ms,
       r.pct_transcription[3] as transcription_p95_ms,
       r.pct_end_of_turn[1] as end_of_turn_p50_ms,
       r.pct_end_of_turn[2] as end_of_turn_p90_ms,
       r.pct_end_of_turn[3] as end_of_turn_p95_ms,
       r.pct_llm_ttft[1] as llm_ttft_p50_ms,
       r.pct_llm_ttft[2] as llm_ttft_p90_ms,
       r.pct_llm_ttft[3] as llm_ttft_p95_ms,
       r.pct_tts_ttfb[1] as tts_ttfb_p50_ms,
       r.pct_tts_ttfb[2] as tts_ttfb_p90_ms,
       r.pct_tts_ttfb[3] as tts_ttfb_p95_ms,
       round(r.interruptions::numeric / r.calls, 4) as interruptions_per_call,
       round(r.tool_errors::numeric / nullif(r.tool_results, 0), 4) as tool_error_rate,
       case when r.priced_calls = r.calls then round(r.cost / r.calls, 6) end as cost_per_call,
       case when r.priced_calls = r.calls then round(r.cost / nullif(r.bookings, 0), 6) end
           as cost_per_booking,
       r.calls - r.priced_calls as unpriced_calls
  from call_kpis_rollup r
  left join agent_configs cfg on cfg.id = r.agent_config_id
 where r.calls > 0;
comment on view call_kpis_daily is
    'KPIs per day (in the location''s time zone) x organisation x location x agent config '
    'version, read from the incrementally maintained rollup. Latency percentiles are bucket upper '
    'bounds (at most 20% high). Costs are null on a day with unpriced calls (unpriced_calls).';

create function kpi_peak_hours(p_organization_id uuid, p_from date, p_to date)
returns table (hour_of_week integer, weekday text, hour integer, calls bigint)
language sql stable
as $$
    select ((extract(isodow from r.day)::integer - 1) * 24 + h.i - 1),
           trim(to_char(r.day, 'Day')), h.i - 1, sum(h.n)
      from call_kpis_rollup r
     cross join lateral unnest(r.calls_by_hour) with ordinality h(n, i)
     where r.organization_id = p_organization_id and r.day >= p_from and r.day < p_to
     group by 1, 2, 3
    having sum(h.n) > 0
     order by 4 desc, 1
$$;
comment on function kpi_peak_hours(uuid, date, date) is
    'Calls per hour of the week (0 = Monday 00:00 local time) of an organisation over '
    '[p_from, p_to), busiest first.';

create function kpi_compare_configs(p_config_a uuid, p_config_b uuid, p_from date, p_to date)
returns table (agent_config_id uuid, agent_config_version integer, calls bigint,
               answered bigint, containment_rate numeric, booking_conversion numeric,
               voice_to_voice_p50_ms real, voice_to_voice_p95_ms real,
               llm_ttft_p50_ms real, llm_ttft_p95_ms real,
               interruptions_per_call numeric, tool_error_rate numeric,
               cost_per_call numeric, cost_per_booking numeric)
language sql stable
as $$
    select s.agent_config_id, cfg.version, s.calls, s.answered,
           round(s.contained / nullif(s.answered, 0), 4),
           round(s.booked_calls / nullif(s.answered, 0), 4),
           (kpi_hist_percentiles(s.e2e))[1], (kpi_hist_percentiles(s.e2e))[3],
           (kpi_hist_percentiles(s.ttft))[1], (kpi_hist_percentiles(s.ttft))[3],
           round(s.interruptions / nullif(s.calls, 0), 4),
           round(s.tool_errors / nullif(s.tool_results, 0), 4),
           case when s.priced_calls = s.calls then round(s.cost / nullif(s.calls, 0), 6) end,
           case when s.priced_calls = s.calls then round(s.cost / nullif(s.bookings, 0), 6) end
      from (
          select r.agent_config_id, sum(r.calls) as calls, sum(r.answered) as answered,
                 sum(r.contained)::numeric as contained, sum(r.booked_calls)::numeric as booked_calls,
                 sum(r.bookings) as bookings, sum(r.interruptions)::numeric as interruptions,
                 sum(r.tool_errors)::numeric as tool_errors, sum(r.tool_results) as tool_results,
                 sum(r.priced_calls) as priced_calls, sum(r.cost) as cost,
                 kpi_hist_sum(r.hist_e2e) as e2e, kpi_hist_sum(r.hist_llm_ttft) as ttft
            from call_kpis_rollup r
           where r.agent_config_id in (p_config_a, p_config_b)
             and r.day >= p_from and r.day < p_to
           group by r.agent_config_id
      ) s
      left join agent_configs cfg on cfg.id = s.agent_config_id
     order by s.agent_config_id = p_config_b, cfg.version
$$;
comment on function kpi_compare_configs(uuid, uuid, date, date) is
    'Two agent config versions side by side over [p_from, p_to) (config a first): the figures '
    'to decide a rollback on.';

-- Row level security ---------------------------------------------------------------------------------

alter table model_prices enable row level security;
alter table call_kpi_facts enable row level security;
alter table call_kpis_rollup enable row level security;

create policy model_prices_select on model_prices for select to authenticated using (true);
create policy model_prices_admin_all on model_prices for all to authenticated
    using (is_admin()) with check (is_admin());
create policy call_kpi_facts_member_select on call_kpi_facts for select to authenticated
    using (is_org_member(organization_id));
create policy call_kpi_facts_admin_all on call_kpi_facts for all to authenticated
    using (is_admin()) with check (is_admin());
create policy call_kpis_rollup_member_select on call_kpis_rollup for select to authenticated
    using (is_org_member(organization_id));
create policy call_kpis_rollup_admin_all on call_kpis_rollup for all to authenticated
    using (is_admin()) with check (is_admin());

grant select on model_prices, call_kpi_facts, call_kpis_rollup, call_usage_lines,
    unpriced_usage, call_costs, call_kpis_daily to authenticated;
grant insert, update, delete on model_prices to authenticated;
-- Re-pricing a range is an operator's job. kpi_fold_calls stays executable: the triggers of a
-- member's own writes (an appointment moved) call it as that member.
revoke execute on function kpi_refold(timestamptz, timestamptz) from public;

-- Calls closed before this migration ---------------------------------------------------------------

select kpi_fold_calls(array(select id from voice_calls
                             where status in ('completed', 'failed', 'abandoned')));
