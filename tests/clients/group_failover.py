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
    # Start from what the group committed: a partition that got no new
    # records since (kcat's sticky partitioner often puts a whole batch in
    # one partition) has nothing to consume and is done already.
    deadline = time.time() + 60
    positions = {p: max(0, o) for p, o in committed_offsets(c, topic, partitions, deadline).items()}
    c.subscribe([topic])
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


def committed_offsets(c, topic, partitions, deadline):
    """The group's committed offset per partition (-1001 where none), retrying
    until a coordinator answers or the deadline passes."""
    while True:
        try:
            result = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=5)
            return {tp.partition: tp.offset for tp in result}
        except KafkaException as e:
            if time.time() > deadline:
                raise
            print(f"committed retry: {e}", file=sys.stderr)
            time.sleep(0.5)


def committed(bootstrap, topic, group, partitions):
    c = consumer(bootstrap, group)
    offsets = committed_offsets(c, topic, partitions, time.time() + 60)
    c.close()
    print(json.dumps({str(p): o for p, o in offsets.items()}))


if __name__ == "__main__":
    command, bootstrap, topic, group, partitions = sys.argv[1:6]
    {"commit": commit, "committed": committed}[command](bootstrap, topic, group, int(partitions))
