"""The real Kafka broker for integration tests, started by this repo's own script.

If DEMANDFLOW_BOOTSTRAP_SERVERS is set, the tests use that cluster and start
nothing. Otherwise deploy/kafka/kafka.sh starts a broker on a free port with
its data under pytest's temporary folder, and stops it at the end.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.support import REPO, Namespace, free_port

SCRIPT = REPO / "deploy" / "kafka" / "kafka.sh"


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    existing = os.environ.get("DEMANDFLOW_BOOTSTRAP_SERVERS")
    if existing:
        yield existing
        return
    port = _two_free_ports()
    env = {**os.environ, "DEMANDFLOW_KAFKA_PORT": str(port),
           "DEMANDFLOW_KAFKA_RUN_DIR": str(tmp_path_factory.mktemp("kafka"))}
    subprocess.run([str(SCRIPT), "start"], env=env, check=True, timeout=300)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, check=False, timeout=120)


def _two_free_ports() -> int:
    """A free port whose neighbour (the KRaft controller's) is free too."""
    import socket

    for _ in range(50):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no two adjacent free ports")


@pytest.fixture
def ns(bootstrap: str) -> Namespace:
    return Namespace(bootstrap)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
