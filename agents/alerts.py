"""Alerts: raise them at the instants the rules say, publish transitions, deliver them.

One evaluator for the whole force. Every ingest batch, on whichever worker
read it, is sent to the alert input (pipeline.alertinput: one partition), and
the worker that owns that partition runs the :class:`AlertTimeline`
(pipeline.domain.timeline): it applies events in event-time order and
evaluates every rule — per incident and force-wide alike — at each event's
instant and at each instant a clock runs out, stamping every transition with
that instant, so a replay raises the same alerts as the live run, with one
worker or several (docs/alerts.md). A timer walks it forward every second to
the *frontier*: the wall clock less ``[alerting] settle_seconds`` live, or in
event mode (replays) the latest event time less the grace, held back to the
latest event time of any raw partition not yet read to its end (compared with
the broker's high-water mark), so one partition, or one worker, ahead of
another cannot make the other's events late.

What the timeline holds is saved as it changes, in one table co-partitioned
with the alert input (``alert-timeline``: the incidents' packed rule records and
minute counts as of the frontier, the active alerts, the transitions not yet
published, the frontier, how far each raw partition has been read), each step
whole or not at all (pipeline.domain.journal). Alert-input records are
acknowledged only once every event in them is applied and saved, so a worker
that takes the evaluation over (a restart, a SIGKILL, a rebalance; a standby has
the table warm) starts from the table, publishes what the last step saved but
did not publish, and reads again exactly the events not yet applied: it neither
forgets a firing alert nor fires one twice. All of it lives in one
:class:`Evaluation` object, dropped whole when the partition moves away.

Every transition (firing, resolved) is published to ``demand.alerts.v1``,
keyed by fingerprint: the topic is the record. The ``notifier`` agent reads
that topic and delivers each record to Alertmanager's v2 API, retrying with
back-off until it is accepted; until then its offset is not committed, so a
restart delivers it again (Alertmanager de-duplicates by labels). Firing
alerts are re-sent on a timer so Alertmanager keeps them alive.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import time
from typing import Any

import httpx
import orjson
from faust import StreamT
from faust.types import TP, EventT

from agents.deadletters import guard_failed
from pipeline import alertinput
from pipeline.alertmanagerauth import client_options
from pipeline.app import (
    alert_input_topic,
    alerts_topic,
    app,
    config,
    metrics,
    ownership,
    raw_topic,
    registry,
    settings,
)
from pipeline.domain import journal
from pipeline.domain.alerting import Active, alert_record, alertmanager_payload
from pipeline.domain.timeline import AlertTimeline, Changes
from pipeline.domain.windows import FUTURE_TOLERANCE_S
from pipeline.metrics import AlertsCollector
from pipeline.passedover import PassedOver, settle_range
from pipeline.tables import durable, partitioned_table

AGENT = "alerts"
# Read at start: a missing secret stops the worker with one line, not every delivery later.
ALERTMANAGER_CLIENT = client_options(settings) if settings.alertmanager_url else {}
BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
ADVANCE_EVERY_S = 1.0
PARTITION = 0  # the alert input's one partition, and its table's
log = logging.getLogger(__name__)

saved = partitioned_table(
    app, "alert-timeline", 1, owner=lambda p: ownership.evaluator,
    help="The alert timeline as of its frontier: i:<incident> (packed rule record), "
         "m:<grade>|<minute>, u:<seq> (transitions to publish), j / j:<n> (a step's journal), "
         "a:<fingerprint>, p:<raw partition>, frontier.")
notified = app.Table("alerts-notified", default=None, partitions=settings.topic_partitions,
                     key_type=str, help="Firing alerts as last delivered, for re-sending.")


Progress = dict[int, tuple[int, float | None]]  # raw partition -> (last offset, latest time)


def _merge(into: Progress, more: Progress) -> None:
    for partition, (offset, latest) in more.items():
        old_offset, old_latest = into.get(partition, (-1, None))
        into[partition] = (max(old_offset, offset),
                           latest if old_latest is None or (latest is not None and
                                                            latest > old_latest) else old_latest)


def _outbox_key(seq: int) -> str:
    return f"u:{seq:012d}"


class Evaluation:
    """Everything the evaluator holds for the alert input's partition, owned in one place:
    the timeline, how far each raw partition has been read, the records not yet
    acknowledged and the transitions not yet published."""

    def __init__(self) -> None:
        self.timeline = AlertTimeline(config, settings.closed_retention_s)
        self.latest: dict[int, float] = {}  # raw partition -> latest event time read
        self.offset: dict[int, int] = {}  # raw partition -> last offset read
        # Records not yet acknowledged: (latest event time in it, how far it reads each raw
        # partition, the record), in offset order.
        self.unacked: list[tuple[float, Progress, EventT]] = []
        # How far the acknowledged records read each raw partition: all their events are in
        # the saved state, so this (not self.offset, which counts events still held) is
        # what is saved; a successor reads the rest again from the alert input.
        self.acked_progress: Progress = {}
        # Transitions not yet published, by sequence; saved with the step that made them
        # (u:<seq>) and removed once the broker has them, so no crash can lose one.
        self.outbox: dict[int, Active] = {}
        self.outbox_saved: set[int] = set()
        self.next_seq = 0
        self.changes: Changes = {}  # active-alert changes not yet saved
        self.saved_progress: dict[int, tuple[int, float | None]] = {}
        self.saved_frontier: float | None = None
        self.to_acknowledge = 0  # records the last save counted applied
        self.journaled_steps = 0
        self.die_now = False  # fault injection (settings.fault_die_mid_step): tests only
        self.late_reported = 0

    def seed(self) -> None:
        """Start from the restored table (empty on a first start).

        A step cut short by a crash is rolled forward from its journal
        (pipeline.domain.journal), and the table mended before this worker's own first
        step, so the state read is always that of a whole step."""
        table = dict(saved.items_in([PARTITION]))
        try:
            rows, mend = journal.recover(table)
        except ValueError as exc:  # records out of order: cannot happen, said if it does
            log.error("evaluating alerts: %s; starting from the rows as they are", exc)
            rows = {k: v for k, v in table.items() if not journal.is_journal(k)}
            mend = [(k, None) for k in table if journal.is_journal(k)]
        if table.get(journal.MARKER):
            log.info("evaluating alerts: a step cut short by the last worker's end was "
                     "completed from its journal")
        self.write(mend)
        states, minutes, active = [], [], {}
        frontier = None
        for key, value in rows.items():
            kind, _, rest = key.partition(":")
            if kind == "i":
                states.append(value)
            elif kind == "m":
                grade, minute = rest.rsplit("|", 1)
                minutes.append((grade, int(minute), int(value)))
            elif kind == "a":
                active[rest] = value
            elif kind == "p":
                offset, latest = value
                self.offset[int(rest)] = int(offset)
                if latest is not None:
                    self.latest[int(rest)] = float(latest)
                self.saved_progress[int(rest)] = (int(offset), latest)
                self.acked_progress[int(rest)] = (int(offset), latest)
            elif kind == "u":
                self.outbox[int(rest)] = value
                self.outbox_saved.add(int(rest))
            elif key == "frontier":
                frontier = float(value)
        self.outbox = dict(sorted(self.outbox.items()))  # published again, in order
        self.next_seq = max(self.outbox, default=-1) + 1
        self.saved_frontier = frontier
        changes, notes = self.timeline.seed(states, minutes, active, frontier)
        self.changes.update(changes)
        self.queue(notes)
        log.info("evaluating alerts from %s: %d incidents, %d active alerts, %d transitions "
                 "to publish again", "a saved timeline" if frontier is not None else "scratch",
                 len(states), len(active), len(self.outbox_saved))

    def queue(self, notes: list[Active]) -> None:
        """Keep transitions to publish, in order (saved with the step that made them)."""
        for note in notes:
            self.outbox[self.next_seq] = note
            self.next_seq += 1

    def take(self, batch: alertinput.Batch, record: EventT) -> None:
        """Offer one alert-input record's events; keep the record until they are applied."""
        newest = -math.inf
        now = time.time()
        progress: Progress = {}
        for partition, offset in batch.progress.items():
            _merge(progress, {partition: (offset, None)})
        for partition, offset, ev in batch.events:
            valid = ev.at <= now + FUTURE_TOLERANCE_S
            _merge(progress, {partition: (offset, ev.at if valid else None)})
            self.timeline.offer(ev)
            newest = max(newest, ev.at)
        for partition, (offset, latest) in progress.items():
            self.offset[partition] = max(self.offset.get(partition, -1), offset)
            if latest is not None and latest > self.latest.get(partition, -1e18):
                self.latest[partition] = latest
        self.unacked.append((newest, progress, record))

    def applied(self) -> int:
        """How many records at the head of the unacknowledged ones have every event applied
        (in offset order, stopping at the first still waiting: see acknowledge())."""
        frontier = self.timeline.frontier
        done = 0
        for newest, _, _ in self.unacked:
            if not (newest == -math.inf or (frontier is not None and newest <= frontier)):
                break
            done += 1
        return done

    def frontier(self, wall: float, highwaters: dict[int, int],
                 read_before: dict[int, float]) -> float | None:
        """The instant before which every event is assumed in (module docstring).

        ``read_before``: the latest event times as they were *before* ``highwaters``
        was asked for. A partition read to its end then holds every record produced
        before that moment, so with a source writing in event-time order (a replay)
        none of its events can be older than those: the frontier is exact at any
        replay speed. Taken after, a record of one partition produced after the
        high-water snapshot could carry the frontier past an earlier record of
        another partition not yet read (a race, not seen in measurement: the shared
        weeks gave the pure timeline's 396 transitions at --speed 60000 and 300000
        either way).
        """
        if settings.clock == "wall":
            return wall - config.alerting.settle_seconds
        if not read_before:
            return None
        lowest = max(read_before.values())
        for partition in range(settings.topic_partitions):
            highwater = highwaters.get(partition)
            last = self.offset.get(partition)
            if highwater == 0 or (highwater is not None and last is not None
                                  and last + 1 >= highwater):
                continue  # read to its end: it has nothing that could arrive late
            lowest = min(lowest, self.latest.get(partition, -math.inf))
        return None if lowest == -math.inf else lowest - config.windows.grace_seconds

    def save(self) -> None:
        """Write what changed since the last step to the table (its changelog), all of it
        or, if the worker dies half-way, none of it (pipeline.domain.journal)."""
        states, minutes = self.timeline.take_changes()
        writes: list[journal.Write] = [(f"i:{i}", s) for i, s in states.items()]
        writes += [(f"m:{grade}|{minute}", n) for (grade, minute), n in minutes.items()]
        writes += [(f"a:{fp}", record) for fp, record in self.changes.items()]
        self.changes.clear()
        writes += [(_outbox_key(seq), note) for seq, note in self.outbox.items()
                   if seq not in self.outbox_saved]
        self.outbox_saved.update(self.outbox)
        writes += self.progress_writes()
        frontier = self.timeline.frontier
        if frontier is not None and frontier != self.saved_frontier:
            writes.append(("frontier", frontier))
            self.saved_frontier = frontier
        sent = journal.journaled(writes, time.time_ns())
        if len(sent) > len(writes):
            self.journaled_steps += 1
            if 0 < settings.fault_die_mid_step <= self.journaled_steps and \
                    any(key.startswith("u:") for key, _ in writes):
                # The journal, its marker and every row but the last (a firing alert saved,
                # not published), then nothing: a SIGKILL between a step's first and last
                # record, made to happen on purpose.
                sent = sent[:sent.index((journal.MARKER, None)) - 1]
                self.die_now = True
        self.write(sent)

    def progress_writes(self) -> list[journal.Write]:
        """How far the records about to be acknowledged read each raw partition, where it
        changed: saved with the step, so a successor's frontier waits for the records it
        must read again (the held events of unacknowledged ones are not in the state)."""
        self.to_acknowledge = self.applied()
        for _, progress, _ in self.unacked[:self.to_acknowledge]:
            _merge(self.acked_progress, progress)
        writes: list[journal.Write] = []
        for partition, progress in self.acked_progress.items():
            if self.saved_progress.get(partition) != progress:
                writes.append((f"p:{partition}", list(progress)))
                self.saved_progress[partition] = progress
        return writes

    @staticmethod
    def write(writes: list[journal.Write]) -> None:
        for key, value in writes:
            if value is None:
                saved.remove(PARTITION, key)
            else:
                saved.put(PARTITION, key, value)

    def acknowledge(self) -> None:
        """Acknowledge the records the last save counted applied, in offset order.

        In order, stopping at the first record still waiting: Faust commits past a
        single unacknowledged record at the head of its acked offsets (faust-streaming
        0.15, ``Consumer._new_offset``: it only stalls when the head gap is two or more),
        so acknowledging a later record first could commit an unapplied one, and a
        takeover would never apply it (found by reading the code after a SIGKILL test
        ended one alert episode short)."""
        for _, _, record in self.unacked[:self.to_acknowledge]:
            record.ack()
        del self.unacked[:self.to_acknowledge]
        self.to_acknowledge = 0


_late_said_at = 0.0


def _say_late(total: int) -> None:
    """Say, at most once a minute, that events reach the timeline after its frontier."""
    global _late_said_at
    if time.monotonic() - _late_said_at < 60:
        return
    _late_said_at = time.monotonic()
    log.warning("%s: %d events so far reached the alert timeline after its frontier had "
                "passed their time; alerts about them are stamped at the frontier, not at their "
                "own instant (in a replay: it is faster than the frontier allows, "
                "docs/alerts.md#limits; live: they arrived later than settle_seconds)",
                AGENT, total)


_evaluation: Evaluation | None = None
_passed_over = PassedOver(alert_input_topic.get_topic_name(), settings,
                          metrics.offsets_passed_over)
_lock = asyncio.Lock()
registry.register(AlertsCollector(
    config,
    lambda: list(_evaluation.timeline.active.values()) if _evaluation else [],
    lambda: _evaluation.timeline.frontier if _evaluation and ownership.evaluating() else None))


def evaluating() -> bool:
    """Whether this worker raises the alerts (it owns the alert input, restored)."""
    return ownership.evaluating()


def _current() -> Evaluation:
    global _evaluation
    if _evaluation is None:
        _evaluation = Evaluation()
        _evaluation.seed()
    return _evaluation


@app.agent(alert_input_topic, name="evaluator")
async def evaluator(stream: StreamT) -> None:
    """Take every worker's events; they are acknowledged by :func:`advance` once applied."""
    async for record in stream.noack().events():
        async with _lock:
            if not evaluating():
                continue  # not acknowledged: the partition's owner reads it again
            for missing in await _passed_over.before(ownership.generation, record.message,
                                                     app.consumer, settle=False):
                missing.on_ack = _settle_later(missing)
                await _take(missing, missing)
            await _take(record.message, record)


def _settle_later(record: Any) -> Any:
    """Once a read-again record is applied: count it done in Faust's commit bookkeeping."""
    def ack() -> None:
        asyncio.ensure_future(settle_range(app.consumer, record.topic, record.partition,
                                           record.offset, record.offset))
    return ack


async def _take(message: Any, record: Any) -> None:
    """Offer one alert-input record's events to the evaluation; ``record`` is acked later."""
    try:
        batch = alertinput.decode(message.value)
    except Exception as exc:  # guard: one record must never crash the agent
        await guard_failed(AGENT, message, exc)
        _current().unacked.append((-math.inf, {}, record))  # acked in its turn, not before
        return
    _current().take(batch, record)


@app.timer(ADVANCE_EVERY_S)
async def advance() -> None:
    """Walk the timeline to the frontier; save, publish, then acknowledge what it applied."""
    global _evaluation
    if not evaluating():
        _evaluation = None  # the partition moved (or is restoring): start afresh from the table
        return
    raw = raw_topic.get_topic_name()
    read_before = dict(_evaluation.latest) if _evaluation is not None else {}
    try:
        highwaters = {} if settings.clock == "wall" else {
            tp.partition: offset for tp, offset in (await app.consumer.highwaters(
                *[TP(raw, p) for p in range(settings.topic_partitions)])).items()}
    except Exception as exc:  # the broker is away: try again on the next tick
        log.debug("high-water marks unavailable: %r", exc)
        return
    async with _lock:
        if not evaluating():
            return
        if _evaluation is None:  # (re)seeded now: nothing read before the snapshot counts
            read_before = {}
        evaluation = _current()
        try:
            async with ownership.batch():  # saved and durable before anything is acknowledged
                await _advance(evaluation, highwaters, read_before)
        except Exception as exc:  # guard: a failed step must not stop the timer for good
            metrics.agent_errors.labels(AGENT).inc()
            log.error("%s: walking the timeline failed: %r", AGENT, exc)
            return
        evaluation.acknowledge()


async def _advance(evaluation: Evaluation, highwaters: dict[int, int],
                   read_before: dict[int, float]) -> None:
    late = evaluation.timeline.late_count
    changes, notes = evaluation.timeline.advance(
        evaluation.frontier(time.time(), highwaters, read_before))
    if late > evaluation.late_reported:
        metrics.alert_events_late.inc(late - evaluation.late_reported)
        evaluation.late_reported = late
        _say_late(late)
    evaluation.changes.update(changes)
    evaluation.queue(notes)  # kept before any write that could fail: never lost
    evaluation.save()
    if evaluation.die_now:
        await durable()  # the half-written step is in the log, its alerts not published
        log.warning("%s: fault injection: SIGKILL with a step half written", AGENT)
        os.kill(os.getpid(), signal.SIGKILL)
    sent = [await alerts_topic.send(key=record["fingerprint"].encode(),
                                    value=orjson.dumps(record))
            for record in map(alert_record, evaluation.outbox.values())]  # in order
    await asyncio.gather(*sent)  # published before the records that caused them are acked
    # Only now out of the outbox: a send that failed leaves all of them for the next step.
    evaluation.write([(_outbox_key(seq), None) for seq in evaluation.outbox
                      if seq in evaluation.outbox_saved])
    evaluation.outbox_saved.clear()
    evaluation.outbox.clear()


@app.agent(alerts_topic, name="notifier")
async def notifier(stream: StreamT) -> None:
    async with httpx.AsyncClient(timeout=10, **ALERTMANAGER_CLIENT) as client:
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
            if response.status_code in (401, 403):
                problem += (" (Alertmanager refused our credentials: DEMANDFLOW_ALERTMANAGER_"
                            "USERNAME / _PASSWORD_FILE or _BEARER_TOKEN_FILE)")
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
        async with httpx.AsyncClient(timeout=10, **ALERTMANAGER_CLIENT) as client:
            await deliver(client, firing, retry=False)
