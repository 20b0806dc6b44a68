"""The write-behind recorder on a healthy database: rows land in order, exactly once, without the
caller waiting; bad rows are dead-lettered; spool files are claimed by one process only."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db import ids
from db.calls import calls, events, messages, participants
from db.calls.events import Event
from db.calls.messages import Message
from db.errors import InvalidInput
from db.recorder import Recorder, RecorderClosed, RecorderOptions
from db.recorder.codec import decode_op, encode_op
from db.recorder.spool import SpoolFile

pytestmark = pytest.mark.db

T0 = datetime(2025, 3, 14, 9, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def turn(call: uuid.UUID, n: int, **fields) -> Message:
    return Message(call_id=call, sequence_number=n, item_id=f"item_{n}",
                   role="user" if n % 2 == 0 else "assistant", content=f"turn {n}",
                   started_at=at(n), tokens_used=3, **fields)


def event(call: uuid.UUID, n: int, **fields) -> Event:
    return Event(id=ids.event_id(call, f"e{n}"), call_id=call, event_type="tool_call",
                 payload={"n": n}, occurred_at=at(n), **fields)


def spool_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.spool"))


@pytest.fixture
async def recorder(db_dsn: str, tmp_path: Path):
    rec = Recorder(db_dsn, spool_dir=tmp_path / "spool", options=RecorderOptions(log_interval=3600))
    await rec.start()
    yield rec
    await rec.close(deadline=5)


def record_call(rec: Recorder, sid: str, turns: int = 6) -> uuid.UUID:
    call = rec.start_call(session_id=sid, room_name="front-desk", started_at=at(0), caller_number="+15550100")
    rec.participant(session_id=sid, participant_sid="PA_caller", identity="sip_+15550100", kind="sip",
                    joined_at=at(0))
    rec.mark_connected(session_id=sid, connected_at=at(1))
    for n in range(turns):
        rec.message(turn(call, n))
        rec.event(event(call, n))
    rec.update_call(session_id=sid, llm_model="gpt-4o-mini", metadata={"tier": "gold"})
    rec.finish_call(session_id=sid, status="completed", ended_at=at(60), outcome="booked")
    return call


async def test_a_call_recorded_is_written_in_order(recorder: Recorder, conn):
    call = record_call(recorder, "RM_order")
    assert call == ids.call_id("RM_order")
    assert await recorder.flush(5) is True

    stored = await calls.get_call(conn, session_id="RM_order")
    assert (stored.status, stored.outcome, stored.closed_by) == ("completed", "booked", "agent")
    assert (stored.llm_model, stored.metadata) == ("gpt-4o-mini", {"tier": "gold"})
    assert stored.total_tokens_used == 18
    assert stored.connected_at == at(1)
    stored_messages = await messages.list_messages(conn, session_id="RM_order")
    assert [m.sequence_number for m in stored_messages] == list(range(6))
    assert [e.payload["n"] for e in await events.list_events(conn, session_id="RM_order")] == list(range(6))
    [caller] = await participants.list_participants(conn, session_id="RM_order")
    assert (caller.kind, caller.joined_at) == ("sip", at(0))
    stats = recorder.stats()
    assert (stats.queued, stats.spooled, stats.dead_lettered, stats.lag_seconds) == (0, 0, 0, 0.0)
    assert stats.written == 17  # start, participant, connected, 6 + 6, update, finish


async def test_a_recorded_start_writes_what_start_call_writes(recorder: Recorder, conn):
    # The recorder batches starts through db.calls.calls.START_CALL itself: same parameters, same row.
    user = await conn.fetchval("insert into users (email) values ('a@example.com') returning id")
    fields = dict(room_name="r", started_at=at(0), user_id=user, direction="outbound",
                  caller_number="+15550100", dialed_number="+15550199", sip_call_id="SCL_1",
                  metadata={"k": "v"})
    recorder.start_call(session_id="RM_rec_start", **fields)
    assert await recorder.flush(5)
    direct = await calls.start_call(conn, session_id="RM_direct_start", **fields)
    recorded = await calls.get_call(conn, session_id="RM_rec_start")
    ignored = {"id", "session_id", "created_at", "updated_at"}
    assert {k: v for k, v in vars(recorded).items() if k not in ignored} == {
        k: v for k, v in vars(direct).items() if k not in ignored}


async def test_rows_recorded_twice_are_written_once(recorder: Recorder, conn):
    call = record_call(recorder, "RM_twice")
    record_call(recorder, "RM_twice")
    for n in range(6):
        recorder.message(turn(call, n))
        recorder.event(event(call, n))
    assert await recorder.flush(5)
    assert await conn.fetchval("select count(*) from voice_messages where call_id = $1", call) == 6
    assert await conn.fetchval("select count(*) from call_events where call_id = $1", call) == 6
    assert await conn.fetchval("select count(*) from call_participants where call_id = $1", call) == 1
    assert recorder.stats().dead_lettered == 0


async def test_many_calls_interleaved_keep_each_call_in_order(recorder: Recorder, conn):
    sids = [f"RM_many_{i}" for i in range(20)]
    call_ids = [recorder.start_call(session_id=sid) for sid in sids]
    for n in range(30):
        for call in call_ids:
            recorder.event(event(call, n))
            recorder.message(turn(call, n))
    assert await recorder.flush(10)
    rows = await conn.fetch(
        "select call_id, array_agg((payload->>'n')::int order by sequence) as ns "
        "from call_events group by call_id")
    assert {r["call_id"]: r["ns"] for r in rows} == {c: list(range(30)) for c in call_ids}
    assert await conn.fetchval("select count(*) from voice_messages") == 600


async def test_flush_of_one_call_waits_for_that_call(recorder: Recorder, conn):
    first = record_call(recorder, "RM_first")
    assert await recorder.flush(5, session_id="RM_first")
    assert await conn.fetchval("select count(*) from voice_messages where call_id = $1", first) == 6


async def test_a_message_colliding_on_sequence_is_dead_lettered_not_dropped(recorder, conn, tmp_path):
    call = recorder.start_call(session_id="RM_collide")
    recorder.message(turn(call, 0))
    recorder.message(Message(call_id=call, sequence_number=0, item_id="another_item", role="user"))
    recorder.message(turn(call, 1))
    assert await recorder.flush(5)
    stored = await messages.list_messages(conn, session_id="RM_collide")
    assert [m.item_id for m in stored] == ["item_0", "item_1"]
    [entry] = [json.loads(line) for line in (tmp_path / "spool" / "recorder-deadletter.jsonl").open()]
    assert entry["constraint"] == "voice_messages_call_sequence_key"
    assert entry["record"]["item_id"] == "another_item"
    assert recorder.stats().dead_lettered == 1


async def test_a_value_the_driver_cannot_encode_is_dead_lettered(recorder: Recorder, conn):
    # Rejected for good, not mistaken for an outage (which would spool it forever).
    recorder.start_call(session_id="RM_badtype")
    recorder.participant(session_id="RM_badtype", participant_sid="PA_1", identity="a", user_id="not-a-uuid")
    recorder.participant(session_id="RM_badtype", participant_sid="PA_2", identity="b")
    assert await recorder.flush(5)
    stored = await participants.list_participants(conn, session_id="RM_badtype")
    assert [p.participant_sid for p in stored] == ["PA_2"]
    stats = recorder.stats()
    assert (stats.dead_lettered, stats.spooled) == (1, 0)


async def test_bad_arguments_fail_in_the_caller(recorder: Recorder):
    with pytest.raises(InvalidInput):
        recorder.update_call(session_id="RM_x", status="completed")
    with pytest.raises(InvalidInput):
        recorder.finish_call(session_id="RM_x", status="active", ended_at=at(1))
    with pytest.raises(InvalidInput):
        recorder.start_call(session_id="")
    with pytest.raises(InvalidInput):
        recorder.participant(session_id="RM_x", participant_sid="PA", identity="i", participant_type="bot")
    assert recorder.stats().queued == 0


async def test_close_writes_everything_and_removes_the_empty_spool(db_dsn: str, conn, tmp_path: Path):
    rec = Recorder(db_dsn, spool_dir=tmp_path)
    await rec.start()
    assert len(spool_files(tmp_path)) == 1
    call = record_call(rec, "RM_close")
    await rec.close()
    assert spool_files(tmp_path) == []
    assert await conn.fetchval("select count(*) from voice_messages where call_id = $1", call) == 6
    with pytest.raises(RecorderClosed):
        rec.message(turn(call, 7))


def test_spool_records_round_trip_datetimes_uuids_and_dataclasses():
    call = ids.call_id("RM_codec")
    message = turn(call, 3, transcript_confidence=0.5, metadata={"nested": {"a": [1, 2]}})
    op = (7, 1.5, "message", call, message)
    assert decode_op(encode_op(op)) == op
    start = (8, 2.5, "start", "RM_codec", {"started_at": at(0), "user_id": uuid.uuid4()})
    assert decode_op(encode_op(start)) == start


def test_a_row_json_cannot_carry_keeps_its_place_as_unspoolable():
    op = (9, 1.0, "update", "RM_codec", {"metadata": {"when": {1, 2}}})
    seq, _, kind, _, payload = decode_op(encode_op(op))
    assert (seq, kind) == (9, "unspoolable")
    assert "could not spool" in payload["error"]


def test_a_live_spool_cannot_be_claimed_and_an_orphan_only_once(tmp_path: Path):
    live = SpoolFile.create(tmp_path, "rec")
    assert SpoolFile.claim(live.path) is None
    live.append([b"[1]\n"])
    live.release()  # as if its process died
    first = SpoolFile.claim(live.path)
    assert first is not None and first.size == 4
    assert SpoolFile.claim(live.path) is None
    first.remove()
    assert SpoolFile.claim(live.path) is None


def test_a_torn_last_record_is_reported_not_read(tmp_path: Path):
    spool = SpoolFile.create(tmp_path, "rec")
    spool.append([b"[1]\n", b"[2]\n", b"[3"])
    records, torn = spool.read(10)
    assert [line for _, line in records] == [b"[1]\n", b"[2]\n"]
    assert torn == 2
    spool.remove()
