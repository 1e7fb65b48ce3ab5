"""End-to-end throughput of one real worker on a replayed export.

Starts a worker (its own app id and topic prefix) against the broker in
DEMANDFLOW_BOOTSTRAP_SERVERS (default: the local one from ``make kafka-start``),
replays the given exports as fast as the producer goes, and reports how long
until the last event was applied: events/s for ingest -> events topic ->
backlog with its changelogs and state topic.

    python -m bench.end_to_end ../shared/data/decc-cad/week*.csv --mapping decc-cad
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench.clients import BenchNamespace
from tests.integration.support import Worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--mapping", default="decc-cad")
    args = parser.parse_args()
    ns = BenchNamespace(os.environ.get("DEMANDFLOW_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    workdir = Path(tempfile.mkdtemp(prefix="demandflow-bench-"))
    worker = Worker(ns, workdir, DEMANDFLOW_CLOCK="event").start()
    try:
        start = time.monotonic()
        report = workdir / "report.json"
        subprocess.run([sys.executable, "-m", "pipeline", "replay", *args.files, "--mapping",
                        args.mapping, "--quiet", "--report", str(report)], env=ns.env(),
                       cwd=workdir, check=True, stdout=subprocess.DEVNULL)
        produced_at = time.monotonic() - start
        events = orjson.loads(report.read_bytes())["events_produced"]
        while worker.metric_sum("demand_events_total", outcome="accepted") < events:
            time.sleep(0.25)
        elapsed = time.monotonic() - start
    finally:
        worker.stop()
    print(f"{events:,} events produced in {produced_at:.1f} s, all applied after {elapsed:.1f} s:"
          f" {events / elapsed:,.0f} events/s end to end (one worker)")


if __name__ == "__main__":
    main()
