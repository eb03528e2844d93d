#!/usr/bin/env python3
"""Consumer groups end to end with confluent_kafka (librdkafka) and, for the
admin cross-checks, kafka-python's KafkaAdminClient.

Records are keyed b"k<seq>" with value b"v<seq>", so a reader can tell which
produced record it got. Kafka errors are reported in the JSON (exit 0); a
broken check or a timeout exits non-zero with FAIL: on stderr.

  produce --topic T --count N [--start SEQ] [--partition P]
      -> {"acked": [[seq, partition, offset]], "errors": [[seq, code, name]], "undelivered": n}

  member --topic T --group G --name NAME [--instance-id ID] [--session-timeout-ms MS]
         [--heartbeat-ms MS] [--strategy range|roundrobin|cooperative-sticky] [--max-seconds S]
      A long-running group member. One JSON object per line on stdout, each with
      "ev", "name" and "t" (epoch seconds):
        {"ev": "start", "pid"}                       subscribed
        {"ev": "assign", "partitions", "owned", "n"} rebalance callback (n: assign calls so far)
        {"ev": "revoke", "partitions", "owned"}
        {"ev": "lost", "partitions", "owned"}
        {"ev": "recs", "recs": [[p, o, seq]], "foreign": [[p, o]], "commit_error": [code, name]|null}
            records of one consume() call, committed synchronously (explicit
            offsets) before this line is printed; "foreign": records of
            partitions this member did not own
        {"ev": "error", "error": [code, name, str]}
        {"ev": "closed", "member_id"}                after close() (SIGTERM)
      SIGTERM closes the consumer (LeaveGroup, except for a static member) and
      exits 0; SIGKILL leaves the group to the session timeout.

  consume --topic T --group G --count N [--timeout S] [--instance-id ID] [--session-timeout-ms MS]
      Consumes exactly N records (committing each consume() batch synchronously),
      then closes. -> {"records": [[p, o, seq]], "assignments": [[...]], "commit_errors": [...],
                       "errors": [...], "member_id"}

  committed --group G [--topic T]
      -> {"confluent": {"P": offset}, "confluent_error": [code, name]|null,
          "kafka_python": {"P": offset}, "kafka_python_error": name|null}
      Offsets of topic T (all topics if omitted: keys "topic:P") committed by G,
      read with AdminClient.list_consumer_group_offsets (OffsetFetch) and
      KafkaAdminClient.list_group_offsets. Partitions without a commit are left out.

  list-groups [--state STATE ...]
      -> {"groups": {id: {"state", "simple", "type"}}, "errors": [...], "kafka_python": {id: state}|null}
  describe --group G [--group G2 ...]
      -> {"groups": {id: {"state", "assignor", "simple", "error",
                           "members": [{"member_id", "client_id", "host", "instance_id",
                                        "assignment": [[topic, p]]}]}}}
  delete-groups --group G [--group G2 ...]
      -> {"results": {id: null | [code, name]}}
  delete-offsets --group G --topic T --partition P [--partition P2 ...]
      (kafka-python KafkaAdminClient.delete_group_offsets: OffsetDelete)
      -> {"error": null | [code, name], "partitions": {"P": null | [code, name]}}
"""

import argparse
import json
import os
import signal
import sys
import time

from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from common import emit, fail


def seq_of(msg):
    key = msg.key() or b""
    if key.startswith(b"k") and key[1:].isdigit() and msg.value() == b"v" + key[1:]:
        return int(key[1:])
    return None


def kafka_error(exc):
    err = exc.args[0] if isinstance(exc, KafkaException) else exc
    if isinstance(err, KafkaError):
        return [err.code(), err.name()]
    return [None, repr(err)]


# ---------------------------------------------------------------- produce


def produce(args):
    p = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "enable.idempotence": False,
            "message.timeout.ms": 30000,
        }
    )
    acked, errors = [], []

    def on_delivery(err, msg):
        key = msg.key()
        seq = int(key[1:])
        if err is not None:
            errors.append([seq, err.code(), err.name()])
        else:
            acked.append([seq, msg.partition(), msg.offset()])

    for seq in range(args.start, args.start + args.count):
        kwargs = {"key": b"k%d" % seq, "value": b"v%d" % seq, "on_delivery": on_delivery}
        if args.partition is not None:
            kwargs["partition"] = args.partition
        p.produce(args.topic, **kwargs)
        p.poll(0)
    left = p.flush(60)
    acked.sort()
    emit({"acked": acked, "errors": errors, "undelivered": left})


# ---------------------------------------------------------------- consumers


def consumer_conf(args, client_id):
    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "client.id": client_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": args.heartbeat_ms,
        "partition.assignment.strategy": args.strategy,
        "topic.metadata.refresh.interval.ms": 5000,
        "fetch.wait.max.ms": 100,
    }
    if args.instance_id:
        conf["group.instance.id"] = args.instance_id
    return conf


def commit_batch(c, topic, batch):
    """Commits offset+1 of the last record of each partition in batch;
    None or [code, name]."""
    last = {}
    for p, o, _ in batch:
        last[p] = max(last.get(p, -1), o)
    offsets = [TopicPartition(topic, p, o + 1) for p, o in sorted(last.items())]
    try:
        result = c.commit(offsets=offsets, asynchronous=False)
    except KafkaException as exc:
        return kafka_error(exc)
    for tp in result or []:
        if tp.error is not None:
            return kafka_error(tp.error)
    return None


def member(args):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    name = args.name

    def event(ev, **fields):
        emit(dict(ev=ev, name=name, t=round(time.time(), 3), **fields))

    c = Consumer(consumer_conf(args, name))
    owned = set()
    assigns = [0]

    def on_assign(consumer, parts):
        assigns[0] += 1
        owned.update(tp.partition for tp in parts)
        event("assign", partitions=sorted(tp.partition for tp in parts), owned=sorted(owned), n=assigns[0])

    def on_revoke(consumer, parts):
        owned.difference_update(tp.partition for tp in parts)
        event("revoke", partitions=sorted(tp.partition for tp in parts), owned=sorted(owned))

    def on_lost(consumer, parts):
        owned.difference_update(tp.partition for tp in parts)
        event("lost", partitions=sorted(tp.partition for tp in parts), owned=sorted(owned))

    c.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    event("start", pid=os.getpid())
    deadline = time.time() + args.max_seconds
    while not stop:
        if time.time() > deadline:
            fail("member %s still running after --max-seconds %s" % (name, args.max_seconds))
        batch, foreign = [], []
        for m in c.consume(num_messages=500, timeout=0.2):
            if m.error() is not None:
                event("error", error=[m.error().code(), m.error().name(), m.error().str()])
                continue
            batch.append([m.partition(), m.offset(), seq_of(m)])
            if m.partition() not in owned:
                foreign.append([m.partition(), m.offset()])
        if batch:
            err = commit_batch(c, args.topic, batch)
            event("recs", recs=batch, foreign=foreign, commit_error=err)
    member_id = c.memberid()
    c.close()
    event("closed", member_id=member_id)


def consume(args):
    c = Consumer(consumer_conf(args, "consume-%d" % os.getpid()))
    assignments = []
    c.subscribe(
        [args.topic],
        on_assign=lambda _c, parts: assignments.append(sorted(tp.partition for tp in parts)),
    )
    records, commit_errors, errors = [], [], []
    deadline = time.time() + args.timeout
    while len(records) < args.count:
        if time.time() > deadline:
            fail("consumed %d of %d records before the timeout: %r" % (len(records), args.count, records[-5:]))
        batch = []
        for m in c.consume(num_messages=args.count - len(records), timeout=0.2):
            if m.error() is not None:
                errors.append([m.error().code(), m.error().name(), m.error().str()])
                continue
            batch.append([m.partition(), m.offset(), seq_of(m)])
        if batch:
            err = commit_batch(c, args.topic, batch)
            if err is not None:
                commit_errors.append(err)
            records.extend(batch)
    member_id = c.memberid()
    c.close()
    emit(
        {
            "records": records,
            "assignments": assignments,
            "commit_errors": commit_errors,
            "errors": errors,
            "member_id": member_id,
        }
    )


# ---------------------------------------------------------------- admin


def admin(args):
    return AdminClient({"bootstrap.servers": args.bootstrap})


def kp_admin(args):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=args.bootstrap, request_timeout_ms=20000)


def committed(args):
    out = {"confluent": {}, "confluent_error": None, "kafka_python": {}, "kafka_python_error": None}

    def key(topic, partition):
        return str(partition) if args.topic else "%s:%d" % (topic, partition)

    request = [ConsumerGroupTopicPartitions(args.group)]
    client = admin(args)  # keep a reference: a collected client fails its futures
    future = client.list_consumer_group_offsets(request, request_timeout=20)[args.group]
    try:
        result = future.result(timeout=30)
        for tp in result.topic_partitions:
            if args.topic and tp.topic != args.topic:
                continue
            if tp.error is not None:
                out["confluent_error"] = kafka_error(tp.error)
            elif tp.offset >= 0:
                out["confluent"][key(tp.topic, tp.partition)] = tp.offset
    except KafkaException as exc:
        out["confluent_error"] = kafka_error(exc)

    try:
        client = kp_admin(args)
        try:
            result = client.list_group_offsets({args.group: None})
            offsets = result.get(args.group, {})
            for tp, meta in offsets.items():
                if args.topic and tp.topic != args.topic:
                    continue
                if meta.offset >= 0:
                    out["kafka_python"][key(tp.topic, tp.partition)] = meta.offset
        finally:
            client.close()
    except Exception as exc:  # report, the test decides
        out["kafka_python_error"] = "%s: %s" % (type(exc).__name__, exc)
    emit(out)


def state_name(state):
    return getattr(state, "name", str(state))


def list_groups(args):
    kwargs = {"request_timeout": 20}
    if args.state:
        kwargs["states"] = {ConsumerGroupState[s] for s in args.state}
    client = admin(args)
    result = client.list_consumer_groups(**kwargs).result(timeout=30)
    groups = {
        g.group_id: {
            "state": state_name(g.state),
            "simple": g.is_simple_consumer_group,
            "type": state_name(g.type),
        }
        for g in result.valid
    }
    errors = [kafka_error(e) for e in result.errors]
    kp = None
    if not args.state:
        try:
            client = kp_admin(args)
            try:
                kp = {}
                for g in client.list_groups():
                    gid = g["group_id"] if isinstance(g, dict) else g[0]
                    kp[gid] = g.get("group_state") if isinstance(g, dict) else None
            finally:
                client.close()
        except Exception as exc:
            kp = {"__error__": "%s: %s" % (type(exc).__name__, exc)}
    emit({"groups": groups, "errors": errors, "kafka_python": kp})


def describe(args):
    client = admin(args)
    futures = client.describe_consumer_groups(args.group, request_timeout=20)
    groups = {}
    for gid, future in futures.items():
        try:
            d = future.result(timeout=30)
        except KafkaException as exc:
            groups[gid] = {"error": kafka_error(exc)}
            continue
        groups[gid] = {
            "error": None,
            "state": state_name(d.state),
            "assignor": d.partition_assignor,
            "simple": d.is_simple_consumer_group,
            "members": sorted(
                (
                    {
                        "member_id": m.member_id,
                        "client_id": m.client_id,
                        "host": m.host,
                        "instance_id": m.group_instance_id,
                        "assignment": sorted(
                            [tp.topic, tp.partition] for tp in (m.assignment.topic_partitions or [])
                        ),
                    }
                    for m in d.members
                ),
                key=lambda m: m["client_id"],
            ),
        }
    emit({"groups": groups})


def delete_groups(args):
    client = admin(args)
    futures = client.delete_consumer_groups(args.group, request_timeout=20)
    results = {}
    for gid, future in futures.items():
        try:
            future.result(timeout=30)
            results[gid] = None
        except KafkaException as exc:
            results[gid] = kafka_error(exc)
    emit({"results": results})


def kp_error(err):
    if err is None:
        return None
    errno = getattr(err, "errno", None)
    if errno == 0:
        return None
    name = err.__name__ if isinstance(err, type) else type(err).__name__
    return [errno, name]


def delete_offsets(args):
    from kafka import TopicPartition as KTP

    client = kp_admin(args)
    out = {"error": None, "partitions": {}}
    try:
        result = client.delete_group_offsets(args.group, [KTP(args.topic, p) for p in args.partition])
        for tp, err in result.items():
            out["partitions"][str(tp.partition)] = kp_error(err)
    except Exception as exc:
        out["error"] = kp_error(exc) or [None, "%s: %s" % (type(exc).__name__, exc)]
    finally:
        client.close()
    emit(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    sub = ap.add_subparsers(dest="cmd", required=True)

    pr = sub.add_parser("produce")
    pr.add_argument("--topic", required=True)
    pr.add_argument("--count", type=int, required=True)
    pr.add_argument("--start", type=int, default=0)
    pr.add_argument("--partition", type=int)

    def consumer_args(p):
        p.add_argument("--topic", required=True)
        p.add_argument("--group", required=True)
        p.add_argument("--instance-id")
        p.add_argument("--session-timeout-ms", type=int, default=6000)
        p.add_argument("--heartbeat-ms", type=int, default=500)
        p.add_argument("--strategy", default="range")

    me = sub.add_parser("member")
    consumer_args(me)
    me.add_argument("--name", required=True)
    me.add_argument("--max-seconds", type=float, default=240)

    co = sub.add_parser("consume")
    consumer_args(co)
    co.add_argument("--count", type=int, required=True)
    co.add_argument("--timeout", type=float, default=60)

    cm = sub.add_parser("committed")
    cm.add_argument("--group", required=True)
    cm.add_argument("--topic")

    lg = sub.add_parser("list-groups")
    lg.add_argument("--state", action="append", default=[], choices=[s.name for s in ConsumerGroupState])

    for name in ("describe", "delete-groups"):
        d = sub.add_parser(name)
        d.add_argument("--group", action="append", required=True)

    do = sub.add_parser("delete-offsets")
    do.add_argument("--group", required=True)
    do.add_argument("--topic", required=True)
    do.add_argument("--partition", type=int, action="append", required=True)

    args = ap.parse_args()
    {
        "produce": produce,
        "member": member,
        "consume": consume,
        "committed": committed,
        "list-groups": list_groups,
        "describe": describe,
        "delete-groups": delete_groups,
        "delete-offsets": delete_offsets,
    }[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
