"""Window arithmetic over minute buckets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain import windows as w

T0 = 1_768_464_000  # 2026-01-15T08:00:00Z, a multiple of 3600


def test_minute_and_tumbling_alignment() -> None:
    assert w.minute_of(T0 + 59.9) == T0
    assert w.tumbling(T0 + 899, 900) == (T0, T0 + 900)
    assert w.tumbling(T0 + 900, 900) == (T0 + 900, T0 + 1800)


def test_late_only_beyond_grace() -> None:
    assert not w.is_late(T0, None, 300)
    assert not w.is_late(T0 - 300, T0, 300)
    assert w.is_late(T0 - 301, T0, 300)


def test_demand_current_and_same_window_last_week() -> None:
    buckets = [(T0, {"1|999": 2}), (T0 + 840, {"1|999": 1, "2|101": 1}), (T0 + 900, {"1|999": 5}),
               (T0 - w.WEEK, {"1|999": 7}), (T0 - w.WEEK + 900, {"1|999": 9})]
    result = w.demand(buckets, 900, T0 + 600)
    assert result["current"] == {("1", "999"): 3, ("2", "101"): 1}
    assert result["last_week"] == {("1", "999"): 7}


def test_rolling_24h_includes_the_current_minute_and_excludes_a_day_ago() -> None:
    buckets = [(T0, {"3|online": 1}), (T0 - w.DAY, {"3|online": 4}),
               (T0 - w.DAY + 60, {"3|online": 2})]
    assert w.demand(buckets, w.DAY, T0 + 30)["current"] == {("3", "online"): 3}


def test_parse_window_names() -> None:
    assert w.parse_window("15m", [60, 900, 3600]) == 900
    assert w.parse_window("24h", [60, 900, 3600]) == w.DAY
    try:
        w.parse_window("2h", [60, 900])
    except ValueError:
        pass
    else:
        raise AssertionError("2h is not configured")


@given(st.lists(st.tuples(st.integers(0, 3 * 3600), st.sampled_from("12345"),
                          st.sampled_from(["999", "101"])), max_size=200),
       st.integers(0, 3 * 3600))
def test_windows_equal_a_plain_count(calls, now_offset) -> None:
    buckets: dict[int, dict[str, int]] = {}
    for offset, grade, channel in calls:
        m = w.minute_of(T0 + offset)
        buckets[m] = w.add(buckets.get(m), grade, channel)
    now = T0 + now_offset
    start = (now // 3600) * 3600
    expected: dict[tuple[str, str], int] = {}
    for offset, grade, channel in calls:
        if start <= T0 + offset < start + 3600:
            expected[(grade, channel)] = expected.get((grade, channel), 0) + 1
    assert w.demand(list(buckets.items()), 3600, now)["current"] == expected
