#!/usr/bin/env python3
"""Traffic and scrapes for the /metrics tests; prints one JSON line.

  scrape --url URL
      Fetches URL (a /metrics endpoint) and parses it with the Prometheus
      project's own text-format parser (prometheus_client), so a malformed
      exposition fails here.
      -> {"samples": [[name, {labels}, value], ...], "types": {family: type}}
  traffic --bootstrap B --topic T --partitions P --count N --group G --commit K
      Creates T, produces N keyed records with acks=all, reads every record once
      with a consumer assigned to all partitions (no group), then commits offset
      K on each partition for group G (without consuming in G).
      -> {"produced": N, "consumed": N, "value_bytes": total bytes of values}
"""

import argparse
import sys
import urllib.request

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from common import create_topic, emit, fail


def scrape(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        if response.status != 200:
            fail("GET %s: status %d" % (url, response.status))
        content_type = response.headers.get("Content-Type", "")
        if not content_type.startswith("text/plain"):
            fail("GET %s: Content-Type %r" % (url, content_type))
        text = response.read().decode("utf-8")
    samples, types = [], {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples.append([s.name, s.labels, s.value])
    emit({"samples": samples, "types": types})


def traffic(args):
    create_topic(args.bootstrap, args.topic, args.partitions)
    producer = Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "linger.ms": 5})
    errors = []
    value_bytes = 0
    for i in range(args.count):
        value = ("value-%d-" % i + "x" * (i % 50)).encode()
        value_bytes += len(value)
        producer.produce(
            args.topic,
            key=("key-%d" % i).encode(),
            value=value,
            on_delivery=lambda err, msg: errors.append(err) if err else None,
        )
        producer.poll(0)
    if producer.flush(30) != 0 or errors:
        fail("produce failed: %s" % errors[:3])
    consumer = Consumer(
        {"bootstrap.servers": args.bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in range(args.partitions)])
    consumed = 0
    while consumed < args.count:
        msg = consumer.poll(10)
        if msg is None:
            fail("timed out after %d of %d records" % (consumed, args.count))
        if msg.error():
            fail("consume error: %s" % msg.error())
        consumed += 1
    consumer.close()
    committer = Consumer(
        {"bootstrap.servers": args.bootstrap, "group.id": args.group, "enable.auto.commit": False}
    )
    offsets = [TopicPartition(args.topic, p, args.commit) for p in range(args.partitions)]
    for tp in committer.commit(offsets=offsets, asynchronous=False):
        if tp.error:
            fail("commit failed: %s" % tp.error)
    committer.close()
    emit({"produced": args.count, "consumed": consumed, "value_bytes": value_bytes})


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("scrape")
    s.add_argument("--url", required=True)
    t = sub.add_parser("traffic")
    t.add_argument("--bootstrap", required=True)
    t.add_argument("--topic", required=True)
    t.add_argument("--partitions", type=int, default=3)
    t.add_argument("--count", type=int, default=300)
    t.add_argument("--group", required=True)
    t.add_argument("--commit", type=int, default=0)
    args = ap.parse_args()
    if args.cmd == "scrape":
        scrape(args.url)
    else:
        traffic(args)


if __name__ == "__main__":
    sys.exit(main())
