"""Committed offsets of a consumer group across the loss of its coordinator
(confluent-kafka / librdkafka).

commit BOOTSTRAP TOPIC GROUP PARTITIONS
    Consumes every partition to its high watermark as a member of GROUP and
    commits synchronously; prints {"partition": offset, ...}.
committed BOOTSTRAP TOPIC GROUP PARTITIONS
    Prints GROUP's committed offsets, retrying until a coordinator answers
    (at most 60 s).
"""

import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition


def consumer(bootstrap, group):
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        }
    )


def commit(bootstrap, topic, group, partitions):
    c = consumer(bootstrap, group)
    ends = {}
    for p in range(partitions):
        _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        ends[p] = high
    c.subscribe([topic])
    positions = {p: 0 for p in range(partitions)}
    deadline = time.time() + 60
    while any(positions[p] < ends[p] for p in positions):
        if time.time() > deadline:
            raise SystemExit(f"consuming timed out at {positions}, ends {ends}")
        msg = c.poll(0.5)
        if msg is None or msg.error():
            continue
        positions[msg.partition()] = msg.offset() + 1
    offsets = [TopicPartition(topic, p, positions[p]) for p in positions]
    while True:
        try:
            c.commit(offsets=offsets, asynchronous=False)
            break
        except KafkaException as e:
            if time.time() > deadline:
                raise
            print(f"commit retry: {e}", file=sys.stderr)
            time.sleep(0.5)
    c.close()
    print(json.dumps({str(p): o for p, o in positions.items()}))


def committed(bootstrap, topic, group, partitions):
    c = consumer(bootstrap, group)
    deadline = time.time() + 60
    while True:
        try:
            result = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=5)
            break
        except KafkaException as e:
            if time.time() > deadline:
                raise
            print(f"committed retry: {e}", file=sys.stderr)
            time.sleep(0.5)
    c.close()
    print(json.dumps({str(tp.partition): tp.offset for tp in result}))


if __name__ == "__main__":
    command, bootstrap, topic, group, partitions = sys.argv[1:6]
    {"commit": commit, "committed": committed}[command](bootstrap, topic, group, int(partitions))
