"""Backlog arithmetic: transitions, and the same answer whatever the order or repeats."""

from __future__ import annotations

from functools import reduce

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import load_config
from pipeline.domain.backlog import State, apply_event, open_view, summarise
from pipeline.domain.events import Event, decode_event
from tests.factories import created, event

CONFIG = load_config()


def ev(doc: dict) -> Event:
    return decode_event(orjson.dumps(doc), CONFIG, 65536)


def fold(docs: list[dict]) -> State | None:
    return reduce(lambda s, d: apply_event(s, ev(d)), docs, None)


def test_created_incident_is_open_and_awaiting_dispatch() -> None:
    view = open_view(fold([created("A", grade="2", area="south")]))
    assert view is not None
    assert (view.grade, view.area, view.status) == ("2", "south", "awaiting_dispatch")


def test_lifecycle_moves_status_and_close_removes() -> None:
    docs = [created("A"), event("A", "assigned", 1, {"terminal": "T01"}),
            event("A", "dispatched", 2, {})]
    assert open_view(fold(docs)).status == "dispatched"
    docs.append(event("A", "arrived", 9, {}))
    view = open_view(fold(docs))
    assert view.status == "on_scene" and view.terminal == "T01"
    docs.append(event("A", "closed", 30, {"disposition": "resolved"}))
    assert open_view(fold(docs)) is None


def test_reopened_returns_and_second_close_removes() -> None:
    docs = [created("A"), event("A", "closed", 5, {"disposition": "x"}),
            event("A", "reopened", 50, {})]
    assert open_view(fold(docs)).status == "awaiting_dispatch"
    docs.append(event("A", "closed", 60, {"disposition": "y"}))
    assert open_view(fold(docs)) is None


def test_regrade_moves_between_grades_and_keeps_initial() -> None:
    state = fold([created("A", grade="3"), event("A", "graded", 4, {"grade": "1"})])
    assert open_view(state).grade == "1"
    assert state["created"]["grade"] == "3"


def test_incident_without_created_is_not_counted_until_it_arrives() -> None:
    early = fold([event("A", "dispatched", 2, {})])
    assert open_view(early) is None
    view = open_view(apply_event(early, ev(created("A", grade="1"))))
    assert view is not None and view.status == "dispatched"


def test_close_then_late_create_stays_closed() -> None:
    state = fold([event("A", "closed", 10, {"disposition": "x"}), created("A")])
    assert open_view(state) is None


def test_summary_counts_by_grade_and_area_and_oldest() -> None:
    states = [fold([created("A", 0, "1", "north")]), fold([created("B", 5, "1", "north")]),
              fold([created("C", 1, "2", "east")]),
              fold([created("D", 2, "2", "east"), event("D", "closed", 3, {"disposition": "x"})])]
    summary = summarise(states)
    assert summary.open_by_grade_area == {("1", "north"): 2, ("2", "east"): 1}
    assert summary.open_total == 3
    assert summary.oldest_created_by_grade["1"] == ev(created("A", 0)).at


# --- order independence and idempotency (at-least-once delivery, reordering) ---

def lifecycle(incident: str, grade: str, area: str, regrade: str | None,
              reopen: bool) -> list[dict]:
    docs = [created(incident, 0, grade, area),
            event(incident, "assigned", 1, {"terminal": "T03"}),
            event(incident, "dispatched", 3, {}), event(incident, "arrived", 8, {})]
    if regrade:
        docs.append(event(incident, "graded", 2, {"grade": regrade}))
    docs.append(event(incident, "closed", 20, {"disposition": "x"}))
    if reopen:
        docs.append(event(incident, "reopened", 25, {}))
    return docs


grades = st.sampled_from(["1", "2", "3", "4", "5"])
areas = st.sampled_from(["north", "south", "east"])


@settings(max_examples=200, deadline=None)
@given(grade=grades, area=areas, regrade=st.none() | grades, reopen=st.booleans(),
       cut=st.integers(min_value=1, max_value=8), data=st.data())
def test_same_state_whatever_the_order_and_duplicates(grade, area, regrade, reopen, cut,
                                                      data) -> None:
    docs = lifecycle("A", grade, area, regrade, reopen)[:cut]
    in_order = fold(docs)
    shuffled = data.draw(st.permutations(docs))
    dupes = data.draw(st.lists(st.sampled_from(docs), max_size=5))
    assert fold(list(shuffled) + dupes) == in_order
    assert fold(docs + docs) == in_order


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(grades, areas, st.none() | grades, st.booleans(),
                          st.integers(1, 8)), min_size=1, max_size=30))
def test_summary_matches_a_plain_count(spec) -> None:
    states, expected = [], {}
    for i, (grade, area, regrade, reopen, cut) in enumerate(spec):
        docs = lifecycle(f"I{i}", grade, area, regrade, reopen)[:cut]
        states.append(fold(docs))
        types = [d["event_type"] for d in docs]
        final_grade = regrade if regrade and "graded" in types else grade
        closed = "closed" in types and "reopened" not in types
        if not closed:
            expected[(final_grade, area)] = expected.get((final_grade, area), 0) + 1
    assert summarise(states).open_by_grade_area == expected


def test_status_age_review_and_terminal_figures() -> None:
    from pipeline.domain.backlog import oldest_open

    a = fold([created("A", 0, "1", "north", vulnerable=True),
              event("A", "risk_assessed", 1, {"thrive": {k: "high" for k in (
                  "threat", "harm", "risk", "investigation", "vulnerability", "engagement")},
                  "next_review_due": "2026-01-15T09:00:00Z", "trigger": "initial"}),
              event("A", "assigned", 2, {"terminal": "T01"})])
    b = fold([created("B", 30, "2", "south"), event("B", "assigned", 31, {"terminal": "T01"}),
              event("B", "transferred", 40, {"team": "resolution"})])
    c = fold([created("C", 50, "2", "south"), event("C", "scheduled", 55, {
        "slot_start": "2026-01-16T09:00:00Z", "slot_end": "2026-01-16T13:00:00Z"})])
    now = ev(created("X", 0)).at + 100 * 60  # A is 100 min old, its review 40 min overdue
    s = summarise([a, b, c], now)
    assert s.total_by(2) == {"awaiting_dispatch": 1, "with_team": 1, "scheduled": 1}
    assert s.by_age_bucket == {"1h_6h": 2, "lt_1h": 1}
    assert s.vulnerable_by_grade_area == {("1", "north"): 1}
    assert s.review_overdue_by_grade_area == {("1", "north"): 1}
    assert s.terminals == {"T01": 2}
    assert [o.incident_id for o in oldest_open([c, b, a], 2)] == ["A", "B"]
    assert [o.incident_id for o in oldest_open([c, b, a], 5, grade="2")] == ["B", "C"]


def test_apply_once_drops_repeats_by_event_id_and_remembers_a_bounded_number() -> None:
    from pipeline.domain.backlog import apply_once

    first = ev(created("A", event_id="e-1"))
    state, dup = apply_once(None, first, remember=3)
    assert not dup
    again, dup = apply_once(state, first, remember=3)
    assert dup and again == state
    for n in range(2, 6):
        state, dup = apply_once(state, ev(event("A", "assigned", n, {"terminal": "T1"},
                                                event_id=f"e-{n}")), remember=3)
        assert not dup
    assert len(state["seen"]) == 3


def test_closed_incident_is_forgotten_only_when_all_its_events_are_past_the_horizon() -> None:
    from pipeline.domain.backlog import due_to_forget, forgotten
    from pipeline.domain.events import parse_time
    from tests.factories import ts

    docs = [created("F"), event("F", "closed", 60, {"disposition": "resolved"}),
            event("F", "assigned", 90, {"terminal": "T1"})]  # a late note after closing
    state = fold(docs)
    assert state is not None
    closed_at, last = parse_time(ts(60)), parse_time(ts(90))
    assert not due_to_forget(state, closed_at + 1)  # something happened after closing
    assert not due_to_forget(state, last)
    assert due_to_forget(state, last + 1)
    assert not due_to_forget(fold([created("G")]), last + 10**6)  # open: never

    # After it is forgotten, a resend of its creation must not bring it back as open.
    resend = ev(docs[0])
    assert forgotten(None, resend.at, horizon=last + 1)
    assert not forgotten(None, resend.at, horizon=resend.at)  # exactly at horizon: applied
    assert not forgotten(state, resend.at, horizon=last + 1)  # held whole: dedup decides
    assert not forgotten(None, resend.at, horizon=None)  # no watermark yet
