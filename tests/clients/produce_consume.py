#!/usr/bin/env python3
"""Produce keyed, numbered messages with acks=all and read them all back.

Checks: every delivery report succeeded; every message is read back exactly
once, at the partition/offset its delivery report gave; offsets are dense from 0
and sequence numbers increase within each partition; key, value, headers and
timestamps are what was produced. Prints a JSON summary on stdout.

--state FILE stores the delivery reports; --verify-only re-reads the topic
(e.g. after a broker restart) and checks it against that file.
"""

import argparse
import json
import sys
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    Consumer,
    KafkaError,
    Producer,
    TopicPartition,
)

from common import create_topic, emit, fail, topic_partitions

BASE_TS = 1_700_000_000_000  # ms; message i gets BASE_TS + i with --timestamps
BIG_SIZE = 900 * 1024


def key_of(i):
    return ("key-%d" % i).encode()


def value_of(i, args):
    head = ("seq=%d;" % i).encode()
    if args.big and i == 0:
        body = bytes((i * 7 + j) % 251 for j in range(256)) * (BIG_SIZE // 256 + 1)
        return head + body[: BIG_SIZE - len(head)]
    pad = args.value_size - len(head)
    if pad <= 0:
        return head
    # Compressible but seq-dependent padding.
    return head + (("%08d" % i) * (pad // 8 + 1)).encode()[:pad]


def headers_of(i):
    return [
        ("seq", str(i).encode()),
        ("bin", bytes([0, 255, i % 256, 10])),
        ("empty", b""),
        ("seq", b"dup-%d" % i),  # repeated header names must keep their order
    ]


def seq_of(value):
    if not value.startswith(b"seq="):
        fail("value does not start with seq=: %r" % value[:40])
    return int(value[4 : value.index(b";")])


def produce(args, state):
    conf = {
        "bootstrap.servers": args.bootstrap,
        "acks": args.acks,
        "compression.type": args.compression,
        "linger.ms": 5,
        "message.max.bytes": 2_000_000,
        "enable.idempotence": False,
        "queue.buffering.max.messages": 1_000_000,
    }
    if args.batch_bytes:
        conf["batch.size"] = args.batch_bytes
    p = Producer(conf)
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append((err.code(), err.name(), err.str()))
            return
        i = seq_of(msg.value())
        if i in state:
            errors.append((-1, "DUPLICATE_REPORT", "seq %d reported twice" % i))
        state[i] = (msg.partition(), msg.offset())

    deadline = time.time() + args.timeout
    for i in range(args.count):
        kwargs = {"key": key_of(i), "value": value_of(i, args), "on_delivery": on_delivery}
        if args.headers:
            kwargs["headers"] = headers_of(i)
        if args.timestamps:
            kwargs["timestamp"] = BASE_TS + i
        while True:
            try:
                p.produce(args.topic, **kwargs)
                break
            except BufferError:
                p.poll(0.1)
                if time.time() > deadline:
                    fail("producer queue stayed full until timeout")
        p.poll(0)
    left = p.flush(max(1.0, deadline - time.time()))
    if left:
        fail("%d messages not delivered before timeout" % left)
    if errors:
        fail("%d delivery errors, first: %r" % (len(errors), errors[0]))
    if len(state) != args.count:
        fail("%d delivery reports for %d messages" % (len(state), args.count))


def consume(args, state, partitions):
    c = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": "strom-e2e-unused",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "error",
        }
    )
    c.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in partitions])
    seen = {}
    next_offset = {p: 0 for p in partitions}
    last_seq = {p: -1 for p in partitions}
    eof = set()
    per_partition = {p: 0 for p in partitions}
    deadline = time.time() + args.timeout
    while len(seen) < args.count or len(eof) < len(partitions):
        if time.time() > deadline:
            fail(
                "timeout: read %d of %d messages, eof on %d of %d partitions"
                % (len(seen), args.count, len(eof), len(partitions))
            )
        msgs = c.consume(num_messages=1000, timeout=0.5)
        for m in msgs:
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if next_offset[m.partition()] == m.offset():
                        eof.add(m.partition())
                    continue
                fail("consume error: %s" % m.error())
            p, off = m.partition(), m.offset()
            eof.discard(p)
            if off != next_offset[p]:
                fail("partition %d: offset %d read, expected %d (gap or duplicate)" % (p, off, next_offset[p]))
            next_offset[p] = off + 1
            i = seq_of(m.value())
            if i < 0 or i >= args.count:
                fail("unexpected seq %d" % i)
            if i in seen:
                fail("seq %d read twice (at %r and %r)" % (i, seen[i], (p, off)))
            seen[i] = (p, off)
            if i <= last_seq[p]:
                fail("partition %d: seq %d after seq %d (order broken)" % (p, i, last_seq[p]))
            last_seq[p] = i
            per_partition[p] += 1
            # acks=0 delivery reports carry no broker offset (the broker sends no
            # response; librdkafka may report a placeholder), so only acks 1/all
            # reports are compared.
            reported = state[i][1] if state is not None else None
            known = args.acks != "0" and reported is not None and reported >= 0
            if known and tuple(state[i]) != (p, off):
                fail("seq %d read at %r, delivery report said %r" % (i, (p, off), tuple(state[i])))
            if m.key() != key_of(i):
                fail("seq %d: key %r, expected %r" % (i, m.key(), key_of(i)))
            if m.value() != value_of(i, args):
                fail("seq %d: value differs (len %d, expected %d)" % (i, len(m.value()), len(value_of(i, args))))
            if args.headers:
                got = [(k, v if v is not None else None) for k, v in (m.headers() or [])]
                if got != headers_of(i):
                    fail("seq %d: headers %r, expected %r" % (i, got, headers_of(i)))
            if args.timestamps:
                ts = m.timestamp()
                if ts != (TIMESTAMP_CREATE_TIME, BASE_TS + i):
                    fail("seq %d: timestamp %r, expected (CreateTime, %d)" % (i, ts, BASE_TS + i))
    c.close()
    missing = [i for i in range(args.count) if i not in seen]
    if missing:
        fail("%d messages lost, first %r" % (len(missing), missing[:10]))
    return per_partition, next_offset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--acks", default="all", choices=["0", "1", "all"])
    ap.add_argument("--batch-bytes", type=int, help="producer batch.size (bytes per batch)")
    ap.add_argument("--compression", default="none", choices=["none", "gzip", "snappy", "lz4", "zstd"])
    ap.add_argument("--headers", action="store_true")
    ap.add_argument("--timestamps", action="store_true")
    ap.add_argument("--big", action="store_true", help="message 0 is 900 KB")
    ap.add_argument("--no-create", action="store_true", help="the topic exists already")
    ap.add_argument("--state", help="file for the delivery reports")
    ap.add_argument("--verify-only", action="store_true")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()

    start = time.time()
    state = {}
    if args.verify_only:
        if args.state:
            with open(args.state) as f:
                state = {int(k): tuple(v) for k, v in json.load(f).items()}
            if len(state) != args.count:
                fail("state file has %d entries, expected %d" % (len(state), args.count))
        else:
            state = None
    else:
        if not args.no_create:
            create_topic(args.bootstrap, args.topic, args.partitions)
        produce(args, state)
        if args.state:
            with open(args.state, "w") as f:
                json.dump({str(k): list(v) for k, v in state.items()}, f)
    produced = time.time()
    partitions = topic_partitions(args.bootstrap, args.topic)
    if len(partitions) != args.partitions:
        fail("topic has %d partitions, expected %d" % (len(partitions), args.partitions))
    per_partition, ends = consume(args, state, partitions)
    emit(
        {
            "topic": args.topic,
            "count": args.count,
            "consumed": sum(per_partition.values()),
            "partitions": len(partitions),
            "nonempty_partitions": sum(1 for n in per_partition.values() if n > 0),
            "per_partition": {str(p): n for p, n in per_partition.items()},
            "end_offsets": {str(p): n for p, n in ends.items()},
            "compression": args.compression,
            "produce_seconds": round(produced - start, 3),
            "consume_seconds": round(time.time() - produced, 3),
        }
    )


if __name__ == "__main__":
    sys.exit(main())
