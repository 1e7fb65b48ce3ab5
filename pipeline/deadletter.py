"""The dead-letter record: why a record was refused, and its original bytes.

Pure: the agents call :func:`dead_letter_record` and send the bytes it returns.
The original key and value are kept exactly (base64), so nothing refused is
lost: it can be inspected, fixed and produced again.
"""

from __future__ import annotations

import base64

import orjson

from pipeline.domain.events import format_time


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def dead_letter_record(*, reason: str, detail: str, agent: str, topic: str, partition: int,
                       offset: int, key: bytes | None, value: bytes | None, now: float) -> bytes:
    """Serialise a dead-letter record (schemas/dead-letter.v1.schema.json)."""
    return orjson.dumps({
        "schema_version": 1,
        "reason": reason,
        "detail": detail,
        "agent": agent,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "original_key_b64": _b64(key),
        "original_value_b64": _b64(value),
        "original_size": len(value or b""),
        "dead_lettered_at": format_time(now),
    })
