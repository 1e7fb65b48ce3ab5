"""The v1 event contract: every valid shape passes, every kind of bad input gets its reason."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from pipeline.config import load_config
from pipeline.domain.events import EVENT_TYPES, decode_event
from pipeline.errors import InvalidEvent
from schemas import INCIDENT_EVENT_V1, load
from tests.factories import examples

CONFIG = load_config()


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(load(INCIDENT_EVENT_V1))


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_has_a_valid_example(event_type: str) -> None:
    doc = examples()[event_type]
    ev = decode_event(orjson.dumps(doc), CONFIG, 65536)
    assert ev.event_type == event_type
    assert ev.incident_id == "INC-1"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = doc
        for p in parents:
            target = target[p]
        target[last] = value
    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = doc
        for p in parents:
            target = target[p]
        del target[last]
    return mutate


BAD = [
    ("created", _drop("event_id"), "missing_field", "event_id"),
    ("created", _drop("data.area"), "missing_field", "data.area"),
    ("created", _set("data.grade", 1), "wrong_type", "data.grade"),
    ("created", _set("data.grade", "9"), "unknown_grade", "grade"),
    ("graded", _set("data.grade", "P1"), "unknown_grade", "grade"),
    ("created", _set("data.area", "atlantis"), "unknown_area", "area"),
    ("created", _set("data.channel", "fax"), "invalid_value", "data.channel"),
    ("created", _set("data.nickname", "x"), "unknown_field", "data"),
    ("created", _set("extra", 1), "unknown_field", "(event)"),
    ("created", _set("event_type", "exploded"), "unknown_event_type", "event_type"),
    ("created", _set("schema_version", 2), "unsupported_schema_version", "schema_version"),
    ("created", _set("occurred_at", "yesterday"), "invalid_value", "occurred_at"),
    ("created", _set("occurred_at", "2026-02-30T10:00:00Z"), "invalid_value", "occurred_at"),
    ("created", _set("occurred_at", "2026-11-23T10:00:00+01:00"), "invalid_value",
     "occurred_at"),
    ("risk_assessed", _drop("data.next_review_due"), "missing_field", "next_review_due"),
    ("risk_assessed", _set("data.thrive.harm", "extreme"), "invalid_value", "harm"),
    ("created", _set("data.caller_ref", "07700 900123"), "invalid_value", "caller_ref"),
]


@pytest.mark.parametrize(("event_type", "mutate", "reason", "names"), BAD)
def test_bad_events_are_refused_with_a_reason(event_type: str, mutate: Callable[..., None],
                                              reason: str, names: str) -> None:
    doc = copy.deepcopy(examples()[event_type])
    mutate(doc)
    with pytest.raises(InvalidEvent) as err:
        decode_event(orjson.dumps(doc), CONFIG, 65536)
    assert err.value.reason == reason
    assert names in err.value.detail


def test_details_never_echo_the_offending_value() -> None:
    doc = examples()["created"]
    doc["data"]["caller_ref"] = "07700 900123"  # a phone number where a pseudonym belongs
    with pytest.raises(InvalidEvent) as err:
        decode_event(orjson.dumps(doc), CONFIG, 65536)
    assert "07700" not in str(err.value)


@pytest.mark.parametrize(("raw", "reason"), [
    (b"{not json", "not_json"),
    (b"\xff\xfe\x00", "not_json"),
    (b"", "not_json"),
    (None, "not_json"),
    (b"[1, 2]", "not_object"),
    (b'"text"', "not_object"),
])
def test_undecodable_records_are_refused(raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidEvent) as err:
        decode_event(raw, CONFIG, 65536)
    assert err.value.reason == reason


def test_oversize_records_are_refused_before_parsing() -> None:
    doc = examples()["closed"]
    doc["data"]["disposition"] = "x" * 60
    raw = orjson.dumps(doc) + b" " * 2000
    with pytest.raises(InvalidEvent) as err:
        decode_event(raw, CONFIG, 1024)
    assert err.value.reason == "oversize"


def test_rejection_keeps_a_known_event_type_for_counting() -> None:
    doc = examples()["graded"]
    doc["data"]["grade"] = "9"
    with pytest.raises(InvalidEvent) as err:
        decode_event(orjson.dumps(doc), CONFIG, 65536)
    assert err.value.event_type == "graded"


def test_the_fast_validator_accepts_nothing_the_reference_validator_refuses() -> None:
    """The compiled fast path must never let through what the 2020-12 contract refuses."""
    import random

    import fastjsonschema

    from pipeline.domain.events import _VALIDATOR, fast_check

    rng = random.Random(4)
    values = [None, 0, -1, 1.5, "", "x" * 200, "9", [], {}, True, "2026-02-30T10:00:00Z",
              "created", "closed", "graded"]  # another type: the data must then match it
    checked = 0
    for doc in examples().values():
        for _ in range(120):
            mutated = orjson.loads(orjson.dumps(doc))
            target = mutated if rng.random() < 0.5 else mutated["data"]
            key = rng.choice([*target, "extra_field", "event_type"])
            if rng.random() < 0.2:
                target.pop(key, None)
            else:
                target[key] = rng.choice(values)
            try:
                fast_check(mutated)
            except fastjsonschema.JsonSchemaException:
                continue  # refused by the fast path: jsonschema decides, as in _check
            checked += 1
            assert _VALIDATOR.is_valid(mutated), mutated
        assert _VALIDATOR.is_valid(doc)
        fast_check(doc)  # and it accepts every valid example
    assert checked > 20  # some mutations stay valid, and both agree on those
