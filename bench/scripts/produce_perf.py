#!/usr/bin/env python3
"""Produce throughput against any Kafka bootstrap address, driven by librdkafka
(Python confluent-kafka), so the client is one nobody at Strom wrote.

Prints one JSON line: messages, bytes, seconds, msgs/s, MB/s, and, when
--broker-pid is given, the broker's CPU seconds (user+sys from /proc) spent
during the run and per million messages.

Example:
  python3 bench/scripts/produce_perf.py --bootstrap 127.0.0.1:9092 \
      --topic perf --partitions 8 --messages 1000000 --size 1024 --acks all
"""
import argparse
import json
import os
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--topic", default="perf")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--acks", default="all")
    ap.add_argument("--compression", default="none")
    ap.add_argument("--linger-ms", type=int, default=5)
    ap.add_argument("--broker-pid", type=int)
    ap.add_argument("--topic-config", action="append", default=[],
                    help="key=value topic config for the created topic (repeatable), "
                         "e.g. write.caching=true")
    ap.add_argument("--timeout-s", type=float, default=300)
    args = ap.parse_args()

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    topic_config = dict(kv.split("=", 1) for kv in args.topic_config)
    fut = admin.create_topics([NewTopic(args.topic, args.partitions, 1,
                                        config=topic_config)])[args.topic]
    try:
        fut.result(30)
    except Exception as e:  # an existing topic is fine for a benchmark
        if "TOPIC_ALREADY_EXISTS" not in str(e):
            raise

    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": args.acks,
        "linger.ms": args.linger_ms,
        "compression.type": args.compression,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "batch.size": 1_000_000,
    })
    payload = os.urandom(args.size)
    errors = []
    acked = [0]

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked[0] += 1

    cpu_before = cpu_seconds(args.broker_pid) if args.broker_pid else None
    start = time.monotonic()
    deadline = start + args.timeout_s
    for i in range(args.messages):
        while True:
            try:
                producer.produce(args.topic, payload, partition=i % args.partitions,
                                 on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 10000 == 0:
            producer.poll(0)
            if time.monotonic() > deadline:
                break
    remaining = producer.flush(max(1.0, deadline - time.monotonic()))
    seconds = time.monotonic() - start
    cpu_after = cpu_seconds(args.broker_pid) if args.broker_pid else None
    result = {
        "workload": f"{args.messages} x {args.size} B, {args.partitions} partitions, "
                    f"acks={args.acks}, compression={args.compression}, linger.ms={args.linger_ms}",
        "acked": acked[0],
        "errors": len(errors),
        "unflushed": remaining,
        "seconds": round(seconds, 3),
        "msgs_per_s": round(acked[0] / seconds),
        "mb_per_s": round(acked[0] * args.size / seconds / 1e6, 1),
    }
    if cpu_before is not None:
        used = cpu_after - cpu_before
        result["broker_cpu_s"] = round(used, 2)
        result["broker_cpu_s_per_million_msgs"] = round(used / max(acked[0], 1) * 1e6, 2)
    print(json.dumps(result))
    if errors:
        print("first errors:", errors[:5], file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
