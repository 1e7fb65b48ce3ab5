"""The clock's due index: a tick finds exactly what has fallen due, without a pass over all."""

from __future__ import annotations

from functools import reduce

import orjson

from pipeline.config import load_config
from pipeline.domain.backlog import apply_event
from pipeline.domain.clocks import attendance_deadline
from pipeline.domain.due import DueIndex, breach_due_at, forget_due_at
from pipeline.domain.events import decode_event, parse_time
from tests.factories import created, event, ts

CONFIG = load_config()


def fold(docs):
    return reduce(lambda s, d: apply_event(s, decode_event(orjson.dumps(d), CONFIG, 65536)),
                  docs, None)


def test_pop_due_returns_what_is_due_in_order_and_forgets_it() -> None:
    index = DueIndex()
    for key, at in (("b", 20.0), ("a", 10.0), ("c", 30.0)):
        index.set(key, at)
    index.set("c", 5.0)  # moved earlier
    index.set("b", None)  # no longer due
    assert index.pop_due(10.0, strictly_before=True) == ["c"]
    assert index.pop_due(10.0) == ["a"]
    assert index.pop_due(1e9) == [] and len(index) == 0


def test_an_open_unattended_incident_is_due_at_its_deadline_and_not_after_arrival() -> None:
    state = fold([created("G1", grade="1")])
    deadline = attendance_deadline(state, CONFIG)
    assert deadline is not None and breach_due_at(state, CONFIG) == deadline
    arrived = fold([created("G1", grade="1"), event("G1", "arrived", 5, {})])
    assert breach_due_at(arrived, CONFIG) is None
    assert breach_due_at({**state, "breached": True}, CONFIG) is None
    assert forget_due_at(state) is None


def test_a_closed_incident_is_due_to_forget_from_its_last_event() -> None:
    state = fold([created("F"), event("F", "closed", 60, {"disposition": "done"}),
                  event("F", "assigned", 90, {"terminal": "T1"})])
    assert forget_due_at(state) == parse_time(ts(90))
    assert breach_due_at(state, CONFIG) is None
