"""Shared helpers for the Strom end-to-end client scripts (confluent_kafka)."""

import json
import sys
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic


def fail(message):
    print("FAIL: " + message, file=sys.stderr, flush=True)
    sys.exit(1)


def emit(summary):
    print(json.dumps(summary, sort_keys=True), flush=True)


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap, topic, partitions, config=None, timeout=30):
    """Creates a topic and fails unless the broker says it was created."""
    client = admin(bootstrap)
    futures = client.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    try:
        futures[topic].result(timeout=timeout)
    except KafkaException as exc:
        fail("creating topic %s failed: %s" % (topic, exc.args[0]))
    wait_for_topic(bootstrap, topic, partitions)


def wait_for_topic(bootstrap, topic, partitions, timeout=20):
    client = admin(bootstrap)
    deadline = time.time() + timeout
    while time.time() < deadline:
        md = client.list_topics(timeout=10)
        t = md.topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        time.sleep(0.1)
    fail("topic %s with %d partitions not visible in metadata" % (topic, partitions))


def topic_partitions(bootstrap, topic):
    md = admin(bootstrap).list_topics(topic=topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        fail("topic %s not in metadata: %s" % (topic, None if t is None else t.error))
    return sorted(t.partitions.keys())


def error_code(exc):
    """Kafka error code of a KafkaException (or KafkaError)."""
    err = exc.args[0] if isinstance(exc, KafkaException) else exc
    return err.code(), err.name(), err.str()
