"""Topic names and layouts: a public contract, declared in one place.

Names follow ``<domain>.<event>.v<N>`` (docs/topics.md). Every topic is
created explicitly, with the same partition count as the tables fed from it:
broker auto-creation is off, because a source topic and a changelog with
different partition counts stop Faust (``PartitionsMismatch``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from pipeline.errors import KafkaSetupError
from pipeline.kafkasecurity import diagnosed, kafka_python, why_unreachable
from pipeline.settings import Settings

RAW = "incidents.raw.v1"
EVENTS = "incidents.events.v1"
DEAD_LETTER = "incidents.deadletter.v1"
# Published for downstream consumers.
INCIDENT_STATE = "incidents.state.v1"
BACKLOG_SNAPSHOTS = "demand.backlog-snapshots.v1"
ALERTS = "demand.alerts.v1"
# Internal: the wall-clock ticks that let time-driven state changes (an attendance
# target passing with nobody there) happen inside each partition's stream.
CLOCK = "demandflow.clock.v1"
# Internal: valid events that arrived on another partition than their incident's
# (a producer keyed them otherwise, or partitions them another way), re-keyed.
REKEY = "demandflow.rekey.v1"
# Internal: every valid event, from whichever worker read it, gathered on one partition
# so one evaluator sees the whole force in event-time order (docs/alerts.md).
ALERT_INPUT = "demandflow.alert-input.v1"

WEEK_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    config: dict[str, str] = field(default_factory=dict)
    partitions: int | None = None  # None: DEMANDFLOW_TOPIC_PARTITIONS


SPECS: tuple[TopicSpec, ...] = (
    TopicSpec(RAW, {"retention.ms": str(WEEK_MS)}),
    TopicSpec(EVENTS, {"retention.ms": str(WEEK_MS)}),
    # Dead letters are kept longer: someone has to look at them.
    TopicSpec(DEAD_LETTER, {"retention.ms": str(4 * WEEK_MS)}),
    TopicSpec(CLOCK, {"retention.ms": str(3600 * 1000)}),
    TopicSpec(REKEY, {"retention.ms": str(WEEK_MS)}),
    TopicSpec(ALERT_INPUT, {"retention.ms": str(WEEK_MS)}, partitions=1),
    # One record per incident (latest wins); tombstones removed a day after compaction.
    TopicSpec(INCIDENT_STATE, {"cleanup.policy": "compact", "delete.retention.ms": "86400000",
                               "min.cleanable.dirty.ratio": "0.1"}),
    TopicSpec(BACKLOG_SNAPSHOTS, {"retention.ms": str(WEEK_MS)}),
    # The record of every alert that fired and resolved: kept as long as dead letters.
    TopicSpec(ALERTS, {"retention.ms": str(4 * WEEK_MS)}),
)


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) gives this key, as producers do."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def topic_name(settings: Settings, base: str) -> str:
    """The full name of ``base`` in this deployment (prefix applied)."""
    return f"{settings.topic_prefix}{base}"


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create any missing topic; return the names created.

    An existing topic with a different partition count is an error rather than
    something to paper over: its changelogs would not line up.
    """
    try:
        with diagnosed(settings) as said:
            admin = KafkaAdminClient(
                **kafka_python(settings),
                client_id=f"{settings.app_id}-admin",
                request_timeout_ms=int(timeout_s * 1000),
            )
    except KafkaError as exc:
        raise KafkaSetupError(f"cannot reach Kafka at {settings.bootstrap_servers}: "
                              f"{why_unreachable(settings, said.messages)} "
                              f"({type(exc).__name__})") from exc
    try:
        wanted = {topic_name(settings, s.name): s for s in SPECS}
        existing = set(admin.list_topics())
        created = []
        for name, spec in wanted.items():
            if name in existing:
                continue
            try:
                admin.create_topics(
                    [NewTopic(name, spec.partitions or settings.topic_partitions,
                              settings.topic_replication,
                              topic_configs=spec.config)],
                    timeout_ms=int(timeout_s * 1000),
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass  # another process created it meanwhile
        _check_partitions(admin, {name: (spec.partitions or settings.topic_partitions,
                                         spec.partitions is None)
                                  for name, spec in wanted.items()})
        return created
    except KafkaError as exc:
        raise KafkaSetupError(f"creating topics failed: {exc}") from exc
    finally:
        admin.close()


def _check_partitions(admin: KafkaAdminClient, expected: dict[str, tuple[int, bool]]) -> None:
    """Each topic has the partitions expected (count, whether the setting decides it)."""
    # A topic created a moment ago may report no partitions until its metadata
    # has propagated: ask again for a few seconds before judging.
    deadline = time.monotonic() + 10.0
    while True:
        counts = {d["name"]: len(d.get("partitions") or [])
                  for d in admin.describe_topics(list(expected))}
        if all(counts.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for name, count in counts.items():
        want, from_setting = expected[name]
        if count != want:
            hint = ("set DEMANDFLOW_TOPIC_PARTITIONS to match or recreate the topic"
                    if from_setting else "recreate the topic")
            raise KafkaSetupError(f"topic {name} has {count} partitions, {want} expected: {hint}")
