"""Ingest: validate raw records, dead-letter the bad, forward the good keyed by incident.

Reads ``incidents.raw.v1`` (bytes, anything), writes contract-valid events to
``incidents.events.v1`` keyed by ``incident_id`` (whatever key they came
with) and refused records to ``incidents.deadletter.v1``.

Duplicates are dropped by ``event_id`` in the backlog agent, where the check
lives in the incident's own state record: a "seen" table here was tried and
lost events when a worker was killed between saving "seen" and delivering
the forward (found by the SIGKILL oracle test). Ingest is stateless.
"""

from __future__ import annotations

from faust import StreamT

from agents.deadletters import guard_failed, send_dead_letter
from pipeline.app import app, config, events_topic, metrics, publish, raw_topic, settings
from pipeline.domain.events import decode_event
from pipeline.errors import InvalidEvent

AGENT = "ingest"


@app.agent(raw_topic, name=AGENT)
async def ingest(stream: StreamT) -> None:
    # In batches: offsets are acknowledged once the whole batch has been forwarded.
    async for batch in stream.take_events(settings.batch_max_events, settings.batch_within_s):
        for event in batch:
            message = event.message
            try:
                await _handle(message)
            except Exception as exc:  # guard: one record must never crash the agent
                await guard_failed(AGENT, message, exc)


async def _handle(message) -> None:  # type: ignore[no-untyped-def]
    try:
        ev = decode_event(message.value, config, settings.max_event_bytes)
    except InvalidEvent as exc:
        metrics.events.labels(exc.event_type, "rejected").inc()
        await send_dead_letter(AGENT, message, exc.reason, exc.detail)
        return
    await publish(events_topic, ev.incident_id.encode(), message.value)
