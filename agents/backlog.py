"""Backlog: fold validated events into per-incident state in a changelog-backed table.

The fold (pipeline.domain.backlog.apply_event) is idempotent and
order-independent, so at-least-once delivery and restarts cannot skew it. The
backlog gauges are computed from this table when Prometheus scrapes.
"""

from __future__ import annotations

import orjson
from faust import StreamT

from agents.deadletters import guard_failed
from pipeline.app import app, config, events_topic, metrics, registry, settings
from pipeline.domain.backlog import apply_event
from pipeline.domain.events import event_from_document
from pipeline.metrics import BacklogCollector

AGENT = "backlog"

incidents = app.Table("incidents", default=None, partitions=settings.topic_partitions,
                      key_type=str, help="Incident state by incident id.")


@app.agent(events_topic, name=AGENT)
async def backlog(stream: StreamT) -> None:
    async for event in stream.events():
        message = event.message
        try:
            ev = event_from_document(orjson.loads(message.value))
            before = incidents.get(ev.incident_id)
            after = apply_event(before, ev)
            if after != before:
                incidents[ev.incident_id] = after
                if "created" in after and (before is None or "created" not in before):
                    created = after["created"]
                    metrics.incidents_received.labels(created["grade"], created["channel"]).inc()
        except Exception as exc:  # guard: one record must never crash the agent
            await guard_failed(AGENT, message, exc)


registry.register(BacklogCollector(config, lambda: list(incidents.values())))
