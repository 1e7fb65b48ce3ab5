"""Records the consumer passed over are read back from a real broker's log, exactly the
range asked for (pipeline.passedover), with the worker's own connection settings."""

from __future__ import annotations

import asyncio

from kafka.admin import KafkaAdminClient, NewTopic

from pipeline.passedover import read_range
from pipeline.settings import Settings
from tests.integration.support import Namespace, produce


def test_a_range_is_read_back_from_the_log_and_stops_at_its_end(ns: Namespace) -> None:
    topic = ns.topic("passed-over")
    admin = KafkaAdminClient(bootstrap_servers=ns.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    admin.close()
    produce(ns.bootstrap, topic, [(b"k", f"record {n}".encode()) for n in range(50)])
    settings = Settings(bootstrap_servers=ns.bootstrap)
    got = asyncio.run(read_range(settings, topic, _partition_of(ns, topic), 20, 29))
    assert [(r.offset, r.value) for r in got] == [(n, f"record {n}".encode())
                                                  for n in range(20, 30)]
    # A range running past the end of the log gives what is there, without waiting for more.
    tail = asyncio.run(read_range(settings, topic, _partition_of(ns, topic), 45, 80))
    assert [r.offset for r in tail] == list(range(45, 50))


def _partition_of(ns: Namespace, topic: str) -> int:
    """The partition the one key went to (the producer's default partitioner)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=ns.bootstrap)
    ends = consumer.end_offsets([TopicPartition(topic, p) for p in (0, 1)])
    consumer.close()
    return next(tp.partition for tp, end in ends.items() if end == 50)
