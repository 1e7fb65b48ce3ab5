"""Alerts: evaluate the risk rules as time passes, publish transitions, deliver them.

Evaluation runs in the clock agent's partition-0 context (a tick every few
seconds, plus a poke soon after any state change), so the active-alerts
table is always written to one changelog partition and restored with it:
a restarted worker neither forgets a firing alert nor fires it again.

Every transition (firing, resolved) is published to ``demand.alerts.v1``,
keyed by fingerprint: the topic is the record. The ``notifier`` agent reads
that topic and delivers each record to Alertmanager's v2 API, retrying with
back-off until it is accepted; until then its offset is not committed, so a
restart delivers it again (Alertmanager de-duplicates by labels). Firing
alerts are re-sent on a timer so Alertmanager keeps them alive.

Rules see the incidents this worker holds. With one worker (a force's
deployment) that is every incident; with several, aggregate rules (backlog,
terminal, repeat caller, surge) see the partition-0 owner's share only
(docs/alerts.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import orjson
from faust import StreamT

from agents import backlog, windows
from agents.backlog import incidents
from agents.deadletters import guard_failed
from pipeline.app import alerts_topic, app, config, metrics, registry, settings
from pipeline.domain.alerting import alert_record, alertmanager_payload, step
from pipeline.domain.rules import evaluate
from pipeline.metrics import AlertsCollector

AGENT = "alerts"
BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
log = logging.getLogger(__name__)

active = app.Table("alerts-active", default=None, partitions=settings.topic_partitions,
                   key_type=str, help="Alerts firing (or cooling down), by fingerprint.")
notified = app.Table("alerts-notified", default=None, partitions=settings.topic_partitions,
                     key_type=str, help="Firing alerts as last delivered, for re-sending.")
registry.register(AlertsCollector(config, lambda: list(active.values())))


async def evaluate_and_publish(wall: float) -> None:
    """Evaluate every rule now; record and publish each transition."""
    now = windows.stream_now(wall)
    if now is None:
        return
    started = time.perf_counter()
    holding = evaluate(config, list(incidents.values()), now, windows.buckets)
    backlog.last_evaluation_s = time.perf_counter() - started
    current = {fp: a for fp, a in active.items() if a}
    changes, notes = step(current, holding, now, config.alerting.cool_down_seconds)
    for fp, record in changes.items():
        if record is None:
            del active[fp]
        else:
            active[fp] = record
    for note in notes:
        record = alert_record(note)
        await alerts_topic.send(key=record["fingerprint"].encode(), value=orjson.dumps(record))


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
