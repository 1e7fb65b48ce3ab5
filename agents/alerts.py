"""Alerts: raise them at the instants the rules say, publish transitions, deliver them.

Every valid event ingest reads is also offered to an :class:`AlertTimeline`
(pipeline.domain.timeline), which applies events in event-time order and
evaluates the rules at each event's instant and at each instant a clock runs
out, stamping every transition with that instant: a replay raises the same
alerts as the live run (docs/alerts.md). A timer walks it forward every
second to the *frontier*: the wall clock less ``[alerting] settle_seconds``
live, or in event mode (replays) the stream's time less the grace — the
lowest watermark among partitions still being caught up on, so one partition
read ahead of another cannot make the other's events late.

The worker that owns partition 0 of the clock topic evaluates; the
active-alerts table is written to its changelog partition 0 and restored with
it, with the timeline's frontier, so a restarted worker neither forgets a
firing alert nor fires it again. Every transition (firing, resolved) is
published to ``demand.alerts.v1``, keyed by fingerprint: the topic is the
record. The ``notifier`` agent reads that topic and delivers each record to
Alertmanager's v2 API, retrying with back-off until it is accepted; until then
its offset is not committed, so a restart delivers it again (Alertmanager
de-duplicates by labels). Firing alerts are re-sent on a timer so
Alertmanager keeps them alive.

Rules see the events this worker ingests. With one worker (a force's
deployment) that is every incident; with several, the evaluating worker sees
its own partitions' share only (docs/alerts.md#limits).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import orjson
from faust import StreamT
from faust.types import TP

from agents import windows
from agents.backlog import incidents
from agents.deadletters import guard_failed
from pipeline.app import (
    alerts_topic,
    app,
    clock_topic,
    config,
    metrics,
    ownership,
    raw_topic,
    registry,
    settings,
)
from pipeline.domain.alerting import Active, alert_record, alertmanager_payload
from pipeline.domain.events import Event
from pipeline.domain.timeline import AlertTimeline, Changes
from pipeline.domain.windows import FUTURE_TOLERANCE_S
from pipeline.metrics import AlertsCollector
from pipeline.tables import partitioned_table

AGENT = "alerts"
BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
ADVANCE_EVERY_S = 1.0
ALERTS_PARTITION = 0  # the clock-topic partition whose owner evaluates
log = logging.getLogger(__name__)

active = partitioned_table(app, "alerts-active", settings.topic_partitions,
                           help="Alerts firing (or cooling down), by fingerprint.")
progress = partitioned_table(app, "alerts-frontier", settings.topic_partitions,
                             help="How far (event time) the alert timeline has walked.")
notified = app.Table("alerts-notified", default=None, partitions=settings.topic_partitions,
                     key_type=str, help="Firing alerts as last delivered, for re-sending.")
timeline = AlertTimeline(config, settings.closed_retention_s)
registry.register(AlertsCollector(config, lambda: list(active.values()),
                                  lambda: timeline.frontier if evaluating() else None))
_seeded = False
_changes: Changes = {}  # active-alert changes not yet written (from seeding)
_latest: dict[int, float] = {}  # raw partition -> latest event time ingested
_offset: dict[int, int] = {}  # raw partition -> last offset ingested
_lock = asyncio.Lock()
_unsent: list[Active] = []  # transitions not yet handed to the producer


def evaluating() -> bool:
    """Whether this worker raises the alerts (it owns the clock topic's partition 0)."""
    return TP(clock_topic.get_topic_name(), ALERTS_PARTITION) in app.consumer.assignment()


def offer(partition: int, offset: int, ev: Event) -> None:
    """Hand a valid event from the raw topic to the timeline (ingest calls this).

    Never raises: ingest folds and forwards the event whatever happens here.
    """
    try:
        _seed_once()
        _offset[partition] = offset
        if ev.at <= time.time() + FUTURE_TOLERANCE_S and ev.at > _latest.get(partition, -1e18):
            _latest[partition] = ev.at
        timeline.offer(ev)
    except Exception as exc:  # guard: alerting trouble must not cost the backlog an event
        metrics.agent_errors.labels(AGENT).inc()
        log.error("%s: offering an event to the timeline failed: %r", AGENT, exc)


def frontier(wall: float) -> float | None:
    """The instant before which every event is assumed in (see the module docstring)."""
    if settings.clock == "wall":
        return wall - config.alerting.settle_seconds
    raw = raw_topic.get_topic_name()
    assigned = [tp for tp in app.consumer.assignment() if tp.topic == raw]
    if not _latest:
        return None
    lowest = max(_latest.values())
    for tp in assigned:
        if not _caught_up(tp):
            lowest = min(lowest, _latest.get(tp.partition, float("-inf")))
    return lowest - config.windows.grace_seconds


def _caught_up(tp: TP) -> bool:
    """Whether ingest has read everything on this partition that the broker has told of."""
    highwater = app.consumer.highwater(tp)
    if highwater is None:
        return False
    last = _offset.get(tp.partition)
    if last is None:
        last = app.consumer._read_offset.get(tp)  # read since the start, not yet ingested
        return highwater == 0 or (last is not None and last + 1 >= highwater)
    return last + 1 >= highwater


def _seed_once() -> None:
    """On the first use after start, start the timeline from the restored tables."""
    global _seeded
    if _seeded:
        return
    _seeded = True
    saved = progress.peek("frontier")
    changes, notes = timeline.seed(incidents.values_in(ownership.ready()), windows.buckets(),
                                   {fp: a for fp, a in active.items() if a},
                                   None if saved is None else float(saved))
    _changes.update(changes)
    _unsent.extend(notes)


def _reset() -> None:
    global timeline, _seeded
    timeline = AlertTimeline(config, settings.closed_retention_s)
    _seeded = False
    _changes.clear()
    _latest.clear()
    _offset.clear()


@app.timer(ADVANCE_EVERY_S)
async def advance() -> None:
    """Walk the timeline to the frontier; record and publish what changed."""
    if not evaluating():
        if _seeded:  # partition 0 moved to another worker: start afresh if it comes back
            _reset()
        return
    async with _lock, ownership.batch():
        try:
            await _advance()
        except Exception as exc:  # guard: a failed step must not stop the timer for good
            metrics.agent_errors.labels(AGENT).inc()
            log.error("%s: walking the timeline failed: %r", AGENT, exc)


async def _advance() -> None:
    _seed_once()
    changes, notes = timeline.advance(frontier(time.time()))
    _changes.update(changes)
    _unsent.extend(notes)  # kept before any write that could fail: a transition is never lost
    for fp, record in _changes.items():
        if record is None:
            active.remove(ALERTS_PARTITION, fp)
        else:
            active.put(ALERTS_PARTITION, fp, record)
    _changes.clear()
    if timeline.frontier is not None and progress.peek("frontier") != timeline.frontier:
        progress.put(ALERTS_PARTITION, "frontier", timeline.frontier)
    while _unsent:  # in order; what a failed send leaves is sent on the next step
        record = alert_record(_unsent[0])
        await alerts_topic.send(key=record["fingerprint"].encode(), value=orjson.dumps(record))
        _unsent.pop(0)


@app.agent(alerts_topic, name="notifier")
async def notifier(stream: StreamT) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        async for event in stream.events():
            try:
                record = orjson.loads(event.message.value)
                if record["status"] == "firing":
                    notified[record["fingerprint"]] = record
                elif record["fingerprint"] in notified:
                    del notified[record["fingerprint"]]
                if settings.alertmanager_url:
                    await deliver(client, [record])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # guard: one record must never crash the agent
                await guard_failed(AGENT, event.message, exc)


async def deliver(client: httpx.AsyncClient, records: list[dict[str, Any]],
                  retry: bool = True) -> None:
    """POST alerts to Alertmanager; with ``retry``, keep trying with back-off until accepted."""
    url = f"{settings.alertmanager_url.rstrip('/')}/api/v2/alerts"  # type: ignore[union-attr]
    generator = f"http://{settings.web_host}:{settings.web_port}/alerts"
    attempt = 0
    while True:
        payload = [alertmanager_payload(r, time.time(), settings.alert_valid_for_s, generator)
                   for r in records]
        try:
            response = await client.post(url, content=orjson.dumps(payload),
                                         headers={"content-type": "application/json"})
            if response.status_code < 300:
                metrics.notifications.labels("delivered").inc(len(records))
                return
            problem = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            problem = type(exc).__name__
        metrics.notifications.labels("failed").inc(len(records))
        if not retry:
            return
        delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
        log.warning("alertmanager delivery failed (%s); retrying in %.1f s", problem, delay)
        attempt += 1
        await asyncio.sleep(delay)


@app.timer(settings.alert_resend_s)
async def resend_firing() -> None:
    """Re-send firing alerts (this worker's share) so Alertmanager keeps them alive."""
    if not settings.alertmanager_url:
        return
    firing = [r for r in notified.values() if r]
    if firing:
        async with httpx.AsyncClient(timeout=10) as client:
            await deliver(client, firing, retry=False)
