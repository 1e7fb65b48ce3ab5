"""The one Faust app, built from settings; agents, tables and views attach to it.

Everything process-wide is made here once: settings, the validated domain
configuration, the metrics registry shared with Faust's own sensor, and the
topics. Agents import what they need from this module.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CollectorRegistry

from pipeline import topics
from pipeline.auth import check_exposure, middleware, read_token
from pipeline.config import load_config
from pipeline.kafkasecurity import faust_credentials
from pipeline.metrics import Metrics
from pipeline.ownership import Ownership
from pipeline.settings import get_settings
from pipeline.store import register as register_store
from pipeline.tables import PartitionedTable, durable

settings = get_settings()
config = load_config(settings.config_path)
view_token = read_token(settings.view_token_file)
exposure = check_exposure(settings.web_host, view_token, settings.allow_unauthenticated_views)
registry = CollectorRegistry()
metrics = Metrics(registry, config)
register_store()  # memory+offsets:// (pipeline.store)

app = faust.App(
    settings.app_id,
    broker=settings.broker_url,
    store=settings.store,
    datadir=str(settings.data_dir),
    topic_partitions=settings.topic_partitions,
    topic_replication_factor=settings.topic_replication,
    # Topics are created by pipeline.topics.ensure_topics; Faust creates only its
    # own internal ones (changelogs).
    topic_allow_declare=True,
    # TLS / SASL / mutual TLS from settings (pipeline.kafkasecurity).
    broker_credentials=faust_credentials(settings),
    # A standby keeps a warm copy of another worker's partitions for takeover; readers
    # only ever read owned partitions (pipeline.ownership), so copies are never counted.
    table_standby_replicas=settings.standby_replicas,
    web_bind=settings.web_host,
    # Views with incident data need the bearer token when one is configured (pipeline.auth).
    web_application_options={"middlewares": [middleware(view_token,
                                                        settings.metrics_require_token)]},
    web_port=settings.web_port,
    web_host=settings.web_host,
    # Where other workers reach this one's views (force-wide answers fan out to owners).
    canonical_url=settings.advertised_url or f"http://{settings.web_host}:{settings.web_port}",
    # Offsets are committed often so a restarted worker repeats little; the
    # state is idempotent, so what it repeats changes nothing.
    broker_commit_every=1000,
    broker_commit_interval=1.0,
    broker_session_timeout=settings.session_timeout_s,
    broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
    stream_wait_empty=False,  # faust#133: may loop forever on shutdown otherwise
    consumer_auto_offset_reset="earliest",
)
setup_prometheus_sensors(app, pattern="/metrics", registry=registry, name_prefix="faust")


def _bytes_topic(base: str, partitions: int | None = None) -> faust.TopicT:
    """A topic read and written as raw bytes: decoding is ours, so bad bytes never crash Faust."""
    return app.topic(topics.topic_name(settings, base), key_type=bytes, value_type=bytes,
                     key_serializer="raw", value_serializer="raw",
                     partitions=partitions or settings.topic_partitions)


raw_topic = _bytes_topic(topics.RAW)
events_topic = _bytes_topic(topics.EVENTS)
dead_letter_topic = _bytes_topic(topics.DEAD_LETTER)
clock_topic = _bytes_topic(topics.CLOCK)
rekey_topic = _bytes_topic(topics.REKEY)
state_topic = _bytes_topic(topics.INCIDENT_STATE)
snapshot_topic = _bytes_topic(topics.BACKLOG_SNAPSHOTS)
alerts_topic = _bytes_topic(topics.ALERTS)
alert_input_topic = _bytes_topic(topics.ALERT_INPUT, partitions=1)


def _active_partitions() -> set[int]:
    raw = raw_topic.get_topic_name()
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == raw}


def _owns_alert_input() -> bool:
    name = alert_input_topic.get_topic_name()
    return any(tp.topic == name for tp in app.assignor.assigned_actives())


ownership = Ownership(_active_partitions, durable, lambda: app.producer.flush(),
                      gate_timeout_s=settings.session_timeout_s / 2,
                      evaluates=_owns_alert_input)
PartitionedTable.owns = ownership.owns
PartitionedTable.refused = metrics.writes_refused.inc


@app.on_partitions_revoked.connect
async def _on_revoked(sender: Any, revoked: Any, **_: Any) -> None:
    await ownership.on_revoked()


@app.on_partitions_assigned.connect
async def _on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
    ownership.on_assigned()


@app.on_rebalance_complete.connect
async def _on_restored(sender: Any, **_: Any) -> None:
    ownership.on_restored()


async def publish(topic: faust.TopicT, key: bytes, value: bytes | None) -> None:
    """Send one record on the hot path straight to the producer, partitioned by key.

    ``Topic.send`` wraps every record in a FutureMessage, runs the send sensors
    and callbacks: measured at ~40% of the cost of forwarding an event. The
    hot path (every valid event, every changed incident) skips that; delivery
    failures after the client's retries are still logged and counted.
    """
    fut = await app.producer.send(topic.get_topic_name(), key, value, None, None, None)
    fut.add_done_callback(_delivery_failed)  # type: ignore[attr-defined]


def _delivery_failed(fut: Any) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        metrics.agent_errors.labels("producer").inc()
        logging.getLogger(__name__).error("delivery failed: %s", type(fut.exception()).__name__)
