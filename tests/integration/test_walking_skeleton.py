"""End to end on the real broker: raw records in, exact backlog out, bad ones dead-lettered."""

from __future__ import annotations

import base64
import hashlib
import signal
import time
from pathlib import Path

import httpx
import orjson
import pytest

from pipeline.topics import partition_for
from tests.factories import BASE, created, event
from tests.integration.support import Namespace, Worker, consume_all, produce, wait_for

pytestmark = pytest.mark.integration

RAW, DLQ = "incidents.raw.v1", "incidents.deadletter.v1"


def scenario() -> tuple[list[tuple[bytes | None, bytes | None]], dict, dict[str, str], int, int]:
    """Known lifecycles + duplicates + malformed; returns records and what must follow."""
    records: list[tuple[bytes | None, bytes | None]] = []
    expected_open: dict[tuple[str, str], int] = {}
    good = 0
    plan = [("1", "north", "open"), ("1", "north", "open"), ("1", "east", "closed"),
            ("2", "south", "open"), ("2", "south", "regrade1"), ("3", "west", "open"),
            ("3", "central", "closed_reopened"), ("4", "central", "closed"), ("5", "north", "open")]
    for n, (grade, area, fate) in enumerate(plan * 3):
        iid = f"INC-{n:03d}"
        docs = [created(iid, n, grade, area), event(iid, "assigned", n + 1, {"terminal": "T01"})]
        final_grade = grade
        if fate == "closed":
            docs.append(event(iid, "closed", n + 5, {"disposition": "resolved"}))
        elif fate == "closed_reopened":
            docs += [event(iid, "closed", n + 5, {"disposition": "resolved"}),
                     event(iid, "reopened", n + 9, {})]
        elif fate == "regrade1":
            docs.append(event(iid, "graded", n + 2, {"grade": "1"}))
            final_grade = "1"
        if fate != "closed":
            expected_open[(final_grade, area)] = expected_open.get((final_grade, area), 0) + 1
        records += [(iid.encode(), orjson.dumps(d)) for d in docs]
        good += len(docs)
    duplicates = records[0:4] + records[10:12]
    records += duplicates
    # Out of order: the close for INC-900 arrives before its creation.
    late = [event("INC-900", "closed", 9, {"disposition": "x"}), created("INC-900", 1, "2", "east")]
    records += [(b"INC-900", orjson.dumps(d)) for d in late]
    good += 2
    # Keyed wrongly (no key at all): still accepted once, re-keyed by incident id.
    records.append((None, orjson.dumps(created("INC-901", 2, "3", "east"))))
    expected_open[("3", "east")] = expected_open.get(("3", "east"), 0) + 1
    good += 1
    # Keyed with another id that lands on another partition: re-keyed through the
    # internal topic to its incident's partition, and counted once.
    own = partition_for("INC-902", 4)
    wrong = next(k for n in range(100) if partition_for(k := f"other-{n}", 4) != own)
    records.append((wrong.encode(), orjson.dumps(created("INC-902", 3, "3", "east"))))
    expected_open[("3", "east")] += 1
    good += 1
    bad_grade = created("INC-X1", grade="9")
    missing = created("INC-X2")
    del missing["occurred_at"]
    malformed = {
        "not_json": b"{this is not json",
        "unknown_grade": orjson.dumps(bad_grade),
        "missing_field": orjson.dumps(missing),
        "wrong_type": orjson.dumps(created("INC-X3") | {"incident_id": 42}),
        "unsupported_schema_version": orjson.dumps({**created("INC-X5"), "schema_version": 2}),
        "not_object": b"[1, 2, 3]",
        "oversize": orjson.dumps({**created("INC-X4"), "source": "x" * 70000}),
    }
    # Just under the broker's 1 MB record limit: its dead letter must still fit.
    huge = orjson.dumps({**created("INC-X6"), "source": "y" * 999_000})
    records += [(b"INC-X", raw) for raw in [*malformed.values(), huge]]
    reasons = {hashlib.sha256(v).hexdigest(): k for k, v in malformed.items()}
    reasons[hashlib.sha256(huge).hexdigest()] = "oversize"
    return records, expected_open, reasons, good, len(duplicates)


def test_known_events_give_exact_backlog_dead_letters_and_dedup(ns: Namespace,
                                                                 workdir: Path) -> None:
    worker = Worker(ns, workdir).start()
    try:
        records, expected_open, reasons_by_value, good, dupes = scenario()
        produce(ns.bootstrap, ns.topic(RAW), records)

        wait_for("all good events accepted",
                 lambda: worker.metric_sum("demand_events_total", outcome="accepted") == good)
        wait_for("duplicates counted",
                 lambda: worker.metric_sum("demand_events_total", outcome="duplicate") == dupes)
        # Let any straggler (a wrongly counted extra) show up before asserting exactness.
        wait_for("dead letters counted",
                 lambda: worker.metric_sum("demand_dead_letters_total") == len(reasons_by_value))
        m = worker.metrics()
        open_counts: dict[tuple[str, str], float] = {}
        for (name, lbl), v in m.items():
            if name == "demand_backlog_open" and v:
                key = (dict(lbl)["grade"], dict(lbl)["area"])
                open_counts[key] = open_counts.get(key, 0) + v
        assert open_counts == expected_open
        assert worker.metric_sum("demand_events_total", outcome="accepted") == good
        assert worker.metric_sum("demand_events_total", outcome="rejected") == len(reasons_by_value)
        # INC-000 (grade 1, opened at BASE) is the oldest open grade-1 incident.
        age = m[("demand_backlog_oldest_age_seconds", (("grade", "1"),))]
        assert abs(age - (time.time() - BASE.timestamp())) < 60

        letters = consume_all(ns.bootstrap, ns.topic(DLQ), len(reasons_by_value))
        assert len(letters) == len(reasons_by_value)
        for record in letters:
            body = orjson.loads(record.value)
            original = base64.b64decode(body["original_value_b64"])
            assert body["reason"] == reasons_by_value[body["original_sha256"]]
            assert len(original) == min(body["original_size"], 256 * 1024)
            assert body["original_truncated"] == (body["original_size"] > 256 * 1024)
            assert body["source_topic"] == ns.topic(RAW)
            assert body["detail"]

        health = httpx.get(f"{worker.url}/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
    finally:
        took = worker.stop()
    # Issue 20: within 10 s of SIGTERM with the broker up (test_broker_outage: down). The
    # worker also started with a data directory that did not exist (support.Worker).
    assert took < 10, f"worker took {took:.1f}s to stop on SIGTERM"


def test_restarted_worker_restores_backlog_from_changelog(ns: Namespace, workdir: Path) -> None:
    first = Worker(ns, workdir).start()
    docs = [created("R-1", 0, "1", "north"), created("R-2", 1, "2", "north"),
            created("R-3", 2, "2", "south"), event("R-3", "closed", 4, {"disposition": "x"})]
    produce(ns.bootstrap, ns.topic(RAW), [(d["incident_id"].encode(), orjson.dumps(d))
                                          for d in docs])
    wait_for("backlog of 2", lambda: first.metric_sum("demand_backlog_open") == 2)
    assert first.stop(signal.SIGKILL) < 10

    # A new process with an empty local store: the tables come back from Kafka.
    second = Worker(ns, workdir).start()
    try:
        wait_for("restored backlog", lambda: second.metric_sum("demand_backlog_open") == 2)
        assert second.metric_sum("demand_backlog_open", grade="1", area="north") == 1
        assert second.metric_sum("demand_backlog_open", grade="2", area="north") == 1
        # Replaying an already-seen event after the restart changes nothing; nor does
        # anything the killed worker processed but had not yet committed.
        produce(ns.bootstrap, ns.topic(RAW), [(b"R-1", orjson.dumps(docs[0]))])
        wait_for("duplicate seen", lambda: second.metric_sum(
            "demand_events_total", outcome="duplicate") >= 1)
        assert second.metric_sum("demand_events_total", outcome="accepted") == 0
        assert second.metric_sum("demand_backlog_open") == 2
    finally:
        second.stop()


def test_garbage_inside_the_pipeline_never_crashes_an_agent(ns: Namespace, workdir: Path) -> None:
    """Records that skip ingest (written straight to the re-key topic) hit the agent's guard."""
    worker = Worker(ns, workdir).start()
    try:
        garbage = [(b"G-1", b"\x00\x01 not json"), (b"G-2", orjson.dumps({"event_id": "x"})),
                   (b"G-3", None)]
        produce(ns.bootstrap, ns.topic("demandflow.rekey.v1"), garbage)
        good = created("G-4", 0, "2", "west")
        produce(ns.bootstrap, ns.topic(RAW), [(b"G-4", orjson.dumps(good))])
        wait_for("good event after garbage", lambda: worker.metric_sum(
            "demand_backlog_open", grade="2", area="west") == 1)
        wait_for("guard counted", lambda: worker.metric_sum(
            "demand_agent_errors_total", agent="backlog") == len(garbage))
        letters = consume_all(ns.bootstrap, ns.topic(DLQ), len(garbage))
        assert sorted(orjson.loads(r.value)["reason"] for r in letters) == ["internal_error"] * 3
        assert httpx.get(f"{worker.url}/healthz").status_code == 200
    finally:
        took = worker.stop()
    assert took < 15
