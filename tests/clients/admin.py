#!/usr/bin/env python3
"""AdminClient operations for the end-to-end tests; prints one JSON line.

  create TOPIC [--partitions N] [--rf R] [--config k=v ...] [--validate-only]
      -> {"topic", "error_code", "error_name", "error"}   (exit 0 even on a Kafka error)
  delete TOPIC  -> {"topic", "error_code", "error_name", "error"}
  topics        -> {"brokers": [[id, host, port]], "topics": {name: {"partitions": n, "error": code}}}
"""

import argparse
import sys

from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic

from common import admin, emit


def result(topic, future, timeout):
    try:
        future.result(timeout=timeout)
        return {"topic": topic, "error_code": 0, "error_name": None, "error": None}
    except KafkaException as exc:
        err = exc.args[0]
        return {"topic": topic, "error_code": err.code(), "error_name": err.name(), "error": err.str()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--timeout", type=float, default=30)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("topic")
    c.add_argument("--partitions", type=int, default=1)
    c.add_argument("--rf", type=int, default=1)
    c.add_argument("--config", action="append", default=[])
    c.add_argument("--validate-only", action="store_true")
    d = sub.add_parser("delete")
    d.add_argument("topic")
    sub.add_parser("topics")
    args = ap.parse_args()

    client = admin(args.bootstrap)
    if args.cmd == "create":
        config = dict(kv.split("=", 1) for kv in args.config)
        futures = client.create_topics(
            [NewTopic(args.topic, num_partitions=args.partitions, replication_factor=args.rf, config=config)],
            validate_only=args.validate_only,
            operation_timeout=args.timeout,
            request_timeout=args.timeout,
        )
        emit(result(args.topic, futures[args.topic], args.timeout))
    elif args.cmd == "delete":
        futures = client.delete_topics([args.topic], operation_timeout=args.timeout, request_timeout=args.timeout)
        emit(result(args.topic, futures[args.topic], args.timeout))
    else:
        md = client.list_topics(timeout=args.timeout)
        emit(
            {
                "brokers": sorted([b.id, b.host, b.port] for b in md.brokers.values()),
                "topics": {
                    name: {"partitions": len(t.partitions), "error": None if t.error is None else t.error.code()}
                    for name, t in md.topics.items()
                },
            }
        )


if __name__ == "__main__":
    sys.exit(main())
