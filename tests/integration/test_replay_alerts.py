"""A replay raises the same alerts as the live run did.

Real Kafka, two real workers. The first runs live (wall clock): a scenario is
sent event by event at the moments it happens, and the worker's alert records
are read back from ``demand.alerts.v1``. The second is a fresh deployment in
event-time mode fed the same log all at once, as a replay is. Every record —
rule, subject, status, incident ids, summary and the instants an episode
began and ended — must be the same, including an alert that lasted three
seconds of a replay read in a fraction of one.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from pipeline.config import default_config_text
from tests.integration.support import Namespace, Worker, consume_all, produce, wait_for

pytestmark = pytest.mark.integration

RAW = "incidents.raw.v1"
ALERTS = "demand.alerts.v1"
THRIVE = {k: "medium" for k in ("threat", "harm", "risk", "investigation", "vulnerability",
                                "engagement")}
# rule -> how many records (firing + resolved) the scenario gives
EXPECTED = {"Grade1AttendanceOverdue": 2, "TerminalOverloaded": 2, "RepeatCaller": 2,
            "VulnerableReviewOverdue": 2, "Grade2BacklogHigh": 2}


def config_file(workdir: Path) -> Path:
    """The shipped rules, scaled to a one-minute scenario."""
    text = default_config_text()
    for old, new in (("attend_within_seconds = 900\nattend_within_seconds_rural = 1200",
                      "attend_within_seconds = 20\nattend_within_seconds_rural = 25"),
                     ("band_low = 20\nband_high = 50", "band_low = 1\nband_high = 3"),
                     ("threshold = 40", "threshold = 3"),
                     ("cool_down_seconds = 120", "cool_down_seconds = 4"),
                     ("grace_seconds = 300", "grace_seconds = 5")):
        assert old in text, old
        text = text.replace(old, new)
    path = workdir / "force.toml"
    path.write_text(text)
    return path


def scenario(t0: float) -> list[tuple[float, bytes, bytes]]:
    """(when, key, value): who waits, who is late, who rings back, over 40 seconds."""
    out: list[tuple[float, bytes, bytes]] = []

    def ev(at: float, incident: str, etype: str, data: dict[str, Any]) -> None:
        doc = {"event_id": f"{incident}-{len(out)}", "incident_id": incident,
               "event_type": etype, "schema_version": 1, "source": "test", "data": data,
               "occurred_at": datetime.fromtimestamp(t0 + at, UTC).isoformat()
               .replace("+00:00", "Z")}
        out.append((t0 + at, incident.encode(), orjson.dumps(doc)))

    def call(at: float, incident: str, grade: str, area: str, caller: str,
             vulnerable: bool = False) -> None:
        ev(at, incident, "created", {"grade": grade, "category": "ASB", "channel": "999",
                                     "area": area, "vulnerable": vulnerable,
                                     "caller_ref": f"caller-{caller}"})

    call(0, "A", "1", "north", "c-a")  # target 20 s; arrives at 23: three seconds late
    call(1, "B", "1", "south", "c-b")  # arrives at 19: on time, no alert
    call(2, "V", "3", "south", "c-v", vulnerable=True)
    for n in range(1, 5):  # four grade 2s in the east (backlog above 3), all on T9
        call(2 + n, f"C{n}", "2", "east", f"c-c{n}")
    call(3, "R1", "4", "west", "c-repeat")
    ev(4, "V", "risk_assessed", {"thrive": THRIVE, "trigger": "initial",
                                 "next_review_due": datetime.fromtimestamp(t0 + 15, UTC)
                                 .isoformat().replace("+00:00", "Z")})
    for n in range(1, 5):
        ev(6 + n, f"C{n}", "assigned", {"terminal": "T9"})  # 4 logs > band 3 at 10 s
    call(10, "R2", "4", "west", "c-repeat")
    ev(12, "C1", "assigned", {"terminal": "T8"})  # T9 back to 3
    call(17, "R3", "4", "west", "c-repeat")  # third call from one caller
    ev(19, "B", "arrived", {})
    ev(23, "A", "arrived", {})
    ev(24, "C1", "closed", {"disposition": "advice"})  # backlog 3: clear ...
    ev(26, "C1", "reopened", {"reason": "rang back"})  # ... back within the cool-down
    ev(28, "V", "risk_assessed", {"thrive": THRIVE, "trigger": "reassessment",
                                  "next_review_due": datetime.fromtimestamp(t0 + 3600, UTC)
                                  .isoformat().replace("+00:00", "Z")})
    for n in range(1, 4):
        ev(30, f"R{n}", "closed", {"disposition": "linked"})
    ev(32, "C1", "closed", {"disposition": "advice"})
    return sorted(out, key=lambda e: e[0])


def alert_records(ns: Namespace) -> list[dict[str, Any]]:
    records = consume_all(ns.bootstrap, ns.topic(ALERTS), expected=sum(EXPECTED.values()),
                          timeout=60)
    return sorted((orjson.loads(r.value) for r in records),
                  key=lambda r: (r["starts_at"], r["fingerprint"], r["status"]))


def test_a_fast_replay_raises_exactly_the_alerts_of_the_live_run(
        bootstrap: str, workdir: Path) -> None:
    config = str(config_file(workdir))

    live_ns = Namespace(bootstrap)
    live = Worker(live_ns, workdir, DEMANDFLOW_CONFIG_PATH=config,
                  DEMANDFLOW_CLOCK="wall").start()
    t0 = float(int(time.time()) + 3)
    events = scenario(t0)
    try:
        # Each event as it happens (one producer, flushed per event: milliseconds, well
        # inside the worker's settle time).
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        try:
            for when, key, value in events:
                time.sleep(max(0.0, when - time.time()))
                producer.send(live_ns.topic(RAW), key=key, value=value)
                producer.flush()
        finally:
            producer.close()
        wait_for("the live run's last resolution", lambda: live.metric_sum(
            "demand_alerts_firing") == 0 and time.time() > t0 + 40, timeout=60)
        live_records = alert_records(live_ns)
        # Live, the rules have been evaluated up to a few seconds ago.
        behind = time.time() - live.metric_sum("demand_alerts_evaluated_until_timestamp_seconds")
        assert 0 < behind < 10, behind
    finally:
        live.stop()

    replay_ns = Namespace(bootstrap)
    replay = Worker(replay_ns, workdir, DEMANDFLOW_CONFIG_PATH=config,
                    DEMANDFLOW_CLOCK="event").start()
    try:
        # The same log at once, and one later call whose time carries the stream past the
        # scenario's end (a grade 5: no target, no rule applies to it).
        marker = scenario(t0 + 60)[1]  # B's call, 61 s in
        marker_value = marker[2].replace(b'"B"', b'"Z"').replace(b'"grade":"1"',
                                                                b'"grade":"5"')
        produce(bootstrap, replay_ns.topic(RAW),
                [(k, v) for _, k, v in events] + [(b"Z", marker_value)])
        replay_records = alert_records(replay_ns)
        # In a replay, up to the stream's time less the grace (the marker, less 5 s).
        until = "demand_alerts_evaluated_until_timestamp_seconds"
        wait_for("rules evaluated up to the stream's time less the grace",
                 lambda: replay.metric_sum(until) == marker[0] - 5, timeout=30)
    finally:
        replay.stop()

    counts: dict[str, int] = {}
    for r in live_records:
        counts[r["rule"]] = counts.get(r["rule"], 0) + 1
    assert counts == EXPECTED, live_records
    assert replay_records == live_records
    g1 = [r for r in live_records if r["rule"] == "Grade1AttendanceOverdue"]
    assert [(r["status"], r["incident_ids"]) for r in g1] == [("firing", ["A"]),
                                                              ("resolved", ["A"])]
    assert g1[1]["ends_at"] == datetime.fromtimestamp(t0 + 23, UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
