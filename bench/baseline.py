"""Baseline: a plain aiokafka consumer + orjson loop doing the benchmark's work.

No framework, no changelog, state in a dict: the practical ceiling for this
work in Python on this machine. Reads the raw topic from the start until
``--expect`` records have been seen, then prints one JSON line (figures,
seconds from the first record to the last, peak RSS).

    python -m bench.baseline --bootstrap 127.0.0.1:9092 --topic T --expect N
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from bench.clients import kafka
from bench.workload import Work


async def consume(bootstrap: str, topic: str, expect: int) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(topic, **kafka(bootstrap),
                                group_id=f"bench-baseline-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    work, states = Work(), {}
    first = None
    try:
        while work.figures.records < expect:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batches.values():
                if first is None:
                    first = time.perf_counter()
                for record in records:
                    ev = work.decode(record.value)
                    if ev is None:
                        continue
                    after = work.fold(states.get(ev.incident_id), ev)
                    if after is not None:
                        states[ev.incident_id] = after
        last = time.perf_counter()
    finally:
        await consumer.stop()
    return work.result(last - (first or last))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--expect", type=int, required=True)
    args = parser.parse_args()
    print(orjson.dumps(asyncio.run(consume(args.bootstrap, args.topic, args.expect))).decode())


if __name__ == "__main__":
    main()
