"""The recorder's policies, without Postgres: how long the writer backs off after failures, and
which options a recorder accepts."""

from __future__ import annotations

from time import monotonic

import pytest

from db.recorder import RecorderOptions
from db.recorder.writer import Backoff


def test_backoff_doubles_with_each_failure_up_to_its_ceiling_and_a_success_resets_it():
    backoff = Backoff(0.5, 3.0)

    def waits_after_a_failure(seconds: float) -> bool:
        before = monotonic()
        backoff.failed()
        return before + seconds <= backoff.next_attempt <= monotonic() + seconds

    assert all(waits_after_a_failure(s) for s in (0.5, 1.0, 2.0, 3.0, 3.0))
    backoff.succeeded()
    assert waits_after_a_failure(0.5)


def test_options_refuse_an_empty_queue_or_batch():
    with pytest.raises(ValueError):
        RecorderOptions(max_queue=0)
    with pytest.raises(ValueError):
        RecorderOptions(batch_size=0)


def test_a_batch_size_above_the_largest_batch_raises_the_largest_batch():
    assert RecorderOptions(batch_size=5_000).max_batch_size == 5_000
    assert RecorderOptions(batch_size=100, max_batch_size=200).max_batch_size == 200
