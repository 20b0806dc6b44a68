"""The recorder's backlog on its own, without Postgres: rows overflow to the spool oldest first,
a batch in flight is spooled before the queue behind it, a flush or close spills everything, a
spool that fails keeps the rows in memory in their place, and reading back gives the rows in the
order they were recorded, whichever part was on disk and which in memory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from time import monotonic

import pytest

from db.recorder.backlog import Backlog
from db.recorder.batches import EVENT, SEQ, Op
from db.recorder.codec import CHUNK


def op(seq: int) -> Op:
    return (seq, monotonic(), "update", f"RM_{seq}", {"metadata": {"n": seq}})


def seqs(ops) -> list[int]:
    return [o[SEQ] for o in ops]


async def replay_all(backlog: Backlog) -> list[int]:
    """Read and consume the whole spool, as the writer does when every batch is written."""
    replayed: list[int] = []
    while backlog.on_disk:
        ops, ends = await backlog.read(7)
        replayed += seqs(ops)
        backlog.consume(ends[-1])
    return replayed


@pytest.fixture
def backlog(tmp_path: Path) -> Iterator[Backlog]:
    backlog = Backlog(max_queue=5, name="unit")
    backlog.open(tmp_path)
    yield backlog
    if backlog.spool.fd >= 0:
        backlog.spool.release()


class FullDisk:
    """Points the spool at /dev/full, where every write fails with ENOSPC as on a full disk."""

    def __init__(self, backlog: Backlog) -> None:
        self.spool = backlog.spool

    def __enter__(self) -> None:
        self.fd = self.spool.fd
        self.spool.fd = os.open("/dev/full", os.O_WRONLY)

    def __exit__(self, *exc: object) -> None:
        os.close(self.spool.fd)
        self.spool.fd = self.fd


needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")


async def test_a_full_queue_sends_its_oldest_rows_to_the_spool_and_order_holds(backlog: Backlog):
    for n in range(1, 13):
        backlog.put(op(n))
    assert backlog.on_disk and len(backlog.queue) <= 5
    assert backlog.high_water == 5 and backlog.spooled == 12 - len(backlog.queue)
    assert await replay_all(backlog) + seqs(backlog.queue) == list(range(1, 13))
    assert not backlog.on_disk and backlog.spool.size == 0  # emptied once all was replayed


async def test_the_overflow_moves_a_chunk_not_the_whole_queue(tmp_path: Path):
    backlog = Backlog(max_queue=CHUNK * 3)
    backlog.open(tmp_path)
    for n in range(1, CHUNK * 3 + 2):
        backlog.put(op(n))
    assert backlog.spooled == CHUNK and len(backlog.queue) == CHUNK * 2 + 1
    assert await replay_all(backlog) == list(range(1, CHUNK + 1))
    backlog.close()


async def test_a_batch_in_flight_is_spooled_before_the_queue_and_only_once(backlog: Backlog):
    for n in range(1, 6):
        backlog.put(op(n))
    batch = backlog.take(2)
    assert seqs(batch) == [1, 2]
    for n in range(6, 10):
        backlog.put(op(n))  # overflows: 1 and 2, in flight, are older than the queue
    backlog.settle(batch)  # then their write fails: they are in the spool already
    assert await replay_all(backlog) + seqs(backlog.queue) == list(range(1, 10))


async def test_rows_of_a_failed_batch_go_to_the_spool_and_newer_rows_wait_behind_them(backlog: Backlog):
    for n in range(1, 5):
        backlog.put(op(n))
    batch = backlog.take(3)
    backlog.put(op(5))
    backlog.settle(batch[1:])  # 1 was written, then the database went away
    assert backlog.on_disk
    await backlog.spool_queue()  # during the outage the writer moves the queue to disk
    await backlog.sync()
    assert backlog.synced_seq == 5 and not backlog.queue
    assert await replay_all(backlog) == [2, 3, 4, 5]


async def test_a_flush_out_of_time_spills_the_batch_in_flight_and_the_queue(backlog: Backlog):
    for n in range(1, 5):
        backlog.put(op(n))
    batch = backlog.take(2)
    backlog.spill()
    assert not backlog.queue and backlog.spooled == 4
    backlog.settle()  # the write of 1 and 2 succeeded after all: replaying them is a no-op
    backlog.put(op(5))
    assert await replay_all(backlog) + seqs(backlog.queue) == [1, 2, 3, 4, 5]
    assert seqs(batch) == [1, 2]


def test_close_leaves_unwritten_rows_in_the_spool_file_for_the_next_process(tmp_path: Path):
    backlog = Backlog(max_queue=5)
    backlog.open(tmp_path)
    backlog.put(op(1))
    backlog.take(1)  # a batch whose write was cut short by the close
    backlog.put(op(2))
    backlog.close()
    [left] = tmp_path.glob("*.spool")
    assert len(left.read_bytes().splitlines()) == 2


def test_close_with_nothing_left_removes_the_spool_file(tmp_path: Path):
    backlog = Backlog(max_queue=5)
    backlog.open(tmp_path)
    backlog.put(op(1))
    backlog.take(1)
    backlog.settle()
    backlog.close()
    assert list(tmp_path.glob("*.spool")) == []


@needs_dev_full
async def test_when_the_spool_fails_a_failed_batch_goes_back_to_the_front_of_the_queue(backlog: Backlog):
    for n in range(1, 5):
        backlog.put(op(n))
    batch = backlog.take(3)
    with FullDisk(backlog):
        backlog.settle(batch)
    assert seqs(backlog.queue) == [1, 2, 3, 4] and not backlog.on_disk and backlog.spooled == 0
    backlog.spill()  # the disk has room again
    assert await replay_all(backlog) == [1, 2, 3, 4]


@needs_dev_full
async def test_when_the_spool_fails_a_full_queue_keeps_every_row_in_memory(backlog: Backlog):
    with FullDisk(backlog):
        for n in range(1, 9):
            backlog.put(op(n))
    assert seqs(backlog.queue) == list(range(1, 9)) and not backlog.on_disk
    with FullDisk(backlog), pytest.raises(OSError):
        await backlog.spool_queue()
    assert seqs(backlog.queue) == list(range(1, 9))


async def test_a_row_json_cannot_carry_is_replayed_in_its_place_as_unspoolable(backlog: Backlog):
    backlog.put(op(1))
    backlog.put((2, monotonic(), EVENT, "not an event", object()))
    backlog.put(op(3))
    backlog.spill()
    ops, _ = await backlog.read(10)
    assert seqs(ops) == [1, 2, 3] and ops[1][2] == "unspoolable"


def test_lag_counts_from_the_oldest_row_wherever_it_is(backlog: Backlog):
    assert backlog.oldest() is None
    first = op(1)
    backlog.put(first)
    backlog.put(op(2))
    backlog.take(1)
    assert backlog.oldest() == first[1]
    backlog.spill()
    backlog.settle()
    assert backlog.oldest() == first[1]
