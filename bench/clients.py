"""The benchmark's Kafka clients connect as the pipeline's do (issue 15): against a secured
cluster, set the same ``DEMANDFLOW_KAFKA_*`` settings (README) and every producer, consumer,
admin client and worker the benchmark starts uses them.

The tests' :class:`Namespace` drops every ``DEMANDFLOW_*`` variable so that a developer's
environment cannot change a test; the benchmark passes the connection settings on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pipeline.kafkasecurity import kafka_python
from pipeline.settings import Settings
from tests.integration.support import Namespace

CONNECTION = ("DEMANDFLOW_KAFKA_SECURITY_PROTOCOL", "DEMANDFLOW_KAFKA_SASL_MECHANISM",
              "DEMANDFLOW_KAFKA_USERNAME", "DEMANDFLOW_KAFKA_PASSWORD_FILE",
              "DEMANDFLOW_KAFKA_CA_FILE", "DEMANDFLOW_KAFKA_CERT_FILE",
              "DEMANDFLOW_KAFKA_KEY_FILE")


@dataclass
class BenchNamespace(Namespace):
    """A test namespace whose worker processes connect with this environment's settings."""

    def env(self, **extra: str) -> dict[str, str]:
        passed = {k: os.environ[k] for k in CONNECTION if k in os.environ}
        return super().env(**{**passed, **extra})


def kafka(bootstrap: str) -> dict[str, Any]:
    """Keyword arguments for kafka-python and aiokafka clients reaching ``bootstrap``."""
    return {**kafka_python(Settings()), "bootstrap_servers": bootstrap}
