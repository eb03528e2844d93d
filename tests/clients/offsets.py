#!/usr/bin/env python3
"""ListOffsets checks: produces --count messages (timestamps BASE + i*1000 ms) to
partition 0 of a new 1-partition topic, then reports watermarks and
offsets_for_times answers as JSON:
  {"low", "high", "by_time": {"<ts>": offset}, "earliest", "latest"}
"""

import argparse
import sys

from confluent_kafka import Consumer, Producer, TopicPartition

from common import create_topic, emit, fail

BASE_TS = 1_600_000_000_000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--one-batch", action="store_true", help="send all messages in one batch")
    ap.add_argument("--query", type=int, action="append", default=[], help="timestamp to look up (ms)")
    args = ap.parse_args()

    create_topic(args.bootstrap, args.topic, 1)
    linger_ms = 1000 if args.one_batch else 0
    p = Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "linger.ms": linger_ms})
    errors = []
    for i in range(args.count):
        p.produce(
            args.topic,
            partition=0,
            key=b"k%d" % i,
            value=b"v%d" % i,
            timestamp=BASE_TS + i * 1000,
            on_delivery=lambda err, msg: errors.append(err) if err else None,
        )
        # One batch per message so the time index has one entry per message,
        # or (--one-batch) every message in one batch, found record by record.
        if not args.one_batch:
            p.flush(10)
    if p.flush(10) or errors:
        fail("produce failed: %r" % errors[:1])

    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "strom-e2e-unused", "enable.auto.commit": False})
    low, high = c.get_watermark_offsets(TopicPartition(args.topic, 0), timeout=10, cached=False)
    by_time = {}
    for ts in args.query:
        [tp] = c.offsets_for_times([TopicPartition(args.topic, 0, ts)], timeout=10)
        if tp.error is not None:
            fail("offsets_for_times(%d): %s" % (ts, tp.error))
        by_time[str(ts)] = tp.offset
    # Timestamps -2 / -1 are Kafka's EARLIEST / LATEST specials.
    [earliest] = c.offsets_for_times([TopicPartition(args.topic, 0, -2)], timeout=10)
    [latest] = c.offsets_for_times([TopicPartition(args.topic, 0, -1)], timeout=10)
    c.close()
    # MAX_TIMESTAMP (-3) through the AdminClient's ListOffsets (KIP-734).
    from confluent_kafka.admin import AdminClient, OffsetSpec
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    tp = TopicPartition(args.topic, 0)
    max_ts = admin.list_offsets({tp: OffsetSpec.max_timestamp()}, request_timeout=10)[tp].result(20)
    emit({"low": low, "high": high, "by_time": by_time, "earliest": earliest.offset, "latest": latest.offset,
          "base_ts": BASE_TS, "max_timestamp": [max_ts.offset, max_ts.timestamp]})


if __name__ == "__main__":
    sys.exit(main())
