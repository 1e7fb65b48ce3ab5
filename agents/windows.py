"""Windows: incoming incidents in one-minute event-time buckets by grade and channel.

Called by the backlog agent when an incident's first ``created`` event is
applied (the incident state makes that exactly once per incident, whatever
the duplicates). Keys carry the source partition (``<partition>:<minute>``) so
that each changelog partition owns its keys and restores them unchanged. The
partition's watermark is kept with its incidents (agents.backlog), not here: it
must never be durable ahead of the incident states it decides about.

A bucket also says, per source topic (``@r`` raw, ``@k`` re-keyed), the offset of
the last event counted in it. Each bucket is one changelog record, so after a
crash a bucket either has an event's count and its offset or neither; an event
read again is counted only if its bucket does not have it yet. That makes the
counts exact whichever of the batch's records (counts, incidents) reached the
log before the crash (docs/state.md#one-batch-across-two-tables).

The folding agents work in batches: a partition's changes wait in its
:class:`PartitionWindows` (read before the table, so the batch sees its own
counts; owned by that partition's agents.backlog.PartitionState, so a rebalance
drops both at once) and ``flush`` writes each changed key once per batch.
Readers outside a batch (views, the clock) read the table.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline.app import app, config, metrics, ownership, settings
from pipeline.domain import windows as w
from pipeline.domain.clocks import effective_now
from pipeline.tables import partitioned_table

minutes = partitioned_table(app, "demand-minutes", settings.topic_partitions,
                            help="Incoming incidents per minute, by grade|channel.")

_RETENTION = w.retention_seconds(config.windows.sizes_seconds)
# A bucket's entries that are not counts: the offset counted last, per source topic.
SOURCE_PREFIX = "@"


class PartitionWindows:
    """One owned partition's demand buckets not yet written, and how far it has expired."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.pending: dict[str, Any] = {}  # key -> value (None: delete)
        self.oldest: int | None = None  # oldest minute that may still be stored

    def _get(self, key: str) -> Any:
        if key in self.pending:
            return self.pending[key]
        return minutes.peek(key)

    def flush(self) -> None:
        """Write this batch's changes to the table, each key once."""
        for key, value in self.pending.items():
            if value is None:
                minutes.remove(self.partition, key)
            else:
                minutes.put(self.partition, key, value)
        self.pending.clear()

    def count_incident(self, at: float, grade: str, channel: str, watermark: float | None,
                       source: tuple[str, int] | None = None) -> bool:
        """Count a new incident in its minute; False if beyond grace of ``watermark``
        (counted as late) or if its bucket already counts the event at ``source``
        (topic tag, offset): a record read again after a crash that left this bucket
        durable and the incident not."""
        key = f"{self.partition}:{w.minute_of(at)}"
        bucket = self._get(key)
        if source is not None and bucket is not None:
            through = bucket.get(SOURCE_PREFIX + source[0])
            if through is not None and through >= source[1]:
                return False
        if w.is_late(at, watermark, config.windows.grace_seconds):
            metrics.count_event("created", "late")
            return False
        counted = w.add(bucket, grade, channel)
        if source is not None:
            counted[SOURCE_PREFIX + source[0]] = source[1]
        self.pending[key] = counted
        return True

    def expire(self, watermark: float) -> None:
        """Drop this partition's buckets older than the retention (a week + a day)."""
        cutoff = w.minute_of(watermark - _RETENTION)
        oldest = self.oldest
        if oldest is None:
            stored = [int(k.partition(":")[2]) for k in minutes.keys_in(self.partition)
                      if not k.endswith(":wm")]
            oldest = min(stored, default=cutoff)
        for minute in range(oldest, cutoff, w.MINUTE):
            key = f"{self.partition}:{minute}"
            if key in minutes or key in self.pending:
                self.pending[key] = None
        self.oldest = max(oldest, cutoff)


def watermark(partition: int) -> float | None:
    """The latest call time folded on this partition (event time), as written."""
    from agents.backlog import stored_watermark  # backlog imports this module
    return stored_watermark(partition)


def legacy_watermark(partition: int) -> float | None:
    """The watermark as versions before 2026-12-04 kept it, beside the counts: read
    only for a partition whose incidents table has none yet."""
    value = minutes.peek(f"{partition}:wm")
    return None if value is None else float(value)


def retained_from(partition: int) -> int | None:
    """The oldest minute this partition's demand history still holds (None: no history)."""
    wm = watermark(partition)
    return None if wm is None else w.minute_of(wm - _RETENTION)


def stream_now(wall: float) -> float | None:
    """"Now" for time-driven logic: the wall clock, or in event mode the stream's time
    (the latest watermark of the partitions this worker owns, less the grace); None
    before any event."""
    marks = [wm for p in ownership.ready() if (wm := watermark(p)) is not None]
    return effective_now(settings.clock, wall, max(marks) if marks else None,
                         config.windows.grace_seconds)


def display_now() -> float:
    """The instant views and gauges show ages at: the stream's now, else the wall clock."""
    wall = time.time()
    now = stream_now(wall)
    return wall if now is None else now


def buckets(since: float | None = None, partitions: Iterable[int] | None = None
            ) -> list[tuple[int, Mapping[str, int]]]:
    """The minute buckets (from ``since`` on) of ``partitions`` (default: those this
    worker owns and has restored), summed over them.

    ``since`` skips the older minutes before merging: a view of one window then
    costs a pass over the keys, not a merge of the whole week.
    """
    out: dict[int, dict[str, int]] = {}
    chosen = ownership.ready() if partitions is None else partitions
    for key, counts in list(minutes.items_in(chosen)):
        _, _, m = key.partition(":")
        if m == "wm" or (since is not None and int(m) < since):
            continue
        merged = out.setdefault(int(m), {})
        for cell, n in counts.items():
            if not cell.startswith(SOURCE_PREFIX):
                merged[cell] = merged.get(cell, 0) + n
    return list(out.items())
