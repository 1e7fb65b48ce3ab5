"""Alerts reach an Alertmanager that requires TLS (the force's own CA) and basic auth.

A real Alertmanager with ``--web.config.file`` (certificate made here with openssl,
a bcrypt-hashed password), a real worker given the user name, the password *file*
and the CA bundle: the alert arrives; anonymous requests are refused; the password
appears nowhere in the worker's log.
"""

from __future__ import annotations

import ssl
import subprocess
import time
from pathlib import Path

import bcrypt
import httpx
import pytest
import yaml

from tests.integration.alertmanager import Alertmanager, Receiver
from tests.integration.support import Namespace, Worker, produce, wait_for
from tests.integration.test_alerts import RAW, call, config_file

pytestmark = pytest.mark.integration
PASSWORD = "am-s3cret-" + "x7Qp2"


def tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    folder.mkdir()
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    cert, key, csr, ext = (folder / n for n in ("am.crt", "am.key", "am.csr", "san.ext"))
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=test-ca", "-keyout", str(ca_key), "-out", str(ca))
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr))
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return ca, cert, key


def test_alerts_reach_an_alertmanager_behind_tls_and_basic_auth(ns: Namespace, workdir: Path
                                                                ) -> None:
    ca, cert, key = tls_files(workdir / "tls")
    web = workdir / "am-web.yml"
    web.write_text(yaml.safe_dump({
        "tls_server_config": {"cert_file": str(cert), "key_file": str(key)},
        "basic_auth_users": {"demandflow": bcrypt.hashpw(PASSWORD.encode(),
                                                         bcrypt.gensalt(4)).decode()}}))
    trust = ssl.create_default_context(cafile=str(ca))
    receiver = Receiver()
    am = Alertmanager(workdir, receiver, web_config=web,
                      client={"verify": trust, "auth": ("demandflow", PASSWORD)}).start()
    password_file = workdir / "am.password"
    password_file.write_text(PASSWORD + "\n")
    worker = Worker(ns, workdir, DEMANDFLOW_CONFIG_PATH=str(config_file(workdir)),
                    DEMANDFLOW_ALERTMANAGER_URL=am.url,
                    DEMANDFLOW_ALERTMANAGER_USERNAME="demandflow",
                    DEMANDFLOW_ALERTMANAGER_PASSWORD_FILE=str(password_file),
                    DEMANDFLOW_ALERTMANAGER_CA_FILE=str(ca)).start()
    try:
        # Anyone else is refused: no credentials, or a client not trusting the force's CA.
        assert httpx.get(f"{am.url}/api/v2/alerts", verify=trust).status_code == 401
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{am.url}/api/v2/alerts", auth=("demandflow", PASSWORD))
        produce(ns.bootstrap, ns.topic(RAW),
                [call("G1", time.time() - 1200, "1", "north", "caller-g1")])
        wait_for("the grade 1 alert to reach the receiver through Alertmanager",
                 lambda: ("/north", "Grade1AttendanceOverdue", "firing") in receiver.seen(),
                 timeout=90)
        assert worker.metric_sum("demand_alert_notifications_total", outcome="failed") == 0
    finally:
        worker.stop()
        am.stop()
        receiver.close()
    assert PASSWORD not in worker.log_path.read_text(errors="replace")
