#!/usr/bin/env python3
"""Storage checks (retention, DeleteRecords, disk full, crash recovery) with
confluent_kafka. Every command prints one JSON line; Kafka errors are reported
in the JSON (exit 0), a broken check exits non-zero with FAIL: on stderr.

Values are self-describing: b"seq=<seq>;len=<len>;" followed by padding that
depends on seq, `len` bytes in all, so a reader can check any record it gets.

  produce --topic T [--partition P] --count N [--start SEQ] [--value-size B]
          [--age-ms A [--aged-below SEQ]] [--acks all] [--retries R] [--message-timeout-ms MS]
          [--one-at-a-time] [--until error|ok] [--state FILE] [--timeout S]
      -> {"acked": [[seq, partition, offset]], "errors": [[seq, code, name, str]],
          "elapsed": s, "first_ack_s": s|null, "first_ack_at_ms": epoch ms|null}
  consume --topic T [--partition P] [--from beginning|OFFSET]
      -> {"records": [[partition, offset, seq, timestamp]], "bad": [...],
          "error": [code, name, str]|null, "low": {p: n}, "high": {p: n}}
  watermarks --topic T [--partition P]
      -> {"low", "high", "earliest", "latest"}
  delete-records --topic T [--partition P] --offset O
      -> {"low_watermark", "error_code", "error_name", "error"}
"""

import argparse
import re
import sys
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from common import emit, fail, topic_partitions


def value_of(seq, size):
    head = b"seq=%d;len=%d;" % (seq, size)
    pad = size - len(head)
    if pad <= 0:
        return head
    unit = b"%07d|" % (seq * 7919 % 10_000_000)
    return head + (unit * (pad // len(unit) + 1))[:pad]


def check_value(value):
    """The seq of a well-formed value, or None."""
    m = re.match(rb"seq=(\d+);len=(\d+);", value or b"")
    if m is None:
        return None
    seq, size = int(m.group(1)), int(m.group(2))
    return seq if value == value_of(seq, size) else None


def produce(args):
    conf = {
        "bootstrap.servers": args.bootstrap,
        "acks": args.acks,
        "linger.ms": 0 if args.one_at_a_time else 5,
        "enable.idempotence": False,
        "message.timeout.ms": args.message_timeout_ms,
        "retries": args.retries,
        "retry.backoff.ms": 100,
        "retry.backoff.max.ms": 500,
        "message.max.bytes": 2_000_000,
        "queue.buffering.max.messages": 1_000_000,
    }
    p = Producer(conf)
    acked, errors = [], []
    state = open(args.state, "a") if args.state else None
    start = time.time()
    first_ack = []

    def on_delivery(err, msg):
        seq = check_value(msg.value())
        if err is not None:
            errors.append([seq, err.code(), err.name(), err.str()])
            return
        if not first_ack:
            first_ack.append(time.time())
        acked.append([seq, msg.partition(), msg.offset()])
        if state is not None:
            state.write("%d %d %d\n" % (seq, msg.partition(), msg.offset()))
            state.flush()

    deadline = start + args.timeout
    timestamp = None
    if args.age_ms is not None:
        timestamp = int(time.time() * 1000) - args.age_ms
    for seq in range(args.start, args.start + args.count):
        kwargs = {"key": b"k%d" % seq, "value": value_of(seq, args.value_size), "on_delivery": on_delivery}
        if args.partition is not None:
            kwargs["partition"] = args.partition
        if timestamp is not None and (args.aged_below is None or seq < args.aged_below):
            kwargs["timestamp"] = timestamp
        while True:
            try:
                p.produce(args.topic, **kwargs)
                break
            except BufferError:
                p.poll(0.05)
                if time.time() > deadline:
                    fail("producer queue stayed full until timeout")
        if args.one_at_a_time:
            if p.flush(max(0.1, deadline - time.time())):
                break
            if args.until == "error" and errors:
                break
            if args.until == "ok" and acked:
                break
        else:
            p.poll(0)
        if time.time() > deadline:
            break
    left = p.flush(max(0.5, deadline - time.time()))
    if state is not None:
        state.close()
    emit(
        {
            "acked": acked,
            "errors": errors,
            "undelivered": left,
            "elapsed": round(time.time() - start, 3),
            "first_ack_s": round(first_ack[0] - start, 3) if first_ack else None,
            "first_ack_at_ms": int(first_ack[0] * 1000) if first_ack else None,
        }
    )


def consume(args):
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
    parts = [args.partition] if args.partition is not None else topic_partitions(args.bootstrap, args.topic)
    low, high = {}, {}
    for part in parts:
        low[part], high[part] = c.get_watermark_offsets(TopicPartition(args.topic, part), timeout=10, cached=False)
    start = OFFSET_BEGINNING if args.start == "beginning" else int(args.start)
    c.assign([TopicPartition(args.topic, part, start) for part in parts])
    records, bad = [], []
    error = None
    # Read until every partition reached the high watermark seen above.
    position = {part: None for part in parts}
    done = {part for part in parts if high[part] == low[part] and args.start == "beginning"}
    deadline = time.time() + args.timeout
    while len(done) < len(parts) and error is None:
        if time.time() > deadline:
            fail("timeout: positions %r, high watermarks %r" % (position, high))
        for m in c.consume(num_messages=1000, timeout=0.2):
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if m.offset() >= high[m.partition()]:
                        done.add(m.partition())
                    continue
                error = [m.error().code(), m.error().name(), m.error().str()]
                break
            part, off = m.partition(), m.offset()
            seq = check_value(m.value())
            if seq is None:
                bad.append([part, off, repr(m.value()[:40])])
            records.append([part, off, seq, m.timestamp()[1]])
            position[part] = off + 1
            if off + 1 >= high[part]:
                done.add(part)
    c.close()
    emit(
        {
            "records": records,
            "bad": bad,
            "error": error,
            "low": {str(k): v for k, v in low.items()},
            "high": {str(k): v for k, v in high.items()},
        }
    )


def watermarks(args):
    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "strom-e2e-unused"})
    tp = TopicPartition(args.topic, args.partition)
    low, high = c.get_watermark_offsets(tp, timeout=10, cached=False)
    c.close()
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    answers = {}
    for name, spec in (("earliest", OffsetSpec.earliest()), ("latest", OffsetSpec.latest())):
        answers[name] = admin.list_offsets({tp: spec}, request_timeout=10)[tp].result(20).offset
    emit({"low": low, "high": high, **answers})


def delete_records(args):
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    tp = TopicPartition(args.topic, args.partition, args.offset)
    future = admin.delete_records([tp], request_timeout=20, operation_timeout=20)[tp]
    try:
        deleted = future.result(30)
        emit({"low_watermark": deleted.low_watermark, "error_code": 0, "error_name": None, "error": None})
    except KafkaException as exc:
        err = exc.args[0]
        emit({"low_watermark": None, "error_code": err.code(), "error_name": err.name(), "error": err.str()})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    sub = ap.add_subparsers(dest="cmd", required=True)

    pr = sub.add_parser("produce")
    pr.add_argument("--topic", required=True)
    pr.add_argument("--partition", type=int)
    pr.add_argument("--count", type=int, required=True)
    pr.add_argument("--start", type=int, default=0, help="first seq")
    pr.add_argument("--value-size", type=int, default=100)
    pr.add_argument("--age-ms", type=int, help="CreateTime = now - age")
    pr.add_argument("--aged-below", type=int, help="--age-ms only for seqs below this; later ones get now")
    pr.add_argument("--acks", default="all")
    pr.add_argument("--retries", type=int, default=2147483647)
    pr.add_argument("--message-timeout-ms", type=int, default=30000)
    pr.add_argument("--one-at-a-time", action="store_true", help="wait for each delivery report")
    pr.add_argument("--until", choices=["error", "ok"], help="with --one-at-a-time: stop at the first error / ack")
    pr.add_argument("--state", help="append 'seq partition offset' per ack, flushed at once")
    pr.add_argument("--timeout", type=float, default=60)

    co = sub.add_parser("consume")
    co.add_argument("--topic", required=True)
    co.add_argument("--partition", type=int)
    co.add_argument("--from", dest="start", default="beginning")
    co.add_argument("--timeout", type=float, default=30)

    wm = sub.add_parser("watermarks")
    wm.add_argument("--topic", required=True)
    wm.add_argument("--partition", type=int, default=0)

    dr = sub.add_parser("delete-records")
    dr.add_argument("--topic", required=True)
    dr.add_argument("--partition", type=int, default=0)
    dr.add_argument("--offset", type=int, required=True)

    args = ap.parse_args()
    {"produce": produce, "consume": consume, "watermarks": watermarks, "delete-records": delete_records}[args.cmd](
        args
    )


if __name__ == "__main__":
    sys.exit(main())
