"""Dead-letter records follow their schema and keep the original bytes exactly."""

from __future__ import annotations

import base64

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
