"""Alerts reach the right duty inspector through a real Alertmanager, once each, and resolve.

Real Kafka, a real worker and a real Alertmanager (the shipped routing, webhooks
pointed at a receiver run here). The worker is restarted, and Alertmanager is
stopped part-way and started again: every notification still arrives, none twice.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.config import default_config_text
from tests.integration.alertmanager import Alertmanager, Receiver
from tests.integration.support import (
    Namespace,
    Worker,
    consume_all,
    free_port,
    produce,
    wait_for,
    wait_true,
)

pytestmark = pytest.mark.integration

RAW = "incidents.raw.v1"
THRIVE = {k: "medium" for k in ("threat", "harm", "risk", "investigation", "vulnerability",
                                "engagement")}
_n = 0


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def ev(incident: str, etype: str, at: float, data: dict[str, Any]) -> tuple[bytes, bytes]:
    global _n
    _n += 1
    doc = {"event_id": f"al-{_n}", "incident_id": incident, "event_type": etype,
           "occurred_at": iso(at), "schema_version": 1, "source": "test", "data": data}
    return incident.encode(), orjson.dumps(doc)


def call(incident: str, at: float, grade: str, area: str, caller: str,
         vulnerable: bool = False) -> tuple[bytes, bytes]:
    return ev(incident, "created", at, {"grade": grade, "category": "ASB", "channel": "999",
                                        "area": area, "vulnerable": vulnerable,
                                        "caller_ref": caller})


def config_file(workdir: Path) -> Path:
    """The shipped configuration, with a band a few logs wide and no cool-down (test speed)."""
    text = default_config_text().replace("band_low = 20\nband_high = 50",
                                         "band_low = 1\nband_high = 3")
    text = text.replace("cool_down_seconds = 120", "cool_down_seconds = 0")
    path = workdir / "force.toml"
    path.write_text(text)
    return path


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_scenario_notifies_each_alert_once_and_its_resolution_across_an_outage(
        ns: Namespace, workdir: Path, receiver: Receiver) -> None:
    am = Alertmanager(workdir, receiver).start()
    alert_env = {"DEMANDFLOW_CONFIG_PATH": str(config_file(workdir)),
                 "DEMANDFLOW_ALERTMANAGER_URL": am.url, "DEMANDFLOW_ALERT_RESEND_S": "2"}
    worker = Worker(ns, workdir, **alert_env).start()
    now = time.time()
    try:
        # A grade 1 in the north left unattended 20 min (target 15), and a vulnerable
        # caller in the south whose THRIVE review fell due 10 min ago.
        produce(ns.bootstrap, ns.topic(RAW), [
            call("G1", now - 1200, "1", "north", "caller-g1"),
            call("V1", now - 3600, "3", "south", "caller-v1", vulnerable=True),
            ev("V1", "risk_assessed", now - 3000, {"thrive": THRIVE, "trigger": "initial",
                                                   "next_review_due": iso(now - 600)}),
        ])
        wait_for("the first two alerts", lambda: len(receiver.seen()) >= 2, timeout=60)

        # A restarted worker restores its active alerts from the changelog: it neither
        # forgets them (they still resolve below) nor fires them again (counted at the end).
        worker.stop()
        worker = Worker(ns, workdir, **alert_env).start()
        wait_for("the restarted worker to report both alerts firing",
                 lambda: worker.metric_sum("demand_alerts_firing") == 2, timeout=60)
        time.sleep(6)  # a tick and a re-send later, still nothing new
        assert len(receiver.seen()) == 2, receiver.seen()
        am.stop()

        # While Alertmanager is down: a terminal takes a fourth log (band 1-3), one
        # caller is behind a third incident in an hour, and the grade 1 is attended.
        overload = [call(f"T{i}", now - 600 + i, "4", "central", f"caller-t{i}") for i in range(4)]
        overload += [ev(f"T{i}", "assigned", now - 500 + i, {"terminal": "T77"})
                     for i in range(4)]
        repeat = [call(f"R{i}", now - 1800 + i * 300, "5", "west", "caller-repeat")
                  for i in range(3)]
        produce(ns.bootstrap, ns.topic(RAW), [*overload, *repeat,
                                              ev("G1", "arrived", now + 1, {})])
        wait_for("a delivery attempt to fail while Alertmanager is down",
                 lambda: worker.metric_sum("demand_alert_notifications_total",
                                           outcome="failed") > 0, timeout=60)
        am.start()
        wait_true("the alerts raised during the outage, and the grade 1's resolution",
                  lambda: len(receiver.seen()) >= 5 or receiver.seen(), timeout=90)

        # Everything clears: the review is redone, logs are shared out, the repeats closed.
        produce(ns.bootstrap, ns.topic(RAW), [
            ev("V1", "risk_assessed", now + 2, {"thrive": THRIVE, "trigger": "reassessment",
                                                "next_review_due": iso(now + 7200)}),
            ev("T0", "assigned", now + 3, {"terminal": "T78"}),
            *[ev(f"R{i}", "closed", now + 4, {"disposition": "advice"}) for i in range(3)],
        ])
        wait_true("every resolution", lambda: len(receiver.seen()) >= 8 or receiver.seen(),
                  timeout=90)
        time.sleep(8)  # anything extra (a repeat, a flap) would arrive by now

        expected = {
            ("/north", "Grade1AttendanceOverdue"), ("/south", "VulnerableReviewOverdue"),
            ("/force", "TerminalOverloaded"), ("/west", "RepeatCaller"),
        }
        seen = Counter(receiver.seen())
        assert seen == Counter({(path, name, status): 1 for path, name in expected
                                for status in ("firing", "resolved")}), receiver.notifications
        for n in receiver.notifications:
            assert n["annotations"]["runbook"], "every alert says what to do"
            assert "caller-repeat" not in orjson.dumps(n).decode(), "no caller reference in alerts"
        repeat_alert = next(n for n in receiver.notifications if n["labels"]["alertname"]
                            == "RepeatCaller")
        assert sorted(repeat_alert["annotations"]["incident_ids"].split(",")) == \
            ["R0", "R1", "R2"]

        # The alerts topic is the record: each alert's firing and resolution, keyed by it.
        records = consume_all(ns.bootstrap, ns.topic("demand.alerts.v1"), expected=8)
        statuses = Counter((orjson.loads(r.value)["rule"], orjson.loads(r.value)["status"])
                           for r in records)
        assert statuses == Counter({(name, s): 1 for _, name in expected
                                    for s in ("firing", "resolved")})
        assert all(r.key.decode() == orjson.loads(r.value)["fingerprint"] for r in records)
        assert worker.metric_sum("demand_alerts_firing") == 0
        assert worker.metric_sum("demand_dead_letters_total") == 0
    finally:
        worker.stop()
        am.stop()


def test_worker_stops_promptly_while_alertmanager_is_unreachable(ns: Namespace,
                                                                 workdir: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    worker = Worker(ns, workdir, DEMANDFLOW_ALERTMANAGER_URL=nowhere).start()
    now = time.time()
    produce(ns.bootstrap, ns.topic(RAW), [call("G9", now - 1200, "1", "north", "caller-g9")])
    wait_for("delivery retrying", lambda: worker.metric_sum(
        "demand_alert_notifications_total", outcome="failed") >= 2, timeout=60)
    assert worker.metric_sum("demand_alerts_firing", rule="Grade1AttendanceOverdue") == 1
    assert worker.stop() < 15, "a notifier stuck retrying must not hold the worker up"
