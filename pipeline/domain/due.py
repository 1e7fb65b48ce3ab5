"""Incidents indexed by the instant something becomes due for them. Pure: no Faust.

The clock used to look at every incident of its partition at every tick to
find the few whose attendance target had just passed, or that could now be
forgotten: a cost growing with the backlog, paid every five seconds. A
:class:`DueIndex` keeps each incident once, under the instant it next needs
looking at, so a tick costs what is due, not what is held.
"""

from __future__ import annotations

from collections.abc import Hashable

from sortedcontainers import SortedList

from pipeline.config import DemandConfig
from pipeline.domain.backlog import State
from pipeline.domain.clocks import attendance_deadline


class DueIndex:
    """Keys ordered by the instant they are due (one instant per key)."""

    def __init__(self) -> None:
        self._order: SortedList = SortedList()
        self._at: dict[Hashable, float] = {}

    def __len__(self) -> int:
        return len(self._at)

    def set(self, key: Hashable, at: float | None) -> None:
        """Make ``key`` due at ``at`` (None: never), replacing what it had."""
        old = self._at.get(key)
        if old == at:
            return
        if old is not None:
            self._order.discard((old, key))
            del self._at[key]
        if at is not None:
            self._order.add((at, key))
            self._at[key] = at

    def pop_due(self, until: float, strictly_before: bool = False) -> list[Hashable]:
        """Remove and return the keys due at or before ``until`` (before, if ``strictly``)."""
        out = []
        while self._order:
            at, key = self._order[0]
            if at > until or (strictly_before and at == until):
                break
            self._order.pop(0)
            del self._at[key]
            out.append(key)
        return out


def breach_due_at(state: State, config: DemandConfig) -> float | None:
    """When the clock must look at this incident for an attendance breach: its deadline,
    if it is open, nobody has arrived and no breach is marked yet (else never)."""
    status = state.get("status")
    if state.get("breached") or state.get("arrived_at") is not None or status is None \
            or status[3] == "closed":
        return None
    return attendance_deadline(state, config)


def forget_due_at(state: State) -> float | None:
    """When the clock may forget this incident: the time of its last event, once closed
    (it is forgotten when the forget horizon passes that)."""
    status = state.get("status")
    if status is None or status[3] != "closed":
        return None
    return state.get("last_at", status[0])
