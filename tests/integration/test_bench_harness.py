"""`make bench`'s harness end to end on a tiny workload (the benchmark itself never runs here).

Real broker, the aiokafka baseline, the Quix Streams peer (its own venv) and a real worker:
the run must finish, agree across the three, and write its figures and ratios.
"""

from __future__ import annotations

import orjson

from bench import run


def test_bench_harness_runs_all_three_contenders_and_cross_checks(
        bootstrap: str, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("DEMANDFLOW_BOOTSTRAP_SERVERS", bootstrap)
    out = tmp_path / "result.json"
    report = run.main(["--incidents", "150", "--runs", "1", "--open", "300",
                       "--latency-seconds", "3", "--out", str(out)])
    assert report["agree"] is True and report["disagreements"] == []
    assert set(report["events_per_s"]) == {"baseline", "quix", "demandflow"}
    assert all(rate > 0 for rate in report["events_per_s"].values())
    checked = report["figures_checked"]
    assert checked["demandflow"] == checked["baseline"] == checked["quix"]
    assert checked["baseline"]["open"] > 0 and checked["baseline"]["window_cells"] > 0
    assert report["memory_recovery"]["open_incidents"] == 300
    assert report["latency"]["events"] > 0 and report["latency"]["p99_ms"] > 0
    assert orjson.loads(out.read_bytes()) == orjson.loads(orjson.dumps(report))
    printed = capsys.readouterr().out
    assert "demandflow vs baseline" in printed and "cross-check: identical" in printed
