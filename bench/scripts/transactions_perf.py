#!/usr/bin/env python3
"""Produce throughput of a transactional librdkafka producer (confluent_kafka)
against a plain idempotent one, same client, workload and broker, alternating
rounds. The transactional producer commits every --txn-sizes records (one
round per size); the idempotent producer is the baseline.

  python3 bench/scripts/transactions_perf.py --bootstrap 127.0.0.1:9092 \
      [--messages 200000] [--size 100] [--rounds 3] [--partitions 6] \
      [--txn-sizes 100,1000] [--linger-ms 5]

Prints one JSON line per round and a summary with each transactional/
idempotent ratio (median over rounds).
"""
import argparse
import json
import statistics
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from idempotence_perf import produce_all

LINGER_MS = 5


def config(bootstrap):
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": LINGER_MS,
        "batch.size": 262144,
        "queue.buffering.max.messages": 1000000,
    }


def round_once(bootstrap, topic, messages, size, txn_size):
    """msgs/s of one round; txn_size 0 = the idempotent producer."""
    errors = []

    def done(err, _msg):
        if err is not None:
            errors.append(str(err))

    conf = config(bootstrap)
    if txn_size:
        conf["transactional.id"] = "txn-perf-%s" % uuid.uuid4().hex[:8]
    producer = Producer(conf)
    value = b"x" * size
    # Connections, metadata, the producer id (and the transaction
    # coordinator) before the clock starts.
    if txn_size:
        producer.init_transactions(30)
        producer.begin_transaction()
        producer.produce(topic, value=value, on_delivery=done)
        producer.commit_transaction(30)
    else:
        producer.produce(topic, value=value, on_delivery=done)
        producer.flush(30)
    start = time.perf_counter()
    if txn_size:
        left = messages
        while left > 0:
            n = min(txn_size, left)
            producer.begin_transaction()
            produce_all(producer, topic, value, n, done)
            producer.commit_transaction(60)
            left -= n
    else:
        produce_all(producer, topic, value, messages, done)
        producer.flush(120)
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit("delivery errors: %s" % errors[:3])
    return messages / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--messages", type=int, default=200000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--txn-sizes", default="100,1000")
    ap.add_argument("--linger-ms", type=int, default=5, help="linger.ms of both producers")
    args = ap.parse_args()
    global LINGER_MS
    LINGER_MS = args.linger_ms
    sizes = [int(s) for s in args.txn_sizes.split(",") if s]
    topic = "txn-perf-%s" % uuid.uuid4().hex[:8]
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=args.partitions, replication_factor=1)])[
        topic
    ].result(30)
    kinds = [0] + sizes
    rates = {k: [] for k in kinds}
    for r in range(args.rounds):
        for k in kinds:
            rate = round_once(args.bootstrap, topic, args.messages, args.size, k)
            rates[k].append(rate)
            name = "idempotent" if k == 0 else "transactional-%d" % k
            print(json.dumps({"round": r, "producer": name, "msgs_per_s": round(rate)}), flush=True)
    base = statistics.median(rates[0])
    summary = {
        "workload": "%d x %d B, %d partitions, acks=all, linger.ms=%d, idempotent"
        % (args.messages, args.size, args.partitions, args.linger_ms),
        "idempotent_msgs_per_s": round(base),
    }
    for k in sizes:
        median = statistics.median(rates[k])
        summary["transactional_%d_msgs_per_s" % k] = round(median)
        summary["ratio_transactional_%d_to_idempotent" % k] = round(median / base, 3)
        summary["ratios_%d_per_round" % k] = [round(t / b, 3) for t, b in zip(rates[k], rates[0])]
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
