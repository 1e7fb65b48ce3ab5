"""A real Alertmanager (Debian's prometheus-alertmanager) and a webhook receiver, for tests."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.integration.support import REPO, free_port, wait_for

SHIPPED = REPO / "deploy" / "alertmanager" / "alertmanager.yml"


def binary() -> str:
    for name in ("prometheus-alertmanager", "alertmanager"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("Alertmanager is not installed: apt-get install prometheus-alertmanager "
                       "(make test does this when run as root)")


class Receiver:
    """A webhook receiver that records every notification Alertmanager sends."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer._lock:
                    for alert in body["alerts"]:
                        outer.notifications.append({"path": self.path, **alert})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def seen(self) -> list[tuple[str, str, str]]:
        """(receiver path, alertname, status) of each alert notified, in arrival order."""
        with self._lock:
            return [(n["path"], n["labels"]["alertname"], n["status"])
                    for n in self.notifications]

    def close(self) -> None:
        self.server.shutdown()


class Alertmanager:
    """The shipped routing config, webhooks pointed at ``receiver``, timings shortened."""

    def __init__(self, workdir: Path, receiver: Receiver, web_config: Path | None = None,
                 client: dict[str, Any] | None = None) -> None:
        """``web_config``: Alertmanager's --web.config.file (TLS, basic auth); ``client``:
        what the harness itself connects with (httpx options) when that is set."""
        self.web_config = web_config
        self.client = client or {}
        config = yaml.safe_load(SHIPPED.read_text())
        for r in config["receivers"]:
            for hook in r["webhook_configs"]:
                area = hook["url"].rsplit("/", 1)[1]
                hook["url"] = f"http://127.0.0.1:{receiver.port}/{area}"
        config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
        self.config_path = workdir / "alertmanager.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.storage = workdir / "am-data"
        self.port = free_port()
        self.log_path = workdir / "alertmanager.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.web_config else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> Alertmanager:
        self.log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [binary(), f"--config.file={self.config_path}", f"--storage.path={self.storage}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
             *([f"--web.config.file={self.web_config}"] if self.web_config else [])],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for("alertmanager ready", lambda: self._ready(), timeout=30)
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"alertmanager exited:\n{self.log_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2, **self.client).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)
        self.log.close()
