#!/usr/bin/env python3
"""Consumer group performance against any Kafka bootstrap address, measured with
librdkafka (Python confluent-kafka) consumers, so the clients are ones nobody at
Strom wrote.

Two measurements; each prints one JSON line (--mode both prints two).

rebalance (a): --runs times, in a fresh group each run: a producer writes a
  steady stream (--rate records/s, round-robin over --partitions partitions);
  three consumers of the group consume it; once the group is stable and all
  three consume, one of them closes (LeaveGroup) at t0. Per run:
    close_s   how long close() took,
    assign_s  t0 -> the last of the two remaining members' assign callbacks
              that completes the new assignment (all partitions owned),
    resume_s  t0 -> the first record of a partition the leaver owned,
              consumed by a remaining member.
  Printed per run and as medians. The remaining members learn of the rebalance
  from a heartbeat, so --heartbeat-ms (librdkafka's default: 3000) bounds
  assign_s from below on any broker; the leave comes after --settle-s plus a
  random part of one heartbeat interval, so runs sample the whole cycle.

commit (b): one group member (subscribed, assigned) commits synchronously
  (`commit(offsets=[...], asynchronous=False)` with explicit, increasing
  offsets) for --commit-seconds; prints commits/s and latency percentiles.

Examples:
  target/release/strom serve --data-dir /tmp/gp --listen 127.0.0.1:19095 &
  python3 bench/scripts/group_perf.py --bootstrap 127.0.0.1:19095 --mode both --runs 5
  python3 bench/scripts/group_perf.py --bootstrap 127.0.0.1:9092 --mode rebalance \
      --runs 10 --heartbeat-ms 500 --strategy cooperative-sticky
"""
import argparse
import json
import random
import statistics
import sys
import threading
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def emit(obj):
    print(json.dumps(obj, sort_keys=True), flush=True)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def ensure_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fut = admin.create_topics([NewTopic(topic, partitions, 1)])[topic]
    try:
        fut.result(30)
    except KafkaException as e:  # an existing topic is fine for a benchmark
        if "TOPIC_ALREADY_EXISTS" not in str(e):
            raise
    deadline = time.time() + 30
    while time.time() < deadline:
        t = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        time.sleep(0.1)
    raise SystemExit("topic %s with %d partitions not in metadata" % (topic, partitions))


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class SteadyProducer(threading.Thread):
    """Writes `rate` records/s round-robin over the partitions until stopped."""

    def __init__(self, bootstrap, topic, partitions, rate):
        super().__init__(daemon=True)
        self.p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": 1,
                           "enable.idempotence": False})
        self.topic, self.partitions, self.rate = topic, partitions, rate
        self.stop = threading.Event()
        self.sent = 0

    def run(self):
        start = time.time()
        while not self.stop.is_set():
            due = int((time.time() - start) * self.rate)
            while self.sent < due:
                try:
                    self.p.produce(self.topic, value=b"x" * 100, partition=self.sent % self.partitions)
                except BufferError:
                    break
                self.sent += 1
            self.p.poll(0)
            time.sleep(0.005)
        self.p.flush(10)


class Member(threading.Thread):
    """A group member that consumes until told to close; records its assign
    callbacks and the time of the first record per partition after each."""

    def __init__(self, name, conf, topic):
        super().__init__(daemon=True)
        self.name = name
        self.c = Consumer(dict(conf, **{"client.id": name}))
        self.topic = topic
        self.owned = set()
        self.assigns = []  # (time, owned after)
        self.first_record = {}  # partition -> time of first record after the last assign
        self.records = 0
        self.close_now = threading.Event()
        self.closed_at = None
        self.close_took = None
        self.lock = threading.Lock()

    def on_assign(self, consumer, parts):
        with self.lock:
            self.owned.update(tp.partition for tp in parts)
            self.assigns.append((time.time(), set(self.owned)))
            self.first_record = {}

    def on_revoke(self, consumer, parts):
        with self.lock:
            self.owned.difference_update(tp.partition for tp in parts)

    def run(self):
        self.c.subscribe([self.topic], on_assign=self.on_assign, on_revoke=self.on_revoke,
                         on_lost=self.on_revoke)
        while not self.close_now.is_set():
            for m in self.c.consume(num_messages=1000, timeout=0.05):
                if m.error() is not None:
                    continue
                now = time.time()
                with self.lock:
                    self.records += 1
                    self.first_record.setdefault(m.partition(), now)
        t = time.time()
        self.c.close()
        self.close_took = time.time() - t
        self.closed_at = t

    def snapshot(self):
        with self.lock:
            return set(self.owned), list(self.assigns), dict(self.first_record), self.records


def rebalance_run(args, topic, run):
    group = "group-perf-%s-%d" % (uuid.uuid4().hex[:8], run)
    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": group,
        "enable.auto.commit": True,
        "auto.offset.reset": "latest",
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": args.heartbeat_ms,
        "partition.assignment.strategy": args.strategy,
        "fetch.wait.max.ms": 50,
    }
    members = [Member("m%d" % i, conf, topic) for i in range(3)]
    for m in members:
        m.start()
    # Stable: three members, each owns something, together all partitions, and
    # each has consumed a record since its last assignment.
    deadline = time.time() + args.form_timeout_s
    while True:
        snaps = [m.snapshot() for m in members]
        owned = [s[0] for s in snaps]
        union = set().union(*owned)
        if (all(owned) and sum(len(o) for o in owned) == args.partitions
                and union == set(range(args.partitions))
                and all(set(s[2]) >= s[0] for s in snaps)):
            break
        if time.time() > deadline:
            for m in members:
                m.close_now.set()
            raise SystemExit("run %d: group did not become stable within %ss: %r"
                             % (run, args.form_timeout_s, [sorted(o) for o in owned]))
        time.sleep(0.05)
    # A random extra wait, so that the leave does not always fall at the same
    # point of the remaining members' heartbeat cycle.
    time.sleep(args.settle_s + random.uniform(0, args.heartbeat_ms / 1000.0))
    leaver, rest = members[-1], members[:-1]
    moved = leaver.snapshot()[0]
    before = [len(m.snapshot()[1]) for m in rest]
    t0 = time.time()
    leaver.close_now.set()
    assign_t = resume_t = None
    deadline = t0 + args.rebalance_timeout_s
    while time.time() < deadline:
        snaps = [m.snapshot() for m in rest]
        owned = [s[0] for s in snaps]
        if assign_t is None and set().union(*owned) == set(range(args.partitions)) \
                and sum(len(o) for o in owned) == args.partitions:
            assign_t = max(s[1][-1][0] for s in snaps if s[1])
        if assign_t is not None:
            firsts = [t for s in snaps for p, t in s[2].items() if p in moved and p in s[0] and t >= t0]
            if firsts:
                resume_t = min(firsts)
                break
        time.sleep(0.01)
    for m in rest:
        m.close_now.set()
    for m in members:
        m.join(30)
    return {
        "run": run,
        "moved_partitions": sorted(moved),
        "close_s": round(leaver.close_took, 4) if leaver.close_took is not None else None,
        "assign_s": round(assign_t - t0, 4) if assign_t is not None else None,
        "resume_s": round(resume_t - t0, 4) if resume_t is not None else None,
        "assign_callbacks_after_leave": [len(m.assigns) - b for m, b in zip(rest, before)],
    }


def rebalance(args):
    topic = args.topic + "-rebalance"
    ensure_topic(args.bootstrap, topic, args.partitions)
    producer = SteadyProducer(args.bootstrap, topic, args.partitions, args.rate)
    producer.start()
    runs = []
    try:
        for run in range(args.runs):
            r = rebalance_run(args, topic, run)
            log("rebalance run %d: %s" % (run, json.dumps(r)))
            runs.append(r)
    finally:
        producer.stop.set()
        producer.join(15)

    def median(key):
        values = [r[key] for r in runs if r[key] is not None]
        return round(statistics.median(values), 4) if values else None

    emit({
        "mode": "rebalance",
        "partitions": args.partitions,
        "rate": args.rate,
        "strategy": args.strategy,
        "heartbeat_ms": args.heartbeat_ms,
        "session_timeout_ms": args.session_timeout_ms,
        "runs": runs,
        "failed_runs": sum(1 for r in runs if r["resume_s"] is None),
        "median_close_s": median("close_s"),
        "median_assign_s": median("assign_s"),
        "median_resume_s": median("resume_s"),
    })


def commit(args):
    topic = args.topic + "-commit"
    ensure_topic(args.bootstrap, topic, args.partitions)
    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "group-perf-commit-%s" % uuid.uuid4().hex[:8],
        "enable.auto.commit": False,
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": args.heartbeat_ms,
    })
    assigned = []
    c.subscribe([topic], on_assign=lambda _c, parts: assigned.extend(parts))
    deadline = time.time() + args.form_timeout_s
    while not assigned:
        if time.time() > deadline:
            raise SystemExit("no assignment within %ss" % args.form_timeout_s)
        c.poll(0.1)
    partitions = sorted(tp.partition for tp in assigned)
    latencies, errors = [], 0
    offset = 0
    start = time.time()
    end = start + args.commit_seconds
    while time.time() < end:
        offset += 1
        offsets = [TopicPartition(topic, p, offset) for p in partitions[: args.commit_partitions]]
        t = time.perf_counter()
        try:
            result = c.commit(offsets=offsets, asynchronous=False)
            if any(tp.error is not None for tp in result or []):
                errors += 1
        except KafkaException:
            errors += 1
        latencies.append(time.perf_counter() - t)
        c.poll(0)  # serve callbacks / heartbeats bookkeeping
    elapsed = time.time() - start
    # The last commit must be readable back.
    back = c.committed([TopicPartition(topic, p) for p in partitions[: args.commit_partitions]], timeout=10)
    c.close()
    emit({
        "mode": "commit",
        "commits": len(latencies),
        "partitions_per_commit": min(args.commit_partitions, len(partitions)),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "commits_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        "max_ms": round(max(latencies) * 1000, 3),
        "last_committed_ok": all(tp.offset == offset for tp in back),
    })


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--mode", choices=["rebalance", "commit", "both"], default="both")
    ap.add_argument("--topic", default="group-perf", help="prefix of the topics used")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--runs", type=int, default=5, help="rebalance runs")
    ap.add_argument("--rate", type=int, default=2000, help="records/s of the steady stream")
    ap.add_argument("--strategy", default="range", help="partition.assignment.strategy")
    ap.add_argument("--heartbeat-ms", type=int, default=3000, help="heartbeat.interval.ms")
    ap.add_argument("--session-timeout-ms", type=int, default=45000)
    ap.add_argument("--settle-s", type=float, default=1.0, help="steady consumption before the leave")
    ap.add_argument("--form-timeout-s", type=float, default=60)
    ap.add_argument("--rebalance-timeout-s", type=float, default=60)
    ap.add_argument("--commit-seconds", type=float, default=10)
    ap.add_argument("--commit-partitions", type=int, default=1, help="partitions per commit")
    args = ap.parse_args()
    if args.mode in ("rebalance", "both"):
        rebalance(args)
    if args.mode in ("commit", "both"):
        commit(args)


if __name__ == "__main__":
    main()
