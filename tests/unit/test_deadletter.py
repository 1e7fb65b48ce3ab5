"""Dead-letter records follow their schema and keep the original bytes exactly."""

from __future__ import annotations

import base64
import hashlib

import orjson
from jsonschema import Draft202012Validator

from pipeline.deadletter import dead_letter_record
from schemas import DEAD_LETTER_V1, load


def test_dead_letter_record_matches_schema_and_round_trips_bytes() -> None:
    original = b"\x00\xffnot json at all"
    record = orjson.loads(dead_letter_record(
        reason="not_json", detail="not valid UTF-8 JSON", agent="ingest",
        topic="incidents.raw.v1", partition=3, offset=17, key=b"INC-9", value=original,
        now=1795392000.0))
    Draft202012Validator(load(DEAD_LETTER_V1)).validate(record)
    assert base64.b64decode(record["original_value_b64"]) == original
    assert base64.b64decode(record["original_key_b64"]) == b"INC-9"
    assert record["dead_lettered_at"] == "2026-11-23T00:00:00.000Z"


def test_null_key_and_value_are_recorded_as_null() -> None:
    record = orjson.loads(dead_letter_record(
        reason="not_json", detail="record has no value", agent="ingest", topic="t",
        partition=0, offset=0, key=None, value=None, now=0.0))
    Draft202012Validator(load(DEAD_LETTER_V1)).validate(record)
    assert record["original_value_b64"] is None and record["original_size"] == 0


def test_a_record_just_under_the_brokers_limit_gets_a_dead_letter_that_fits() -> None:
    original = bytes(range(256)) * 4090  # 1,047,040 bytes: under the broker's 1,048,588
    raw = dead_letter_record(reason="oversize", detail="too big", agent="ingest",
                             topic="incidents.raw.v1", partition=1, offset=5, key=b"INC-1",
                             value=original, now=0.0)
    assert len(raw) < 512 * 1024  # one producer request is 1 MiB by default
    record = orjson.loads(raw)
    Draft202012Validator(load(DEAD_LETTER_V1)).validate(record)
    kept = base64.b64decode(record["original_value_b64"])
    assert original.startswith(kept) and len(kept) == 256 * 1024
    assert record["original_truncated"] is True and record["original_size"] == len(original)
    assert record["original_sha256"] == hashlib.sha256(original).hexdigest()
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == \
        ("incidents.raw.v1", 1, 5)
