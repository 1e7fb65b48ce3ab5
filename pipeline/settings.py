"""Process settings: where Kafka is, ports, store, paths. One typed object.

Read from the environment (prefix ``DEMANDFLOW_``) once, by :func:`get_settings`.
No other module reads the environment or names a broker. The domain
configuration (grades, areas...) is a separate validated file: see config.py.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.errors import ConfigError

LOCAL_BOOTSTRAP = "127.0.0.1:9092"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEMANDFLOW_", extra="ignore")

    # Kafka. Setting this to an existing cluster is all a user with one needs:
    # `make demo` then starts no local broker.
    bootstrap_servers: str = LOCAL_BOOTSTRAP
    app_id: str = Field(default="demandflow", pattern=r"^[a-z0-9][a-z0-9._-]*$")
    # Namespaces every topic (e.g. per test run or per environment); empty in production.
    topic_prefix: str = Field(default="", pattern=r"^[a-z0-9._-]*$")
    # Security (pipeline.kafkasecurity; docs/security.md): every client uses these.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = \
        "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_username: str | None = None
    kafka_password_file: Path | None = None  # a file: never the password itself
    kafka_ca_file: Path | None = None
    kafka_cert_file: Path | None = None  # with kafka_key_file: mutual TLS
    kafka_key_file: Path | None = None
    topic_partitions: int = Field(default=4, ge=1)
    topic_replication: int = Field(default=1, ge=1)

    # How long a silent worker keeps its partitions. Faust's default (60 s) leaves a
    # crashed worker's share of the backlog frozen for a minute; 10 s moves it sooner.
    session_timeout_s: float = Field(default=10.0, ge=6.0)

    # Standby replicas per table partition: a warm copy on another worker for takeover.
    standby_replicas: int = Field(default=1, ge=0)

    # Worker.
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    # The URL other workers reach this one at (force-wide views ask each partition's
    # owner); default http://<web_host>:<web_port>. Set it when web_host is 0.0.0.0.
    advertised_url: str | None = None
    # Who may read the views (pipeline.auth, docs/security.md): a bearer token in this file
    # guards /backlog, /incidents, /demand and /internal (and /metrics if asked). Without
    # one, web_host must be loopback unless allow_unauthenticated_views says so on purpose.
    view_token_file: Path | None = None
    metrics_require_token: bool = False
    allow_unauthenticated_views: bool = False
    # memory+offsets:// (pipeline.store): Faust's memory store, knowing how far it has read
    # each changelog, so a promoted standby reads only what it has not seen.
    store: str = "memory+offsets://"
    data_dir: Path = Path(".run/worker-data")
    config_path: Path | None = None  # None: the shipped default demand.toml
    max_event_bytes: int = Field(default=64 * 1024, ge=1024)
    # Dedup memory per incident (event ids remembered); more than any lifecycle has.
    dedup_per_incident: int = Field(default=256, ge=16)
    log_level: str = "info"
    # Agents take events in batches of up to batch_max_events, waiting at most
    # batch_within_s for a batch to fill: one table write per changed key per batch.
    batch_max_events: int = Field(default=1000, ge=1)
    batch_within_s: float = Field(default=0.05, gt=0, le=5.0)
    # Closed incidents are forgotten (table entry deleted, tombstone published) this
    # long after closing, in event time; a reopen after that starts without history.
    closed_retention_s: float = Field(default=2 * 86400.0, ge=3600.0)
    snapshot_interval_s: float = Field(default=15.0, gt=0)
    # What "now" is for time-driven breaches and alerts: the wall clock (live) or the
    # stream's event time (replays, catch-up), see pipeline.domain.clocks.effective_now.
    clock: Literal["wall", "event"] = "wall"
    # Alertmanager (v2 API base URL, e.g. http://127.0.0.1:9093); unset: alerts go only to
    # the alerts topic. Firing alerts are re-sent every alert_resend_s and stay valid for
    # alert_valid_for_s, so Alertmanager resolves them by itself if the worker disappears.
    alertmanager_url: str | None = None
    # Authentication to it (pipeline.alertmanagerauth): a bearer token, or a user name and
    # password, each from a file; a CA bundle to trust for https.
    alertmanager_bearer_token_file: Path | None = None
    alertmanager_username: str | None = None
    alertmanager_password_file: Path | None = None
    alertmanager_ca_file: Path | None = None
    alert_resend_s: float = Field(default=30.0, gt=0)
    alert_valid_for_s: float = Field(default=180.0, gt=0)
    # Fault injection for the test suite, never for production: the evaluator SIGKILLs its
    # own process with its N-th journaled step half written (docs/alerts.md#limits).
    fault_die_mid_step: int = Field(default=0, ge=0)
    # Fault injection for the test suite, never for production: the worker SIGKILLs its own
    # process in the first batch that moves a partition's watermark to this event time or
    # later, once the batch's demand counts are durable and before its incident rows are
    # sent (docs/state.md#one-batch-across-two-tables).
    fault_die_between_tables_at: AwareDatetime | None = None

    @property
    def broker_url(self) -> str:
        """The Faust broker URL list for ``bootstrap_servers``."""
        return ";".join(f"kafka://{h.strip()}" for h in self.bootstrap_servers.split(","))


@cache
def get_settings() -> Settings:
    """The process's settings, read from the environment once.

    An invalid value stops with one line per variable naming it and what it
    accepts (never echoing the value: some settings may be secrets' paths).
    """
    try:
        return Settings()
    except ValidationError as exc:
        lines = [f"DEMANDFLOW_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
                 for e in exc.errors()]
        raise ConfigError("invalid setting: " + "; ".join(lines)) from None
