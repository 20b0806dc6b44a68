-- 0015_privacy: retention and redaction settings per organisation, erasable appointments, an
-- audit log.
--
-- Issue 16 (seed 000: retention per kind of data, PII removed from older records; seed 001: a
-- retention-friendly call schema).
--
-- * organizations.redact_pii: redact personal data (phone numbers, e-mail, cards, SSNs, dates of
--   birth, numbers spoken as words) before it is stored (agent/recording.py). Off: the text is
--   redacted once it is past the message_text period instead (python -m db retention).
-- * organizations.retention: days per kind of data, overriding the defaults in
--   db/privacy/policy.py ({"calls": 730, "message_text": 90, ...}); an object of positive
--   integers, checked here so a typo cannot disable retention silently.
-- * appointments keep their slot after their person is erased (python -m db erase): the phone
--   may then be null; erased_at says when. A confirmed appointment keeps its provider's time.
-- * voice_calls.pii_redacted_at: when retention redacted the call's text (so a run is resumable
--   and a second run does not scan the call again).
-- * audit_log: who did what to how many rows (erasures, exports, configuration activations, API
--   reads of a call's detail). Append-only for everyone but the owner of the tables.

alter table organizations
    add column redact_pii boolean not null default false,
    add column retention jsonb not null default '{}',
    add constraint organizations_retention_check check (
        jsonb_typeof(retention) = 'object'
        and not jsonb_path_exists(retention, '$.* ? (@.type() != "number" || @ < 1 || @ > 36500)')
    );
comment on column organizations.redact_pii is
    'Redact personal data at write time (messages, transcript, event payloads, analyses, session '
    'reports). The live conversation still sees the real text.';
comment on column organizations.retention is
    'Days to keep each kind of data, overriding the defaults of db/privacy/policy.py.';

alter table appointments
    alter column customer_phone drop not null,
    add column erased_at timestamptz,
    add constraint appointments_erased_phone_check check (customer_phone is not null or erased_at is not null);
comment on column appointments.erased_at is
    'When its person was erased: the slot and its counts stay, the name and number do not.';

alter table voice_calls add column pii_redacted_at timestamptz;
comment on column voice_calls.pii_redacted_at is
    'When retention redacted the personal data in this call''s text (message_text period).';

create table audit_log (
    id bigint generated always as identity primary key,
    occurred_at timestamptz not null default now(),
    actor text not null,
    action text not null,
    organization_id uuid references organizations (id) on delete set null,
    subject text,
    row_count integer not null default 0,
    details jsonb not null default '{}',
    constraint audit_log_action_check check (action ~ '^[a-z][a-z_.]*$'),
    constraint audit_log_row_count_check check (row_count >= 0)
);
comment on table audit_log is
    'Who did what, when, to how many rows: erasures (never the person''s number or name), '
    'exports, configuration activations, API reads of a call''s detail. Written by db/audit.py.';

create index idx_audit_log_occurred on audit_log (occurred_at desc);
create index idx_audit_log_organization on audit_log (organization_id, occurred_at desc)
    where organization_id is not null;

-- Erasure (db/privacy/erasure.py) replaces every match of a person's patterns in a column: one
-- pattern at a time (one alternation of them all is several times slower in Postgres's engine).
create function replace_patterns(p_value text, p_patterns text[], p_placeholder text) returns text
language plpgsql immutable
as $$
declare
    pattern text;
begin
    foreach pattern in array p_patterns loop
        p_value := regexp_replace(p_value, pattern, p_placeholder, 'gi');
    end loop;
    return p_value;
end
$$;
comment on function replace_patterns(text, text[], text) is
    'p_value with every case-insensitive match of each of p_patterns replaced by p_placeholder.';

alter table audit_log enable row level security;
create policy audit_log_member_select on audit_log for select to authenticated
    using (is_org_member(organization_id, '{owner,manager}'));
create policy audit_log_admin_select on audit_log for select to authenticated
    using (is_admin());
grant select on audit_log to authenticated;

-- Retention finds rows by age (db/privacy/retention.py), in batches.
create index idx_voice_messages_created_at on voice_messages (created_at);
create index idx_call_events_created_at on call_events (created_at);
create index idx_webhook_events_received_at on webhook_events (received_at);
create index idx_call_analyses_created_at on call_analyses (created_at);
create index idx_voice_calls_text_unredacted on voice_calls (started_at) where pii_redacted_at is null;
