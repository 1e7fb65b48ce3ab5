"""The benchmark harness itself works (on a tiny workload); benchmarks never run here."""

from __future__ import annotations

import orjson
import pytest

from bench import hot_path
from bench.run import quantile
from bench.workload import Work, disagreements, generate


def test_hot_path_bench_runs_and_reports_every_step(capsys) -> None:
    figures = hot_path.main(incidents=30)
    assert len(figures) == 5 and all(v > 0 for v in figures.values())
    out = capsys.readouterr().out
    assert "vs baseline" in out and "decode_event (as shipped)" in out
    assert "alert timeline" in out


def test_workload_is_deterministic() -> None:
    assert hot_path.workload(20, seed=3) == hot_path.workload(20, seed=3)
    assert generate(300, seed=3) == generate(300, seed=3)
    assert generate(300, seed=3) != generate(300, seed=4)


def fold_all(records: list[tuple[bytes, bytes]]) -> Work:
    work, states = Work(), {}
    for _, value in records:
        ev = work.decode(value)
        if ev is not None and (after := work.fold(states.get(ev.incident_id), ev)) is not None:
            states[ev.incident_id] = after
    return work


def test_workload_has_one_percent_malformed_and_duplicates_and_a_backlog_at_the_end() -> None:
    records = generate(3000, seed=11)
    figures = fold_all(records).figures
    assert figures.records == len(records)
    assert 0.007 < figures.rejected / len(records) < 0.013
    assert 0.007 < figures.duplicates / len(records) < 0.013
    assert sum(figures.backlog.values()) > 0  # events after the span's end are left out
    assert sum(figures.windows.values()) == 3000  # each incident counted once, duplicates or not
    first_times, seen, checker = [], set(), Work()
    for _, value in records:
        ev = checker.decode(value)
        if ev is not None and ev.event_id not in seen:
            seen.add(ev.event_id)
            first_times.append(ev.at)
    assert first_times == sorted(first_times)  # event-time order, resends aside


def test_the_cross_check_names_every_difference() -> None:
    figures = fold_all(generate(200, seed=5)).figures.as_json()
    assert disagreements({"baseline": figures, "quix": figures}) == []
    wrong = orjson.loads(orjson.dumps(figures))
    cell = next(iter(wrong["windows"]))
    wrong["windows"][cell] += 1
    found = disagreements({"baseline": figures, "demandflow": wrong})
    assert len(found) == 1 and "demandflow vs baseline: windows" in found[0] and cell in found[0]


def test_quantile_interpolates_like_histogram_quantile() -> None:
    buckets = [(0.01, 0.0), (0.05, 50.0), (0.1, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.05)
    assert quantile(0.99, buckets) == pytest.approx(0.099)
    assert quantile(0.25, buckets) == pytest.approx(0.03)


def test_backlog_scale_bench_runs_and_reports_each_size(capsys, monkeypatch) -> None:
    from bench import backlog_scale

    monkeypatch.setattr(backlog_scale, "SIZES", (300,))
    monkeypatch.setattr(backlog_scale, "MEASURED_EVENTS", 200)
    monkeypatch.setattr(backlog_scale, "TICKS", 5)
    backlog_scale.main()
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.strip().startswith("300"))
    assert len(row.split()) == 9 and "old/new tick" in out and "record/full" in out
    # The timeline's record of an incident is smaller than the full state it used to copy.
    assert 0 < float(row.split()[-1]) < 1
