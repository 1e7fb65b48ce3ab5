"""The dead-letter record: why a record was refused, and its original bytes.

Pure: the agents call :func:`dead_letter_record` and send the bytes it returns.
The original key and value are kept exactly (base64) up to ``MAX_ORIGINAL_BYTES``
each, so a refused record can be inspected, fixed and produced again. A larger
one keeps a prefix, with its size, its SHA-256 and the source topic, partition
and offset it can be read from again (within the raw topic's retention): a
dead letter must always fit in one producer request (1 MiB by default), or
the refused record vanishes without one. Base64 grows bytes by 4/3, so 256 KiB
of original become 342 KiB, far under the limit whatever the envelope.
"""

from __future__ import annotations

import base64
import hashlib

import orjson

from pipeline.domain.events import format_time

MAX_ORIGINAL_BYTES = 256 * 1024


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data[:MAX_ORIGINAL_BYTES]).decode("ascii")


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
        "original_truncated": len(value or b"") > MAX_ORIGINAL_BYTES
        or len(key or b"") > MAX_ORIGINAL_BYTES,
        "original_sha256": None if value is None else hashlib.sha256(value).hexdigest(),
        "dead_lettered_at": format_time(now),
    })
