#!/usr/bin/env python3
"""Creates a topic with max.message.bytes=--limit, produces one --size byte
message (the producer's own message.max.bytes is raised so it does not reject
it first) and then one small message. Prints
  {"big_error_code", "big_error_name", "small_error_code", "small_offset"}
"""

import argparse
import sys

from confluent_kafka import Producer

from common import create_topic, emit


def send(p, topic, value):
    out = {}

    def on_delivery(err, msg):
        out["err"] = err
        out["offset"] = msg.offset()

    p.produce(topic, partition=0, value=value, on_delivery=on_delivery)
    left = p.flush(30)
    if left or "err" not in out:
        return -1000, "NO_DELIVERY_REPORT", None
    err = out["err"]
    if err is None:
        return 0, None, out["offset"]
    return err.code(), err.name(), None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--limit", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=50_000)
    ap.add_argument("--no-create", action="store_true", help="the topic exists already")
    args = ap.parse_args()

    if not args.no_create:
        create_topic(args.bootstrap, args.topic, 1, {"max.message.bytes": str(args.limit)})
    p = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "acks": "all",
            "message.max.bytes": 5_000_000,
            "compression.type": "none",
            "message.send.max.retries": 0,
            "linger.ms": 0,
        }
    )
    big_code, big_name, _ = send(p, args.topic, bytes(range(256)) * (args.size // 256))
    small_code, _, small_offset = send(p, args.topic, b"small")
    emit({"big_error_code": big_code, "big_error_name": big_name, "small_error_code": small_code,
          "small_offset": small_offset})


if __name__ == "__main__":
    sys.exit(main())
