#!/usr/bin/env python3
"""Produce throughput against any Kafka bootstrap address, driven by librdkafka
(Python confluent-kafka), so the client is one nobody at Strom wrote.

Prints one JSON line: messages, bytes, seconds, msgs/s, MB/s, produce latency
percentiles (librdkafka's per-message latency: produce() call to delivery
report, in ms), and, when --broker-pid is given, the broker's CPU seconds
(user+sys from /proc) spent during the run and per million messages. With
--rate the producer sends at that many messages/s instead of as fast as it can
(latency at a load the broker keeps up with).

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
    ap.add_argument("--replication-factor", type=int, default=1)
    ap.add_argument("--rate", type=float, default=0,
                    help="messages/s (0: as fast as possible)")
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
    fut = admin.create_topics([NewTopic(args.topic, args.partitions,
                                        args.replication_factor,
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
    latencies = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked[0] += 1
            latency = msg.latency()
            if latency is not None:
                latencies.append(latency * 1000.0)

    cpu_before = cpu_seconds(args.broker_pid) if args.broker_pid else None
    start = time.monotonic()
    deadline = start + args.timeout_s
    interval = 1.0 / args.rate if args.rate > 0 else 0.0
    for i in range(args.messages):
        if interval:
            wait = start + i * interval - time.monotonic()
            if wait > 0:
                producer.poll(wait)
        while True:
            try:
                producer.produce(args.topic, payload, partition=i % args.partitions,
                                 on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        if interval or i % 10000 == 0:
            producer.poll(0)
            if time.monotonic() > deadline:
                break
    remaining = producer.flush(max(1.0, deadline - time.monotonic()))
    seconds = time.monotonic() - start
    cpu_after = cpu_seconds(args.broker_pid) if args.broker_pid else None
    result = {
        "workload": f"{args.messages} x {args.size} B, {args.partitions} partitions, "
                    f"RF {args.replication_factor}, acks={args.acks}, "
                    f"compression={args.compression}, linger.ms={args.linger_ms}, "
                    f"rate={'max' if not args.rate else args.rate}",
        "acked": acked[0],
        "errors": len(errors),
        "unflushed": remaining,
        "seconds": round(seconds, 3),
        "msgs_per_s": round(acked[0] / seconds),
        "mb_per_s": round(acked[0] * args.size / seconds / 1e6, 1),
    }
    if latencies:
        latencies.sort()
        for name, q in (("p50", 0.5), ("p99", 0.99), ("p99_9", 0.999)):
            result[f"latency_ms_{name}"] = round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)
        result["latency_ms_max"] = round(latencies[-1], 2)
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
