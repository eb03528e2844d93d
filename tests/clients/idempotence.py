#!/usr/bin/env python3
"""An idempotent producer (librdkafka through confluent_kafka, or kafka-python)
facing a fault, then everything read back.

  --mode lost-answers: the broker's packets to clients are dropped with an
      nftables rule for a while, so the client times the requests out and sends
      the same batches again once the rule is gone ("before-N", "during-N").
  --mode restart: "n-0" .. "n-<count-1>" produced over a few seconds while the
      test kills the broker (SIGKILL) and starts it again on the same port.

  --client confluent|kafka-python --bootstrap B --topic T --port P --metrics URL
      [--mode lost-answers|restart] [--count N]
      -> {"values": [value, ...] in offset order, "duplicates": n,
          "errors": [...]}

`duplicates` is the broker's strom_partition_duplicate_batches_total for the
topic: retried batches it recognised and did not write again.
"""

import argparse
import subprocess
import sys
import time
import urllib.request

from confluent_kafka import Consumer

from common import create_topic, emit, fail

BEFORE = 20
DURING = 20


def drop_answers(port):
    rules = (
        "table inet strom_idem_%d {\n"
        "  chain output {\n"
        "    type filter hook output priority 0; policy accept;\n"
        "    tcp sport %d drop\n"
        "  }\n"
        "}\n" % (port, port)
    )
    subprocess.run(["nft", "-f", "-"], input=rules.encode(), check=True)


def restore_answers(port):
    subprocess.run(["nft", "delete", "table", "inet", "strom_idem_%d" % port], check=True)


def duplicates(url, topic):
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(url, timeout=10).read().decode()
    total = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "strom_partition_duplicate_batches_total"
                and sample.labels.get("topic") == topic
            ):
                total += sample.value
    return int(total)


class Confluent:
    def __init__(self, bootstrap):
        from confluent_kafka import Producer

        self.errors = []
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                # Short, so lost answers are retried within the test.
                "request.timeout.ms": 1000,
                "socket.timeout.ms": 1000,
                "message.timeout.ms": 60000,
                "reconnect.backoff.max.ms": 200,
            }
        )

    def send(self, topic, value):
        def done(err, _msg):
            if err is not None:
                self.errors.append(str(err))

        self.producer.produce(topic, value=value.encode(), partition=0, on_delivery=done)
        self.producer.poll(0)

    def wait(self, seconds):
        end = time.time() + seconds
        while time.time() < end:
            self.producer.poll(0.1)

    def flush(self):
        left = self.producer.flush(60)
        if left:
            self.errors.append("%d records not delivered" % left)


class KafkaPython:
    def __init__(self, bootstrap):
        from kafka import KafkaProducer

        self.errors = []
        self.futures = []
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            request_timeout_ms=1000,
            delivery_timeout_ms=60000,
            retries=2**31 - 1,
        )

    def send(self, topic, value):
        self.futures.append(self.producer.send(topic, value=value.encode(), partition=0))

    def wait(self, seconds):
        time.sleep(seconds)

    def flush(self):
        self.producer.flush(60)
        for future in self.futures:
            try:
                future.get(timeout=60)
            except Exception as exc:  # noqa: BLE001 - reported, not hidden
                self.errors.append(repr(exc))
        self.futures = []


def read_back(bootstrap, topic, expected):
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "idempotence-check",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values = []
    deadline = time.time() + 30
    quiet_until = None
    while time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            values.append(msg.value().decode())
        if len(values) >= expected:
            # Keep reading a little: duplicates would come behind.
            quiet_until = quiet_until or time.time() + 2
            if time.time() >= quiet_until:
                break
    consumer.close()
    return values


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", choices=["confluent", "kafka-python"], required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--mode", choices=["lost-answers", "restart"], default="lost-answers")
    ap.add_argument("--count", type=int, default=2000)
    args = ap.parse_args()

    create_topic(args.bootstrap, args.topic, 1)
    client = Confluent(args.bootstrap) if args.client == "confluent" else KafkaPython(args.bootstrap)
    if args.mode == "restart":
        # About 5 s of sending: the broker is killed and restarted meanwhile.
        for i in range(args.count):
            client.send(args.topic, "n-%d" % i)
            if i % 10 == 9:
                client.wait(0.025)
        client.flush()
        values = read_back(args.bootstrap, args.topic, args.count)
        # The admin API moved with the restart: no metrics here.
        emit({"values": values, "duplicates": None, "errors": client.errors})
        return
    for i in range(BEFORE):
        client.send(args.topic, "before-%d" % i)
    client.flush()
    if client.errors:
        fail("producing before the fault: %s" % client.errors)

    drop_answers(args.port)
    try:
        for i in range(DURING):
            client.send(args.topic, "during-%d" % i)
            client.wait(0.05)
        # The broker writes these; its answers are dropped; the client's
        # requests time out (1 s) while the rule holds.
        client.wait(3)
    finally:
        restore_answers(args.port)
    client.flush()

    values = read_back(args.bootstrap, args.topic, BEFORE + DURING)
    emit(
        {
            "values": values,
            "duplicates": duplicates(args.metrics, args.topic),
            "errors": client.errors,
        }
    )
    if client.errors:
        print("delivery errors: %s" % client.errors, file=sys.stderr)


if __name__ == "__main__":
    main()
