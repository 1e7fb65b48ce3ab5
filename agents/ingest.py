"""Ingest: validate raw records, dead-letter the bad, publish and fold the good.

Reads ``incidents.raw.v1`` (bytes, anything) in batches. A refused record
goes to ``incidents.deadletter.v1`` with its reason. Every valid event is
published to ``incidents.events.v1`` keyed by ``incident_id`` (whatever key it
came with), for downstream consumers, and sent with the batch to the alert
input (pipeline.alertinput), where the one evaluator sees every worker's
events. Then:

- if it arrived on its incident's partition (the raw topic is keyed by
  incident id, as the contract asks), it is folded here, into the incident
  table co-partitioned with the raw topic: consumed once, not twice;
- otherwise it is re-keyed through ``demandflow.rekey.v1`` to the backlog
  agent on the worker that owns its incident.

Duplicates are dropped by ``event_id`` in the fold, where the check lives in
the incident's own state record: a "seen" table here was tried and lost
events when a worker was killed between saving "seen" and delivering the
forward (found by the SIGKILL oracle test).
"""

from __future__ import annotations

import asyncio
import logging
import os

from faust import StreamT

from agents import backlog
from agents.deadletters import guard_failed, send_dead_letter
from pipeline import alertinput
from pipeline.app import (
    alert_input_topic,
    app,
    config,
    events_topic,
    metrics,
    ownership,
    publish,
    raw_topic,
    rekey_topic,
    settings,
)
from pipeline.domain.events import Event, decode_event
from pipeline.errors import InvalidEvent
from pipeline.passedover import PassedOver
from pipeline.topics import partition_for

AGENT = "ingest"
log = logging.getLogger(__name__)
_passed_over = PassedOver(raw_topic.get_topic_name(), settings, metrics.offsets_passed_over)


@app.agent(raw_topic, name=AGENT)
async def ingest(stream: StreamT) -> None:
    # In batches: offsets are acknowledged once the whole batch is folded and forwarded.
    async for batch in stream.take_events(settings.batch_max_events, settings.batch_within_s):
        async with ownership.batch():  # written and durable before it is acknowledged
            progress: dict[int, int] = {}
            accepted: list[tuple[int, int, bytes]] = []
            for event in batch:
                message = event.message
                if not ownership.owns(message.partition):
                    continue  # moved in a rebalance: its new owner reads it again
                for record in await _passed_over.before(ownership.generation, message,
                                                        app.consumer):
                    await _take(record, progress, accepted)
                await _take(message, progress, accepted)
            await backlog.save()
            await _to_alert_input(progress, accepted)
        await _passed_over.settle(app.consumer)


async def _take(message, progress: dict[int, int],  # type: ignore[no-untyped-def]
                accepted: list[tuple[int, int, bytes]]) -> None:
    progress[message.partition] = message.offset
    try:
        if await _handle(message) is not None:
            accepted.append((message.partition, message.offset, message.value))
    except Exception as exc:  # guard: one record must never crash the agent
        await guard_failed(AGENT, message, exc)


async def _to_alert_input(progress: dict[int, int], accepted: list[tuple[int, int, bytes]]) -> None:
    """Send the batch to the alert input and wait for the broker to have it: the batch's
    offsets are committed after this, so an event is never acknowledged unseen by alerts."""
    name = alert_input_topic.get_topic_name()
    try:
        sent = [await app.producer.send(name, None, record, 0, None, None)
                for record in alertinput.encode(progress, accepted)]
        await asyncio.gather(*sent)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        # As for a changelog write (pipeline.tables.durable): commit nothing, let the
        # restarted worker read the batch again.
        log.critical("sending to the alert input failed after the producer's retries (%s); "
                     "exiting without committing", type(exc).__name__)
        os._exit(70)


async def _handle(message) -> Event | None:  # type: ignore[no-untyped-def]
    """Validate, publish and fold one raw record; the event, or None if it was refused."""
    try:
        ev = decode_event(message.value, config, settings.max_event_bytes)
    except InvalidEvent as exc:
        metrics.count_event(exc.event_type, "rejected")
        await send_dead_letter(AGENT, message, exc.reason, exc.detail)
        return None
    key = ev.incident_id.encode()
    await publish(events_topic, key, message.value)
    if message.partition == partition_for(ev.incident_id, settings.topic_partitions):
        backlog.fold(message.partition, ev, ("r", message.offset))
    else:
        await publish(rekey_topic, key, message.value)
    return ev
