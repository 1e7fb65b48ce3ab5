"""The benchmark harness itself works (on a tiny workload); benchmarks never run here."""

from __future__ import annotations

from bench import hot_path


def test_hot_path_bench_runs_and_reports_every_step(capsys) -> None:
    figures = hot_path.main(incidents=30)
    assert len(figures) == 4 and all(v > 0 for v in figures.values())
    out = capsys.readouterr().out
    assert "vs baseline" in out and "decode_event (as shipped)" in out


def test_workload_is_deterministic() -> None:
    assert hot_path.workload(20, seed=3) == hot_path.workload(20, seed=3)
