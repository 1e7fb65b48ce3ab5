"""Downstream consumers (kafka-python, as a force's reporting system would) agree with /backlog."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
import pytest
from jsonschema import Draft202012Validator
from kafka.partitioner.default import murmur2

from schemas import BACKLOG_SNAPSHOT_V1, INCIDENT_STATE_V1, load
from tests.factories import created, event
from tests.integration.support import Namespace, Worker, consume_all, produce, wait_for

pytestmark = pytest.mark.integration
RAW, STATE, SNAPSHOTS = "incidents.raw.v1", "incidents.state.v1", "demand.backlog-snapshots.v1"


def latest_by_key(records) -> dict[bytes, bytes | None]:
    out: dict[bytes, bytes | None] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        out[r.key] = r.value
    return out


def test_state_and_snapshot_topics_agree_with_backlog(ns: Namespace, workdir: Path) -> None:
    docs = []
    for n in range(40):
        iid = f"D-{n:02d}"
        docs += [created(iid, n, grade="12345"[n % 5], area=["north", "south"][n % 2]),
                 event(iid, "assigned", n + 1, {"terminal": f"T0{n % 3}"})]
        if n % 4 == 0:
            docs.append(event(iid, "closed", n + 30, {"disposition": "resolved"}))
        if n % 7 == 0:
            docs.append(event(iid, "dispatched", n + 2, {}))
    # Three days later new calls move every partition's watermark: the early
    # closures are forgotten (tombstones), the open incidents stay.
    late_ids, covered = [], set()
    for n in range(1000):
        p = (murmur2(f"L-{n}".encode()) & 0x7FFFFFFF) % 4
        if p not in covered:
            covered.add(p)
            late_ids.append(f"L-{n}")
        if len(covered) == 4:
            break
    docs += [created(iid, 3 * 24 * 60, grade="2", area="west") for iid in late_ids]
    worker = Worker(ns, workdir, DEMANDFLOW_SNAPSHOT_INTERVAL_S="1").start()
    try:
        produce(ns.bootstrap, ns.topic(RAW), [(d["incident_id"].encode(), orjson.dumps(d))
                                              for d in docs])
        wait_for("all accepted", lambda: worker.metric_sum(
            "demand_events_total", outcome="accepted") == len(docs))
        backlog = httpx.get(f"{worker.url}/backlog").json()
        assert backlog["open_total"] == 30 + len(late_ids)

        state_validator = Draft202012Validator(load(INCIDENT_STATE_V1))

        def states_agree():
            latest = latest_by_key(consume_all(ns.bootstrap, ns.topic(STATE), 10**6, timeout=3))
            tombstones = [k for k, v in latest.items() if v is None]
            values = [orjson.loads(v) for v in latest.values() if v is not None]
            by_grade: dict[str, int] = {}
            for v in values:
                state_validator.validate(v)
                if v["open"]:
                    by_grade[v["grade"]] = by_grade.get(v["grade"], 0) + 1
            if len(tombstones) == 10 and by_grade == backlog["by_grade"]:
                return True
            return (sorted(tombstones), by_grade, backlog["by_grade"])

        deadline = time.monotonic() + 60
        result = states_agree()
        while result is not True and time.monotonic() < deadline:
            time.sleep(1)
            result = states_agree()
        assert result is True, result

        snapshot_validator = Draft202012Validator(load(BACKLOG_SNAPSHOT_V1))

        def snapshot_agrees():
            records = consume_all(ns.bootstrap, ns.topic(SNAPSHOTS), 10**6, timeout=3)
            if not records:
                return False
            last = orjson.loads(max(records, key=lambda r: r.timestamp).value)
            snapshot_validator.validate(last)
            now = httpx.get(f"{worker.url}/backlog").json()
            keys = ("open_total", "by_grade", "by_area", "by_status", "terminals")
            return all(last[k] == now[k] for k in keys)

        wait_for("snapshot agrees", snapshot_agrees, timeout=30)

        # Batched table writes name their partition: every incident's changelog record
        # must sit in the partition its events come from (Kafka's murmur2 of the id), and
        # every window bucket and partition watermark in the partition named by its key,
        # or a rebalance would restore them on the wrong worker.
        incidents_log = consume_all(ns.bootstrap, f"{ns.name}-incidents-changelog", 10**6,
                                    timeout=5)
        ids = [orjson.loads(r.key) for r in incidents_log]  # Faust's table keys are JSON
        assert set(ids) >= {d["incident_id"] for d in docs}
        marks = {(i, r.partition) for i, r in zip(ids, incidents_log, strict=True)
                 if i.startswith("\x00wm:")}
        assert marks == {(f"\x00wm:{p}", p) for p in range(4)}  # every partition had calls
        misplaced = [(i, r.partition) for i, r in zip(ids, incidents_log, strict=True)
                     if not i.startswith("\x00") and
                     (murmur2(i.encode()) & 0x7FFFFFFF) % 4 != r.partition]
        assert misplaced == []
        minutes_log = consume_all(ns.bootstrap, f"{ns.name}-demand-minutes-changelog", 10**6,
                                  timeout=5)
        assert minutes_log
        keys = [orjson.loads(r.key) for r in minutes_log]
        assert [k for k, r in zip(keys, minutes_log, strict=True)
                if int(k.split(":")[0]) != r.partition] == []
    finally:
        worker.stop()
