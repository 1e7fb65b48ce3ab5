"""Response clocks and attendance targets, including the exact boundaries."""

from __future__ import annotations

from functools import reduce

import orjson
import pytest

from pipeline.config import default_config_text, load_config, parse_config
from pipeline.domain.backlog import apply_event
from pipeline.domain.clocks import attendance_breached, attendance_deadline, stage_seconds
from pipeline.domain.events import decode_event
from tests.factories import created, event

CONFIG = load_config()


def fold(docs, config=CONFIG):
    return reduce(lambda s, d: apply_event(s, decode_event(orjson.dumps(d), config, 65536)),
                  docs, None)


def at(state, minutes: float) -> float:
    return state["created"]["at"] + minutes * 60


def test_stage_times() -> None:
    s = fold([created("A"), event("A", "dispatched", 4, {}), event("A", "arrived", 11, {})])
    assert stage_seconds(s) == {"call_to_dispatch": 240.0, "call_to_arrival": 660.0,
                                "dispatch_to_arrival": 420.0}


def test_first_dispatch_counts_even_if_it_arrives_second() -> None:
    s = fold([created("A"), event("A", "dispatched", 9, {}), event("A", "dispatched", 3, {})])
    assert stage_seconds(s)["call_to_dispatch"] == 180.0


@pytest.mark.parametrize(("arrive_min", "breached"), [(15, False), (15 + 1 / 60, True),
                                                      (14, False)])
def test_grade1_urban_boundary_exact_is_on_time_one_second_late_is_breach(arrive_min,
                                                                          breached) -> None:
    s = fold([created("A", grade="1", area="north"), event("A", "arrived", arrive_min, {})])
    assert attendance_breached(s, CONFIG, now=at(s, 600)) is breached


def test_rural_area_uses_the_rural_target() -> None:
    s = fold([created("A", grade="1", area="east")])  # east is rural: 20 min
    assert attendance_deadline(s, CONFIG) == at(s, 20)
    assert not attendance_breached(s, CONFIG, now=at(s, 20))
    assert attendance_breached(s, CONFIG, now=at(s, 20) + 1)


def test_time_passing_with_nobody_there_is_a_breach_but_not_if_closed_in_time() -> None:
    s = fold([created("A", grade="2")])
    assert not attendance_breached(s, CONFIG, now=at(s, 60))
    assert attendance_breached(s, CONFIG, now=at(s, 60) + 1)
    closed = fold([created("A", grade="2"), event("A", "closed", 30, {"disposition": "x"})])
    assert not attendance_breached(closed, CONFIG, now=at(closed, 600))
    # Closed unattended after the target had passed: it was left waiting too long.
    late = fold([created("A", grade="2"), event("A", "closed", 61, {"disposition": "x"})])
    assert attendance_breached(late, CONFIG, now=at(late, 61))
    on_time = fold([created("A", grade="2"), event("A", "closed", 60, {"disposition": "x"})])
    assert not attendance_breached(on_time, CONFIG, now=at(on_time, 600))


def test_effective_now_is_wall_live_and_watermark_minus_grace_in_event_mode() -> None:
    from pipeline.domain.clocks import effective_now

    assert effective_now("wall", wall=1000.0, watermark=10.0, grace=300) == 1000.0
    assert effective_now("event", wall=1000.0, watermark=900.0, grace=300) == 600.0
    assert effective_now("event", wall=1000.0, watermark=None, grace=300) is None


def test_regrade_applies_the_new_grades_target() -> None:
    s = fold([created("A", grade="3"), event("A", "graded", 1, {"grade": "1"})])
    assert attendance_deadline(s, CONFIG) == at(s, 15)


def test_grades_without_target_never_breach() -> None:
    s = fold([created("A", grade="4")])
    assert attendance_deadline(s, CONFIG) is None
    assert not attendance_breached(s, CONFIG, now=at(s, 10_000))


def test_clock_from_dispatch_is_expressible() -> None:
    text = default_config_text().replace('clock_starts_at = "call"', 'clock_starts_at = "dispatch"',
                                         1)
    config = parse_config(text, "force.toml")
    s = fold([created("A", grade="1", area="north")], config)
    assert attendance_deadline(s, config) is None  # not dispatched: the clock has not started
    s = fold([created("A", grade="1", area="north"), event("A", "dispatched", 10, {})], config)
    assert attendance_deadline(s, config) == at(s, 25)
