#!/usr/bin/env python3
"""Produce messages with an explicit (old) CreateTime and print, as JSON, the
timestamp type and value each message is read back with."""
import argparse
import json

from confluent_kafka import Consumer, Producer, TopicPartition


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--timestamp", type=int, default=1_000_000)
    ap.add_argument("--count", type=int, default=3)
    args = ap.parse_args()
    p = Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "enable.idempotence": False})
    errors = []
    for i in range(args.count):
        p.produce(args.topic, b"v%d" % i, partition=0, timestamp=args.timestamp,
                  on_delivery=lambda err, msg: err and errors.append(str(err)))
    if p.flush(30) or errors:
        raise SystemExit("delivery failed: %r" % errors)
    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "unused",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(args.topic, 0, 0)])
    got = []
    while len(got) < args.count:
        msgs = c.consume(args.count, 10)
        if not msgs:
            raise SystemExit("timed out reading back")
        for m in msgs:
            if m.error():
                raise SystemExit(str(m.error()))
            kind, ts = m.timestamp()
            got.append({"type": kind, "timestamp": ts})
    c.close()
    print(json.dumps({"messages": got}))


if __name__ == "__main__":
    main()
