"""Clock: turns the passing of time into state changes inside each partition.

An attendance target can pass with no event at all, so a timer on the leader
sends a wall-clock tick to every partition of the clock topic; the worker that
owns partition *p* handles it in *p*'s stream context (so its table writes go
to the right changelog partition) and, for the incidents of *p*:
- marks those whose attendance target has passed with nobody there (once);
- forgets those closed and quiet since before the forget horizon (the
  partition's event-time watermark minus ``closed_retention_s``), publishing a
  tombstone for each; later events older than the horizon for an incident no
  longer in state are counted late and not applied (see ``forgotten``).
It looks only at what is due (the partition's due index, agents.backlog.PartitionState:
incidents indexed by deadline and by last event), never at every incident. Alert
rules are not evaluated here: agents.alerts walks its own timeline.
"""

from __future__ import annotations

import time

import orjson
from faust import StreamT

from agents.backlog import check_breach, partition_state, publish_state
from agents.deadletters import guard_failed
from pipeline.app import app, clock_topic, config, ownership, settings, state_topic
from pipeline.domain.backlog import due_to_forget
from pipeline.domain.clocks import effective_now

AGENT = "clock"
TICK_SECONDS = 5.0


@app.timer(TICK_SECONDS, on_leader=True)
async def tick() -> None:
    value = orjson.dumps({"now": time.time()})
    for partition in range(settings.topic_partitions):
        await clock_topic.send(key=b"tick", value=value, partition=partition)


@app.agent(clock_topic, name=AGENT)
async def clock(stream: StreamT) -> None:
    async for event in stream.events():
        try:
            tick = orjson.loads(event.message.value)
            wall = float(tick["now"])
            async with ownership.batch():
                if ownership.owns(event.message.partition):
                    await on_tick(event.message.partition, wall)
        except Exception as exc:  # guard: one record must never crash the agent
            await guard_failed(AGENT, event.message, exc)


async def on_tick(partition: int, wall: float) -> None:
    """Breaches and forgetting for what is due now: a tick costs what is due, not what is
    held (pipeline.domain.due)."""
    if partition not in ownership.ready():
        return  # still restoring: its index is built from the table once it is whole
    held = partition_state(partition)
    cutoff = held.forget_horizon()
    now = effective_now(settings.clock, wall, held.watermark(),
                        config.windows.grace_seconds)
    index = held.due()
    forget = [] if cutoff is None else index.forget.pop_due(cutoff, strictly_before=True)
    breach = [] if now is None else index.breach.pop_due(now, strictly_before=True)
    for incident_id in forget:
        # Read afresh: the sends below yield to the backlog agent, which may have
        # changed this incident since it was found due. Between this read and the
        # write below there is no await, so no update can be lost.
        state = held.current(incident_id)
        if state and cutoff is not None and due_to_forget(state, cutoff):
            held.replace(incident_id, None)
            await state_topic.send(key=incident_id.encode(), value=None)
        elif state:
            index.note(incident_id, state)  # changed since: due again when it says
    for incident_id in breach:
        state = held.current(incident_id)
        if not state:
            continue
        updated = dict(state)
        if now is not None and check_breach(updated, now):
            held.replace(incident_id, updated)
            await publish_state(updated)
        else:
            index.note(incident_id, state)
