"""A third-party complaint repeated every few milliseconds is logged once per interval."""

from __future__ import annotations

import logging

from pipeline.lograte import RateLimit


def record(name: str, msg: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, None)


def test_repeats_are_held_back_and_counted() -> None:
    clock = [0.0]
    limit = RateLimit(interval_s=30)
    limit._now = lambda: clock[0]  # type: ignore[method-assign]
    passed = []
    for i in range(500):  # 50 a second for 10 s, numbers differing as f-strings do
        clock[0] = i / 50
        r = record("aiokafka.conn", f"Unable connect to node with id {i % 3}")
        if limit.filter(r):
            passed.append(r.msg)
    assert passed == ["Unable connect to node with id 0"]
    clock[0] = 31.0
    r = record("aiokafka.conn", "Unable connect to node with id 1")
    assert limit.filter(r) and r.msg.endswith("[and 499 more like it since]")


def test_own_lines_and_info_always_pass() -> None:
    limit = RateLimit(interval_s=30)
    for _ in range(3):
        assert limit.filter(record("pipeline.brokerwatch", "Kafka unreachable"))
        assert limit.filter(record("aiokafka.conn", "connected", logging.INFO))
