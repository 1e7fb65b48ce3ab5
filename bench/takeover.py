"""Takeover time: one of two workers SIGKILLed with N open incidents held between them.

Issue 19 asks for correct force-wide views again within 30 s of a kill with 100,000
open incidents. This produces N open incidents (``created`` events, keyed by incident
id) into a fresh namespace on a real broker (``DEMANDFLOW_BOOTSTRAP_SERVERS``), runs
two real workers (standby replicas on, the default) until both answer the whole
force, SIGKILLs one and times until the survivor again answers ``complete`` with all
N open (``/backlog``), and until it raises alerts again (its alert frontier moving).

    DEMANDFLOW_BOOTSTRAP_SERVERS=127.0.0.1:9092 python -m bench.takeover [N] [STORE ...]

``STORE``: the workers' ``DEMANDFLOW_STORE``, one run each; by default Faust's own
``memory://`` (the baseline, which re-reads whole changelogs on promotion) and the
shipped ``memory+offsets://`` (pipeline.store), with the ratio between them.

Not part of ``make test`` (it takes minutes); figures go in docs/performance.md.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from kafka import KafkaProducer

from bench.clients import BenchNamespace, kafka
from pipeline.domain.events import format_time
from tests.integration.support import Worker, wait_for

AREAS = ("north", "south", "east", "west", "central")


BASELINE = "memory://"


def produce(ns: BenchNamespace, n: int) -> None:
    producer = KafkaProducer(**kafka(ns.bootstrap), linger_ms=20,
                             batch_size=256 * 1024)
    start = time.time() - 3600
    for i in range(n):
        iid = f"TK{i:07d}"
        doc = {"event_id": f"tk-{i}", "incident_id": iid, "event_type": "created",
               "occurred_at": format_time(start + i * 3600 / n), "schema_version": 1,
               "source": "bench", "data": {"grade": "3", "category": "ASB", "channel": "101",
                                           "area": AREAS[i % len(AREAS)], "vulnerable": False}}
        producer.send(ns.topic("incidents.raw.v1"), key=iid.encode(), value=orjson.dumps(doc))
    producer.flush()
    producer.close()


def whole(worker: Worker, n: int) -> bool:
    got = httpx.get(f"{worker.url}/backlog", timeout=30).json()
    return bool(got["complete"] and got["open_total"] == n)


def takeover(n: int, store: str) -> tuple[float, float]:
    """(SIGKILL → correct force-wide views, SIGKILL → alerts evaluated again), seconds."""
    import os

    ns = BenchNamespace(os.environ["DEMANDFLOW_BOOTSTRAP_SERVERS"])
    workdir = Path(tempfile.mkdtemp(prefix="takeover-"))
    workers = [Worker(ns, workdir, DEMANDFLOW_STORE=store).start() for _ in range(2)]
    try:
        began = time.monotonic()
        produce(ns, n)
        for w in workers:
            wait_for(f"worker {w.port} answering all {n:,}", lambda w=w: whole(w, n),
                     timeout=1800, interval=2)
        print(f"{store}: {n:,} open incidents held by two workers after "
              f"{time.monotonic() - began:.0f} s")
        time.sleep(10)  # standbys settled
        frontier = workers[0].metric_sum("demand_alerts_evaluated_until_timestamp_seconds") + \
            workers[1].metric_sum("demand_alerts_evaluated_until_timestamp_seconds")
        killed = time.monotonic()
        workers[1].stop(signal.SIGKILL)
        survivor = workers[0]
        wait_for("the survivor partial", lambda: not whole(survivor, n), timeout=60,
                 interval=0.2)
        wait_for("the survivor whole again", lambda: whole(survivor, n), timeout=600,
                 interval=0.5)
        views = time.monotonic() - killed
        wait_for("the survivor evaluating alerts", lambda: survivor.metric_sum(
            "demand_alerts_evaluated_until_timestamp_seconds") > frontier, timeout=600,
            interval=0.5)
        alerts = time.monotonic() - killed
        print(f"{store}: SIGKILL to correct force-wide views: {views:.1f} s; to alerts "
              f"evaluated again: {alerts:.1f} s (session timeout 10 s, standby replicas 1)")
        return views, alerts
    finally:
        for w in workers:
            if w.proc is not None and w.proc.poll() is None:
                w.stop()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    stores = sys.argv[2:] or [BASELINE, "memory+offsets://"]
    results = {store: takeover(n, store) for store in stores}
    if BASELINE in results:
        base = results[BASELINE]
        for store, (views, alerts) in results.items():
            print(f"{store:>20}: views {views:5.1f} s ({views / base[0]:.2f}x {BASELINE}), "
                  f"alerts {alerts:5.1f} s ({alerts / base[1]:.2f}x)")


if __name__ == "__main__":
    main()
