"""``demandflow demo``: a worker, the simulator and a live terminal summary.

The worker and simulator run as child processes in their own sessions, so a
Ctrl-C reaches this process only, which then stops both at once (SIGTERM, then
SIGKILL after a grace period; a worker exits within 10 s of SIGTERM) before
returning; a second Ctrl-C meanwhile does not cut the clean-up short. Each
child also asks the kernel for SIGTERM when this process dies
(``PR_SET_PDEATHSIG``), so nothing the demo started outlives it even if it is
killed outright.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pipeline.config import load_config
from pipeline.settings import get_settings
from pipeline.topics import ensure_topics


@dataclass
class Snapshot:
    at: float
    open_by_grade: dict[str, float]
    oldest_by_grade: dict[str, float]
    events_total: float
    dead_letters: float


def read_snapshot(metrics_text: str, at: float) -> Snapshot:
    """Pull the summary figures out of a /metrics exposition."""
    open_by_grade: dict[str, float] = {}
    oldest: dict[str, float] = {}
    events = dead = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == "demand_backlog_open":
                g = s.labels["grade"]
                open_by_grade[g] = open_by_grade.get(g, 0.0) + s.value
            elif s.name == "demand_backlog_oldest_age_seconds":
                oldest[s.labels["grade"]] = max(oldest.get(s.labels["grade"], 0.0), s.value)
            elif s.name == "demand_events_total":
                events += s.value
            elif s.name == "demand_dead_letters_total":
                dead += s.value
    return Snapshot(at, open_by_grade, oldest, events, dead)


def _age(seconds: float) -> str:
    if seconds <= 0:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def render(snap: Snapshot, rate: float, grade_names: dict[str, str], sim_running: bool) -> Group:
    table = Table(title="demandflow: open incidents", title_justify="left")
    table.add_column("grade")
    table.add_column("name")
    table.add_column("open", justify="right")
    table.add_column("oldest", justify="right")
    for code, name in grade_names.items():
        table.add_row(code, name, f"{snap.open_by_grade.get(code, 0):.0f}",
                      _age(snap.oldest_by_grade.get(code, 0.0)))
    total = sum(snap.open_by_grade.values())
    footer = Text(f"open total {total:.0f}   events/s {rate:.1f}   events {snap.events_total:.0f}"
                  f"   dead-lettered {snap.dead_letters:.0f}   source "
                  f"{'running' if sim_running else 'finished'}   (Ctrl-C to stop)")
    return Group(table, footer)


PR_SET_PDEATHSIG = 1  # linux/prctl.h
try:  # looked up here, in the parent: a dlopen in a child forked from a threaded
    # process can deadlock on the loader's lock, leaving Popen waiting on the child.
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _PRCTL = None  # not Linux: Ctrl-C still stops everything, a kill -9 may not


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: SIGTERM when the demo process dies (Linux)."""
    if _PRCTL is None:
        return
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the demo died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _spawn(args: list[str], log: Path,
           env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "wb")  # noqa: SIM115 - lives as long as the child
    parent = os.getpid()
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], stdout=out,  # noqa: S603
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=lambda: _die_with_parent(parent),  # noqa: PLW1509
                            env=None if env is None else {**os.environ, **env})


def _stop(procs: list[subprocess.Popen[bytes]], grace: float = 12.0) -> None:
    """SIGTERM every child at once, then SIGKILL whatever is left after ``grace``."""
    running = [p for p in procs if p.poll() is None]
    for p in running:
        p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in running:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_demo(rate: float, duration: float, run_for: float | None = None,
             replay_files: list[str] | None = None, mapping: str = "decc-cad",
             speed: float = 600.0) -> int:
    """Run until Ctrl-C (or ``run_for`` seconds); always stop what was started.

    The demand comes from the simulator, or with ``replay_files`` from a replay of
    real exports at ``speed`` x real time (the worker then follows event time).
    """
    settings = get_settings()
    config = load_config(settings.config_path)
    console = Console()
    ensure_topics(settings)
    logs = Path(".run")
    logs.mkdir(exist_ok=True)
    base = f"http://{settings.web_host}:{settings.web_port}"
    worker = _spawn(["worker"], logs / "demo-worker.log",
                    {"DEMANDFLOW_CLOCK": "event"} if replay_files else None)
    sim: subprocess.Popen[bytes] | None = None
    stop_requested = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, on_term)
    # Ctrl-C always stops the demo: a process started in the background by a shell without
    # job control inherits SIGINT *ignored*, and Python then leaves it ignored (seen: a
    # fresh-clone `make test` run with `&` had the demo carry on after SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    try:
        _wait_healthy(base, worker)
        if replay_files:
            sim = _spawn(["replay", *replay_files, "--mapping", mapping, "--speed", str(speed),
                          "--quiet", "--report", str(logs / "demo-replay-report.json")],
                         logs / "demo-replay.log")
        else:
            sim = _spawn(["simulate", "--rate", str(rate), "--duration", str(duration),
                          "--quiet"], logs / "demo-simulator.log")
        console.print(f"Kafka      {settings.bootstrap_servers}\n"
                      f"metrics    {base}/metrics\nhealth     {base}/healthz\n"
                      f"backlog    {base}/backlog\nlogs       {logs}/demo-*.log")
        names = {g.code: g.name for g in config.grades}
        previous: Snapshot | None = None
        first_backlog: float | None = None
        with Live(console=console, refresh_per_second=2) as live:
            while not stop_requested:
                if run_for is not None and time.monotonic() - started > run_for:
                    break
                if worker.poll() is not None:
                    console.print(f"[red]worker exited ({worker.returncode}); "
                                  f"see {logs}/demo-worker.log")
                    return 1
                snap = read_snapshot(httpx.get(f"{base}/metrics", timeout=5).text,
                                     time.monotonic())
                rate_now = ((snap.events_total - previous.events_total) / (snap.at - previous.at)
                            if previous and snap.at > previous.at else 0.0)
                if first_backlog is None and sum(snap.open_by_grade.values()) > 0:
                    first_backlog = time.monotonic() - started
                    console.print(f"first non-zero backlog after {first_backlog:.1f} s")
                live.update(render(snap, rate_now, names, sim.poll() is None))
                previous = snap
                time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not strand them
        console.print("stopping the demand source and the worker ...")
        _stop([p for p in (sim, worker) if p is not None])
        console.print("stopped.")
    return 0


def _wait_healthy(base: str, worker: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit("worker exited during start-up; see .run/demo-worker.log")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("worker not healthy within 120 s; see .run/demo-worker.log")
