"""Every dashboard panel and recording rule returns data from a real Prometheus.

Real Kafka, a real worker fed by the simulator, and a real Prometheus (Debian's
package) started with the shipped scrape config and rules, pointed at the worker.
Then every panel query of every generated dashboard, every template variable and
every recording rule is evaluated through Prometheus' HTTP API.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from pipeline.config import load_config
from pipeline.dashboards import dashboards, queries
from tests.integration.support import REPO, Namespace, Worker, free_port, wait_for

pytestmark = pytest.mark.integration

PROM_DIR = REPO / "deploy" / "prometheus"


class Prometheus:
    def __init__(self, workdir: Path, target: str) -> None:
        config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        config["rule_files"] = [str(PROM_DIR / f) for f in config["rule_files"]]
        config.pop("alerting")
        [job] = config["scrape_configs"]
        job["static_configs"] = [{"targets": [target]}]
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        binary = shutil.which("prometheus")
        assert binary, "apt-get install prometheus (make test does this when run as root)"
        self.log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.config_path}",
             f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for("prometheus ready",
                 lambda: httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200,
                 timeout=60)

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        self.log.close()


def metric_names(expr: str) -> set[str]:
    """Series names an expression reads (demand_*, faust_*, recorded level:metric:ops, up)."""
    bare = re.sub(r'"[^"]*"', "", expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    bare = re.sub(r"\b(by|on|without|ignoring)\s*\([^)]*\)", "", bare)
    return {t for t in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare)
            if t.startswith(("demand_", "faust_")) or ":" in t or t == "up"}


def recording_rules() -> Iterator[tuple[str, str]]:
    for f in yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())["rule_files"]:
        for group in yaml.safe_load((PROM_DIR / f).read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    yield rule["record"], rule["expr"]


def test_every_panel_variable_and_recording_rule_returns_data(ns: Namespace,
                                                               workdir: Path) -> None:
    worker = Worker(ns, workdir).start()
    sim = subprocess.Popen([sys.executable, "-m", "pipeline", "simulate", "--rate", "8",
                            "--duration", "90", "--seed", "5", "--quiet"],
                           env=ns.env(), cwd=workdir, stdout=subprocess.DEVNULL,
                           stderr=subprocess.STDOUT)
    prom = Prometheus(workdir, f"127.0.0.1:{worker.port}")
    boards = dashboards(load_config())
    try:
        # Grade 1 attended within target needs grade 1 arrivals; the growth rate two points.
        for ready in ('grade:demand_sla_compliance:ratio_24h{grade="1"}',
                      "grade:demand_backlog_open:deriv15m_per_hour",
                      "topic_partition:faust_consumer_lag:messages",
                      'sum(demand_dead_letters_total) > 0'):
            wait_for(f"prometheus to have {ready}", lambda e=ready: prom.query(e), timeout=120,
                     interval=1)

        exported = {f["metric"]["__name__"] for f in prom.query('{job="demandflow"}')}
        recorded = {name for name, _ in recording_rules()}
        empty, unknown = [], []
        for board in boards.values():
            for title, expr in queries(board):
                for name in metric_names(expr) - exported - recorded:
                    unknown.append((board["title"], title, name))
                if not prom.query(expr.replace("$area", ".*")):
                    empty.append((board["title"], title, expr))
        for name, expr in recording_rules():
            for metric in metric_names(expr) - exported - recorded:
                unknown.append(("recording rule", name, metric))
            if not prom.query(name):
                empty.append(("recording rule", name, expr))
        assert not unknown, f"dashboards or rules read metrics the pipeline does not export: " \
                            f"{unknown}"
        assert not empty, f"queries without data: {empty}"

        # Template variables resolve, and a panel filtered by one value still has data.
        wall = boards["control-room-wall.json"]
        for var in wall["templating"]["list"]:
            if var["type"] != "query":
                continue
            metric = re.match(r"label_values\((\w+), (\w+)\)", var["query"]["query"])
            assert metric, var
            values = httpx.get(f"{prom.url}/api/v1/label/{metric[2]}/values",
                               params={"match[]": metric[1]}, timeout=10).json()["data"]
            assert set(values) == {a.code for a in load_config().areas}
            for title, expr in queries(wall):
                if "$area" in expr:
                    assert prom.query(expr.replace("$area", values[0])), (title, values[0])
    finally:
        sim.kill()
        sim.wait()
        prom.stop()
        worker.stop()
