"""Do N workers end where one uninterrupted worker ends? (docs/state.md)

Replays the shared DECC weeks (or ``--files``) into fresh namespaces on a real
broker (``DEMANDFLOW_BOOTSTRAP_SERVERS``) with real worker processes, one
scenario at a time, and compares each end state with the first scenario's:

- the open incidents and their statuses, as every live worker answers them;
- the hourly demand windows of the last week of the log;
- the counters summed over live workers (received, response histograms,
  breaches; meaningless after a SIGKILL: a killed process's counters restart);
- the alert transitions on ``demand.alerts.v1`` (fingerprint, status,
  starts_at, ends_at; a re-sent transition is not a difference).

    python -m bench.scale_check one one two-kill two-join

Scenarios: ``one`` (one worker), ``two`` (two, both started before the
replay), ``two-kill`` (two, one SIGKILLed mid-replay and restarted),
``two-join`` (one, a second joining mid-replay), ``three`` and ``three-kill``
(the same with three workers), ``two-outage`` (two workers catching up on the
whole log when the broker is stopped for 30 s and started again: needs the
broker to be the one ``deploy/kafka/kafka.sh`` runs with this environment's
``DEMANDFLOW_KAFKA_PORT`` / ``_RUN_DIR``). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.clients import BenchNamespace, kafka
from pipeline.domain.events import parse_time
from tests.integration.support import Worker, consume_all, wait_for
from tests.integration.test_replay_real_data import FILES, iso

COUNTERS = ("demand_incidents_received_total", "demand_response_seconds_count",
            "demand_response_seconds_sum", "demand_sla_breaches_total")


def run(scenario: str, bootstrap: str, root: Path, files: list[Path],
        mapping: str, until: float | None = None) -> dict[str, Any]:
    """One scenario's end state; ``until``: the stream time (the baseline's) to wait for."""
    ns = BenchNamespace(bootstrap)
    workdir = root / f"{scenario}-{ns.name}"
    workdir.mkdir(parents=True)
    env = {"DEMANDFLOW_CLOCK": "event"}
    first = {"one": 1, "two-join": 1, "three": 3, "three-kill": 3}.get(scenario, 2)
    outage = scenario == "two-outage"
    workers = [] if outage else [Worker(ns, workdir, **env).start() for _ in range(first)]
    replay = subprocess.Popen([sys.executable, "-m", "pipeline", "replay", *map(str, files),
                               "--mapping", mapping, "--quiet"], env=ns.env(), cwd=workdir,
                              stdout=subprocess.DEVNULL)
    try:
        if outage:  # the whole log first, then two workers catching up on it
            assert replay.wait(timeout=600) == 0
            workers = [Worker(ns, workdir, **env).start() for _ in range(first)]
        if scenario in ("two-kill", "three-kill", "two-join", "two-outage"):
            wait_for("the replay under way", lambda: _events(workers) > 6000, timeout=180,
                     interval=0.5)
            if scenario.endswith("-kill"):
                workers[1].stop(signal.SIGKILL)
                workers[1] = Worker(ns, workdir, **env).start()
            elif outage:
                script = str(Path(__file__).resolve().parent.parent / "deploy/kafka/kafka.sh")
                broker_env = {k: v for k, v in os.environ.items()
                              if k != "DEMANDFLOW_BOOTSTRAP_SERVERS"}  # else it leaves it alone
                subprocess.run([script, "stop"], check=True, timeout=120, env=broker_env)
                time.sleep(30)
                subprocess.run([script, "start"], check=True, timeout=300, env=broker_env)
                print(f"{scenario}: broker stopped for 30 s and started again", flush=True)
            else:
                workers.append(Worker(ns, workdir, **env).start())
        assert replay.wait(timeout=600) == 0
        _settle(workers, until)
        return _state(workers, ns)
    finally:  # also when the run fails: no worker left behind
        for w in workers:
            w.stop()


def _events(workers: list[Worker]) -> float:
    return sum(w.metric_sum("demand_events_total") for w in workers if w.proc.poll() is None)


def _settle(workers: list[Worker], until: float | None) -> None:
    """Wait for the force-wide stream time to reach ``until`` (after a broker restart the
    workers can sit still for tens of seconds before they catch up: quiet is not done),
    then until nothing moves for 10 s and the alert frontier stops too."""
    if until is not None:
        wait_for("the workers caught up", lambda: _stream_now(workers[0]) >= until,
                 timeout=600, interval=2)
    last, same = None, 0
    while same < 10:
        now = (_events(workers), tuple(
            w.metric_sum("demand_alerts_evaluated_until_timestamp_seconds") for w in workers))
        same = same + 1 if now == last else 0
        last = now
        time.sleep(1)


def _stream_now(worker: Worker) -> float:
    """The force-wide stream time (every partition's watermark), as /demand answers it."""
    return parse_time(httpx.get(f"{worker.url}/demand", timeout=60).json()["as_of"])


def _state(workers: list[Worker], ns: BenchNamespace) -> dict[str, Any]:
    opens, completes = [], []
    for w in workers:
        got = httpx.get(f"{w.url}/incidents/oldest", params={"limit": 1000}, timeout=60).json()
        opens.append({r["incident_id"]: r["status"] for r in got["incidents"]})
        completes.append(got["complete"])
    end = _stream_now(workers[0])
    hour = int(end // 3600 * 3600)
    windows = {}
    for h in range(hour - 7 * 86400 + 3600, hour + 3600, 3600):
        for _ in range(30):  # a refusal (e.g. a rebalance in progress) is waited out
            got = httpx.get(f"{workers[0].url}/demand", params={"window": "1h", "at": iso(h)},
                            timeout=60).json()
            if "current" in got:
                break
            print(f"  /demand at {iso(h)} (as of {iso(end)}): {got}", flush=True)
            time.sleep(2)
        windows[h] = (got.get("current"), got.get("complete"))
    counters: dict[Any, float] = {}
    for w in workers:
        for (name, labels), v in w.metrics().items():
            if name in COUNTERS:
                counters[(name, labels)] = counters.get((name, labels), 0.0) + v
    alerts = {(r["fingerprint"], r["status"], r["starts_at"], r.get("ends_at"))
              for r in (orjson.loads(m.value) for m in
                        consume_all(ns.bootstrap, ns.topic("demand.alerts.v1"), 10**6,
                                    timeout=10, **kafka(ns.bootstrap)))}
    return {"open": opens, "complete": completes, "windows": windows, "counters": counters,
            "alerts": alerts, "end": end}


def compare(name: str, got: dict[str, Any], base: dict[str, Any], killed: bool) -> None:
    want = base["open"][0]
    print(f"\n== {name}")
    for i, o in enumerate(got["open"]):
        extra, missing = sorted(set(o) - set(want)), sorted(set(want) - set(o))
        status = sum(1 for k in set(o) & set(want) if o[k] != want[k])
        print(f"  worker {i}: open {len(o)} (one worker: {len(want)}), extra {extra}, "
              f"missing {missing}, other status {status}, complete {got['complete'][i]}")
    diff = [h for h in base["windows"] if got["windows"].get(h) != base["windows"][h]]
    print(f"  hourly windows of the last week: {len(base['windows'])}, differing {len(diff)}")
    if killed:
        print("  counters: not compared (a killed worker's counters restart at 0)")
    else:
        keys = set(got["counters"]) | set(base["counters"])
        diff = [k for k in keys if abs(got["counters"].get(k, 0) - base["counters"].get(k, 0))
                > 1e-6 * max(1.0, abs(base["counters"].get(k, 0)))]
        print(f"  counter series: {len(keys)}, differing {len(diff)}")
    a, b = got["alerts"], base["alerts"]
    print(f"  alert transitions: {len(a)} (one worker: {len(b)}), only here {len(a - b)}, "
          f"missing here {len(b - a)}")
    for label, diff in (("only here", a - b), ("missing here", b - a)):
        for fp, status, starts, ends in sorted(diff, key=lambda t: t[2])[:5]:
            print(f"    {label}: {fp[:12]} {status} starts {starts} ends {ends}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenarios", nargs="+",
                        choices=["one", "two", "two-kill", "two-join", "three", "three-kill",
                                 "two-outage"])
    parser.add_argument("--files", nargs="*", type=Path, default=FILES)
    parser.add_argument("--reopen-stays-open", action="store_true",
                        help="replay with a mapping that keeps a reopen with no later close "
                             "open (as the make-test fault suite does), so the end state has "
                             "open incidents to compare; the shipped mapping closes them all")
    args = parser.parse_args()
    bootstrap = os.environ.get("DEMANDFLOW_BOOTSTRAP_SERVERS")
    if not bootstrap:
        sys.exit("set DEMANDFLOW_BOOTSTRAP_SERVERS (e.g. deploy/kafka/kafka.sh start)")
    root = Path(".run/scale-check")
    root.mkdir(parents=True, exist_ok=True)
    mapping = "decc-cad"
    if args.reopen_stays_open:
        from tests.integration.test_scale_out import mapping_file
        mapping = str(mapping_file(root.resolve()))
    base_name, base = args.scenarios[0], run(args.scenarios[0], bootstrap, root, args.files,
                                             mapping)
    print(f"baseline: {base_name}: open {len(base['open'][0])}, alert transitions "
          f"{len(base['alerts'])}", flush=True)
    for name in args.scenarios[1:]:  # each compared as soon as it ends
        compare(name, run(name, bootstrap, root, args.files, mapping, base["end"]), base,
                killed=name.endswith("-kill"))


if __name__ == "__main__":
    main()
