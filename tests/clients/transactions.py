#!/usr/bin/env python3
"""Kafka transactions (KIP-98) through real clients: a transactional
confluent_kafka (librdkafka) producer, read back by read_committed and
read_uncommitted confluent_kafka consumers and, in commit-abort, by kafka-python.

Every subcommand prints one JSON object on stdout (before its final checks,
so the caller sees what was observed) and exits 0 only when its checks pass; a
failed check exits 1 with "FAIL: ..." on stderr. Every wait is bounded.

commit-abort --bootstrap B --topic T
    Creates T (1 partition). One transactional producer: txn 1 "c1-0".."c1-9"
    committed, txn 2 "a-0".."a-9" flushed to the log then aborted, txn 3
    "c2-0".."c2-9" committed. Checks that read_committed (confluent_kafka and
    kafka-python) sees exactly c1-*, c2-* in order and read_uncommitted sees
    all 30 records in offset order.
    -> {"committed_view": [...], "uncommitted_view": [...],
        "kafka_python_committed_view": [...], ...}

multi --bootstrap B --topic-a A --topic-b B2 --group G [--join]
    Creates A (2 partitions) and B2 (1 partition). Txn 1: one record in each of
    A/0, A/1, B2/0 ("x-A0", "x-A1", "x-B0") plus send_offsets_to_transaction
    for group G (A/0 -> 5, A/1 -> 7), then abort. Txn 2: the same with "y-..."
    and offsets 11 / 13, then commit. Checks that read_committed sees none of
    the x records and exactly one y record per partition, and that G's
    committed offsets are unchanged after the abort and 11 / 13 after the
    commit. The group metadata comes from a Consumer with group.id G that has
    not joined (generation -1, empty member id), or with --join from a member
    that subscribed to A and got its assignment.
    -> {"after_abort": {"A/0": [...], ...}, "after_commit": {...},
        "committed_before": {"0": off, "1": off}, "committed_after_abort": {...},
        "committed_after_commit": {...}}

fence --bootstrap B --topic T
    Creates T (1 partition). P1 (transactional.id X) begins a transaction and
    writes "old-0".."old-4" (flushed). P2 with the same X runs
    init_transactions (fencing P1 and aborting its transaction) and commits
    "new-0".."new-4". P1 then produces "old-5" and commits: that must fail
    with a fatal error or _FENCED / PRODUCER_FENCED / INVALID_PRODUCER_EPOCH.
    read_committed must see exactly new-0..new-4.
    -> {"fenced_error": name, "fenced_fatal": bool, "fenced_stage": ...,
        "committed_view": [...]}

timeout --bootstrap B --topic T [--txn-timeout-ms 3000] [--idle 8]
    Creates T (1 partition). P1 (transaction.timeout.ms 3000) writes
    "stale-0".."stale-4" (flushed) in an open transaction and stays idle 8 s,
    so the coordinator must abort it. P2 (another transactional.id) commits
    "fresh-0".."fresh-4". read_committed must see exactly the fresh records
    (so the last stable offset moved past the stale transaction); P1's
    commit_transaction must then fail (not with a retriable time-out), and a
    second read must still see only the fresh records.
    -> {"committed_view": [...], "stale_commit_error": name, ...}

history --bootstrap B --topics T1,T2 --count N --out FILE [--timeout S]
    For failover tests (the topics must exist). Runs N transactions; txn i
    writes "t<i>-<topic>-<partition>" to every partition of the topics and
    commits when i % 3 != 2, else flushes and aborts. Outcome per transaction:
    "committed" (commit_transaction returned), "aborted" (abort_transaction
    returned, also after an abortable error), "unknown" (with the error; the
    producer is then replaced by a new one with the same transactional.id).
    Sleeps 100 ms between transactions. Writes the history to FILE and prints
    it; fails when not all N transactions could be run within the timeout.
    -> {"transactional_id": X, "transactions": [{"i", "intent", "outcome",
        "error", "records": [[topic, partition, value], ...], ...}], ...}

check --bootstrap B --topics T1,T2 --history FILE [--timeout S]
    Reads every partition of the topics from the beginning with read_committed
    up to its high watermark and checks the history: each committed
    transaction's records present exactly once, no aborted transaction's
    record present, each unknown transaction all-or-nothing, no record that
    no transaction wrote, transactions in order within each partition.
    -> {"committed": n, "aborted": n, "unknown": n, "unknown_visible": n,
        "violations": [...], ...}
"""

import argparse
import json
import sys
import time
import uuid

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from common import admin, create_topic, emit, fail

# Seconds for one blocking transactional call (init / commit / abort),
# retried on retriable errors within that budget.
CALL_TIMEOUT = 30
FENCING_ERRORS = ("_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH")


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


def log(message):
    print(message, file=sys.stderr, flush=True)


def kafka_error(exc):
    """The KafkaError of a KafkaException (or None for other exceptions)."""
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def describe(exc):
    err = kafka_error(exc)
    if err is None:
        return {"name": type(exc).__name__, "message": str(exc), "fatal": None, "retriable": None,
                "txn_requires_abort": None}
    return {
        "name": err.name(),
        "code": err.code(),
        "message": err.str(),
        "fatal": err.fatal(),
        "retriable": err.retriable(),
        "txn_requires_abort": err.txn_requires_abort(),
    }


def retrying(call, what, budget=CALL_TIMEOUT):
    """Runs call(timeout) until it returns, retrying retriable KafkaErrors
    (librdkafka resumes a timed-out init/commit/abort) for `budget` seconds.
    Non-retriable errors, and the last retriable one, are raised."""
    deadline = time.time() + budget
    while True:
        left = deadline - time.time()
        try:
            return call(max(1.0, min(10.0, left)))
        except KafkaException as exc:
            err = kafka_error(exc)
            if err is None or not err.retriable() or err.fatal() or time.time() + 0.2 >= deadline:
                raise
            log("%s: retrying after %s" % (what, err))
            time.sleep(0.2)


def must(call, what, budget=CALL_TIMEOUT):
    """retrying(), failing the script on any error."""
    try:
        return retrying(call, what, budget)
    except KafkaException as exc:
        fail("%s failed: %s" % (what, json.dumps(describe(exc), sort_keys=True)))


def txn_producer(bootstrap, txn_id, extra=None):
    conf = {
        "bootstrap.servers": bootstrap,
        "transactional.id": txn_id,
        "linger.ms": 5,
        "reconnect.backoff.max.ms": 500,
    }
    conf.update(extra or {})
    return Producer(conf)


class Sender:
    """A transactional producer plus the delivery errors of its records."""

    def __init__(self, bootstrap, txn_id, extra=None):
        self.txn_id = txn_id
        self.producer = txn_producer(bootstrap, txn_id, extra)
        self.errors = []

    def _done(self, err, msg):
        if err is not None:
            self.errors.append("%s [%s]: %s" % (msg.topic(), msg.partition(), err))

    def produce(self, topic, partition, value):
        for _ in range(50):
            try:
                self.producer.produce(topic, value=value.encode(), partition=partition, on_delivery=self._done)
                break
            except BufferError:
                self.producer.poll(0.1)
        else:
            raise BufferError("producer queue stayed full")
        self.producer.poll(0)

    def flush(self, timeout=10):
        left = self.producer.flush(timeout)
        if left:
            self.errors.append("%d records still queued after flush(%s)" % (left, timeout))
        return left

    def init(self, what):
        must(lambda t: self.producer.init_transactions(t), "%s init_transactions" % what)

    def begin(self, what):
        try:
            self.producer.begin_transaction()
        except KafkaException as exc:
            fail("%s begin_transaction failed: %s" % (what, json.dumps(describe(exc), sort_keys=True)))

    def commit(self, what):
        must(lambda t: self.producer.commit_transaction(t), "%s commit_transaction" % what)
        if self.errors:
            fail("%s: delivery errors after commit: %s" % (what, self.errors))

    def abort(self, what):
        must(lambda t: self.producer.abort_transaction(t), "%s abort_transaction" % what)

    def end(self, what, commit):
        """Commits, or flushes then aborts: abort would otherwise purge the
        records before they are sent, and the test wants them in the log."""
        if commit:
            self.commit(what)
            return
        if self.flush(10) or self.errors:
            fail("%s: records not delivered before abort: %s" % (what, self.errors))
        self.abort(what)


# ---------------------------------------------------------------- reading


def high_watermarks(bootstrap, tps, deadline):
    """{(topic, partition): high watermark} from a read_uncommitted consumer
    (a read_committed one would report the last stable offset), retrying
    until the deadline."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("strom-txn-hw"),
            "enable.auto.commit": False,
            "isolation.level": "read_uncommitted",
        }
    )
    ends = {}
    try:
        for topic, partition in tps:
            while True:
                last = None
                try:
                    wm = c.get_watermark_offsets(
                        TopicPartition(topic, partition),
                        timeout=max(1.0, min(10.0, deadline - time.time())),
                        cached=False,
                    )
                    if wm is not None:
                        ends[(topic, partition)] = wm[1]
                        break
                    last = "timed out"
                except KafkaException as exc:
                    last = str(kafka_error(exc) or exc)
                if time.time() >= deadline:
                    fail("high watermark of %s/%d not available: %s" % (topic, partition, last))
                log("watermarks of %s/%d: %s, retrying" % (topic, partition, last))
                time.sleep(0.5)
    finally:
        c.close()
    return ends


def read_to_end(bootstrap, tps, isolation, timeout=30, settle=1.0):
    """Reads the partitions `tps` ([(topic, partition)]) from the beginning
    with the given isolation.level until each has been read up to the high
    watermark it had when the read started (a data record at HW-1 or a
    _PARTITION_EOF at >= HW; for read_committed the EOF comes at the last
    stable offset, so an open transaction keeps the partition incomplete),
    then polls `settle` s more. Returns (values, ends, incomplete, errors):
    values {(t, p): [(offset, value)]}, ends {(t, p): hw}, incomplete
    {(t, p): furthest offset reached}, errors: consumer error events seen."""
    tps = list(tps)
    deadline = time.time() + timeout
    ends = high_watermarks(bootstrap, tps, deadline)
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("strom-txn-read"),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": isolation,
            "enable.partition.eof": True,
        }
    )
    c.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in tps])
    values = {tp: [] for tp in tps}
    reached = {tp: 0 for tp in tps}
    done = {tp for tp in tps if ends[tp] <= 0}
    errors = []
    settle_until = None
    while True:
        now = time.time()
        if len(done) == len(tps):
            if settle_until is None:
                settle_until = now + settle
            if now >= settle_until:
                break
        elif now >= deadline:
            break
        msg = c.poll(0.2)
        if msg is None:
            continue
        tp = (msg.topic(), msg.partition())
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                if tp in reached:
                    reached[tp] = max(reached[tp], msg.offset())
                    if msg.offset() >= ends[tp]:
                        done.add(tp)
                continue
            errors.append(str(err))
            if err.fatal():
                c.close()
                fail("%s consumer: fatal error %s" % (isolation, err))
            continue
        if tp not in values:
            continue
        raw = msg.value()
        values[tp].append((msg.offset(), raw.decode("utf-8", "replace") if raw is not None else None))
        reached[tp] = max(reached[tp], msg.offset() + 1)
        if msg.offset() + 1 >= ends[tp]:
            done.add(tp)
    c.close()
    incomplete = {tp: reached[tp] for tp in tps if tp not in done}
    return values, ends, incomplete, errors


def read_view(bootstrap, topic, partition, isolation, timeout=30):
    """The values of one partition in offset order; fails when the end is
    not reached in time."""
    tp = (topic, partition)
    values, ends, incomplete, errors = read_to_end(bootstrap, [tp], isolation, timeout)
    view = [v for _, v in values[tp]]
    if incomplete:
        fail(
            "%s read of %s/%d stopped at offset %d, high watermark %d%s; read %s; errors %s"
            % (isolation, topic, partition, incomplete[tp], ends[tp],
               " (last stable offset stuck behind an open transaction?)" if isolation == "read_committed" else "",
               view, errors[:5])
        )
    return view


def kafka_python_view(bootstrap, topic, partition, end, timeout=30):
    """A kafka-python read_committed read of one partition up to `end`.
    Returns (values, position)."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpTopicPartition

    c = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        client_id="strom-txn-kp",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        request_timeout_ms=10000,
    )
    tp = KpTopicPartition(topic, partition)
    c.assign([tp])
    c.seek_to_beginning(tp)
    values = []
    position = None
    deadline = time.time() + timeout
    settle_until = None
    while time.time() < deadline:
        polled = c.poll(timeout_ms=200)
        for rec in polled.get(tp, []):
            values.append(rec.value.decode("utf-8", "replace") if rec.value is not None else None)
        try:
            position = c.position(tp, timeout_ms=5000)
        except Exception as exc:  # noqa: BLE001 - reported, the loop is bounded
            log("kafka-python position: %r" % exc)
        if position is not None and position >= end:
            if settle_until is None:
                settle_until = time.time() + 0.5
            elif time.time() >= settle_until:
                break
    c.close()
    return values, position


def expect_view(what, got, expected):
    if got != expected:
        fail("%s: expected %s, got %s" % (what, expected, got))


def series(prefix, n):
    return ["%s-%d" % (prefix, i) for i in range(n)]


# ---------------------------------------------------------------- modes


def commit_abort(args):
    topic = args.topic
    create_topic(args.bootstrap, topic, 1)
    s = Sender(args.bootstrap, unique("strom-txn-ca"))
    s.init("producer")
    for prefix, commit in (("c1", True), ("a", False), ("c2", True)):
        what = "transaction %s" % prefix
        s.begin(what)
        for v in series(prefix, 10):
            s.produce(topic, 0, v)
        s.end(what, commit)
    del s

    committed = read_view(args.bootstrap, topic, 0, "read_committed")
    uncommitted = read_view(args.bootstrap, topic, 0, "read_uncommitted")
    end = high_watermarks(args.bootstrap, [(topic, 0)], time.time() + 30)[(topic, 0)]
    kp_values, kp_position = kafka_python_view(args.bootstrap, topic, 0, end)
    emit(
        {
            "committed_view": committed,
            "uncommitted_view": uncommitted,
            "kafka_python_committed_view": kp_values,
            "kafka_python_position": kp_position,
            "high_watermark": end,
        }
    )
    expect_view("read_committed view", committed, series("c1", 10) + series("c2", 10))
    expect_view("read_uncommitted view", uncommitted, series("c1", 10) + series("a", 10) + series("c2", 10))
    expect_view("kafka-python read_committed view", kp_values, series("c1", 10) + series("c2", 10))


def group_offsets(consumer, topic, partitions, budget=30):
    """{partition: committed offset} (OFFSET_INVALID = -1001 when none),
    retrying while the coordinator (or a pending transactional commit:
    UNSTABLE_OFFSET_COMMIT) keeps it from answering."""
    deadline = time.time() + budget
    while True:
        try:
            result = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
            bad = [tp for tp in result if tp.error is not None]
            if not bad:
                return {tp.partition: tp.offset for tp in result}
            last = ", ".join("%d: %s" % (tp.partition, tp.error) for tp in bad)
        except KafkaException as exc:
            last = str(kafka_error(exc) or exc)
        if time.time() >= deadline:
            fail("committed offsets of %s not available: %s" % (topic, last))
        log("committed offsets: %s, retrying" % last)
        time.sleep(0.5)


def multi(args):
    a, b = args.topic_a, args.topic_b
    create_topic(args.bootstrap, a, 2)
    create_topic(args.bootstrap, b, 1)
    tps = [(a, 0), (a, 1), (b, 0)]
    labels = {(a, 0): "A0", (a, 1): "A1", (b, 0): "B0"}
    names = {tp: "%s/%d" % tp for tp in tps}

    member = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
        }
    )
    if args.join:
        member.subscribe([a])
        deadline = time.time() + 30
        while not member.assignment():
            if time.time() >= deadline:
                fail("consumer of group %s got no assignment of %s in 30 s" % (args.group, a))
            member.poll(0.2)
    group_metadata = member.consumer_group_metadata()
    before = group_offsets(member, a, [0, 1])

    s = Sender(args.bootstrap, unique("strom-txn-multi"))
    s.init("producer")

    def run(prefix, offsets, commit):
        what = "transaction %s" % prefix
        s.begin(what)
        for tp in tps:
            s.produce(tp[0], tp[1], "%s-%s" % (prefix, labels[tp]))
        must(
            lambda t: s.producer.send_offsets_to_transaction(
                [TopicPartition(a, p, o) for p, o in offsets.items()], group_metadata, t
            ),
            "%s send_offsets_to_transaction" % what,
        )
        s.end(what, commit)

    def committed_view():
        values, ends, incomplete, errors = read_to_end(args.bootstrap, tps, "read_committed")
        if incomplete:
            fail("read_committed stopped short of the high watermarks: %s (ends %s); errors %s"
                 % ({names[tp]: o for tp, o in incomplete.items()}, {names[tp]: e for tp, e in ends.items()},
                    errors[:5]))
        return {names[tp]: [v for _, v in values[tp]] for tp in tps}

    run("x", {0: 5, 1: 7}, commit=False)
    after_abort = committed_view()
    offsets_after_abort = group_offsets(member, a, [0, 1])

    run("y", {0: 11, 1: 13}, commit=True)
    after_commit = committed_view()
    offsets_after_commit = group_offsets(member, a, [0, 1])
    member.close()
    del s

    def jsonable(offsets):
        return {str(p): o for p, o in offsets.items()}

    emit(
        {
            "after_abort": after_abort,
            "after_commit": after_commit,
            "committed_before": jsonable(before),
            "committed_after_abort": jsonable(offsets_after_abort),
            "committed_after_commit": jsonable(offsets_after_commit),
            "joined": args.join,
        }
    )
    expect_view("read_committed after the aborted transaction", after_abort, {names[tp]: [] for tp in tps})
    expect_view(
        "read_committed after the committed transaction",
        after_commit,
        {names[tp]: ["y-%s" % labels[tp]] for tp in tps},
    )
    expect_view("group offsets after the aborted transaction (before: %s)" % before, offsets_after_abort, before)
    expect_view("group offsets after the committed transaction", offsets_after_commit, {0: 11, 1: 13})


def is_fencing(err):
    return err is not None and (err.fatal() or err.name() in FENCING_ERRORS)


def fence(args):
    topic = args.topic
    create_topic(args.bootstrap, topic, 1)
    txn_id = unique("strom-txn-fence")
    p1 = Sender(args.bootstrap, txn_id)
    p1.init("P1")
    p1.begin("P1")
    for v in series("old", 5):
        p1.produce(topic, 0, v)
    if p1.flush(10) or p1.errors:
        fail("P1: old records not delivered: %s" % p1.errors)

    p2 = Sender(args.bootstrap, txn_id)
    p2.init("P2 (fencing P1)")
    p2.begin("P2")
    for v in series("new", 5):
        p2.produce(topic, 0, v)
    p2.commit("P2")
    del p2

    raised, stage = None, None
    try:
        stage = "produce"
        p1.produce(topic, 0, "old-5")
        stage = "commit_transaction"
        p1.producer.commit_transaction(CALL_TIMEOUT)
        stage = None
    except KafkaException as exc:
        raised = exc
    abort_error = None
    if raised is not None and not kafka_error(raised).fatal():
        # An abortable error: the abort must then be refused as well.
        try:
            p1.producer.abort_transaction(10)
        except KafkaException as exc:
            abort_error = describe(exc)

    committed = read_view(args.bootstrap, topic, 0, "read_committed")
    info = describe(raised) if raised is not None else None
    emit(
        {
            "fenced_error": info and info["name"],
            "fenced_fatal": info and info["fatal"],
            "fenced_message": info and info["message"],
            "fenced_stage": stage,
            "abort_error": abort_error,
            "p1_delivery_errors": p1.errors,
            "committed_view": committed,
        }
    )
    if raised is None:
        fail("the fenced producer P1 committed its transaction")
    if not is_fencing(kafka_error(raised)):
        fail("P1's %s failed, but not with a fencing or fatal error: %s" % (stage, info))
    expect_view("read_committed view", committed, series("new", 5))


def txn_timeout(args):
    topic = args.topic
    create_topic(args.bootstrap, topic, 1)
    p1 = Sender(args.bootstrap, unique("strom-txn-stale"), {"transaction.timeout.ms": args.txn_timeout_ms})
    p1.init("P1")
    p1.begin("P1")
    for v in series("stale", 5):
        p1.produce(topic, 0, v)
    if p1.flush(10) or p1.errors:
        fail("P1: stale records not delivered: %s" % p1.errors)
    # The coordinator must abort P1's transaction meanwhile.
    time.sleep(args.idle)

    p2 = Sender(args.bootstrap, unique("strom-txn-fresh"))
    p2.init("P2")
    p2.begin("P2")
    for v in series("fresh", 5):
        p2.produce(topic, 0, v)
    p2.commit("P2")
    del p2

    first_view = read_view(args.bootstrap, topic, 0, "read_committed")

    raised = None
    try:
        p1.producer.commit_transaction(CALL_TIMEOUT)
    except KafkaException as exc:
        raised = exc
    later_view = read_view(args.bootstrap, topic, 0, "read_committed")
    uncommitted = read_view(args.bootstrap, topic, 0, "read_uncommitted")
    info = describe(raised) if raised is not None else None
    emit(
        {
            "committed_view": first_view,
            "committed_view_after_stale_commit": later_view,
            "uncommitted_view": uncommitted,
            "stale_commit_error": info and info["name"],
            "stale_commit_fatal": info and info["fatal"],
            "stale_commit_message": info and info["message"],
        }
    )
    expect_view("read_committed view", first_view, series("fresh", 5))
    if raised is None:
        fail("P1 committed its timed-out transaction")
    err = kafka_error(raised)
    if err is not None and err.retriable() and not err.fatal() and not err.txn_requires_abort():
        fail("P1's commit_transaction got no answer, only a retriable %s" % info)
    expect_view("read_committed view after P1's commit attempt", later_view, series("fresh", 5))
    expect_view("read_uncommitted view", uncommitted, series("stale", 5) + series("fresh", 5))


# ---------------------------------------------------------------- history


def topic_partition_list(bootstrap, topics, budget=30):
    """[(topic, partition)] of every partition of `topics`, retrying
    metadata for `budget` seconds (brokers may be down)."""
    deadline = time.time() + budget
    client = admin(bootstrap)
    while True:
        last = None
        try:
            md = client.list_topics(timeout=max(1.0, min(10.0, deadline - time.time())))
            out = []
            for topic in topics:
                t = md.topics.get(topic)
                if t is None or t.error is not None or not t.partitions:
                    last = "%s: %s" % (topic, "missing" if t is None else t.error or "no partitions")
                    break
                out.extend((topic, p) for p in sorted(t.partitions))
            else:
                return out
        except KafkaException as exc:
            last = str(kafka_error(exc) or exc)
        if time.time() >= deadline:
            fail("metadata of %s not available: %s" % (topics, last))
        log("metadata: %s, retrying" % last)
        time.sleep(0.5)


class History:
    def __init__(self, args):
        self.bootstrap = args.bootstrap
        self.txn_id = unique("strom-txn-history")
        self.conf = {"transaction.timeout.ms": args.txn_timeout_ms}
        self.producers = 0
        self.replacements = []
        self.sender = None
        # Calls may use CALL_TIMEOUT each but nothing goes past hard_deadline.
        self.soft_deadline = time.time() + args.timeout
        self.hard_deadline = self.soft_deadline + CALL_TIMEOUT

    def budget(self):
        return max(1.0, min(CALL_TIMEOUT, self.hard_deadline - time.time()))

    def new_producer(self):
        """A fresh producer with the same transactional.id, initialised
        (fencing and completing the previous one's transaction). Returns an
        error description or None."""
        last = None
        while time.time() < self.hard_deadline:
            self.sender = Sender(self.bootstrap, self.txn_id, self.conf)
            self.producers += 1
            try:
                retrying(lambda t: self.sender.producer.init_transactions(t), "init_transactions", self.budget())
                return None
            except KafkaException as exc:
                last = describe(exc)
                log("init_transactions of producer %d: %s" % (self.producers, last))
                self.sender = None
                time.sleep(0.5)
        return last or {"name": "deadline", "message": "no time left for init_transactions"}

    def run(self, i, tps, intent):
        s = self.sender
        s.errors = []
        records = [[t, p, "t%d-%s-%d" % (i, t, p)] for t, p in tps]
        entry = {"i": i, "intent": intent, "outcome": None, "error": None, "records": records}
        try:
            s.producer.begin_transaction()
            for t, p, v in records:
                s.produce(t, p, v)
            if intent == "commit":
                retrying(lambda t: s.producer.commit_transaction(t), "txn %d commit" % i, self.budget())
                entry["outcome"] = "committed"
            else:
                # Into the log first, so the abort has something to hide.
                s.flush(min(10.0, self.budget()))
                retrying(lambda t: s.producer.abort_transaction(t), "txn %d abort" % i, self.budget())
                entry["outcome"] = "aborted"
        except (KafkaException, BufferError) as exc:
            entry["error"] = describe(exc)
            err = kafka_error(exc)
            if err is not None and err.fatal():
                entry["outcome"] = "unknown"
            else:
                # Abortable (txn_requires_abort), a retriable error that
                # outlived its budget, or a state error: try to abort.
                try:
                    retrying(lambda t: s.producer.abort_transaction(t), "txn %d abort after error" % i,
                             self.budget())
                    entry["outcome"] = "aborted"
                except KafkaException as exc2:
                    entry["abort_error"] = describe(exc2)
                    entry["outcome"] = "unknown"
        entry["delivery_errors"] = s.errors[:10]
        entry["producer"] = self.producers
        return entry


def history(args):
    topics = [t for t in args.topics.split(",") if t]
    tps = topic_partition_list(args.bootstrap, topics)
    h = History(args)
    failure = h.new_producer()
    if failure is not None:
        fail("init_transactions failed: %s" % failure)
    transactions = []
    stopped = None
    for i in range(args.count):
        if time.time() >= h.soft_deadline:
            stopped = "timeout after %d of %d transactions" % (i, args.count)
            break
        entry = h.run(i, tps, "abort" if i % 3 == 2 else "commit")
        transactions.append(entry)
        log("txn %d: %s%s" % (i, entry["outcome"], "" if entry["error"] is None else " (%s)" % entry["error"]))
        if entry["outcome"] == "unknown":
            # The producer may be in a fatal or undefined state: replace it.
            h.sender = None
            failure = h.new_producer()
            h.replacements.append({"after": i, "error": failure})
            if failure is not None:
                stopped = "no new producer after transaction %d: %s" % (i, failure)
                break
        time.sleep(0.1)
    h.sender = None

    counts = {k: sum(1 for e in transactions if e["outcome"] == k) for k in ("committed", "aborted", "unknown")}
    result = {
        "transactional_id": h.txn_id,
        "topics": topics,
        "partitions": [[t, p] for t, p in tps],
        "transactions": transactions,
        "counts": counts,
        "producers": h.producers,
        "replacements": h.replacements,
        "stopped": stopped,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, sort_keys=True, indent=1)
    emit(result)
    if stopped is not None:
        fail("history stopped early: %s" % stopped)


def check(args):
    with open(args.history) as f:
        hist = json.load(f)
    topics = [t for t in args.topics.split(",") if t]
    tps = topic_partition_list(args.bootstrap, topics)
    for t, p in hist.get("partitions", []):
        if (t, p) not in tps and t in topics:
            tps.append((t, p))

    values, ends, incomplete, errors = read_to_end(args.bootstrap, tps, "read_committed", timeout=args.timeout)
    violations = []
    for tp, reached in sorted(incomplete.items()):
        violations.append(
            "%s/%d: read_committed stopped at offset %d below the high watermark %d "
            "(last stable offset stuck?)" % (tp[0], tp[1], reached, ends[tp])
        )

    # (topic, partition, value) -> [offsets seen]
    seen = {}
    for (t, p), recs in values.items():
        for offset, v in recs:
            seen.setdefault((t, p, v), []).append(offset)

    writer = {}  # (topic, partition, value) -> transaction index
    for e in hist["transactions"]:
        for t, p, v in e["records"]:
            writer[(t, p, v)] = e["i"]

    counts = {"committed": 0, "aborted": 0, "unknown": 0}
    unknown_visible = 0
    for e in hist["transactions"]:
        outcome = e["outcome"]
        counts[outcome] = counts.get(outcome, 0) + 1
        keys = [(t, p, v) for t, p, v in e["records"] if t in topics]
        times = {k: len(seen.get(k, [])) for k in keys}
        if outcome == "committed":
            bad = {"%s/%d %s" % k: n for k, n in times.items() if n != 1}
            if bad:
                violations.append("committed txn %d: records not seen exactly once: %s" % (e["i"], bad))
        elif outcome == "aborted":
            bad = {"%s/%d %s" % k: n for k, n in times.items() if n != 0}
            if bad:
                violations.append("aborted txn %d: records visible: %s" % (e["i"], bad))
        else:
            distinct = set(times.values())
            if distinct not in ({0}, {1}, set()):
                violations.append(
                    "unknown txn %d: not all-or-nothing: %s" % (e["i"], {"%s/%d %s" % k: n for k, n in times.items()})
                )
            elif distinct == {1}:
                unknown_visible += 1

    for (t, p), recs in sorted(values.items()):
        previous = None
        for offset, v in recs:
            i = writer.get((t, p, v))
            if i is None:
                violations.append("%s/%d offset %d: record %r written by no transaction of the history" % (t, p, offset, v))
                continue
            if previous is not None and i <= previous:
                violations.append("%s/%d offset %d: txn %d's record after txn %d's" % (t, p, offset, i, previous))
            previous = i

    summary = {
        "committed": counts["committed"],
        "aborted": counts["aborted"],
        "unknown": counts["unknown"],
        "unknown_visible": unknown_visible,
        "records_read": sum(len(r) for r in values.values()),
        "high_watermarks": {"%s/%d" % tp: e for tp, e in sorted(ends.items())},
        "consumer_errors": errors[:10],
        "violations": violations,
    }
    emit(summary)
    if violations:
        fail("%d violations, first: %s" % (len(violations), violations[0]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)

    p = sub.add_parser("commit-abort", help="commit / abort / commit on one partition")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)

    p = sub.add_parser("multi", help="3 partitions over 2 topics plus group offsets in transactions")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic-a", required=True)
    p.add_argument("--topic-b", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--join", action="store_true", help="take the group metadata from a joined member")

    p = sub.add_parser("fence", help="a second producer with the same transactional.id fences the first")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)

    p = sub.add_parser("timeout", help="the coordinator aborts a transaction left open")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--txn-timeout-ms", type=int, default=3000)
    p.add_argument("--idle", type=float, default=8.0, help="seconds P1 stays idle")

    p = sub.add_parser("history", help="N transactions while the test kills a broker")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topics", required=True, help="comma-separated, existing topics")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--txn-timeout-ms", type=int, default=10000)
    p.add_argument("--timeout", type=float, default=60.0,
                   help="no new transaction after this many seconds (calls in progress get 30 s more)")

    p = sub.add_parser("check", help="check a history against a read_committed read")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topics", required=True)
    p.add_argument("--history", required=True)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to read to the high watermarks")

    args = ap.parse_args()
    {
        "commit-abort": commit_abort,
        "multi": multi,
        "fence": fence,
        "timeout": txn_timeout,
        "history": history,
        "check": check,
    }[args.mode](args)


if __name__ == "__main__":
    main()
