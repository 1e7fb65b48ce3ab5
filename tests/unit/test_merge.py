"""Force-wide answers merged from per-partition answers equal the answer over everything.

pipeline.domain.merge is what makes any worker's view the whole force's
(docs/state.md): if it lost a count, a minimum or a row, every worker's wall
would be wrong only when there is more than one worker.
"""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import load_config
from pipeline.domain.backlog import State, apply_event, oldest_open, summarise
from pipeline.domain.events import decode_event
from pipeline.domain.merge import (
    counts_to_json,
    merge_counts,
    merge_oldest,
    merge_summaries,
    summary_to_json,
)
from pipeline.domain.windows import add, demand, minute_of
from tests.factories import THRIVE, created, event, ts

CONFIG = load_config()
NOW = 6 * 3600.0  # minutes after the factories' base, in seconds, for `at`


def incident(i: int, grade: str, area: str, start: float, closed: bool, terminal: int,
             review: float) -> State:
    iid = f"INC-{i:04d}"
    docs = [created(iid, minutes=start, grade=grade, area=area),
            event(iid, "assigned", start + 1, {"terminal": f"T{terminal:02d}"}),
            event(iid, "risk_assessed", start + 2, {"thrive": THRIVE, "trigger": "initial",
                                                     "next_review_due": ts(start + review),
                                                     "vulnerable": review < 60})]
    if closed:
        docs.append(event(iid, "closed", start + 5, {"disposition": "done"}))
    state: State | None = None
    for d in docs:
        state = apply_event(state, decode_event(orjson.dumps(d), CONFIG, 65536))
    assert state is not None
    return state


incidents = st.lists(st.tuples(st.sampled_from(["1", "2", "3"]),
                               st.sampled_from(["north", "east"]),
                               st.floats(0, 300), st.booleans(), st.integers(1, 4),
                               st.floats(1, 400), st.integers(0, 3)),
                     min_size=0, max_size=40)


@settings(max_examples=60, deadline=None)
@given(incidents)
def test_merged_partitions_equal_the_whole(rows: list[tuple]) -> None:  # type: ignore[type-arg]
    states = [(p, incident(i, *row)) for i, (*row, p) in enumerate(rows)]
    at = summarise([s for _, s in states]).as_of
    by_partition: dict[int, list[State]] = {}
    for p, s in states:
        by_partition.setdefault(p, []).append(s)

    whole = summarise([s for _, s in states], at)
    merged = merge_summaries((orjson.loads(orjson.dumps(summary_to_json(summarise(ss, at))))
                              for ss in by_partition.values()), at)
    assert merged == whole

    def row(v):  # type: ignore[no-untyped-def]
        return {"incident_id": v.incident_id, "created_at": v.created_at}

    for limit in (1, 3, 1000):
        want = [row(v) for v in oldest_open([s for _, s in states], limit)]
        got = merge_oldest(([row(v) for v in oldest_open(ss, limit)]
                            for ss in by_partition.values()), limit)
        assert got == want


def test_demand_counts_merge_by_grade_and_channel() -> None:
    base = 1_699_999_200.0  # a 15-minute boundary
    a = [(minute_of(base), add(add(None, "1", "999"), "2", "101"))]
    b = [(minute_of(base + 60), add(None, "1", "999"))]
    parts = [counts_to_json(demand(x, 900, base + 120)["current"])  # type: ignore[arg-type]
             for x in (a, b)]
    assert merge_counts(parts) == demand(a + b, 900, base + 120)["current"]
    assert merge_counts(parts)[("1", "999")] == 2
