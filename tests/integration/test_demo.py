"""`demandflow demo` (what `make demo` runs after starting Kafka) shows a live backlog and
stops everything it started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.support import Namespace, free_port

pytestmark = pytest.mark.integration


def test_demo_shows_a_growing_backlog_and_stops_its_children(ns: Namespace,
                                                             workdir: Path) -> None:
    port = free_port()
    env = ns.env(DEMANDFLOW_WEB_PORT=str(port), DEMANDFLOW_DATA_DIR=str(workdir / "data"),
                 COLUMNS="120")
    done = subprocess.run([sys.executable, "-m", "pipeline", "demo", "--rate", "20",
                           "--run-for", "25"], cwd=workdir, env=env, capture_output=True,
                          timeout=180, text=True)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert f"http://127.0.0.1:{port}/metrics" in out
    assert "first non-zero backlog after" in out
    assert "Emergency" in out and "events/s" in out
    assert "stopped." in out
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
