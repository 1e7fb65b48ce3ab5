"""Two workers give what one gives: the shared DECC weeks through a join and a SIGKILL.

Real broker, real worker processes. The expected end state is recomputed from
the CSVs (tests/integration/test_replay_real_data.py, which also proves one
uninterrupted worker equals it). Every worker must answer for the whole force
(docs/state.md): the same open incidents with the same statuses, complete.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.support import REPO, Namespace, Worker, wait_for, wait_true
from tests.integration.test_replay_real_data import FILES, iso, recompute

pytestmark = pytest.mark.integration


def expected_open() -> dict[str, str]:
    """Incident id -> status of every incident the replayed export leaves open, read with
    the mapping that keeps a reopen with no later close open (:func:`mapping_file`): so
    the end state has open incidents to get right, not only closed ones."""
    out = {}
    for iid, inc in recompute(reopen_stays_open=True).items():
        last = sorted(inc["lifecycle"])[-1]
        if last[2] != "closed":
            out[iid] = last[2]
    return out


def expected_alerts(workdir: Path) -> set[tuple[str, str, str, str | None]]:
    """Every alert transition the replayed export raises, from the pure timeline fed the
    replay's own events in one pass and walked to where an event-time worker's frontier
    ends (the last event less the grace): what one uninterrupted worker publishes."""
    from pipeline.config import load_config
    from pipeline.domain.alerting import alert_record
    from pipeline.domain.events import event_from_document
    from pipeline.domain.timeline import AlertTimeline
    from pipeline.replay import load_mapping, plan
    from pipeline.settings import Settings

    config = load_config()
    docs, _ = plan(FILES, load_mapping(str(mapping_file(workdir))), config)
    events = [event_from_document(d) for d in docs]
    timeline = AlertTimeline(config, Settings().closed_retention_s)
    for e in events:
        timeline.offer(e)
    notes = timeline.advance(max(e.at for e in events) - config.windows.grace_seconds)[1]
    return {(r["fingerprint"], r["status"], r["starts_at"], r["ends_at"])
            for r in map(alert_record, notes)}


def published_alerts(ns: Namespace) -> set[tuple[str, str, str, str | None]]:
    import orjson

    from tests.integration.support import consume_all
    return {(r["fingerprint"], r["status"], r["starts_at"], r["ends_at"]) for r in (
        orjson.loads(m.value) for m in consume_all(ns.bootstrap, ns.topic("demand.alerts.v1"),
                                                   10**6, timeout=5))}


def alerts_equal(ns: Namespace, want: set[tuple[str, str, str, str | None]]) -> object:
    """True once the alerts topic holds exactly ``want`` (a re-sent record is no difference)."""
    got = published_alerts(ns)
    if got == want:
        return True
    return {"missing": sorted(want - got)[:5], "extra": sorted(got - want)[:5],
            "counts": (len(got), len(want))}


def mapping_file(workdir: Path) -> Path:
    """The shipped DECC mapping, but a reopen with no final close leaves the incident open."""
    text = (REPO / "deploy" / "mappings" / "decc-cad.toml").read_text()
    assert 'reopen_without_close = "stay_closed"' in text
    path = workdir / "decc-reopen.toml"
    path.write_text(text.replace('reopen_without_close = "stay_closed"',
                                 'reopen_without_close = "reopen"'))
    return path


def start_replay(ns: Namespace, workdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "pipeline", "replay", *map(str, FILES),
                             "--mapping", str(mapping_file(workdir)), "--quiet"],
                            env=ns.env(), cwd=workdir, stdout=subprocess.DEVNULL)


def force_wide(worker: Worker, want: dict[str, str]) -> Any:
    """True when this worker's views show exactly ``want`` for the whole force."""
    oldest = httpx.get(f"{worker.url}/incidents/oldest", params={"limit": 1000},
                       timeout=30).json()
    backlog = httpx.get(f"{worker.url}/backlog", timeout=30).json()
    got = {r["incident_id"]: r["status"] for r in oldest["incidents"]}
    if got == want and oldest["complete"] and backlog["complete"] and \
            backlog["open_total"] == len(want):
        return True
    return {"extra": sorted(set(got) - set(want)), "missing": sorted(set(want) - set(got)),
            "complete": (oldest["complete"], backlog["complete"]),
            "open_total": backlog["open_total"]}


def accepted(workers: list[Worker]) -> float:
    return sum(w.metric_sum("demand_events_total", outcome="accepted") for w in workers)


def settle(workers: list[Worker], want: dict[str, str], hours: int = 24) -> None:
    for w in workers:
        wait_true(f"worker {w.port} answers force-wide with the export's open incidents",
                  lambda w=w: force_wide(w, want), timeout=180, interval=2)
    # The demand windows too: every worker gives the export's hourly counts for the last
    # ``hours`` (a day by default), for the whole force; complete for the last day (older
    # hours lack the week before them, kept a week and a day).
    incs = recompute()
    last_hour = int(max(i["call"] for i in incs.values()) // 3600 * 3600)
    for h in range(last_hour - (hours - 1) * 3600, last_hour + 3600, 3600):
        want_h: dict[str, dict[str, int]] = {}
        for i in incs.values():
            if h <= i["call"] < h + 3600:
                row = want_h.setdefault(i["grade"], {})
                row[i["channel"]] = row.get(i["channel"], 0) + 1
        whole = h > last_hour - 24 * 3600
        for w in workers:
            def hour(w: Worker = w, h: int = h, want_h: Any = want_h, whole: bool = whole) -> Any:
                got = httpx.get(f"{w.url}/demand", params={"window": "1h", "at": iso(h)},
                                timeout=30).json()
                return (got.get("current"), got.get("complete") or not whole) == \
                    (want_h, True) or (w.port, iso(h), got.get("current"), got.get("complete"))
            wait_true(f"worker {w.port}: the export's demand in the hour from {iso(h)}",
                      hour, timeout=60, interval=1)


@pytest.fixture(scope="module")
def want() -> dict[str, str]:
    assert len(FILES) == 7, "the shared data is missing"
    return expected_open()


def test_a_worker_joining_mid_replay_changes_nothing(ns: Namespace, workdir: Path,
                                                     want: dict[str, str]) -> None:
    first = Worker(ns, workdir, DEMANDFLOW_CLOCK="event").start()
    workers = [first]
    try:
        replay = start_replay(ns, workdir)
        wait_for("the first worker well into the replay", lambda: accepted(workers) > 5000,
                 timeout=120, interval=0.5)
        workers.append(Worker(ns, workdir, DEMANDFLOW_CLOCK="event").start())
        assert replay.wait(timeout=300) == 0
        settle(workers, want)
        alerts = expected_alerts(workdir)
        wait_true("every alert transition one worker raises, and no other",
                  lambda: alerts_equal(ns, alerts), timeout=120, interval=2)
        # Nobody was killed, so the counters summed over the workers are one worker's.
        incs = recompute()
        for grade in "12345":
            assert sum(w.metric_sum("demand_incidents_received_total", grade=grade)
                       for w in workers) == sum(1 for i in incs.values() if i["grade"] == grade)
        assert sum(w.metric_sum("demand_partitions_ready") for w in workers) == 4
        assert all(w.metric_sum("demand_partitions_ready") > 0 for w in workers)
    finally:
        for w in workers:
            w.stop()


def test_a_worker_sigkilled_mid_replay_and_restarted_changes_nothing(
        ns: Namespace, workdir: Path, want: dict[str, str]) -> None:
    workers = [Worker(ns, workdir, DEMANDFLOW_CLOCK="event").start() for _ in range(2)]
    try:
        replay = start_replay(ns, workdir)
        wait_for("both workers well into the replay", lambda: accepted(workers) > 8000,
                 timeout=120, interval=0.5)
        workers[1].stop(signal.SIGKILL)
        # While the dead worker's partitions wait to move, the survivor says it is partial.
        partial = httpx.get(f"{workers[0].url}/backlog", timeout=30).json()
        assert partial["complete"] is False and partial["missing_partitions"]
        killed_at = time.monotonic()
        workers[1] = Worker(ns, workdir, DEMANDFLOW_CLOCK="event").start()
        assert replay.wait(timeout=300) == 0
        settle(workers, want)
        print(f"\nkill to correct force-wide views: {time.monotonic() - killed_at:.1f} s")
        alerts = expected_alerts(workdir)
        wait_true("every alert transition one worker raises, and no other",
                  lambda: alerts_equal(ns, alerts), timeout=120, interval=2)
    finally:
        for w in workers:
            w.stop()


def test_a_replay_in_slices_with_the_worker_idle_between_raises_the_same_alerts(
        ns: Namespace, workdir: Path, want: dict[str, str]) -> None:
    """A daily import: the shared weeks in nine --since/--until slices, the worker catching
    up and idle between them, end as one pass does, alerts included."""
    docs_first, docs_last = _span(workdir)
    cuts = [docs_first + (docs_last - docs_first) * n / 9 for n in range(1, 9)]
    worker = Worker(ns, workdir, DEMANDFLOW_CLOCK="event").start()
    try:
        bounds = [None, *cuts, None]
        for since, until in zip(bounds, bounds[1:], strict=False):
            window = ([] if since is None else ["--since", iso(since)]) + \
                ([] if until is None else ["--until", iso(until)])
            done = subprocess.run([sys.executable, "-m", "pipeline", "replay",
                                   *map(str, FILES), "--mapping", str(mapping_file(workdir)),
                                   "--quiet", *window], env=ns.env(), cwd=workdir,
                                  stdout=subprocess.DEVNULL, timeout=300)
            assert done.returncode == 0
            produced = accepted([worker])
            wait_for("the worker idle after the slice",
                     lambda produced=produced: _idle(worker, produced),
                     timeout=120, interval=1)
        settle([worker], want)
        alerts = expected_alerts(workdir)
        wait_true("every alert transition one pass raises, and no other",
                  lambda: alerts_equal(ns, alerts), timeout=120, interval=2)
    finally:
        worker.stop()


def _span(workdir: Path) -> tuple[float, float]:
    from pipeline.config import load_config
    from pipeline.domain.events import parse_time
    from pipeline.replay import load_mapping, plan

    docs, _ = plan(FILES, load_mapping(str(mapping_file(workdir))), load_config())
    return parse_time(docs[0]["occurred_at"]), parse_time(docs[-1]["occurred_at"])


def _idle(worker: Worker, before: float) -> bool:
    """Nothing new folded for three seconds."""
    now = accepted([worker])
    time.sleep(3)
    return accepted([worker]) == now and now >= before
