"""Backlog: fold validated events into per-incident state in a changelog-backed table.

The fold (pipeline.domain.backlog.apply_event) is idempotent and
order-independent, so at-least-once delivery and restarts cannot skew it.
Things that must happen once per incident (counting it as received and in its
demand window, observing each response time, counting an attendance breach)
are decided by comparing the state before and after, so a duplicate or a
replay never repeats them. The gauges are computed from the table on scrape.

Events are folded in batches: the batch is folded in memory, then each
changed incident is written to the table and published once, so a burst of
an incident's events costs one changelog record, not one per event. Offsets
are acknowledged after the batch has been written.

Most events are folded by the ingest agent, on the raw topic's partition,
when that is already their incident's partition (the contract keys raw
records by incident id, and the table is co-partitioned with the topic): an
event is then consumed once, not twice. The others arrive here re-keyed
through ``demandflow.rekey.v1``.
"""

from __future__ import annotations

import logging
import os
import signal
import time

import orjson
from faust import StreamT

from agents import windows
from agents.deadletters import guard_failed
from pipeline.app import (
    app,
    config,
    metrics,
    ownership,
    publish,
    rekey_topic,
    settings,
    state_topic,
)
from pipeline.domain.backlog import State, fold_event
from pipeline.domain.clocks import attendance_breached, stage_seconds
from pipeline.domain.due import DueIndex, breach_due_at, forget_due_at
from pipeline.domain.events import Event, event_from_document
from pipeline.domain.incident_state import state_record
from pipeline.domain.windows import FUTURE_TOLERANCE_S
from pipeline.passedover import PassedOver
from pipeline.tables import durable, partitioned_table

AGENT = "backlog"
log = logging.getLogger(__name__)

incidents = partitioned_table(app, "incidents", settings.topic_partitions,
                              help="Incident state by incident id.")
Changed = dict[str, State | None]  # incident id -> state (None: forgotten)
_passed_over = PassedOver(rekey_topic.get_topic_name(), settings, metrics.offsets_passed_over)


@app.agent(rekey_topic, name=AGENT)
async def backlog(stream: StreamT) -> None:
    """Fold the events ingest re-keyed (those that arrived on another partition)."""
    async for batch in stream.take_events(settings.batch_max_events, settings.batch_within_s):
        async with ownership.batch():  # written and durable before it is acknowledged
            for event in batch:
                if not ownership.owns(event.message.partition):
                    continue  # moved in a rebalance: its new owner reads it again
                for record in await _passed_over.before(ownership.generation, event.message,
                                                        app.consumer):
                    await _fold_record(record)
                await _fold_record(event.message)
            await save()
        await _passed_over.settle(app.consumer)


async def _fold_record(message) -> None:  # type: ignore[no-untyped-def]
    try:
        fold(message.partition, event_from_document(orjson.loads(message.value)),
             ("k", message.offset))
    except Exception as exc:  # guard: one record must never crash the agent
        await guard_failed(AGENT, message, exc)


class Due:
    """One partition's incidents by when the clock must next look at them: attendance
    deadlines still open to a breach, and closed incidents by their last event."""

    def __init__(self, partition: int) -> None:
        self.breach = DueIndex()
        self.forget = DueIndex()
        for incident_id, state in incidents.items_in((partition,)):
            self.note(incident_id, state)

    def note(self, incident_id: str, state: State | None) -> None:
        self.breach.set(incident_id, None if state is None else breach_due_at(state, config))
        self.forget.set(incident_id, None if state is None else forget_due_at(state))


class PartitionState:
    """What this worker holds for one partition it owns, beside the table: the folds not
    yet written and the clock's due index. Both folding agents and the clock go through
    it; one object per owned partition and assignment, so a rebalance drops one thing.

    Both folding agents and the clock share its pending map: a batch awaits (sends) between
    folding and saving, and with a map per batch an incident folded by both agents, or
    marked breached by the clock, in that gap would have one write overwrite the other."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.pending: Changed = {}
        self.windows = windows.PartitionWindows(partition)
        self._due: Due | None = None
        self._watermark: float | None = None  # moved by this batch, not yet written

    def current(self, incident_id: str) -> State | None:
        """The incident's latest state: folded but not yet written, else the table's."""
        if incident_id in self.pending:
            return self.pending[incident_id]
        return incidents.peek(incident_id)  # type: ignore[no-any-return]

    def fold(self, ev: Event, source: tuple[str, int] | None = None) -> None:
        """Fold one event into the pending states (written by :func:`save`).

        ``source`` (topic tag, offset) lets the demand counts recognise a record read
        again after a crash (agents.windows)."""
        before = self.current(ev.incident_id)
        watermark = self.watermark()
        folded = fold_event(before, ev, horizon_of(watermark), settings.dedup_per_incident)
        metrics.count_event(ev.event_type, folded.outcome)
        if ev.event_type == "created":
            self._advance(ev.at)
        if folded.after is None:
            # Met an incident due to be forgotten: the clock drops it (its due index has
            # it), not this batch. A drop by the clock is decided on the watermark as
            # written, so it is never in the log ahead of that watermark; one made here
            # could be, and a creation read again after a crash would then find nothing
            # and begin the incident anew (docs/state.md#one-batch-across-two-tables).
            return
        if folded.outcome == "late":
            return
        metrics.event_lag.observe(max(0.0, time.time() - ev.at))
        if folded.outcome == "accepted":
            # The event is evidence that event time has reached ev.at, less the grace.
            record_changes(self.windows, folded.before, folded.after,
                           now=ev.at - config.windows.grace_seconds, watermark=watermark,
                           source=source)
            self.pending[ev.incident_id] = folded.after

    def _advance(self, at: float) -> None:
        """Move the watermark to a call at ``at`` (a creation folded, new or read again:
        so a record read again after a crash moves it exactly as it did the first time).
        A clock running fast at a source must not make everyone else "late": a call
        stamped in the future does not move it."""
        watermark = self.watermark()
        if (watermark is None or at > watermark) and at <= time.time() + FUTURE_TOLERANCE_S:
            self._watermark = at
            self.windows.expire(at)

    def watermark(self) -> float | None:
        """The latest call time folded on this partition, this batch's included."""
        if self._watermark is not None:
            return self._watermark
        return stored_watermark(self.partition)

    def forget_horizon(self) -> float | None:
        """Closed incidents quiet since before this event time are forgotten (None: no data
        yet): the partition's watermark, this batch's included, less the retention."""
        return horizon_of(self.watermark())

    def replace(self, incident_id: str, state: State | None) -> None:
        """Write (or, with None, delete) an incident now, superseding anything pending."""
        self.pending.pop(incident_id, None)
        self.write(incident_id, state)

    def write(self, incident_id: str, state: State | None) -> None:
        if state is None:
            incidents.remove(self.partition, incident_id)
        else:
            incidents.put(self.partition, incident_id, state)
        if self._due is not None:
            self._due.note(incident_id, state)

    def due(self) -> Due:
        """The due index, built from the table on first use (a restore writes the table
        behind the agents' back, so not before the partition is restored), then kept by
        every write."""
        if self._due is None:
            self._due = Due(self.partition)
        return self._due

    def take(self) -> Changed:
        """The pending states, handed over to be written."""
        taken, self.pending = self.pending, {}
        return taken

    def write_watermark(self) -> None:
        """Write the watermark this batch moved, after the batch's incident rows (one
        changelog partition keeps the order): durable only with every state before it."""
        if self._watermark is not None:
            incidents.put_meta(self.partition, "wm", self._watermark)
            self._watermark = None


def horizon_of(watermark: float | None) -> float | None:
    """The forget horizon at ``watermark``: closed incidents quiet since before it are
    forgotten (docs/topics.md#forgetting-closed-incidents)."""
    return None if watermark is None else watermark - settings.closed_retention_s


def _fault_due(held: list[PartitionState]) -> bool:
    """Whether this batch is the one settings.fault_die_between_tables_at names (tests)."""
    at = settings.fault_die_between_tables_at
    if at is None:
        return False
    moved = [ps._watermark for ps in held if ps._watermark is not None]
    return bool(moved) and max(moved) >= at.timestamp()


def stored_watermark(partition: int) -> float | None:
    """The latest call time folded on ``partition``, as written with its incidents."""
    value = incidents.meta(partition, "wm")
    if value is None:
        return windows.legacy_watermark(partition)
    return float(value)


_states: dict[int, PartitionState] = {}
_states_generation = -1


def partition_state(partition: int) -> PartitionState:
    """The object for ``partition`` in the current assignment (a new one after a rebalance:
    a batch is never in flight across one, pipeline.ownership's gate)."""
    global _states_generation
    if _states_generation != ownership.generation:
        _states.clear()
        _states_generation = ownership.generation
    state = _states.get(partition)
    if state is None:
        state = _states[partition] = PartitionState(partition)
    return state


def fold(partition: int, ev: Event, source: tuple[str, int] | None = None) -> None:
    """Fold one event of ``partition`` (ingest's entry point)."""
    partition_state(partition).fold(ev, source)


async def save() -> None:
    """Write what is pending: each changed incident once, then publish them.

    The table and the window buckets are written to memory before any await, so
    views see whole batches. Their changelog records go out in an order that a
    crash at any point leaves restorable (docs/state.md#one-batch-across-two-tables):
    the demand counts first, and the incident rows and then the watermark only once
    the broker has the counts. A state durable with its creation then always has
    its count durable too; a count durable without its incident is recognised when
    the record is read again (agents.windows).
    """
    held = list(_states.values())
    changed = [(ps, incident_id, state) for ps in held for incident_id, state in ps.take().items()]
    die = _fault_due(held)
    for ps in held:
        ps.windows.flush()
    incidents.hold()
    try:
        for ps, incident_id, state in changed:
            ps.write(incident_id, state)
        for ps in held:
            ps.write_watermark()
    finally:
        await durable(windows.minutes)
        if die:
            log.warning("%s: fault injection: SIGKILL with a batch's counts durable and its "
                        "incidents not", AGENT)
            os.kill(os.getpid(), signal.SIGKILL)
        incidents.release()
    try:
        for _, incident_id, state in changed:
            if state is None:
                await state_topic.send(key=incident_id.encode(), value=None)
            else:
                await publish_state(state)
    except Exception as exc:  # the table is written; the next change re-publishes
        metrics.agent_errors.labels(AGENT).inc()
        log.error("%s: publishing state failed with %s", AGENT, type(exc).__name__)


async def publish_state(state: State) -> None:
    """Publish the incident's current picture to the compacted state topic."""
    record = state_record(state, config)
    if record is not None:
        await publish(state_topic, state["id"].encode(), orjson.dumps(record))


def record_changes(demand: windows.PartitionWindows, before: State | None, after: State,
                   now: float, watermark: float | None,
                   source: tuple[str, int] | None = None) -> None:
    """Count what became true with this change, once. May set ``after["breached"]``."""
    created = after.get("created")
    if created is not None and (before is None or "created" not in before):
        metrics.incidents_received.labels(created["grade"], created["channel"]).inc()
        demand.count_incident(created["at"], created["grade"], created["channel"],
                              watermark, source)
    if created is None:
        return
    grade = after["grade"][3]
    had = stage_seconds(before) if before else {}
    for stage, seconds in stage_seconds(after).items():
        if stage not in had:
            metrics.response_seconds.labels(grade, stage).observe(seconds)
    check_breach(after, now)


def check_breach(state: State, now: float) -> bool:
    """Mark and count an attendance breach the first time it is seen; True if newly marked."""
    if state.get("breached") or not attendance_breached(state, config, now):
        return False
    state["breached"] = True
    metrics.sla_breaches.labels(state["grade"][3], state["created"]["area"]).inc()
    return True
