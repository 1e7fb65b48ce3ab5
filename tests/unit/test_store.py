"""The table store knows how far it has read each changelog, so a promoted standby reads only
what it has not seen; what it holds for a partition is always its changelog up to that offset
(rows it no longer owns or shadows go, with their offset)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from pipeline.store import Store

LOG = "demandflow-incidents-changelog"


def store() -> Store:
    return Store("memory+offsets://", app=None, table=SimpleNamespace(name="incidents"))


def record(partition: int, offset: int, key: str, value: Any) -> Any:
    message = SimpleNamespace(tp=TP(LOG, partition), partition=partition, offset=offset,
                              value=None if value is None else b"x")
    return SimpleNamespace(key=key, value=value, message=message)


def apply(s: Store, *records: Any) -> None:
    s.apply_changelog_batch(list(records), to_key=lambda k: k, to_value=lambda v: v)


def test_it_says_how_far_it_has_read_each_changelog_partition() -> None:
    s = store()
    assert s.persisted_offset(TP(LOG, 0)) is None  # nothing read: from the start
    apply(s, record(0, 5, "a", 1), record(0, 6, "b", 2), record(1, 9, "c", 3))
    s.set_persisted_offset(TP(LOG, 0), 4)  # an older acknowledgement does not go back
    assert (s.persisted_offset(TP(LOG, 0)), s.persisted_offset(TP(LOG, 1))) == (6, 9)
    s.set_persisted_offset(TP(LOG, 1), 12)  # its own write, acknowledged by the broker
    assert s.persisted_offset(TP(LOG, 1)) == 12


def test_standby_rows_survive_a_rebalance_and_the_rest_goes_whole() -> None:
    s = store()
    apply(s, record(0, 1, "owned", 1), record(1, 1, "shadowed", 2), record(2, 1, "lost", 3))
    s["written-in-2"] = 4
    s.wrote("written-in-2", 2)
    asyncio.run(s.on_recovery_completed({TP(LOG, 0)}, {TP(LOG, 1)}))
    assert dict(s.data) == {"owned": 1, "shadowed": 2}
    assert s.persisted_offset(TP(LOG, 2)) is None  # read from the start if it comes back
    assert s.persisted_offset(TP(LOG, 1)) == 1


def test_a_deleted_row_is_gone() -> None:
    s = store()
    apply(s, record(0, 1, "a", 1), record(0, 2, "a", None))
    assert "a" not in s.data and s.persisted_offset(TP(LOG, 0)) == 2
