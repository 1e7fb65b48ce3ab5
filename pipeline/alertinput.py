"""The alert input: every valid event, from every worker, on one partition.

Alerts are force-wide (a grade's backlog across areas, a terminal's logs, a
surge) and are evaluated in event-time order, so one evaluator must see every
event, whichever worker read it from the raw topic. Each ingest batch sends
what it accepted to ``demandflow.alert-input.v1`` (one partition; the
evaluator is whichever worker owns it) as one record, or a few if large:

``{"progress": {"<raw partition>": <last raw offset handled>},
   "events": [[<raw partition>, <raw offset>, <the event as received>], ...]}``

``progress`` covers refused records too, so the evaluator knows how far each
raw partition has been read — its frontier waits for a partition still being
caught up on (agents.alerts) — and it rides on the batch's last record only,
so it never claims events that have not been sent. The events are embedded as
received (they were validated as JSON by ingest), not re-encoded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from pipeline.domain.events import Event, event_from_document

MAX_RECORD_BYTES = 512 * 1024  # well under the broker's 1 MB; one event is at most 64 KiB


@dataclass(frozen=True)
class Batch:
    """One decoded alert-input record."""

    progress: dict[int, int]
    events: list[tuple[int, int, Event]]


def encode(progress: dict[int, int], events: list[tuple[int, int, bytes]],
           max_bytes: int = MAX_RECORD_BYTES) -> Iterator[bytes]:
    """The records carrying one ingest batch (none if it handled nothing)."""
    chunk: list[list[object]] = []
    size = 0
    for partition, offset, raw in events:
        if chunk and size + len(raw) > max_bytes:
            yield orjson.dumps({"progress": {}, "events": chunk})
            chunk, size = [], 0
        chunk.append([partition, offset, orjson.Fragment(raw)])
        size += len(raw) + 24
    if chunk or progress:
        yield orjson.dumps({"progress": {str(p): o for p, o in progress.items()},
                            "events": chunk})


def decode(value: bytes) -> Batch:
    """Read one alert-input record (raises on a record this module did not write)."""
    doc = orjson.loads(value)
    return Batch({int(p): int(o) for p, o in doc["progress"].items()},
                 [(int(p), int(o), event_from_document(e)) for p, o, e in doc["events"]])
