"""Tables written in batches, indexed by partition, and fenced to the partitions owned.

A Faust table sends each change to the changelog partition of the event being
processed (``current_event()``), so it can only be written inside one event's
context. The agents process events in batches (``stream.take_events``) and
write each changed key once per batch, after the loop over the batch's events:
there is no single current event then, so the writes say which partition
(the source partition of the key's events) they belong to.

A table also holds rows this worker must not read as its own: those of
partitions it lost in a rebalance (the store keeps them) and, with standby
replicas, those of partitions it shadows for another worker. So each table
keeps an index of its keys by partition, maintained on every write and every
changelog record it restores, and readers ask for the partitions they want
(pipeline.ownership says which are owned and restored). A write to a partition
this worker does not own is refused: the new owner has the changelog now.

Every changelog record a write sends is kept until :func:`durable` has seen
the broker acknowledge it; the agents await it before a batch's offsets are
acknowledged. Faust's own flush before a commit is not enough: its producer
buffer's ``flush()`` returns as soon as one record takes longer than 0.1 s
(``ProducerBuffer.flush_atmost``), so under load it committed offsets whose
changelog records were still queued, and a SIGKILL then lost them (seen:
incidents the export closed left open after a worker was killed).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import faust

_tables: list[PartitionedTable] = []
log = logging.getLogger(__name__)
# Keys of a table's per-partition metadata rows (see PartitionedTable.put_meta).
META_PREFIX = "\x00"
# Exit status when a changelog write fails after the producer's own retries.
EXIT_CHANGELOG_FAILED = 70


class PartitionedTable(faust.Table):
    """A ``faust.Table`` with ``put``/``remove`` for a given changelog partition."""

    _explicit_partition: int | None = None
    # Set by pipeline.app: whether this worker owns a partition (None: always, for tests).
    owns: Callable[[int], bool] | None = None
    refused: Callable[[], None] | None = None
    # This table's own test, for a table not co-partitioned with the raw topic.
    owner: Callable[[int], bool] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._keys_of: dict[int, set[Any]] = {}
        self._partition_of: dict[Any, int] = {}
        self._unacked: list[asyncio.Future[Any]] = []
        self._held: list[Any] | None = None

    def send_changelog(self, partition: int | None, key: Any, value: Any,
                       key_serializer: Any = None, value_serializer: Any = None) -> Any:
        """Faust's changelog send, remembering the record until the broker has it; while
        :meth:`hold` is on, the record is made but not yet handed to the producer."""
        if self._held is None:
            fut = super().send_changelog(partition, key, value, key_serializer,
                                         value_serializer)
        else:
            fut = self.changelog_topic.as_future_message(
                key=key, value=value, partition=partition,
                key_serializer=key_serializer or self.key_serializer,
                value_serializer=value_serializer or self.value_serializer,
                callback=self._on_changelog_sent, eager_partitioning=True)
            self._held.append(fut)
        self._unacked.append(fut)
        return fut

    def hold(self) -> None:
        """Write to memory from now on, but keep the changelog records back until
        :meth:`release`: readers see a batch's rows at once while the batch orders its
        records across tables (agents.backlog.save: demand counts durable first)."""
        self._held = []

    def release(self) -> None:
        """Hand the held records to the producer, in the order they were written."""
        held, self._held = self._held or [], None
        producer = self.app.producer
        for fut in held:
            producer.send_soon(fut)

    async def durable(self) -> None:
        """Return once every changelog record sent so far is acknowledged by the broker."""
        while self._unacked:
            pending, self._unacked = self._unacked, []
            await asyncio.gather(*pending)

    def put(self, partition: int, key: Any, value: Any) -> None:
        """``table[key] = value``, recorded in changelog partition ``partition``."""
        if not self._may_write(partition):
            return
        self._explicit_partition = partition
        try:
            self[key] = value
        finally:
            self._explicit_partition = None
        self._index(partition, key)

    def remove(self, partition: int, key: Any) -> None:
        """``del table[key]`` (if present), recorded in changelog partition ``partition``."""
        if key not in self.data or not self._may_write(partition):
            return
        self._explicit_partition = partition
        try:
            del self[key]
        finally:
            self._explicit_partition = None
        self._unindex(key)

    def put_meta(self, partition: int, name: str, value: Any) -> None:
        """A row about the partition itself, in its changelog partition after the rows
        written before it (one partition's records reach the log in the order sent):
        whoever restores it has every row written before it. Not a key of the partition
        (``keys_in``/``items_in`` never list it)."""
        self.put(partition, meta_key(partition, name), value)

    def meta(self, partition: int, name: str) -> Any:
        return self.data.get(meta_key(partition, name))

    def peek(self, key: Any) -> Any:
        """``table.get(key)`` without Faust's per-read sensor call (measured: ~9 % of the
        worker's time at full speed, for reads that change nothing)."""
        return self.data.get(key)

    def keys_in(self, partition: int) -> list[Any]:
        """The keys of one partition (a copy: safe to iterate across awaits)."""
        return list(self._keys_of.get(partition, ()))

    def items_in(self, partitions: Iterable[int]) -> Iterator[tuple[Any, Any]]:
        """(key, value) of the given partitions only."""
        data = self.data
        for p in partitions:
            for key in list(self._keys_of.get(p, ())):
                value = data.get(key)
                if value is not None:
                    yield key, value

    def values_in(self, partitions: Iterable[int]) -> list[Any]:
        return [v for _, v in self.items_in(partitions)]

    def partition_for_key(self, key: Any) -> int | None:
        if self._explicit_partition is not None:
            return self._explicit_partition
        return super().partition_for_key(key)  # type: ignore[no-any-return]

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        """Restore (or shadow, as a standby) changelog records, indexing their keys."""
        events = list(batch)
        super().apply_changelog_batch(events)
        for event in events:
            key = self._to_key(event.key)
            if event.message.value is None:
                self._unindex(key)
            else:
                self._index(event.message.partition, key)

    def _may_write(self, partition: int) -> bool:
        owns = self.owner or self.owns
        if owns is None or owns(partition):
            return True
        if self.refused is not None:
            self.refused()
        return False

    def _index(self, partition: int, key: Any) -> None:
        old = self._partition_of.get(key)
        if old == partition:
            return
        wrote = getattr(self.data, "wrote", None)  # pipeline.store: rows by partition
        if wrote is not None:
            wrote(key, partition)
        if old is not None:
            self._keys_of.get(old, set()).discard(key)
        self._partition_of[key] = partition
        if not (isinstance(key, str) and key.startswith(META_PREFIX)):
            self._keys_of.setdefault(partition, set()).add(key)

    def _unindex(self, key: Any) -> None:
        wrote = getattr(self.data, "wrote", None)
        if wrote is not None:
            wrote(key, None)
        old = self._partition_of.pop(key, None)
        if old is not None:
            self._keys_of.get(old, set()).discard(key)


def meta_key(partition: int, name: str) -> str:
    return f"{META_PREFIX}{name}:{partition}"


def partitioned_table(app: faust.App, name: str, partitions: int, help: str,
                      owner: Callable[[int], bool] | None = None) -> PartitionedTable:
    """A string-keyed table registered with ``app`` like ``app.Table`` would.

    ``owner`` says which partitions this worker may write, for a table that is
    not co-partitioned with the raw topic (default: pipeline.ownership's test).
    """
    table = PartitionedTable(app, name=name, default=None, beacon=app.tables.beacon,
                             partitions=partitions, key_type=str, help=help)
    table.owner = owner
    _tables.append(table)
    return app.tables.add(table)  # type: ignore[return-value]


async def durable(*only: PartitionedTable) -> None:
    """Every table write made so far (to ``only`` those tables, if named) is in its
    changelog (the broker acknowledged it).

    Await this before the offsets of the events that caused the writes are
    acknowledged: that is the commit invariant (docs/state.md).
    """
    try:
        for table in only or _tables:
            await table.durable()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        # The batch's offsets would be committed (Faust acknowledges a batch's events
        # however it ends) without its state: stop now, commit nothing, and let the
        # restarted worker read the batch again.
        log.critical("a changelog write failed after the producer's retries (%s); "
                     "exiting without committing", type(exc).__name__)
        os._exit(EXIT_CHANGELOG_FAILED)
