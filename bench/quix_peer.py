"""Peer: the benchmark's work in Quix Streams, with its own (RocksDB) state store.

The same shape as demandflow: validate each raw record, re-key the valid ones
by incident through a repartition topic (``group_by``), then de-duplicate and
fold each incident's state in Quix's changelogged state store. The pipeline's
pure functions do the work (bench.workload.Work), as in the baseline. Runs in
its own virtualenv (``.venv-bench``): quixstreams pins pydantic below the
version demandflow uses. Prints one JSON line, like bench.baseline.

    .venv-bench/bin/python -m bench.quix_peer --bootstrap H:P --topic T --expect N --state-dir D
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid
from typing import Any

import orjson
from quixstreams import Application, State

from bench.workload import Work
from pipeline.domain.events import event_from_document


def run(bootstrap: str, topic_name: str, expect: int, state_dir: str) -> dict[str, Any]:
    app = Application(broker_address=bootstrap, consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
                      auto_offset_reset="earliest", state_dir=state_dir, loglevel=logging.WARNING,
                      consumer_extra_config={"max.partition.fetch.bytes": 4 * 1024 * 1024})
    topic = app.topic(topic_name, value_deserializer="bytes", key_deserializer="bytes")
    work = Work()
    seen = {"done": 0, "first": 0.0, "last": 0.0}

    def finished() -> None:
        seen["done"] += 1
        if seen["done"] == expect:
            seen["last"] = time.perf_counter()
            app.stop()

    def validate(raw: bytes) -> dict[str, Any] | None:
        if not seen["first"]:
            seen["first"] = time.perf_counter()
        ev = work.decode(raw)
        if ev is None:
            finished()
            return None
        return ev.document  # type: ignore[no-any-return]

    def fold(doc: dict[str, Any], state: State) -> None:
        ev = event_from_document(doc)
        after = work.fold(state.get("s"), ev)
        if after is not None:
            state.set("s", after)
        finished()

    sdf = app.dataframe(topic)
    sdf = sdf.apply(validate).filter(lambda doc: doc is not None)
    sdf = sdf.group_by(lambda doc: doc["incident_id"], name="incident")
    sdf.update(fold, stateful=True)
    app.run()
    return work.result(seen["last"] - seen["first"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args()
    print(orjson.dumps(run(args.bootstrap, args.topic, args.expect, args.state_dir)).decode())


if __name__ == "__main__":
    main()
