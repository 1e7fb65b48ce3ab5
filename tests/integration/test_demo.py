"""`demandflow demo` (what `make demo` runs after starting Kafka) shows a live backlog and
stops everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.support import REPO, Namespace, free_port, wait_for

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


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _start_demo(ns: Namespace, workdir: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    port = free_port()
    env = ns.env(DEMANDFLOW_WEB_PORT=str(port), DEMANDFLOW_DATA_DIR=str(workdir / "data"))
    demo = subprocess.Popen([sys.executable, "-m", "pipeline", "demo", "--rate", "5"],
                            cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def both_running() -> object:
        return len(_children(demo.pid)) == 2 and \
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    wait_for("the demo's worker and simulator running", both_running, timeout=120)
    return demo, _children(demo.pid)


@pytest.mark.parametrize("how", ["ctrl-c", "kill -9"])
def test_nothing_the_demo_started_outlives_it(ns: Namespace, workdir: Path, how: str) -> None:
    demo, children = _start_demo(ns, workdir)
    started = time.monotonic()
    demo.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
    demo.wait(timeout=60)
    wait_for("the worker and the simulator gone", lambda: not any(map(_alive, children)),
             timeout=30, interval=0.2)
    took = time.monotonic() - started
    print(f"\n{how}: everything the demo started gone after {took:.1f} s")
    assert took < 30


def test_make_demo_ctrl_c_stops_kafka_and_everything_else_within_30_s(tmp_path: Path) -> None:
    """deploy/demo.sh (what `make demo` runs) with its own Kafka, stopped as a terminal's
    Ctrl-C does: SIGINT to the whole foreground process group."""
    from tests.integration.test_broker_outage import _low_port

    port, web = _low_port(), free_port()
    run_dir = tmp_path / "kafka"
    env = {**os.environ, "DEMANDFLOW_KAFKA_PORT": str(port), "DEMANDFLOW_KAFKA_RUN_DIR":
           str(run_dir), "DEMANDFLOW_WEB_PORT": str(web),
           "DEMANDFLOW_DATA_DIR": str(tmp_path / "data"), "DEMANDFLOW_APP_ID": f"demo-{web}"}
    env.pop("DEMANDFLOW_BOOTSTRAP_SERVERS", None)

    def default_signals() -> None:  # as in a terminal: Ctrl-C is not ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    with open(tmp_path / "demo.log", "wb") as log:
        demo = subprocess.Popen([str(REPO / "deploy" / "demo.sh"), "--rate", "5"], env=env,
                                cwd=REPO, stdout=log, stderr=log, start_new_session=True,
                                preexec_fn=default_signals)  # noqa: PLW1509
        try:
            wait_for("the demo up", lambda: httpx.get(f"http://127.0.0.1:{web}/healthz",
                                                      timeout=2).status_code == 200,
                     timeout=240, interval=1)
            started = time.monotonic()
            os.killpg(demo.pid, signal.SIGINT)
            demo.wait(timeout=60)

            mark = f"DEMANDFLOW_APP_ID=demo-{web}".encode()

            def left() -> list[int]:  # every live process started with this demo's env
                pids = []
                for proc in Path("/proc").glob("[0-9]*"):
                    try:
                        if mark in (proc / "environ").read_bytes() and _alive(int(proc.name)):
                            pids.append(int(proc.name))
                    except OSError:
                        continue
                return pids
            wait_for("nothing left running", lambda: not left(), timeout=30, interval=0.5)
            took = time.monotonic() - started
        finally:
            if demo.poll() is None:
                os.killpg(demo.pid, signal.SIGKILL)
            subprocess.run([str(REPO / "deploy" / "kafka" / "kafka.sh"), "stop"], env=env,
                           timeout=120, capture_output=True)
    print(f"\nmake demo: Ctrl-C to everything stopped (Kafka included): {took:.1f} s")
    assert took < 30
    assert "Kafka on port" in (tmp_path / "demo.log").read_text() and "stopped." in \
        (tmp_path / "demo.log").read_text()
