"""A worker killed between the first and the last changelog record of an evaluator step.

The evaluator saves each step (incidents, minute counts, active alerts, transitions
to publish, frontier) as many records; a SIGKILL among them used to leave part of a
step in the table, and a transition saved as firing but never published was then
never published by the successor. The worker is made to die at exactly that point
(``DEMANDFLOW_FAULT_DIE_MID_STEP``: its journal, marker and every row of a step that
raises an alert but the last are in the log, nothing is published): a restarted
worker must publish every transition one uninterrupted worker publishes, and no other.

Real broker, real worker processes, the shared DECC weeks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.support import Namespace, Worker, wait_for, wait_true
from tests.integration.test_replay_real_data import FILES
from tests.integration.test_scale_out import (
    alerts_equal,
    expected_alerts,
    expected_open,
    settle,
    start_replay,
)

pytestmark = pytest.mark.integration


def test_a_step_cut_short_by_a_sigkill_is_completed_and_published(
        ns: Namespace, workdir: Path) -> None:
    assert len(FILES) == 7, "the shared data is missing"
    first = Worker(ns, workdir, DEMANDFLOW_CLOCK="event", DEMANDFLOW_FAULT_DIE_MID_STEP="1")
    first.start()
    replay = start_replay(ns, workdir)
    try:
        assert first.proc is not None
        wait_for("the worker killed with a step half written",
                 lambda: first.proc.poll() is not None, timeout=300, interval=0.2)
        assert first.proc.returncode == -9, first.tail()
        assert "fault injection: SIGKILL with a step half written" in first.tail()
    finally:
        first.stop()
    second = Worker(ns, workdir, DEMANDFLOW_CLOCK="event").start()
    try:
        assert replay.wait(timeout=300) == 0
        settle([second], expected_open())
        alerts = expected_alerts(workdir)
        wait_true("every alert transition one worker raises, and no other",
                  lambda: alerts_equal(ns, alerts), timeout=120, interval=2)
        log = second.log_path.read_text(errors="replace")
        assert "completed from its journal" in log, "the step was rolled forward"
        assert "transitions to publish again" in log
    finally:
        second.stop()
