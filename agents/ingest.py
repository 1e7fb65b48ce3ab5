"""Ingest: validate raw records, dead-letter the bad, drop duplicates, forward the good.

Reads ``incidents.raw.v1`` (bytes, anything), writes valid events to
``incidents.events.v1`` keyed by ``incident_id`` and refused records to
``incidents.deadletter.v1``.

De-duplication remembers the last ``dedup_per_incident`` event-id fingerprints
per incident in a changelog-backed table keyed by incident id. That table is
only exact if all of an incident's events reach the same partition, so a
valid record keyed by anything but its ``incident_id`` is first produced
again to the raw topic under the right key, then handled when it comes back.
"""

from __future__ import annotations

from faust import StreamT

from agents.deadletters import guard_failed, send_dead_letter
from pipeline.app import app, config, events_topic, metrics, raw_topic, settings
from pipeline.domain.events import decode_event
from pipeline.errors import InvalidEvent

AGENT = "ingest"

seen = app.Table("ingest-seen", default=None, partitions=settings.topic_partitions,
                 key_type=str, help="Recent event-id fingerprints per incident.")


@app.agent(raw_topic, name=AGENT)
async def ingest(stream: StreamT) -> None:
    async for event in stream.events():
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
    key = ev.incident_id.encode()
    if message.key != key:
        await raw_topic.send(key=key, value=message.value)
        return
    recent: list[str] = seen.get(ev.incident_id) or []
    fingerprint = ev.fingerprint
    if fingerprint in recent:
        metrics.events.labels(ev.event_type, "duplicate").inc()
        return
    recent = [*recent, fingerprint][-settings.dedup_per_incident:]
    seen[ev.incident_id] = recent
    await events_topic.send(key=key, value=message.value)
    metrics.events.labels(ev.event_type, "accepted").inc()
