"""The table store: Faust's in-memory store, knowing how far each changelog it holds is read.

Faust's ``memory://`` store says it has read nothing (``persisted_offset`` is always
None), so every partition a worker gains is read from the start of its changelog,
even one it has shadowed all along as a standby; and after every rebalance it drops
the standby copies it did hold. Promoting a standby of 100,000 open incidents took
about a minute (docs/performance.md#takeover). This store (``memory+offsets://``,
the default) keeps, per changelog partition, the offset of the last record it holds
— from each restored or shadowed record and from each of its own writes the broker
acknowledged — and keeps the rows of standby partitions across rebalances, so a
promoted standby reads only the records it has not yet seen.

What it holds for a changelog partition is always the changelog read up to that
offset: rows are indexed by partition as they are restored *and* as they are
written, and a partition this worker neither owns nor shadows after a rebalance is
dropped whole, rows and offset together, so when it comes back it is read from the
start. (A RocksDB store keeps offsets on disk too, but writes only inside an event's
context, which batch writes are not: docs/state.md.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from faust.stores import STORES
from faust.stores.memory import Store as MemoryStore
from faust.types import TP

SCHEME = "memory+offsets"


class Store(MemoryStore):
    """``memory+offsets://``: see the module docstring."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._read_to: dict[TP, int] = {}

    def persisted_offset(self, tp: TP) -> int | None:
        """The offset of the last record of ``tp`` this store holds (None: none)."""
        return self._read_to.get(tp)

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        """Called by Faust when the broker acknowledges one of this table's writes."""
        if offset > self._read_to.get(tp, -1):
            self._read_to[TP(tp.topic, tp.partition)] = offset

    def wrote(self, key: Any, partition: int | None) -> None:
        """Index a row written by this worker under its partition (None: removed)."""
        if partition is None:
            self._key_partition.pop(key, None)
        else:
            self._key_partition[key] = partition

    def apply_changelog_batch(self, batch: Iterable[Any], to_key: Callable[[Any], Any],
                              to_value: Callable[[Any], Any]) -> None:
        events = list(batch)
        super().apply_changelog_batch(events, to_key, to_value)
        for event in events:
            self.set_persisted_offset(event.message.tp, event.message.offset)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        """Keep what this worker owns or shadows; drop the rest whole (rows and offset)."""
        kept = {TP(tp.topic, tp.partition) for tp in (*active_tps, *standby_tps)}
        partitions = {tp.partition for tp in kept}
        for key in [k for k, p in self._key_partition.items() if p not in partitions]:
            self.data.pop(key, None)
            self._key_partition.pop(key, None)
        for tp in [tp for tp in self._read_to if tp not in kept]:
            del self._read_to[tp]


def register() -> None:
    """Make ``memory+offsets://`` a store URL Faust knows."""
    STORES.aliases.setdefault(SCHEME, f"{__name__}:Store")
