#!/usr/bin/env python3
"""Produce throughput of a plain and an idempotent librdkafka producer
(confluent_kafka), same workload, alternating rounds against one broker. Both
send at most --in-flight requests per connection (5 by default, the most an
idempotent producer may), so the ratio is the broker's cost of idempotence.

  python3 bench/scripts/idempotence_perf.py --bootstrap 127.0.0.1:9092 \
      [--messages 300000] [--size 100] [--rounds 3] [--partitions 6]

Prints one JSON line per round and a summary with the idempotent/plain ratio
(median over rounds).
"""
import argparse
import json
import statistics
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def produce_all(producer, topic, value, count, done):
    """Queues `count` records, waiting for room when the queue is full."""
    for i in range(count):
        while True:
            try:
                producer.produce(topic, value=value, on_delivery=done)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 1000 == 0:
            producer.poll(0)


def round_once(bootstrap, topic, messages, size, idempotent, in_flight):
    errors = []

    def done(err, _msg):
        if err is not None:
            errors.append(str(err))

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": idempotent,
            "max.in.flight.requests.per.connection": in_flight,
            "acks": "all",
            "linger.ms": 5,
            "batch.size": 262144,
            "queue.buffering.max.messages": 1000000,
        }
    )
    value = b"x" * size
    # Connections, metadata and (idempotent) the producer id first: librdkafka
    # waits up to 500 ms before it asks for an id, which is not throughput.
    producer.produce(topic, value=value, on_delivery=done)
    producer.flush(30)
    start = time.perf_counter()
    produce_all(producer, topic, value, messages, done)
    producer.flush(120)
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit("delivery errors: %s" % errors[:3])
    return messages / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--messages", type=int, default=300000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument(
        "--in-flight",
        type=int,
        default=5,
        help="max.in.flight.requests.per.connection of both producers (idempotence allows 5 at most)",
    )
    args = ap.parse_args()
    topic = "idem-perf-%s" % uuid.uuid4().hex[:8]
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=args.partitions, replication_factor=1)])[
        topic
    ].result(30)
    rates = {"plain": [], "idempotent": []}
    for r in range(args.rounds):
        for kind in ("plain", "idempotent"):
            rate = round_once(
                args.bootstrap, topic, args.messages, args.size, kind == "idempotent", args.in_flight
            )
            rates[kind].append(rate)
            print(json.dumps({"round": r, "producer": kind, "msgs_per_s": round(rate)}), flush=True)
    plain = statistics.median(rates["plain"])
    idem = statistics.median(rates["idempotent"])
    print(
        json.dumps(
            {
                "workload": "%d x %d B, %d partitions, acks=all, linger.ms=5, %d requests in flight"
                % (args.messages, args.size, args.partitions, args.in_flight),
                "plain_msgs_per_s": round(plain),
                "idempotent_msgs_per_s": round(idem),
                "ratio_idempotent_to_plain": round(idem / plain, 3),
                "ratios_per_round": [round(i / p, 3) for i, p in zip(rates["idempotent"], rates["plain"])],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
