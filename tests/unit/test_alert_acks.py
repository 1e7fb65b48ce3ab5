"""Alert-input records are acknowledged in offset order, never a later one before an earlier
one still waiting: Faust commits past a single unacknowledged record at the head of its acked
offsets, so acknowledging out of order could commit a record whose events were never applied
(a SIGKILL test in CI ended one alert episode short this way). And the read progress saved
with a step is that of the records acknowledged, not of every record taken."""

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
    evaluation.unacked = [(90.0, {}, Record("applied", acked)),
                          (150.0, {}, Record("waiting", acked)),
                          (50.0, {}, Record("applied later in the log", acked)),
                          (-math.inf, {}, Record("refused", acked))]
    evaluation.progress_writes()  # what a step's save does before the step is durable
    evaluation.acknowledge()
    assert acked == ["applied"]
    assert [r.name for _, _, r in evaluation.unacked] == [  # type: ignore[attr-defined]
        "waiting", "applied later in the log", "refused"]

    evaluation.timeline = SimpleNamespace(frontier=150.0)  # type: ignore[assignment]
    evaluation.progress_writes()
    evaluation.acknowledge()
    assert acked == ["applied", "waiting", "applied later in the log", "refused"]
    assert evaluation.unacked == []


def test_the_progress_saved_is_that_of_records_whose_events_are_applied() -> None:
    """A record taken but still held (its events after the frontier) is not in the saved
    state: were its read progress saved, a successor would think the raw partition read
    to its end and walk its frontier past the events it has yet to read again (seen: a
    worker SIGKILLed mid-catch-up, its successor 944 events late, 68 transitions missing)."""
    evaluation = Evaluation()
    evaluation.timeline = SimpleNamespace(frontier=100.0)  # type: ignore[assignment]
    evaluation.unacked = [(90.0, {2: (41, 90.0)}, Record("applied", [])),
                          (150.0, {2: (97, 150.0), 3: (12, 140.0)}, Record("held", []))]
    assert evaluation.progress_writes() == [("p:2", [41, 90.0])]
    evaluation.acknowledge()
    assert evaluation.progress_writes() == [], "nothing new applied, nothing new saved"

    evaluation.timeline = SimpleNamespace(frontier=150.0)  # type: ignore[assignment]
    assert sorted(evaluation.progress_writes()) == [("p:2", [97, 150.0]), ("p:3", [12, 140.0])]
