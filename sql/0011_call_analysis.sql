-- 0011_call_analysis: every closed call analysed, its analyses versioned; manager runs and exports.
--
-- Issue 13, seed 003. Closing a call (whoever closes it: the agent through db.calls.calls.
-- finish_call, the webhook service after a crash through the same function) queues an analysis
-- job in the same transaction: a trigger on voice_calls does it, so no writer can forget and a
-- rolled-back close leaves no job. An agent closing a call the webhook service closed first
-- (it knows more: the transcript, the outcome) queues a new job, which makes a new version.
--
-- * call_analyses (0001) stays the one current row per call, now with its version, the analyser
--   that made it, the prompt version and model, the status (completed, failed, no_conversation)
--   and the categorisation of seed 003 (journey stage, sentiment incl. friction, quality 1-10
--   with reasoning, confidence, success against the rubric with its reason, follow-ups).
--   quality_score (0-1, from 0001) is kept filled as agent_quality / 10 for its readers.
-- * call_analysis_versions: every version ever written, the current one included.
-- * analysis_jobs: the queue workers claim with FOR UPDATE SKIP LOCKED (docs/analysis.md says
--   why not pgqueuer). A job that keeps failing ends as 'failed' with its last error, never
--   deleted.
-- * analysis_runs (seed 003 CustomerAnalysis): a manager's run over a period, its filters,
--   counts, timing and KPIs; analysis_run_calls (CustomerCategorization): one row per call per
--   run; analysis_exports (AnalysisExport): the CSV / PDF files written, with an expiry.

-- call_analyses: the current analysis ---------------------------------------------------------

alter table call_analyses drop constraint call_analyses_sentiment_check;
alter table call_analyses
    add column version integer not null default 1,
    add column status text not null default 'completed',
    add column analyser text,
    add column prompt_version text,
    add column journey_stage text,
    add column success_reason text,
    add column agent_quality smallint,
    add column quality_reasoning text,
    add column confidence real,
    add column follow_ups jsonb not null default '[]',
    add column error text,
    add column raw_reply text,
    add column run_id uuid,
    add column updated_at timestamptz not null default now(),
    add constraint call_analyses_sentiment_check
        check (sentiment in ('positive', 'neutral', 'negative', 'friction', 'mixed')),
    add constraint call_analyses_status_check
        check (status in ('completed', 'failed', 'no_conversation')),
    add constraint call_analyses_agent_quality_check check (agent_quality between 1 and 10),
    add constraint call_analyses_confidence_check check (confidence between 0 and 1),
    add constraint call_analyses_version_check check (version > 0);
comment on column call_analyses.status is
    'completed; failed (the model''s reply failed the schema twice: raw_reply and error say how); '
    'no_conversation (the caller never spoke: no model was asked).';
comment on column call_analyses.analyser is 'Which analyser made it: model or rules (offline).';

create table call_analysis_versions (
    call_id uuid not null references voice_calls (id) on delete cascade,
    version integer not null,
    status text not null,
    analyser text,
    prompt_version text,
    model_used text,
    summary text,
    intent text,
    journey_stage text,
    sentiment text,
    outcome text,
    success boolean,
    success_reason text,
    agent_quality smallint,
    quality_reasoning text,
    confidence real,
    extraction jsonb not null default '{}',
    follow_ups jsonb not null default '[]',
    error text,
    raw_reply text,
    run_id uuid,
    created_at timestamptz not null default now(),
    constraint call_analysis_versions_pkey primary key (call_id, version)
);
comment on table call_analysis_versions is
    'Every analysis of a call ever written (the current one included), stamped with analyser, '
    'prompt version and model. call_analyses holds the latest.';

-- The queue ------------------------------------------------------------------------------------

create table analysis_jobs (
    id bigint generated always as identity primary key,
    call_id uuid not null references voice_calls (id) on delete cascade,
    reason text not null default 'call_closed',
    status text not null default 'queued',
    attempts integer not null default 0,
    run_after timestamptz not null default now(),
    locked_until timestamptz,
    locked_by text,
    last_error text,
    created_at timestamptz not null default now(),
    finished_at timestamptz,
    constraint analysis_jobs_status_check check (status in ('queued', 'running', 'done', 'failed'))
);
comment on table analysis_jobs is
    'Calls waiting for analysis. Workers claim due jobs with FOR UPDATE SKIP LOCKED and a lease '
    '(locked_until: a crashed worker''s jobs are claimed again after it); a failure is retried '
    'with backoff (run_after), and the last failure ends the job as failed with last_error.';
-- At most one waiting job per call: closing twice, or re-running, does not queue duplicates.
create unique index analysis_jobs_one_queued_key on analysis_jobs (call_id) where status = 'queued';
create index idx_analysis_jobs_due on analysis_jobs (run_after) where status in ('queued', 'running');

create function voice_calls_queue_analysis() returns trigger
language plpgsql
as $$
begin
    insert into analysis_jobs (call_id, reason) values (new.id, 'call_closed')
    on conflict (call_id) where status = 'queued' do nothing;
    return null;
end
$$;

create trigger voice_calls_queue_analysis_trigger
    after update of status, closed_by on voice_calls for each row
    when (new.status in ('completed', 'failed', 'abandoned')
          and (old.status not in ('completed', 'failed', 'abandoned')
               or old.closed_by is distinct from new.closed_by))
    execute function voice_calls_queue_analysis();

-- Manager runs -----------------------------------------------------------------------------------

create table analysis_runs (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations (id) on delete cascade,
    location_id uuid references locations (id) on delete set null,
    config_version integer,
    period_from date not null,
    period_to date not null,
    filters jsonb not null default '{}',
    status text not null default 'pending',
    calls_total integer not null default 0,
    calls_analysed integer not null default 0,
    calls_failed integer not null default 0,
    analyser text,
    kpis jsonb not null default '{}',
    error text,
    created_at timestamptz not null default now(),
    started_at timestamptz,
    completed_at timestamptz,
    processing_ms integer,
    constraint analysis_runs_status_check
        check (status in ('pending', 'processing', 'completed', 'failed', 'partial')),
    constraint analysis_runs_period_check check (period_from <= period_to)
);
comment on table analysis_runs is
    'A manager''s analysis of a period (seed 003 CustomerAnalysis): its filters, status, counts, '
    'timing and KPIs (response time percentiles, volume, peak hours, distributions, quality, '
    'booking conversion, containment).';
create index idx_analysis_runs_org on analysis_runs (organization_id, created_at desc);

create table analysis_run_calls (
    run_id uuid not null references analysis_runs (id) on delete cascade,
    call_id uuid not null references voice_calls (id) on delete cascade,
    version integer,
    status text not null,
    intent text,
    journey_stage text,
    sentiment text,
    success boolean,
    agent_quality smallint,
    confidence real,
    error text,
    constraint analysis_run_calls_pkey primary key (run_id, call_id)
);
comment on table analysis_run_calls is
    'Each call of a run categorised once (seed 003 CustomerCategorization); version is the '
    'call_analysis_versions row the run made.';

create table analysis_exports (
    id uuid primary key default gen_random_uuid(),
    run_id uuid not null references analysis_runs (id) on delete cascade,
    format text not null,
    path text not null,
    size_bytes bigint,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    constraint analysis_exports_format_check check (format in ('csv', 'pdf'))
);
comment on table analysis_exports is
    'Report files written for a run; `python -m analysis cleanup` deletes the expired ones '
    '(file and row).';
create index idx_analysis_exports_expires on analysis_exports (expires_at);

-- Row level security: members of the organisation read; the services write as the owner. ----------

alter table call_analysis_versions enable row level security;
alter table analysis_jobs enable row level security;
alter table analysis_runs enable row level security;
alter table analysis_run_calls enable row level security;
alter table analysis_exports enable row level security;

create policy call_analysis_versions_select on call_analysis_versions for select to authenticated
    using (can_access_call(call_id));
create policy analysis_jobs_admin_select on analysis_jobs for select to authenticated
    using (is_admin());
create policy analysis_runs_member_select on analysis_runs for select to authenticated
    using (is_admin() or is_org_member(organization_id));
create policy analysis_run_calls_select on analysis_run_calls for select to authenticated
    using (can_access_call(call_id));
create policy analysis_exports_member_select on analysis_exports for select to authenticated
    using (exists (select 1 from analysis_runs r where r.id = run_id
                    and (is_admin() or is_org_member(r.organization_id))));

grant select on call_analysis_versions, analysis_runs, analysis_run_calls, analysis_exports
    to authenticated;
