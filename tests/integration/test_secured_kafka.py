"""The pipeline over a secured Kafka (issue 15): SASL_SSL with SCRAM-SHA-512, a CA made on the
spot, the password read from a file; and mutual TLS (a client certificate required). Real
broker (deploy/kafka/kafka.sh with DEMANDFLOW_KAFKA_SECURITY=sasl_ssl or mtls), real worker
and replay."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from tests.integration.support import REPO, Namespace, Worker, wait_for
from tests.integration.test_broker_outage import _low_port

pytestmark = pytest.mark.integration
SCRIPT = REPO / "deploy" / "kafka" / "kafka.sh"
SAMPLE = REPO / "deploy" / "samples" / "decc-week41.csv.gz"


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    yield from _broker(tmp_path, "sasl_ssl")


@pytest.fixture
def mutual_tls(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    yield from _broker(tmp_path, "mtls")


def _broker(tmp_path: Path, security: str) -> Iterator[tuple[str, Path]]:
    port = _low_port()
    env = {**os.environ, "DEMANDFLOW_KAFKA_PORT": str(port), "DEMANDFLOW_KAFKA_SECURITY":
           security, "DEMANDFLOW_KAFKA_RUN_DIR": str(tmp_path / "kafka")}
    env.pop("DEMANDFLOW_BOOTSTRAP_SERVERS", None)
    subprocess.run([str(SCRIPT), "start"], env=env, check=True, timeout=300,
                   capture_output=True)
    try:
        yield f"127.0.0.1:{port}", tmp_path / "kafka" / "tls"
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, timeout=120, capture_output=True)


def replay_the_sample_week(ns: Namespace, workdir: Path, client: dict[str, str],
                           worker: Worker) -> int:
    """Replay the shipped sample week with ``client``'s connection settings and wait until
    the worker has folded every event; how many there were."""
    report = workdir / "report.json"
    subprocess.run([sys.executable, "-m", "pipeline", "replay", str(SAMPLE), "--mapping",
                    "decc-cad", "--quiet", "--report", str(report)], env=ns.env(**client),
                   cwd=workdir, check=True, timeout=300, stdout=subprocess.DEVNULL)
    produced = int(orjson.loads(report.read_bytes())["events_produced"])
    wait_for("every replayed event folded", lambda: worker.metric_sum(
        "demand_events_total", outcome="accepted") == produced, timeout=180, interval=1)
    return produced


def test_events_in_backlog_and_alerts_out_over_sasl_ssl(secured: tuple[str, Path],
                                                         workdir: Path) -> None:
    """The walking path over SASL_SSL, the views behind a token; and neither secret leaks:
    not in the worker's log, /metrics, its command line, the views or a dead letter."""
    bootstrap, tls = secured
    ns = Namespace(bootstrap)
    password = (tls / "demandflow.password").read_text().strip()
    token = "view-" + os.urandom(12).hex()
    (workdir / "view.token").write_text(token)
    client = {"DEMANDFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
              "DEMANDFLOW_KAFKA_USERNAME": "demandflow",
              "DEMANDFLOW_KAFKA_PASSWORD_FILE": str(tls / "demandflow.password"),
              "DEMANDFLOW_KAFKA_CA_FILE": str(tls / "ca.pem")}
    worker = Worker(ns, workdir, DEMANDFLOW_CLOCK="event",
                    DEMANDFLOW_VIEW_TOKEN_FILE=str(workdir / "view.token"), **client).start()
    kafka = {"bootstrap_servers": bootstrap, "security_protocol": "SASL_SSL",
             "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "demandflow",
             "sasl_plain_password": password, "ssl_cafile": str(tls / "ca.pem")}
    seen: list[str] = []
    try:
        assert replay_the_sample_week(ns, workdir, client, worker) > 1000
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{worker.url}/backlog", timeout=30).status_code == 401
        backlog = httpx.get(f"{worker.url}/backlog", timeout=30, headers=auth)
        assert backlog.json()["complete"] is True
        consumer = KafkaConsumer(ns.topic("demand.alerts.v1"), group_id=None,
                                 auto_offset_reset="earliest", consumer_timeout_ms=5000, **kafka)

        def alerts() -> int:
            return sum(1 for _ in consumer)
        assert wait_for("alerts on the topic", alerts, timeout=120, interval=1) > 0
        consumer.close()

        # A refused record is dead-lettered with its reason, and carries no secret.
        producer = KafkaProducer(acks="all", **kafka)
        producer.send(ns.topic("incidents.raw.v1"), key=b"x", value=b"{not json")
        producer.flush()
        producer.close()
        letters = KafkaConsumer(ns.topic("incidents.deadletter.v1"), group_id=None,
                                auto_offset_reset="earliest", consumer_timeout_ms=5000, **kafka)
        got = wait_for("the dead letter", lambda: [m.value for m in letters], timeout=60)
        letters.close()
        seen += [v.decode(errors="replace") for v in got]
        seen.append(httpx.get(f"{worker.url}/metrics", timeout=30).text)
        seen += [httpx.get(f"{worker.url}{view}", timeout=30, headers=auth).text
                 for view in ("/backlog", "/incidents/oldest", "/demand", "/healthz")]
        assert worker.proc is not None
        seen.append(Path(f"/proc/{worker.proc.pid}/cmdline").read_bytes().decode(
            errors="replace"))
    finally:
        worker.stop()
    seen.append(worker.log_path.read_text(errors="replace"))
    for text in seen:
        assert password not in text and token not in text


@pytest.mark.parametrize(("command", "wrong", "named"), [
    (["topics"], "password", "DEMANDFLOW_KAFKA_PASSWORD_FILE"),
    (["worker"], "ca", "DEMANDFLOW_KAFKA_CA_FILE"),
])
def test_a_wrong_password_or_an_untrusted_certificate_is_one_clear_line(
        secured: tuple[str, Path], workdir: Path, command: list[str], wrong: str,
        named: str) -> None:
    bootstrap, tls = secured
    bad = workdir / "bad"
    bad.write_text("not-the-password" if wrong == "password" else
                   Path("/etc/ssl/certs/ca-certificates.crt").read_text())
    env = Namespace(bootstrap).env(
        DEMANDFLOW_KAFKA_SECURITY_PROTOCOL="SASL_SSL", DEMANDFLOW_KAFKA_USERNAME="demandflow",
        DEMANDFLOW_KAFKA_PASSWORD_FILE=str(bad if wrong == "password"
                                           else tls / "demandflow.password"),
        DEMANDFLOW_KAFKA_CA_FILE=str(bad if wrong == "ca" else tls / "ca.pem"))
    done = subprocess.run([sys.executable, "-m", "pipeline", *command], env=env, cwd=workdir,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and named in lines[0], lines
    assert (tls / "demandflow.password").read_text().strip() not in done.stdout + done.stderr


def test_events_in_and_backlog_out_over_mutual_tls(mutual_tls: tuple[str, Path],
                                                   workdir: Path) -> None:
    """The broker requires a client certificate: the worker and the replay present theirs;
    a client without one is refused with a non-zero exit."""
    bootstrap, tls = mutual_tls
    ns = Namespace(bootstrap)
    client = {"DEMANDFLOW_KAFKA_SECURITY_PROTOCOL": "SSL",
              "DEMANDFLOW_KAFKA_CA_FILE": str(tls / "ca.pem"),
              "DEMANDFLOW_KAFKA_CERT_FILE": str(tls / "client.crt"),
              "DEMANDFLOW_KAFKA_KEY_FILE": str(tls / "client.key")}
    worker = Worker(ns, workdir, DEMANDFLOW_CLOCK="event", **client).start()
    try:
        replay_the_sample_week(ns, workdir, client, worker)
        backlog = httpx.get(f"{worker.url}/backlog", timeout=30).json()
        assert backlog["complete"] is True
    finally:
        worker.stop()
    without_cert = {k: v for k, v in client.items() if "CERT" not in k and "KEY" not in k}
    done = subprocess.run([sys.executable, "-m", "pipeline", "topics"],
                          env=ns.env(**without_cert), cwd=workdir, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0, done.stdout + done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "DEMANDFLOW_KAFKA_CERT_FILE" in lines[0], lines
