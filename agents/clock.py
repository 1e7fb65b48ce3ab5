"""Clock: turns the passing of time into state changes inside each partition.

An attendance target can pass with no event at all, so a timer on the leader
sends a wall-clock tick to every partition of the clock topic; the worker that
owns partition *p* handles it in *p*'s stream context (so its table writes go
to the right changelog partition) and marks incidents of *p* whose target has
passed with nobody there. Ticks are idempotent: a breach is marked once.
"""

from __future__ import annotations

import time

import orjson
from faust import StreamT
from kafka.partitioner.default import murmur2

from agents.backlog import check_breach, incidents
from agents.deadletters import guard_failed
from pipeline.app import app, clock_topic, settings

AGENT = "clock"
TICK_SECONDS = 5.0
_partition_of: dict[str, int] = {}


def partition_of(incident_id: str) -> int:
    """The partition Kafka's default partitioner gives this key (murmur2, as producers use)."""
    p = _partition_of.get(incident_id)
    if p is None:
        p = (murmur2(incident_id.encode()) & 0x7FFFFFFF) % settings.topic_partitions
        _partition_of[incident_id] = p
    return p


@app.timer(TICK_SECONDS, on_leader=True)
async def tick() -> None:
    value = orjson.dumps({"now": time.time()})
    for partition in range(settings.topic_partitions):
        await clock_topic.send(key=b"tick", value=value, partition=partition)


@app.agent(clock_topic, name=AGENT)
async def clock(stream: StreamT) -> None:
    async for event in stream.events():
        try:
            now = float(orjson.loads(event.message.value)["now"])
            partition = event.message.partition
            for incident_id, state in list(incidents.items()):
                if state and not state.get("breached") and partition_of(incident_id) == partition:
                    updated = dict(state)
                    if check_breach(updated, now):
                        incidents[incident_id] = updated
        except Exception as exc:  # guard: one record must never crash the agent
            await guard_failed(AGENT, event.message, exc)
