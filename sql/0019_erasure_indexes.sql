-- 0019_erasure_indexes: erasure (db.privacy.erasure) without sweeping whole tables.
--
-- Issue 16 ("Speed": one caller erased among 200,000 calls in under 2 s).
--
-- * The outbound events of the person's calls and appointments are found by key.
-- * The sweep of the big tables (voice_calls, voice_messages, outbound_events) tests each row's
--   listed columns joined (erasure_text, the same expression as db.privacy.erasure.MENTIONS
--   builds, column for column) with LIKE / ILIKE hints a trigram index answers: the last four
--   digits, the words of the digits, the words of the name. Only the rows the index returns are
--   tested with the regular expressions.

-- concat_ws(' ', ...) of text values, declared immutable so it can be indexed (text in, text out:
-- no setting changes it); nulls are skipped.
create function erasure_text(variadic parts text[]) returns text
language sql immutable parallel safe
as $$ select array_to_string(parts, ' ') $$;
comment on function erasure_text(text[]) is
    'The columns erasure sweeps in one row, joined by spaces (nulls skipped): what its trigram '
    'indexes cover.';

create index idx_outbound_events_call_id on outbound_events ((payload ->> 'call_id'));
create index idx_outbound_events_customer_phone on outbound_events ((payload ->> 'customer_phone'));

create index idx_voice_calls_erasure on voice_calls using gin (
    erasure_text(caller_number, room_name, transcript, end_reason, recording_url, metadata::text,
                 session_report::text) gin_trgm_ops);
create index idx_voice_messages_erasure on voice_messages using gin (
    erasure_text(content, metadata::text) gin_trgm_ops);
create index idx_outbound_events_erasure on outbound_events using gin (
    erasure_text(payload::text) gin_trgm_ops);
