"""What a recorder is told (RecorderOptions) and what it tells (RecorderStats, RecorderClosed)."""

from __future__ import annotations

from dataclasses import dataclass


class RecorderClosed(RuntimeError):
    pass


@dataclass(frozen=True)
class RecorderOptions:
    max_queue: int = 10_000  # rows held in memory; past that the oldest go to the spool
    # Rows held in memory while the spool cannot take them either (disk full, I/O error): past
    # this, a newly recorded row is lost (counted in stats().lost, logged without its content)
    # rather than memory growing without bound. Never less than max_queue.
    max_memory_rows: int = 50_000
    # The dead-letter file (db.recorder.deadletters) stops growing here; rows rejected past it
    # are counted as lost. `python -m db deadletters list|replay` reads and empties it.
    max_deadletter_bytes: int = 64 * 2**20
    batch_size: int = 500  # rows per transaction while the writer keeps up
    # A writer that is behind (more than batch_size rows waiting, or a spool to replay) writes
    # bigger transactions: each pays a commit and a pass of the tokens trigger over its calls,
    # and paying those less often is what lets a backlog drain (bench/recorder.py). Never less
    # than batch_size.
    max_batch_size: int = 2_000
    flush_interval: float = 0.005  # how long a batch may gather once a row wakes the writer
    retry_interval: float = 0.5  # first wait after Postgres failed, doubling with each failure
    retry_max_interval: float = 5.0
    write_timeout: float = 10.0  # a batch that takes longer counts as Postgres unavailable
    spool_interval: float = 0.05  # during an outage, rows gather this long before going to disk
    log_interval: float = 30.0  # how often the stats are logged
    orphan_interval: float = 60.0  # how often spools of dead processes are looked for
    pooled: bool = False  # the DSN is a transaction-mode pooler (DATABASE_POOL_MODE=transaction)

    def __post_init__(self) -> None:
        if self.max_queue < 1 or self.batch_size < 1:
            raise ValueError("max_queue and batch_size must be positive")
        if self.max_batch_size < self.batch_size:
            object.__setattr__(self, "max_batch_size", self.batch_size)  # frozen: the documented way
        if self.max_memory_rows < self.max_queue:
            object.__setattr__(self, "max_memory_rows", self.max_queue)


@dataclass(frozen=True)
class RecorderStats:
    queued: int  # rows in memory, not yet written or spooled
    written: int  # rows written to Postgres, from memory or from a spool (a no-op replay counts)
    spooled: int  # rows appended to this process's spool
    replayed: int  # rows written from a spool (this process's or a dead one's)
    dead_lettered: int  # rows Postgres rejected for good
    lag_seconds: float  # age of the oldest row recorded but not yet written
    spool_bytes: int  # bytes of this process's spool not yet replayed
    queue_high_water: int  # the most rows the queue ever held (bounded by max_queue)
    failures: int  # batches that failed because Postgres was unavailable
    orphan_spools_replayed: int  # spool files of dead processes replayed and removed
    database_available: bool  # False from a failed batch until a batch succeeds again
    batches_written: int = 0  # batches that reached Postgres (for a mean write latency)
    batch_write_seconds: float = 0.0  # the time those batches took, summed
    # Rows neither Postgres nor the spool would take (memory at max_memory_rows, or the spool
    # failing at close), plus dead letters the capped (or failing) dead-letter file could not take.
    lost: int = 0
    spool_available: bool = True  # False from a failed spool write until one succeeds again
