"""The same log gives the same state however often it is read (issue 20): the shared DECC
weeks replayed twice into one worker end where one clean pass ends
(tests/integration/test_replay_real_data.py proves one clean pass equals a recomputation
from the CSVs); and so does a catch-up with the worker SIGKILLed twice, restarted each time:
the export's open set exactly, its hourly demand, nothing re-created after being forgotten.

Real broker, real worker processes. The replay keeps a reopen with no later close open
(test_scale_out.mapping_file), so the end state has open incidents to get right.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.integration.support import Namespace, Worker, wait_for
from tests.integration.test_replay_real_data import FILES, recompute
from tests.integration.test_scale_out import (
    accepted,
    expected_open,
    settle,
    start_replay,
)

pytestmark = pytest.mark.integration
RETENTION = {"DEMANDFLOW_CLOCK": "event", "DEMANDFLOW_CLOSED_RETENTION_S": str(7 * 86400)}


def histograms(worker: Worker) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {k: v for k, v in worker.metrics().items()
            if k[0].startswith("demand_response_seconds") or
            k[0] in ("demand_incidents_received_total", "demand_sla_breaches_total")}


def test_the_same_export_replayed_twice_changes_nothing(ns: Namespace, workdir: Path) -> None:
    assert len(FILES) == 7, "the shared data is missing"
    want = expected_open()
    worker = Worker(ns, workdir, **RETENTION).start()
    try:
        assert start_replay(ns, workdir).wait(timeout=300) == 0
        settle([worker], want)
        once = histograms(worker)
        incs = recompute()
        for grade in "12345":
            assert worker.metric_sum("demand_incidents_received_total", grade=grade) == \
                sum(1 for i in incs.values() if i["grade"] == grade)

        events = accepted([worker])
        assert start_replay(ns, workdir).wait(timeout=300) == 0
        wait_for("the second pass read", lambda: worker.metric_sum("demand_events_total") >=
                 2 * events, timeout=300, interval=1)
        settle([worker], want)
        assert accepted([worker]) == events, "nothing of the second pass applied"
        assert histograms(worker) == once, "counted again"
    finally:
        worker.stop()


def test_sigkills_during_catch_up_lose_no_open_incident(ns: Namespace, workdir: Path) -> None:
    want = expected_open()
    worker = Worker(ns, workdir, **RETENTION).start()
    try:
        assert start_replay(ns, workdir).wait(timeout=300) == 0  # the log is all there
        for at in (6000, 16000):  # killed twice while catching up, restarted each time
            wait_for(f"{at} events folded", lambda at=at, w=worker: accepted([w]) > at,
                     timeout=180, interval=0.2)
            worker.stop(signal.SIGKILL)
            worker = Worker(ns, workdir, **RETENTION).start()
        # Exactly the export's open set, with nothing counted twice. Records the restarted
        # worker's consumer passes over at its start (a Faust recovery race) are read from
        # the log by the agents themselves (pipeline.passedover).
        settle([worker], want)
    finally:
        worker.stop()
