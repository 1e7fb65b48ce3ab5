"""`make bench`: demandflow against a raw aiokafka loop and Quix Streams, in one run.

1. Generate the deterministic workload (bench.workload) and, for every run of
   every contender, load it into a fresh raw topic on the broker.
2. Throughput: each contender consumes its topic from the start; events/s is
   records / (last record counted - first record counted), median of --runs.
3. Cross-check: open backlog by grade x area and 15-minute windows by grade
   must be identical across the three, run by run; any difference fails the
   benchmark (exit 1) - a fast wrong answer does not count.
4. Latency (demandflow): a steady produced load at 50% of its measured
   capacity; event produced -> applied to the state /metrics reads, p50/p99.
5. Memory and recovery (demandflow): RSS per open incident with --open
   incidents open, then the time a restarted worker takes to show them all.

Figures are printed as a table with ratios and written to
bench/results/<date>.json. The broker is the local one (started here if not
running) unless DEMANDFLOW_BOOTSTRAP_SERVERS names another.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from kafka.admin import KafkaAdminClient

from bench.clients import BenchNamespace, kafka
from bench.workload import (
    START,
    WINDOW_S,
    Record,
    disagreements,
    generate,
    memory_kib,
)
from pipeline.domain.events import format_time
from pipeline.settings import Settings
from pipeline.topics import RAW, ensure_topics
from tests.integration.support import Namespace, Worker, wait_for

REPO = Path(__file__).resolve().parents[1]
BENCH_PYTHON = REPO / ".venv-bench" / "bin" / "python"
RESULTS = REPO / "bench" / "results"
SPAN_S = 6 * 86400.0


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# --- Kafka ------------------------------------------------------------------------------

def broker() -> str:
    """The broker to use: the user's, or the local one (started if it is not running)."""
    given = os.environ.get("DEMANDFLOW_BOOTSTRAP_SERVERS")
    if given:
        return given
    subprocess.run([str(REPO / "deploy/kafka/kafka.sh"), "start"], check=True,
                   stdout=subprocess.DEVNULL)
    return "127.0.0.1:9092"


def fresh_raw_topic(bootstrap: str, records: list[Record]) -> Namespace:
    """A new namespace whose raw topic holds ``records``."""
    ns = BenchNamespace(bootstrap, name=f"bench{os.urandom(4).hex()}")
    ensure_topics(Settings(bootstrap_servers=bootstrap, app_id=ns.name, topic_prefix=ns.prefix))
    asyncio.run(produce(bootstrap, ns.topic(RAW), records))
    return ns


async def produce(bootstrap: str, topic: str, records: list[Record]) -> None:
    producer = AIOKafkaProducer(**kafka(bootstrap), linger_ms=10, acks=1,
                                max_batch_size=512 * 1024)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


# --- contenders -------------------------------------------------------------------------

def run_script(python: Path | str, module: str, args: list[str]) -> dict[str, Any]:
    """Run a contender module in its own process; its last stdout line is its JSON result."""
    out = subprocess.run([str(python), "-m", module, *args], cwd=REPO, capture_output=True,
                         text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"{module} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return orjson.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def baseline(bootstrap: str, records: list[Record]) -> dict[str, Any]:
    ns = fresh_raw_topic(bootstrap, records)
    return run_script(sys.executable, "bench.baseline",
                      ["--bootstrap", bootstrap, "--topic", ns.topic(RAW),
                       "--expect", str(len(records))])


def quix(bootstrap: str, records: list[Record], workdir: Path) -> dict[str, Any]:
    ns = fresh_raw_topic(bootstrap, records)
    return run_script(BENCH_PYTHON, "bench.quix_peer",
                      ["--bootstrap", bootstrap, "--topic", ns.topic(RAW),
                       "--expect", str(len(records)), "--state-dir", str(workdir / ns.name)])


def counted(worker: Worker, outcome: str | None = None) -> float:
    """Records the worker has counted (every outcome: accepted, duplicate, late, rejected)."""
    labels = {"outcome": outcome} if outcome else {}
    return worker.metric_sum("demand_events_total", **labels)


def demandflow(bootstrap: str, records: list[Record], workdir: Path) -> dict[str, Any]:
    """The real worker, as shipped (event-time clock, as for any replay).

    Progress is read from the worker's committed offsets on the raw topic (it commits
    once a batch is folded and forwarded), which costs the worker nothing; a /metrics
    scrape summarises every incident held, so polling it would slow what is measured.
    The counters are checked once at the end.
    """
    ns = fresh_raw_topic(bootstrap, records)
    worker = Worker(ns, workdir, DEMANDFLOW_CLOCK="event").start()
    admin = KafkaAdminClient(**kafka(bootstrap))
    raw = ns.topic(RAW)
    try:
        # From the last poll that saw nothing committed to the first that saw everything:
        # an upper bound on the time taken, by at most two poll intervals.
        first = last = None
        idle = time.perf_counter()
        while True:
            offsets = admin.list_group_offsets(ns.name).get(ns.name, {})
            done = sum(o.offset for tp, o in offsets.items() if tp.topic == raw and o.offset > 0)
            now = time.perf_counter()
            if not done:
                idle = now
            elif first is None:
                first = idle
            if done >= len(records):
                last = now
                break
            time.sleep(0.25)
        wait_for("every record counted", lambda: counted(worker) >= len(records), timeout=60)
        figures = demandflow_figures(worker.url)
        peak = memory_kib(worker.proc.pid)  # type: ignore[union-attr]
    finally:
        admin.close()
        worker.stop()
    return {"seconds": last - first, "records": len(records),
            "peak_rss_kib": peak, "figures": figures}


def demandflow_figures(url: str) -> dict[str, Any]:
    """Backlog by grade x area from /backlog; 15-minute windows by grade from /demand."""
    with httpx.Client(base_url=url, timeout=30) as http:
        by_grade_area = http.get("/backlog").json()["by_grade_area"]
        backlog = {f"{g}|{a}": n for g, areas in by_grade_area.items() for a, n in areas.items()
                   if n}
        windows: dict[str, int] = {}
        for start in range(int(START), int(START + SPAN_S) + WINDOW_S, WINDOW_S):
            current = http.get("/demand", params={"window": "15m",
                                                  "at": format_time(start)}).json()["current"]
            for grade, channels in current.items():
                if sum(channels.values()):
                    windows[f"{start}|{grade}"] = sum(channels.values())
    return {"backlog": dict(sorted(backlog.items())), "windows": dict(sorted(windows.items()))}


# --- latency, memory, recovery (demandflow) ---------------------------------------------

def latency(bootstrap: str, rate: float, seconds: float, workdir: Path) -> dict[str, Any]:
    """Produce new incidents at ``rate``/s for ``seconds``; event produced -> applied.

    Each event's time is the instant it is produced, so the worker's own
    ``demand_event_lag_seconds`` histogram (event time -> applied to the state
    that /metrics reads on every scrape) holds exactly this latency; p50/p99
    are interpolated within its buckets as Prometheus' histogram_quantile does.
    Polling /metrics fast enough to time each event would load the worker more
    than the events do (each scrape summarises every open incident).
    """
    ns = fresh_raw_topic(bootstrap, [])
    worker = Worker(ns, workdir).start()
    try:
        sent = asyncio.run(_steady_load(bootstrap, ns.topic(RAW), rate, seconds))
        while counted(worker, "accepted") < sent:
            time.sleep(0.5)
        buckets = sorted((float(dict(labels)["le"]), value)
                         for (name, labels), value in worker.metrics().items()
                         if name == "demand_event_lag_seconds_bucket")
    finally:
        worker.stop()
    return {"rate": rate, "seconds": seconds, "events": sent,
            "p50_ms": 1000 * quantile(0.5, buckets), "p99_ms": 1000 * quantile(0.99, buckets)}


def quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """histogram_quantile over cumulative (upper bound, count) buckets."""
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = upper, count
    return lower


async def _steady_load(bootstrap: str, topic: str, rate: float, seconds: float) -> int:
    """Send new incidents at ``rate``/s, each stamped with its send instant; return how many."""
    producer = AIOKafkaProducer(**kafka(bootstrap), linger_ms=0, acks=1)
    await producer.start()
    start = time.time()
    i = 0
    try:
        while (elapsed := time.time() - start) < seconds:
            while i < elapsed * rate:
                doc = {"event_id": f"lat{i}", "incident_id": f"L{i:08d}", "event_type": "created",
                       "occurred_at": format_time(time.time()), "schema_version": 1,
                       "source": "bench", "data": {"grade": "2", "area": "north",
                                                   "channel": "999", "category": "ASB",
                                                   "vulnerable": False}}
                await producer.send(topic, orjson.dumps(doc), key=f"L{i:08d}".encode())
                i += 1
            await asyncio.sleep(0.002)
        await producer.flush()
    finally:
        await producer.stop()
    return i


def memory_and_recovery(bootstrap: str, open_incidents: int, workdir: Path) -> dict[str, Any]:
    """RSS per open incident with ``open_incidents`` open, and the restart time to see them."""
    created = [(f"R{i:08d}".encode(), orjson.dumps({
        "event_id": f"rec{i}", "incident_id": f"R{i:08d}", "event_type": "created",
        "occurred_at": format_time(START + i * 0.5), "schema_version": 1, "source": "bench",
        "data": {"grade": "3", "area": "north", "channel": "999", "category": "ASB",
                 "vulnerable": False}})) for i in range(open_incidents)]
    ns = fresh_raw_topic(bootstrap, [])
    worker = Worker(ns, workdir, DEMANDFLOW_CLOCK="event").start()
    try:
        idle = memory_kib(worker.proc.pid, "VmRSS")  # type: ignore[union-attr]
        asyncio.run(produce(bootstrap, ns.topic(RAW), created))
        while counted(worker, "accepted") < open_incidents:
            time.sleep(0.5)
        loaded = memory_kib(worker.proc.pid, "VmRSS")  # type: ignore[union-attr]
    finally:
        worker.stop()
    start = time.monotonic()
    again = Worker(ns, workdir, DEMANDFLOW_CLOCK="event")
    again.port = worker.port
    again.env = worker.env
    again.start(timeout=600)
    try:
        while httpx.get(f"{again.url}/backlog", timeout=30).json()["open_total"] < open_incidents:
            time.sleep(0.2)
        recovery = time.monotonic() - start
    finally:
        again.stop()
    return {"open_incidents": open_incidents, "rss_idle_kib": idle, "rss_loaded_kib": loaded,
            "bytes_per_open_incident": (loaded - idle) * 1024 / open_incidents,
            "recovery_seconds": recovery}


# --- the run ----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=200_000,
                        help="incidents in the workload (200,000 -> ~1.07 M records)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--open", type=int, default=100_000,
                        help="open incidents for the memory and recovery figures")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--contenders", default="baseline,quix,demandflow")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    contenders = args.contenders.split(",")

    bootstrap = broker()
    log(f"generating {args.incidents:,} incidents (seed {args.seed})")
    records = generate(args.incidents, seed=args.seed, span_s=SPAN_S)
    log(f"workload: {len(records):,} records")
    workdir = Path(tempfile.mkdtemp(prefix="demandflow-bench-"))
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
    failures: list[str] = []
    for run in range(1, args.runs + 1):
        for name in contenders:
            log(f"run {run}/{args.runs}: {name}")
            if name == "baseline":
                result = baseline(bootstrap, records)
            elif name == "quix":
                result = quix(bootstrap, records, workdir)
            else:
                result = demandflow(bootstrap, records, workdir)
            result["events_per_s"] = result["records"] / result["seconds"]
            log(f"  {result['events_per_s']:,.0f} events/s")
            results[name].append(result)
        failures += disagreements({n: results[n][-1]["figures"] for n in contenders})

    rates = {n: statistics.median(r["events_per_s"] for r in rs) for n, rs in results.items()}
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "workload": {"incidents": args.incidents, "records": len(records), "seed": args.seed,
                     "malformed": "1%", "duplicates": "1%", "span_hours": SPAN_S / 3600},
        "runs": args.runs,
        "events_per_s": {n: round(v) for n, v in rates.items()},
        "peak_rss_mib": {n: round(max(r["peak_rss_kib"] for r in rs) / 1024, 1)
                         for n, rs in results.items()},
        "agree": not failures, "disagreements": failures,
        "figures_checked": {n: {"backlog_cells": len(rs[-1]["figures"]["backlog"]),
                                "open": sum(rs[-1]["figures"]["backlog"].values()),
                                "window_cells": len(rs[-1]["figures"]["windows"])}
                            for n, rs in results.items()},
        "all_runs": {n: [round(r["events_per_s"]) for r in rs] for n, rs in results.items()},
    }
    if "demandflow" in rates:
        for other in ("baseline", "quix"):
            if other in rates:
                report[f"demandflow_vs_{other}"] = round(rates["demandflow"] / rates[other], 3)
        capacity = rates["demandflow"]
        log(f"latency at 50% of capacity ({capacity / 2:,.0f} events/s)")
        report["latency"] = latency(bootstrap, capacity / 2, args.latency_seconds, workdir)
        log(f"memory and recovery with {args.open:,} open incidents")
        report["memory_recovery"] = memory_and_recovery(bootstrap, args.open, workdir)
    print_table(report)
    out = args.out or RESULTS / f"{dt.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    log(f"written {out}")
    if failures:
        print("\nCROSS-CHECK FAILED: the contenders disagree\n  " + "\n  ".join(failures))
        raise SystemExit(1)
    return report


def print_table(report: dict[str, Any]) -> None:
    w = report["workload"]
    print(f"\n{w['records']:,} records ({w['incidents']:,} incidents, 1% malformed, 1% duplicate),"
          f" median of {report['runs']} runs, {report['machine']['cpus']} CPUs")
    print(f"{'contender':12} {'events/s':>10} {'peak RSS MiB':>13} {'runs':>24}")
    for name, rate in report["events_per_s"].items():
        runs = ", ".join(f"{r:,}" for r in report["all_runs"][name])
        print(f"{name:12} {rate:10,} {report['peak_rss_mib'][name]:13,.1f} {runs:>24}")
    for key in ("demandflow_vs_baseline", "demandflow_vs_quix"):
        if key in report:
            print(f"{key.replace('_', ' '):28} {report[key]:.3f}x")
    print("cross-check: " + ("identical backlog and windows" if report["agree"] else "DISAGREE"))
    if "latency" in report:
        lat = report["latency"]
        print(f"latency at {lat['rate']:,.0f} events/s: p50 {lat['p50_ms']:.0f} ms,"
              f" p99 {lat['p99_ms']:.0f} ms (produced -> applied, from the lag histogram)")
        mem = report["memory_recovery"]
        print(f"{mem['open_incidents']:,} open incidents: {mem['bytes_per_open_incident']:,.0f}"
              f" bytes RSS each; restart to all visible {mem['recovery_seconds']:.1f} s")


if __name__ == "__main__":
    main()
