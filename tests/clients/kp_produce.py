#!/usr/bin/env python3
"""Produce keyed, numbered messages with kafka-python (a pure-Python client, not
librdkafka), so codecs librdkafka will not send (LZ4 against a broker without
FindCoordinator) reach the broker compressed. Prints a JSON summary."""
import argparse
import json
import sys

from kafka import KafkaProducer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--compression", default="lz4")
    args = ap.parse_args()
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap,
        compression_type=args.compression,
        acks="all",
        # Plain batches: this script checks codecs, tests/clients/idempotence.py
        # the idempotent producer.
        enable_idempotence=False,
        linger_ms=20,
    )
    futures = [
        producer.send(args.topic, key=b"key-%d" % i, value=(b"value-%d-" % i) + b"x" * 200, partition=0)
        for i in range(args.count)
    ]
    producer.flush(30)
    offsets = [f.get(timeout=30).offset for f in futures]
    producer.close()
    if offsets != list(range(args.count)):
        print("unexpected offsets: first %s" % offsets[:10], file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"produced": args.count, "compression": args.compression}))


if __name__ == "__main__":
    main()
