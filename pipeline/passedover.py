"""Records the consumer passed over: noticed at once, read from the log, handed to the agent.

Kafka gives a partition's records consecutive offsets, so an agent handed offset
1,721 right after 1,633 has been passed over 87 records. Faust 0.15 does this
at a worker's start and after a broker restart (docs/state.md#limits): its
recovery lets the consumer fetch while tables restore and seeks to the
committed offsets later, and records fetched in between are cleared from the
stream queues while its read offset moves past them. Waiting for them does not
help (they never come in that process), and seeking Faust's consumer back does
not either (its read offset drops them again; tried twice). So an agent checks
each record it is handed against the next offset it expects, and on a jump
reads the missing range itself, with a plain consumer outside the group, before
it handles the record that revealed it. The agents' handling is idempotent, so
a range that Faust does deliver after all is only handled twice.

Faust's commit bookkeeping never counts those offsets as acknowledged (or
counts them as a gap it skips): once the agent has made their effects durable,
:meth:`PassedOver.settle` tells it they are done, so commits neither stall
before them nor pass them unhandled.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.kafkasecurity import kafka_python
from pipeline.settings import Settings

log = logging.getLogger(__name__)
READ_TIMEOUT_S = 30.0
# A broker outage may keep passed-over records from being read this long before the worker
# gives up and exits (its restart reads them); tried again with back-off meanwhile.
READ_RETRY_S = 180.0
READ_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0)


@dataclass
class Record:
    """A record read again from the log, shaped like the Faust message it stands for."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    on_ack: Any = None

    def ack(self) -> None:
        """For agents that acknowledge records themselves (the alert evaluator)."""
        if self.on_ack is not None:
            self.on_ack()


@dataclass
class PassedOver:
    """One agent's watch on one topic: the next offset expected per partition."""

    topic: str
    settings: Settings
    counter: Any = None  # a Counter labelled by topic: offsets passed over
    _next: dict[int, int] = field(default_factory=dict)
    _generation: int = -1
    _done: list[tuple[int, int, int]] = field(default_factory=list)

    async def before(self, generation: int, message: Any, consumer: Any,
                     settle: bool = True) -> list[Record]:
        """The records passed over just before ``message`` (a Faust message), read from the
        log; the agent handles them first. A new assignment's first record should be at the
        partition's committed offset (as Faust's ``consumer`` last sought to), or at the
        start of its log if the group has committed none (see :func:`_start`). While the
        broker cannot be reached they are tried again with back-off (the agent can do
        nothing else meanwhile: its next records depend on them); a worker that still
        cannot read them after :data:`READ_RETRY_S` exits without committing (exit 70):
        its restart reads them."""
        self._new_generation(generation)
        if message.partition not in self._next:
            self.expect(generation, message.partition, await _start(consumer, message.tp))
        missing = self.check(generation, message.partition, message.offset)
        if missing is None:
            return []
        records = await self._read_patiently(message.partition, *missing)
        if self.counter is not None:
            self.counter.labels(self.topic).inc(missing[1] - missing[0] + 1)
        if settle:
            self.handled(message.partition, *missing)
        return records

    async def _read_patiently(self, partition: int, first: int, last: int) -> list[Record]:
        """:meth:`read`, tried again with back-off through a broker outage (seen: a worker
        exited 4 s into a 30 s outage, reading a range passed over just before it)."""
        give_up = time.monotonic() + READ_RETRY_S
        for attempt in itertools.count():
            try:
                return await self.read(partition, first, last)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = READ_BACKOFF_S[min(attempt, len(READ_BACKOFF_S) - 1)]
                if time.monotonic() + delay > give_up:
                    log.critical("%s[%d]: reading passed-over offsets %d-%d failed for %.0f s "
                                 "(%s); exiting without committing", self.topic, partition,
                                 first, last, READ_RETRY_S, type(exc).__name__)
                    os._exit(70)
                log.warning("%s[%d]: reading passed-over offsets %d-%d failed (%s); trying "
                            "again in %.0f s", self.topic, partition, first, last,
                            type(exc).__name__, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def expect(self, generation: int, partition: int, offset: int | None) -> None:
        """Start a partition's watch at ``offset`` (its committed offset), if not started."""
        self._new_generation(generation)
        if offset is not None and partition not in self._next:
            self._next[partition] = offset

    def check(self, generation: int, partition: int, offset: int) -> tuple[int, int] | None:
        """Note that ``offset`` was handed over; the range passed over before it, if any."""
        self._new_generation(generation)
        expected = self._next.get(partition)
        if expected is None or offset >= expected:
            self._next[partition] = offset + 1
            if expected is not None and offset > expected:
                return expected, offset - 1
        return None  # at or behind what was seen: a redelivery, handled idempotently

    def _new_generation(self, generation: int) -> None:
        if generation != self._generation:  # a new assignment starts where it starts
            self._next.clear()
            self._generation = generation

    async def read(self, partition: int, first: int, last: int) -> list[Record]:
        """The records ``first``..``last`` of ``partition``, read from the log (some
        offsets may hold none: a transaction marker, or deleted by retention)."""
        started = time.monotonic()
        records = await read_range(self.settings, self.topic, partition, first, last)
        log.warning("%s[%d]: the consumer passed over offsets %d-%d; read %d records of them "
                    "from the log in %.1f s", self.topic, partition, first, last, len(records),
                    time.monotonic() - started)
        return records

    def handled(self, partition: int, first: int, last: int) -> None:
        """The range's records were handled; tell Faust once they are durable (settle)."""
        self._done.append((partition, first, last))

    async def settle(self, consumer: Any) -> None:
        """Mark the handled ranges acknowledged in Faust's commit bookkeeping."""
        done, self._done = self._done, []
        for partition, first, last in done:
            await settle_range(consumer, self.topic, partition, first, last)


async def _start(consumer: Any, tp: Any) -> int | None:
    """Where a new assignment of ``tp`` should start: the group's committed offset, or with
    none (Faust records 0 as none too) the start of the log, as ``auto_offset_reset=earliest``
    says. Seen on 2026-12-03 (bench.takeover): records produced while Faust restored its
    tables were fetched for a partition it had paused, dropped, and, the group having
    committed nothing to seek back to, never delivered: offsets 0-208 and 0-214 of two
    partitions lost, then committed past. Only a baseline here catches that."""
    committed = consumer._committed_offset.get(tp)
    if committed is not None and committed > 0:
        return int(committed)
    earliest = (await consumer.earliest_offsets(tp)).get(tp)
    return None if earliest is None else int(earliest)


async def settle_range(consumer: Any, topic: str, partition: int, first: int, last: int) -> None:
    """Count ``first``..``last`` as acknowledged by Faust's consumer (a private hook of
    faust-streaming 0.15, ``_add_gap``: the ranges it treats as done when committing)."""
    from faust.types import TP

    await consumer._add_gap(TP(topic, partition), first, last)


async def read_range(settings: Settings, topic: str, partition: int, first: int,
                     last: int) -> list[Record]:
    """Read ``first``..``last`` of one partition with a consumer outside any group."""
    consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", **kafka_python(settings))
    tp = TopicPartition(topic, partition)
    out: list[Record] = []
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, first)
        end = (await consumer.end_offsets([tp]))[tp]
        stop = min(last + 1, end)
        deadline = time.monotonic() + READ_TIMEOUT_S
        while await consumer.position(tp) < stop:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}[{partition}]: offsets {first}-{last} not read "
                                   f"in {READ_TIMEOUT_S:.0f} s")
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1000)
            for message in batch.get(tp, []):
                if first <= message.offset <= last:
                    out.append(Record(topic, partition, message.offset, message.key,
                                      message.value))
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return out
