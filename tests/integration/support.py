"""Helpers for tests against the real broker and a real worker process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0,
             interval: float = 0.25) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def wait_true(what: str, check: Callable[[], Any], timeout: float = 60.0,
              interval: float = 1.0) -> None:
    """Poll ``check`` until it returns True exactly; fail showing its last other answer."""
    deadline = time.monotonic() + timeout
    result = check()
    while result is not True and time.monotonic() < deadline:
        time.sleep(interval)
        result = check()
    assert result is True, f"{what}: {result!r}"


@dataclass
class Namespace:
    """A unique app id and topic prefix, so tests never share state."""

    bootstrap: str
    name: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")

    @property
    def prefix(self) -> str:
        return f"{self.name}."

    def topic(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEMANDFLOW_")}
        env.update(DEMANDFLOW_BOOTSTRAP_SERVERS=self.bootstrap, DEMANDFLOW_APP_ID=self.name,
                   DEMANDFLOW_TOPIC_PREFIX=self.prefix, **extra)
        return env


class Worker:
    """A real ``demandflow worker`` process."""

    def __init__(self, ns: Namespace, workdir: Path, **env: str) -> None:
        self.ns = ns
        self.port = free_port()
        self.workdir = workdir
        self.log_path = workdir / f"worker-{self.port}.log"
        self.env = ns.env(DEMANDFLOW_WEB_PORT=str(self.port),
                          DEMANDFLOW_DATA_DIR=str(workdir / f"data-{self.port}"), **env)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> Worker:
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "pipeline", "worker"], cwd=self.workdir,
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for("worker ready", lambda: self._ready(), timeout=timeout)
        except BaseException:
            self.proc.kill()  # never leave an orphan worker behind a failed test
            self.proc.wait()
            raise
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.tail()}")
        return b"Worker ready" in self.log_path.read_bytes() and \
            httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> float:
        """Stop the worker; return how long it took to exit."""
        assert self.proc is not None
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired as exc:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"worker ignored signal {sig} for {timeout}s:\n{self.tail()}") from exc
        self.log.close()
        return time.monotonic() - start

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def metric_sum(self, name: str, **labels: str) -> float:
        return sum(v for (n, lbls), v in self.metrics().items()
                   if n == name and all(dict(lbls).get(k) == x for k, x in labels.items()))


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30.0,
                **client: Any) -> list[Any]:
    """Read ``topic`` from the start until ``expected`` records arrive (or fail);
    ``client``: connection settings for a secured cluster (the benchmark's)."""
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=1000,
                             **{"bootstrap_servers": bootstrap, **client})
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records
