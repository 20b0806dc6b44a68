"""The KPI rollup (sql/0012): folded call by call as calls close and as late changes arrive, it
must equal a computation from scratch over the raw rows; and a member sees only their own
organisation's numbers."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.frontdesk_helpers import make_shop

pytestmark = pytest.mark.db

CLOSED = ("completed", "failed", "abandoned")
CODE_LETTERS = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
STAGES = {"voice_to_voice": "e2e_latency_ms", "transcription": "transcription_delay_ms",
          "end_of_turn": "end_of_turn_delay_ms", "llm_ttft": "llm_ttft_ms", "tts_ttfb": "tts_ttfb_ms"}
USAGE = [{"type": "llm_usage", "provider": "api.openai.com", "model": "gpt-4o-mini",
          "input_tokens": 12000, "input_cached_tokens": 4096, "output_tokens": 400},
         {"type": "stt_usage", "provider": "Deepgram", "model": "nova-3", "audio_duration": 95.5}]

# From scratch: every figure of call_kpis_daily computed directly from calls, turns, events and
# appointments, percentiles exactly (percentile_disc) and then put in their bucket.
SCRATCH = f"""
with per_call as (
    select c.id, c.organization_id, c.location_id, c.agent_config_id,
           (c.started_at at time zone coalesce(l.timezone, o.default_timezone))::date as day,
           c.status, c.outcome,
           c.connected_at is not null or c.status = 'completed' as answered,
           (select count(*) from appointments a where a.call_id = c.id) as bookings,
           (select count(*) from call_events e
             where e.call_id = c.id and e.event_type = 'appointment_rescheduled') as reschedules,
           (select count(*) from appointments a
             where a.last_call_id = c.id and a.status = 'cancelled') as cancellations,
           (select count(*) from voice_messages m where m.call_id = c.id and m.interrupted)
               as interruptions,
           (select count(*) from call_events e
             where e.call_id = c.id and e.event_type = 'tool_result') as tool_results,
           (select count(*) from call_events e
             where e.call_id = c.id and e.event_type = 'tool_result'
               and (e.payload ->> 'is_error')::boolean) as tool_errors,
           (select total from call_costs cc where cc.call_id = c.id) as cost
      from voice_calls c
      join organizations o on o.id = c.organization_id
      left join locations l on l.id = c.location_id
     where c.status in ('completed', 'failed', 'abandoned')
),
counts as (
    select day, organization_id, location_id, agent_config_id,
           count(*) as calls,
           count(*) filter (where answered) as answered,
           count(*) filter (where status = 'abandoned') as abandoned,
           count(*) filter (where status = 'failed') as failed,
           count(*) filter (where outcome = 'transferred') as transferred,
           sum(bookings) as bookings, sum(reschedules) as reschedules,
           sum(cancellations) as cancellations,
           round(count(*) filter (where status = 'completed'
                                    and outcome is distinct from 'transferred')::numeric
                 / nullif(count(*) filter (where answered), 0), 4) as containment_rate,
           round(count(*) filter (where bookings > 0)::numeric
                 / nullif(count(*) filter (where answered), 0), 4) as booking_conversion,
           round(sum(interruptions)::numeric / count(*), 4) as interruptions_per_call,
           round(sum(tool_errors)::numeric / nullif(sum(tool_results), 0), 4) as tool_error_rate,
           case when count(cost) = count(*) then round(sum(cost) / count(*), 6) end
               as cost_per_call,
           case when count(cost) = count(*) then round(sum(cost) / nullif(sum(bookings), 0), 6)
           end as cost_per_booking,
           count(*) - count(cost) as unpriced_calls
      from per_call
     group by 1, 2, 3, 4
),
latencies as (
    select p.day, p.organization_id, p.location_id, p.agent_config_id,
           {", ".join(
               f"kpi_bucket_upper(kpi_latency_bucket(percentile_disc({q}) within group "
               f"(order by m.{column}))) as {stage}_p{int(q * 100)}_ms"
               for stage, column in STAGES.items() for q in (0.5, 0.9, 0.95))}
      from per_call p
      join voice_messages m on m.call_id = p.id
     group by 1, 2, 3, 4
)
select c.*, {", ".join(f"l.{stage}_p{q}_ms" for stage in STAGES for q in (50, 90, 95))}
  from counts c
  left join latencies l
    on (l.day, l.organization_id) = (c.day, c.organization_id)
   and l.location_id is not distinct from c.location_id
   and l.agent_config_id is not distinct from c.agent_config_id
"""
COLUMNS = ["calls", "answered", "abandoned", "failed", "transferred", "bookings", "reschedules",
           "cancellations", "containment_rate", "booking_conversion", "interruptions_per_call",
           "tool_error_rate", "cost_per_call", "cost_per_booking", "unpriced_calls",
           *(f"{stage}_p{q}_ms" for stage in STAGES for q in (50, 90, 95))]
KEY = ("day", "organization_id", "location_id", "agent_config_id")


def keyed(rows) -> dict:
    return {tuple(r[k] for k in KEY): {c: r[c] for c in COLUMNS} for r in rows}


class Dataset:
    """Calls of the demo business over a few days, on two locations and two config versions:
    served, abandoned, failed, transferred; with turns, tool results, bookings, reschedules."""

    def __init__(self, conn, tenant, rng: random.Random) -> None:
        self.conn, self.tenant, self.rng = conn, tenant, rng
        self.calls: list[uuid.UUID] = []
        self.now = datetime.now(UTC).replace(microsecond=0)

    def code(self) -> str:
        return "".join(self.rng.choice(CODE_LETTERS) for _ in range(6))

    async def book(self, call_id: uuid.UUID, location_id: uuid.UUID) -> uuid.UUID:
        service = self.tenant.services["Dental cleaning"]
        starts = self.now + timedelta(days=self.rng.randint(1, 60), hours=self.rng.randint(0, 8))
        return await self.conn.fetchval(
            """insert into appointments (organization_id, location_id, service_id, customer_name,
                   customer_phone, starts_at, ends_at, confirmation_code, call_id, last_call_id)
               values ($1, $2, $3, 'A caller', '+12125550100', $4::timestamptz,
                       $4::timestamptz + interval '30 minutes', $5,
                       $6, $6) returning id""",
            self.tenant.organization_id, location_id, service, starts, self.code(), call_id)

    async def call(self) -> uuid.UUID:
        rng, tenant = self.rng, self.tenant
        location = rng.choice([tenant.midtown_location_id, tenant.santa_monica_location_id])
        config = rng.choice([tenant.config_v1_id, tenant.config_v2_id])
        started = self.now - timedelta(days=rng.randint(1, 4), minutes=rng.randint(0, 1440))
        served = rng.random() > 0.2
        call_id = await self.conn.fetchval(
            """insert into voice_calls (session_id, organization_id, location_id, agent_config_id,
                   status, started_at, connected_at, sip_call_id, model_usage)
               values ($1, $2, $3, $4, 'active', $5, $6, $7, $8) returning id""",
            f"RM_{uuid.uuid4().hex[:10]}", tenant.organization_id, location, config, started,
            started + timedelta(seconds=3) if served else None,
            "SCL" if rng.random() < 0.5 else None, USAGE if rng.random() < 0.9 else None)
        turns = rng.randint(2, 12) if served else 0
        await self.conn.executemany(
            """insert into voice_messages (call_id, sequence_number, item_id, role, interrupted,
                   transcription_delay_ms, end_of_turn_delay_ms, llm_ttft_ms, tts_ttfb_ms,
                   e2e_latency_ms, call_created_at)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, call_partition_key($1))""",
            [(call_id, n, f"item{n}", "user" if n % 2 else "assistant", rng.random() < 0.1,
              *(rng.choice([None, rng.lognormvariate(5.5, 0.8)]) for _ in range(5)))
             for n in range(turns)])
        await self.conn.executemany(
            "insert into call_events (id, call_id, event_type, payload, call_created_at)"
            " values ($1, $2, $3, $4, call_partition_key($2))",
            [(uuid.uuid4(), call_id, kind, json.dumps({"is_error": rng.random() < 0.3}))
             for kind in rng.choices(["tool_result", "appointment_rescheduled", "tool_call"],
                                     k=rng.randint(0, 5))])
        if served and rng.random() < 0.4:
            for _ in range(rng.randint(1, 2)):
                await self.book(call_id, location)
        self.calls.append(call_id)
        return call_id

    def ending(self, call_id: uuid.UUID):
        status = self.rng.choice(["completed", "completed", "completed", "failed", "abandoned"])
        outcome = self.rng.choice(["transferred", "no_action", "appointment_booked"])
        return call_id, status, outcome


CLOSE = """
update voice_calls c set status = e.status::call_status, outcome = e.outcome,
       ended_at = c.started_at + interval '2 minutes'
  from unnest($1::uuid[], $2::text[], $3::text[]) e(id, status, outcome)
 where c.id = e.id
"""


async def close(conn, endings) -> None:
    ids, statuses, outcomes = zip(*endings, strict=True)
    await conn.execute(CLOSE, list(ids), list(statuses), list(outcomes))


async def test_the_rollup_equals_a_computation_from_scratch_after_late_changes(conn, tenant):
    data = Dataset(conn, tenant, random.Random(14))
    for _ in range(30):  # closed one by one, as the recorder closes them
        await close(conn, [data.ending(await data.call())])
    batch = [data.ending(await data.call()) for _ in range(30)]
    await close(conn, batch)  # and in one statement, as a bulk load does
    assert await conn.fetchval("select count(*) from call_kpi_facts") == 60

    # Late changes: a booking attached to a closed call, cancellations and a reschedule by later
    # calls, a turn written after the close, a call moved to the other config, an analysis,
    # a deleted call, and a call that is still open.
    first, second, third = data.calls[:3]
    await data.book(first, tenant.midtown_location_id)
    booked = await conn.fetch("select id from appointments order by created_at, id limit 3")
    await conn.execute("""update appointments set status = 'cancelled', last_call_id = $2
                           where id = any($1::uuid[])""", [r["id"] for r in booked], second)
    await conn.execute("""insert into voice_messages (call_id, sequence_number, item_id, role,
                              interrupted, e2e_latency_ms, tokens_used, call_created_at)
                          values ($1, 100, 'late', 'assistant', true, 4321, 17,
                                  call_partition_key($1))""", third)
    await conn.execute("update voice_calls set agent_config_id = $2 where id = $1", data.calls[4],
                       tenant.config_v2_id)
    await conn.execute("insert into call_analyses (call_id, summary) values ($1, 'x')", data.calls[5])
    await conn.execute("delete from voice_calls where id = $1", data.calls[6])
    await data.call()

    rollup = keyed(await conn.fetch("select * from call_kpis_daily"))
    scratch = keyed(await conn.fetch(SCRATCH))
    assert rollup == scratch
    assert sum(r["calls"] for r in rollup.values()) == 59
    totals = {c: sum(r[c] for r in rollup.values()) for c in
              ("abandoned", "failed", "transferred", "bookings", "cancellations", "reschedules")}
    assert all(totals.values()), totals  # the mixed dataset has some of each
    assert any(r["cost_per_call"] is None for r in rollup.values())  # calls without usage
    assert any(r["cost_per_call"] is not None for r in rollup.values())

    # Every call taken out again leaves an empty rollup: the differences add up.
    await conn.execute("delete from voice_calls")
    assert await conn.fetchval("select count(*) from call_kpis_daily") == 0
    assert await conn.fetchval(
        "select count(*) from call_kpis_rollup where hist_e2e <> array_fill(0, array[40])") == 0


async def test_peak_hours_and_the_config_comparison_read_the_rollup(conn, tenant):
    data = Dataset(conn, tenant, random.Random(7))
    await close(conn, [data.ending(await data.call()) for _ in range(40)])
    since, until = (data.now - timedelta(days=10)).date(), (data.now + timedelta(days=1)).date()

    peaks = await conn.fetch("select * from kpi_peak_hours($1, $2, $3)",
                             tenant.organization_id, since, until)
    expected = await conn.fetch(
        """select ((extract(isodow from t)::int - 1) * 24 + extract(hour from t)::int) as how,
                  count(*) as calls
             from (select c.started_at at time zone l.timezone as t from voice_calls c
                     join locations l on l.id = c.location_id) s
            group by 1""")
    assert {r["hour_of_week"]: r["calls"] for r in peaks} == {r["how"]: r["calls"] for r in expected}
    assert [r["calls"] for r in peaks] == sorted((r["calls"] for r in peaks), reverse=True)

    side = await conn.fetch("select * from kpi_compare_configs($1, $2, $3, $4)",
                            tenant.config_v1_id, tenant.config_v2_id, since, until)
    per_config = dict(await conn.fetch(
        """select agent_config_id, count(*) from voice_calls
            where status in ('completed', 'failed', 'abandoned') group by 1"""))
    assert [r["agent_config_id"] for r in side] == [tenant.config_v1_id, tenant.config_v2_id]
    assert {r["agent_config_id"]: r["calls"] for r in side} == per_config
    assert [r["agent_config_version"] for r in side] == [1, 2]
    for row in side:
        exact = await conn.fetchval(
            """select kpi_bucket_upper(kpi_latency_bucket(percentile_disc(0.95) within group
                      (order by m.e2e_latency_ms)))
                 from voice_messages m join voice_calls c on c.id = m.call_id
                where c.agent_config_id = $1 and c.status in ('completed', 'failed', 'abandoned')""",
            row["agent_config_id"])
        assert row["voice_to_voice_p95_ms"] == pytest.approx(exact)


async def test_deleting_an_organisation_or_a_location_keeps_the_rollup_consistent(conn, tenant):
    data = Dataset(conn, tenant, random.Random(5))
    await close(conn, [data.ending(await data.call()) for _ in range(12)])
    other = await make_shop(conn, slug="other-clinic")
    call = await conn.fetchval(
        """insert into voice_calls (session_id, organization_id, location_id, status, started_at,
               ended_at) values ('RM_other', $1, $2, 'completed', now() - interval '1 hour', now())
           returning id""", other.organization_id, other.location_id)
    assert await conn.fetchval("select calls from call_kpis_daily where organization_id = $1",
                               other.organization_id) == 1

    await conn.execute("delete from organizations where id = $1", other.organization_id)
    assert await conn.fetchval("select count(*) from call_kpis_rollup where organization_id = $1",
                               other.organization_id) == 0
    assert await conn.fetchval("select count(*) from call_kpi_facts where call_id = $1", call) == 0
    # A location's calls stay their organisation's, under no location.
    await conn.execute("delete from locations where id = $1", tenant.santa_monica_location_id)
    assert keyed(await conn.fetch("select * from call_kpis_daily")) == keyed(await conn.fetch(SCRATCH))
    assert await conn.fetchval("select sum(calls) from call_kpis_daily where location_id is null") > 0


MEMBER, OUTSIDER = uuid.UUID(int=0xA1), uuid.UUID(int=0xB1)


async def as_user(conn, user: uuid.UUID, query: str, *args):
    async with conn.transaction():
        await conn.execute("set local role authenticated")
        await conn.execute("select set_config('request.jwt.claims', $1, true)",
                           json.dumps({"sub": str(user)}))
        return await conn.fetch(query, *args)


async def test_members_see_only_their_organisations_kpis_and_cannot_write_prices(conn, tenant):
    other = await make_shop(conn, slug="other-clinic")
    await conn.executemany("insert into users (id) values ($1)", [(MEMBER,), (OUTSIDER,)])
    await conn.execute("insert into organization_members values ($1, $2, 'owner')",
                       tenant.organization_id, MEMBER)
    await conn.execute("insert into organization_members values ($1, $2, 'owner')",
                       other.organization_id, OUTSIDER)
    data = Dataset(conn, tenant, random.Random(3))
    await close(conn, [data.ending(await data.call()) for _ in range(5)])

    for table in ("call_kpis_daily", "call_kpis_rollup", "call_kpi_facts"):
        mine = await as_user(conn, MEMBER, f"select organization_id from {table}")
        theirs = await as_user(conn, OUTSIDER, f"select organization_id from {table}")
        assert mine and {r["organization_id"] for r in mine} == {tenant.organization_id}
        assert theirs == []
    prices = await as_user(conn, OUTSIDER, "select count(*) from model_prices")
    assert prices[0]["count"] > 0  # prices are public to every signed-in user
    with pytest.raises(Exception, match="row-level security"):
        await as_user(conn, MEMBER, """insert into model_prices (kind, provider, model,
                                       effective_from) values ('llm', 'x', 'y', now())""")
    with pytest.raises(Exception, match="permission denied"):
        await as_user(conn, MEMBER, "delete from call_kpis_rollup")
