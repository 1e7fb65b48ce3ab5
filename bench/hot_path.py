"""The per-event hot path, timed against a bare orjson loop in the same process.

What a worker does for every record, without Kafka or Faust: decode and
validate against the contract (ingest), then de-duplicate and fold into the
incident state (backlog); and the alert timeline (re-order the events,
evaluate the rules each one touches at its instant). Each step is reported
as events/s and as a ratio of the bare ``orjson.loads`` loop run on the same
records in the same process, so the figures compare across machines. Run with ``make bench``.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson
from jsonschema.exceptions import best_match

from pipeline.config import load_config
from pipeline.domain import events as ev
from pipeline.domain.backlog import apply_once
from pipeline.domain.timeline import AlertTimeline
from pipeline.simulator import SimStats, finish_document, load_profile, plan_incident

RUNS = 5


def workload(incidents: int, seed: int = 42) -> list[bytes]:
    """Deterministic lifecycle events from the simulator's planner (no Kafka)."""
    config, profile = load_config(), load_profile()
    rng, stats = random.Random(seed), SimStats()
    out: list[bytes] = []
    for i in range(incidents):
        call = 1.7e9 + i * 3.0
        for delay, doc in plan_incident(rng, f"B{i:07d}", config, stats, profile):
            out.append(orjson.dumps(finish_document(doc, f"B{i:07d}", f"e{len(out)}",
                                                    call + delay, call, 1.0)))
    return out


def rate(fn: Callable[[list[bytes]], Any], records: list[bytes]) -> float:
    """Median events/s over RUNS runs."""
    rates = []
    for _ in range(RUNS):
        gc.collect()
        start = time.perf_counter()
        fn(records)
        rates.append(len(records) / (time.perf_counter() - start))
    return statistics.median(rates)


def main(incidents: int = 20_000) -> dict[str, float]:
    config = load_config()
    records = workload(incidents)

    def baseline(rs: list[bytes]) -> None:
        for r in rs:
            orjson.loads(r)

    def reference_validation(rs: list[bytes]) -> None:
        for r in rs:
            best_match(ev._VALIDATOR.iter_errors(orjson.loads(r)))

    def decode(rs: list[bytes]) -> None:
        for r in rs:
            ev.decode_event(r, config, 65536)

    decoded = [ev.decode_event(r, config, 65536) for r in records]

    def fold(_: list[bytes]) -> None:
        state: dict[str, Any] = {}
        for e in decoded:
            state[e.incident_id] = apply_once(state.get(e.incident_id), e, 256)[0]

    def timeline(_: list[bytes]) -> None:
        alerts = AlertTimeline(config, retention_s=2 * 86400)
        for e in decoded:
            alerts.offer(e)
        alerts.advance(decoded[-1].at + 86400)

    # The jsonschema-only reference is ~300x slower than the baseline: time it on a sample.
    sample = records[:10_000]
    figures = {name: rate(fn, rs) for name, fn, rs in (
        ("orjson.loads (baseline)", baseline, records),
        ("contract check, jsonschema only", reference_validation, sample),
        ("decode_event (as shipped)", decode, records),
        ("apply_once (dedup + fold)", fold, records),
        ("alert timeline (order + rules)", timeline, records),
    )}
    base = figures["orjson.loads (baseline)"]
    print(f"hot path, {len(records):,} events, median of {RUNS} runs")
    print(f"{'step':38} {'events/s':>12} {'vs baseline':>12}")
    for name, value in figures.items():
        print(f"{name:38} {value:12,.0f} {value / base:12.3f}")
    return figures


if __name__ == "__main__":
    main()
