#!/usr/bin/env python3
"""A kafka-python (pure Python, not librdkafka) group consumer: subscribes to a
topic with a group id, consumes exactly --count records (keys b"k<seq>", values
b"v<seq>" as written by groups.py produce), commits synchronously after each
poll (explicit offsets: the next offset of each partition it got records of),
reads its committed offsets back, and closes (LeaveGroup).

  groups_kp.py --bootstrap B --topic T --group G --count N [--timeout S]
      -> {"records": [[p, o, seq]], "assignment": [p, ...],
          "committed": {"P": offset}, "positions": {"P": offset}}

Exits non-zero with FAIL: on stderr when --count records do not arrive in time.
"""

import argparse
import sys
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from common import emit, fail


def seq_of(record):
    key = record.key or b""
    if key.startswith(b"k") and key[1:].isdigit() and record.value == b"v" + key[1:]:
        return int(key[1:])
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()

    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        client_id="kp-member",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
        request_timeout_ms=30000,
    )
    consumer.subscribe([args.topic])
    records = []
    deadline = time.time() + args.timeout
    while len(records) < args.count:
        if time.time() > deadline:
            fail("kafka-python consumed %d of %d records before the timeout" % (len(records), args.count))
        polled = consumer.poll(timeout_ms=200, max_records=args.count - len(records))
        batch, offsets = [], {}
        for tp, recs in polled.items():
            for r in recs:
                batch.append([tp.partition, r.offset, seq_of(r)])
                offsets[tp] = OffsetAndMetadata(r.offset + 1, "", -1)
        if batch:
            consumer.commit(offsets)
            records.extend(batch)
    assignment = sorted(tp.partition for tp in consumer.assignment())
    committed, positions = {}, {}
    for p in assignment:
        tp = TopicPartition(args.topic, p)
        c = consumer.committed(tp)
        if c is not None:
            committed[str(p)] = c
        positions[str(p)] = consumer.position(tp)
    consumer.close()
    emit({"records": records, "assignment": assignment, "committed": committed, "positions": positions})


if __name__ == "__main__":
    sys.exit(main())
