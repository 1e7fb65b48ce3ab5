"""Alert-input records are acknowledged in offset order, never a later one before an earlier
one still waiting: Faust commits past a single unacknowledged record at the head of its acked
offsets, so acknowledging out of order could commit a record whose events were never applied
(a SIGKILL test in CI ended one alert episode short this way)."""

from __future__ import annotations

import math
from types import SimpleNamespace

from agents.alerts import Evaluation


class Record:
    def __init__(self, name: str, acked: list[str]) -> None:
        self.name, self._acked = name, acked

    def ack(self) -> None:
        self._acked.append(self.name)


def test_a_record_still_waiting_holds_back_the_ones_after_it() -> None:
    acked: list[str] = []
    evaluation = Evaluation()
    evaluation.timeline = SimpleNamespace(frontier=100.0)  # type: ignore[assignment]
    evaluation.unacked = [(90.0, Record("applied", acked)), (150.0, Record("waiting", acked)),
                          (50.0, Record("applied later in the log", acked)),
                          (-math.inf, Record("refused", acked))]
    evaluation.acknowledge()
    assert acked == ["applied"]
    assert [r.name for _, r in evaluation.unacked] == [  # type: ignore[attr-defined]
        "waiting", "applied later in the log", "refused"]

    evaluation.timeline = SimpleNamespace(frontier=150.0)  # type: ignore[assignment]
    evaluation.acknowledge()
    assert acked == ["applied", "waiting", "applied later in the log", "refused"]
    assert evaluation.unacked == []
