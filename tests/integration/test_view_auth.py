"""Views with incident data answer only with the bearer token (issue 15); probes stay open;
the token is never logged; a worker exposed beyond loopback without one refuses to start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.support import Namespace, Worker, free_port, wait_true

pytestmark = pytest.mark.integration
TOKEN = "view-token-for-the-test-7f3a9c2e"  # noqa: S105 - a test fixture


def test_guarded_views_need_the_token_and_workers_pass_it_to_each_other(
        ns: Namespace, workdir: Path) -> None:
    token_file = workdir / "view-token"
    token_file.write_text(TOKEN + "\n")
    env = {"DEMANDFLOW_VIEW_TOKEN_FILE": str(token_file),
           "DEMANDFLOW_METRICS_REQUIRE_TOKEN": "true"}
    workers = [Worker(ns, workdir, **env).start() for _ in range(2)]
    good = {"Authorization": f"Bearer {TOKEN}"}
    try:
        url = workers[0].url
        for path in ("/backlog", "/incidents/oldest", "/demand", "/metrics",
                     "/internal/partitions?view=backlog&partitions=0&at=0"):
            assert httpx.get(url + path, timeout=30).status_code == 401, path
            assert httpx.get(url + path, timeout=30, headers={
                "Authorization": f"Bearer {TOKEN[:-1]}"}).status_code == 401, path
            assert httpx.get(url + path, timeout=30, headers=good).status_code == 200, path
        for path in ("/healthz", "/livez"):
            assert httpx.get(url + path, timeout=30).status_code == 200, path
        # Force-wide: each worker asks the other for its partitions, with the token.
        wait_true("a force-wide answer from both workers", lambda: httpx.get(
            f"{url}/backlog", headers=good, timeout=30).json()["complete"] is True or
            httpx.get(f"{url}/backlog", headers=good, timeout=30).json(), timeout=60)
    finally:
        for w in workers:
            w.stop()
    for w in workers:
        log = w.log_path.read_text(errors="replace")
        assert TOKEN not in log and TOKEN[:12] not in log
        assert "require a bearer token" in log


def test_a_worker_open_to_the_network_without_a_token_will_not_start(
        ns: Namespace, workdir: Path) -> None:
    env = ns.env(DEMANDFLOW_WEB_HOST="0.0.0.0",  # noqa: S104 - what is refused
                 DEMANDFLOW_WEB_PORT=str(free_port()))
    done = subprocess.run([sys.executable, "-m", "pipeline", "worker"], env=env, cwd=workdir,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "DEMANDFLOW_WEB_HOST" in lines[0] and \
        "DEMANDFLOW_VIEW_TOKEN_FILE" in lines[0], lines
