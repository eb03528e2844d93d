#!/usr/bin/env python3
"""A consumer group member for the `strom group` CLI tests (confluent_kafka).

  produce --topic T --partitions P --count N
      Creates T with P partitions and produces N records to each partition
      (explicit partitions, acks=all): offsets 0..N-1 everywhere.
      -> {"produced": P*N}

  consume --topic T[,T2...] --group G [--read N] [--commit T:P:OFFSET,...]
          [--hold-until FILE] [--client-id ID]
      Subscribes (auto.offset.reset=earliest, no auto commit) and waits for an
      assignment; reads exactly N records (default 0), noting the first and last
      offset of each partition; commits the --commit offsets synchronously; with
      --hold-until prints {"holding": true, "assignment": [...]} and keeps polling
      (an active member) until FILE exists; then closes (LeaveGroup).
      -> {"read": n, "first": {"T:P": offset}, "last": {"T:P": offset}, "assignment": [[T, P]]}
"""

import argparse
import os
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from common import create_topic, emit, fail


def produce(args):
    create_topic(args.bootstrap, args.topic, args.partitions)
    p = Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "linger.ms": 5})
    errors = []
    for partition in range(args.partitions):
        for i in range(args.count):
            p.produce(
                args.topic,
                partition=partition,
                key=b"k%d" % i,
                value=b"v%d" % i,
                on_delivery=lambda err, msg: errors.append(err) if err else None,
            )
    if p.flush(30) or errors:
        fail("produce failed: %r" % errors[:1])
    emit({"produced": args.partitions * args.count})


def consume(args):
    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "client.id": args.client_id,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500,
    }
    c = Consumer(conf)
    c.subscribe(args.topic.split(","))
    deadline = time.time() + args.timeout
    first, last, read = {}, {}, 0
    while read < args.read or not c.assignment():
        if time.time() > deadline:
            fail("timed out: read %d of %d records, assignment %r" % (read, args.read, c.assignment()))
        msg = c.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            fail("consume error: %s" % msg.error())
        if read >= args.read:
            # Assigned and read enough; records beyond --read are not counted.
            continue
        key = "%s:%d" % (msg.topic(), msg.partition())
        first.setdefault(key, msg.offset())
        last[key] = msg.offset()
        read += 1
    if args.commit:
        offsets = []
        for item in args.commit.split(","):
            topic, partition, offset = item.rsplit(":", 2)
            offsets.append(TopicPartition(topic, int(partition), int(offset)))
        try:
            c.commit(offsets=offsets, asynchronous=False)
        except Exception as exc:  # noqa: BLE001
            fail("commit failed: %s" % exc)
    assignment = sorted([tp.topic, tp.partition] for tp in c.assignment())
    if args.hold_until:
        emit({"holding": True, "assignment": assignment})
        hold_deadline = time.time() + args.timeout
        while not os.path.exists(args.hold_until):
            if time.time() > hold_deadline:
                fail("nobody created %s" % args.hold_until)
            msg = c.poll(0.2)
            if msg is not None and msg.error():
                fail("consume error while holding: %s" % msg.error())
    c.close()
    emit({"read": read, "first": first, "last": last, "assignment": assignment})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["produce", "consume"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--group")
    ap.add_argument("--read", type=int, default=0)
    ap.add_argument("--commit")
    ap.add_argument("--hold-until")
    ap.add_argument("--client-id", default="group-cli-test")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    if args.mode == "produce":
        produce(args)
    else:
        if not args.group:
            fail("consume needs --group")
        consume(args)


if __name__ == "__main__":
    sys.exit(main())
