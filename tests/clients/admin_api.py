#!/usr/bin/env python3
"""Admin APIs and topic configs for admin_api.rs; every command prints one JSON
line. Kafka errors are reported in the JSON as [code, name, message] (exit 0);
a broken check or client failure exits non-zero.

`admin_api.py serve` runs many commands in one process (one Python and
confluent-kafka start-up): each stdin line is a JSON list of arguments
(["--bootstrap", B, COMMAND, ...]); each answer one line, {"ok": summary} or
{"exception": traceback}.

confluent-kafka (librdkafka) AdminClient:
  create NAME... [--partitions N] [--config k=v]... [--validate-only]
      -> {"results": {name: error|null}}
  delete NAME...                               -> {"results": {name: error|null}}
  describe-configs topic|broker NAME        (all keys: librdkafka sends no key list)
      -> {"error", "configs": {key: {"value", "source", "read_only", "default",
                                     "sensitive", "synonyms": [[name, value, source]]}}}
  alter-configs topic|broker NAME [k=v]... [--validate-only]      (legacy AlterConfigs)
  incremental topic|broker NAME OP:k[=v]... [--validate-only]     (OP: set|delete|append|subtract)
      -> {"error"}
  create-partitions TOPIC COUNT [--validate-only]  -> {"error"}
  describe-cluster -> {"cluster_id", "controller": [id, host, port], "nodes": [[id, host, port]]}
  metadata         -> {"cluster_id", "controller_id", "brokers": [[id, host, port]],
                       "topics": {name: {"partitions": n, "error": code|null}}}
  produce TOPIC [--partition P] [--count N] [--size B] [--acks all|1] [--timestamp MS]
          [--compression none|gzip|snappy|lz4|zstd] [--compressible]
      -> {"acked": [offset...], "errors": [[code, name, message]...]}   (no retries)
  produce TOPIC --each-partition N [--size B] [--acks all|1]
      -> {"codes": [error code (0 = acknowledged) of partition 0, 1, ... N-1]}
  consume TOPIC [--partition P] [--from OFFSET] --count N
      -> {"messages": [[offset, timestamp_type, timestamp, value_len, value_ok]], "error"}
  list-offsets TOPIC [--partition P] -> {"earliest", "latest"}

kafka-python (requests built by kafka-python's protocol classes at a pinned version):
  kp-describe-configs --version V TYPE NAME [--key K]... [--synonyms]
  kp-alter-configs --version V TYPE NAME [k=v]... [--validate-only]
  kp-incremental --version V TYPE NAME OP:k[=v]... [--validate-only] [--also NAME2]...
  kp-create-partitions --version V TOPIC COUNT [--validate-only]
  kp-describe-cluster --version V
  kp-describe-log-dirs --version V [--topic T]...
      -> {"version": V, "response": <response.to_dict()>}
  kp-log-dirs [--topic T]  (KafkaAdminClient.describe_log_dirs) -> {"result": [...]}
"""

import argparse
import hashlib
import json
import sys
import time
import traceback

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

TIMEOUT = 30


# In `serve` mode the summary of the running command is kept here instead.
_captured = None


def emit(summary):
    if _captured is not None:
        _captured.append(summary)
        return
    print(json.dumps(summary, sort_keys=True, default=str), flush=True)


def serve(handlers, parser):
    """Runs one command per stdin line (a JSON list of arguments, --bootstrap
    included) and answers each with one line: {"ok": summary} or
    {"exception": traceback}. Saves a Python start-up per command."""
    global _captured
    for line in sys.stdin:
        if not line.strip():
            continue
        _captured = []
        try:
            args = parser.parse_args(json.loads(line))
            handlers[args.cmd](args)
            if len(_captured) != 1:
                raise RuntimeError("command %r emitted %d summaries" % (args.cmd, len(_captured)))
            answer = {"ok": _captured[0]}
        except BaseException as exc:  # noqa: B036 - report everything, argparse exits too
            if isinstance(exc, KeyboardInterrupt):
                raise
            answer = {"exception": traceback.format_exc()}
        _captured = None
        print(json.dumps(answer, sort_keys=True, default=str), flush=True)


def kafka_error(exc):
    err = exc.args[0] if isinstance(exc, KafkaException) else exc
    if hasattr(err, "code"):
        return [err.code(), err.name(), err.str()]
    return [None, type(exc).__name__, str(exc)]


def admin(args):
    return AdminClient({"bootstrap.servers": args.bootstrap})


def resource_type(name):
    return {"topic": ResourceType.TOPIC, "broker": ResourceType.BROKER}[name]


def source_name(source):
    try:
        return ConfigSource(source).name
    except ValueError:
        return str(source)


def wait(future):
    try:
        return None, future.result(timeout=TIMEOUT)
    except KafkaException as exc:
        return kafka_error(exc), None


# ---------------------------------------------------------------- confluent-kafka


def create(args):
    config = dict(kv.split("=", 1) for kv in args.config)
    client = admin(args)
    topics = [
        NewTopic(name, num_partitions=args.partitions, replication_factor=1, config=config) for name in args.names
    ]
    futures = client.create_topics(
        topics, validate_only=args.validate_only, operation_timeout=TIMEOUT, request_timeout=TIMEOUT
    )
    emit({"results": {name: wait(f)[0] for name, f in futures.items()}})


def delete(args):
    client = admin(args)
    futures = client.delete_topics(args.names, operation_timeout=TIMEOUT, request_timeout=TIMEOUT)
    emit({"results": {name: wait(f)[0] for name, f in futures.items()}})


def entry_json(entry):
    # confluent-kafka keys synonyms by name, so a key listed with two sources
    # (e.g. log.retention.ms STATIC then DEFAULT) keeps only the last one; the
    # kp-describe-configs command gives the list as sent.
    synonyms = entry.synonyms.values() if isinstance(entry.synonyms, dict) else entry.synonyms or []
    return {
        "value": entry.value,
        "source": source_name(entry.source),
        "read_only": entry.is_read_only,
        "default": entry.is_default,
        "sensitive": entry.is_sensitive,
        "synonyms": [[s.name, s.value, source_name(s.source)] for s in synonyms],
    }


def describe_configs(args):
    client = admin(args)
    # librdkafka does not send configuration keys: it always describes them all.
    resource = ConfigResource(resource_type(args.type), args.name)
    try:
        futures = client.describe_configs([resource], request_timeout=TIMEOUT)
    except (KafkaException, ValueError, TypeError) as exc:
        emit({"error": kafka_error(exc), "configs": None, "client_side": True})
        return
    error, configs = wait(next(iter(futures.values())))
    out = None
    if configs is not None:
        out = {name: entry_json(entry) for name, entry in configs.items()}
    emit({"error": error, "configs": out})


def alter_configs(args):
    client = admin(args)
    config = dict(kv.split("=", 1) for kv in args.pairs)
    resource = ConfigResource(resource_type(args.type), args.name, set_config=config)
    try:
        futures = client.alter_configs([resource], validate_only=args.validate_only, request_timeout=TIMEOUT)
    except (KafkaException, ValueError, TypeError) as exc:
        emit({"error": kafka_error(exc), "client_side": True})
        return
    emit({"error": wait(next(iter(futures.values())))[0]})


OPS = {
    "set": AlterConfigOpType.SET,
    "delete": AlterConfigOpType.DELETE,
    "append": AlterConfigOpType.APPEND,
    "subtract": AlterConfigOpType.SUBTRACT,
}


def parse_op(text):
    """'set:k=v' -> (op name, key, value or None)."""
    op, _, rest = text.partition(":")
    key, eq, value = rest.partition("=")
    return op, key, (value if eq else None)


def incremental(args):
    client = admin(args)
    entries = []
    for text in args.ops:
        op, key, value = parse_op(text)
        entries.append(ConfigEntry(key, value, incremental_operation=OPS[op]))
    resource = ConfigResource(resource_type(args.type), args.name, incremental_configs=entries)
    try:
        futures = client.incremental_alter_configs(
            [resource], validate_only=args.validate_only, request_timeout=TIMEOUT
        )
    except (KafkaException, ValueError, TypeError) as exc:
        emit({"error": kafka_error(exc), "client_side": True})
        return
    emit({"error": wait(next(iter(futures.values())))[0]})


def create_partitions(args):
    client = admin(args)
    futures = client.create_partitions(
        [NewPartitions(args.topic, args.count)],
        validate_only=args.validate_only,
        operation_timeout=TIMEOUT,
        request_timeout=TIMEOUT,
    )
    emit({"error": wait(futures[args.topic])[0]})


def node_json(node):
    return None if node is None else [node.id, node.host, node.port]


def describe_cluster(args):
    client = admin(args)
    error, result = wait(client.describe_cluster(request_timeout=TIMEOUT))
    if error is not None:
        emit({"error": error})
        return
    emit(
        {
            "error": None,
            "cluster_id": result.cluster_id,
            "controller": node_json(result.controller),
            "nodes": sorted(node_json(n) for n in result.nodes),
        }
    )


def metadata(args):
    md = admin(args).list_topics(timeout=TIMEOUT)
    emit(
        {
            "cluster_id": md.cluster_id,
            "controller_id": md.controller_id,
            "brokers": sorted([b.id, b.host, b.port] for b in md.brokers.values()),
            "topics": {
                name: {"partitions": len(t.partitions), "error": None if t.error is None else t.error.code()}
                for name, t in md.topics.items()
            },
        }
    )


def payload(i, size, compressible=False):
    """Message i: b"m<i>;" or b"c<i>;" then `size` bytes in all of hash output
    (incompressible) or one hex digest repeated (compressible)."""
    head = b"%s%d;" % (b"c" if compressible else b"m", i)
    if compressible:
        unit = hashlib.sha256(head).hexdigest().encode()
        body = unit * (size // len(unit) + 1)
    else:
        body = b"".join(hashlib.sha256(head + n.to_bytes(4, "big")).digest() for n in range(size // 32 + 1))
    return (head + body)[:max(size, len(head))]


def value_ok(value):
    head, sep, _ = (value or b"").partition(b";")
    if not sep or head[:1] not in (b"m", b"c"):
        return False
    return value == payload(int(head[1:]), len(value), compressible=head[:1] == b"c")


def produce(args):
    conf = {
        "bootstrap.servers": args.bootstrap,
        "acks": args.acks,
        "enable.idempotence": False,
        "retries": 0,
        "message.timeout.ms": 20000,
        "linger.ms": 5,
        "compression.type": args.compression,
        "message.max.bytes": 10_000_000,
    }
    p = Producer(conf)
    acked, errors = [], []

    def on_delivery(err, msg):
        if err is not None:
            errors.append([err.code(), err.name(), err.str()])
        else:
            acked.append(msg.offset())

    if args.each_partition:
        # One message to each partition 0..N-1: per-partition error codes.
        codes = {}

        def on_each(err, msg):
            codes[msg.partition()] = 0 if err is None else err.code()

        for part in range(args.each_partition):
            value = payload(part, args.size, args.compressible)
            p.produce(args.topic, value=value, partition=part, on_delivery=on_each)
        left = p.flush(TIMEOUT)
        emit({"codes": [codes.get(part) for part in range(args.each_partition)], "undelivered": left})
        return
    for i in range(args.start, args.start + args.count):
        value = payload(i, args.size, args.compressible)
        kwargs = {"value": value, "partition": args.partition, "on_delivery": on_delivery}
        if args.timestamp is not None:
            kwargs["timestamp"] = args.timestamp
        p.produce(args.topic, **kwargs)
        p.poll(0)
    left = p.flush(TIMEOUT)
    emit({"acked": sorted(acked), "errors": errors, "undelivered": left})


def consume(args):
    c = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": "strom-admin-api-unused",
            "enable.auto.commit": False,
            "auto.offset.reset": "error",
            "fetch.max.bytes": 10_000_000,
            "max.partition.fetch.bytes": 10_000_000,
        }
    )
    c.assign([TopicPartition(args.topic, args.partition, args.start)])
    messages, error = [], None
    deadline = time.time() + TIMEOUT
    while len(messages) < args.count and error is None and time.time() < deadline:
        for m in c.consume(args.count - len(messages), 0.5):
            if m.error() is not None:
                error = kafka_error(m.error())
                break
            kind, ts = m.timestamp()
            messages.append([m.offset(), kind, ts, len(m.value() or b""), value_ok(m.value())])
    c.close()
    emit({"messages": messages, "error": error})


def list_offsets(args):
    client = admin(args)
    tp = TopicPartition(args.topic, args.partition)
    out = {}
    for name, spec in (("earliest", OffsetSpec.earliest()), ("latest", OffsetSpec.latest())):
        error, result = wait(client.list_offsets({tp: spec}, request_timeout=TIMEOUT)[tp])
        out[name] = result.offset if error is None else error
    emit(out)


# ---------------------------------------------------------------- kafka-python


KP_TYPES = {"topic": 2, "broker": 4}


def kp_send(args, request, node_id=None):
    """Sends a kafka-python request pinned to --version; returns its response."""
    from kafka import KafkaAdminClient

    client = KafkaAdminClient(bootstrap_servers=args.bootstrap, request_timeout_ms=TIMEOUT * 1000)
    try:

        async def go():
            return await client._manager.send(request, node_id=node_id)

        return client._manager.run(go)
    finally:
        client.close()


def kp_emit(args, response):
    emit({"version": args.version, "response": response.to_dict()})


def kp_describe_configs(args):
    from kafka.protocol.admin import DescribeConfigsRequest as R

    request = R(
        resources=[(KP_TYPES[args.type], args.name, args.key or None)],
        include_synonyms=args.synonyms,
        include_documentation=False,
        min_version=args.version,
        max_version=args.version,
    )
    kp_emit(args, kp_send(args, request))


def kp_alter_configs(args):
    from kafka.protocol.admin import AlterConfigsRequest as R

    configs = [tuple(kv.split("=", 1)) for kv in args.pairs]
    request = R(
        resources=[(KP_TYPES[args.type], args.name, configs)],
        validate_only=args.validate_only,
        min_version=args.version,
        max_version=args.version,
    )
    kp_emit(args, kp_send(args, request))


def kp_incremental(args):
    from kafka.protocol.admin import IncrementalAlterConfigsRequest as R

    configs = []
    for text in args.ops:
        op, key, value = parse_op(text)
        configs.append((key, OPS[op].value, value))
    names = [args.name] + args.also
    request = R(
        resources=[(KP_TYPES[args.type], name, configs) for name in names],
        validate_only=args.validate_only,
        min_version=args.version,
        max_version=args.version,
    )
    kp_emit(args, kp_send(args, request))


def kp_create_partitions(args):
    from kafka.protocol.admin import CreatePartitionsRequest as R

    request = R(
        topics=[(args.topic, args.count, None)],
        timeout_ms=TIMEOUT * 1000,
        validate_only=args.validate_only,
        min_version=args.version,
        max_version=args.version,
    )
    kp_emit(args, kp_send(args, request))


def kp_describe_cluster(args):
    from kafka.protocol.admin import DescribeClusterRequest as R

    kwargs = {"include_cluster_authorized_operations": False}
    if args.version >= 1:
        kwargs["endpoint_type"] = 1
    if args.version >= 2:
        kwargs["include_fenced_brokers"] = False
    request = R(min_version=args.version, max_version=args.version, **kwargs)
    kp_emit(args, kp_send(args, request))


def kp_describe_log_dirs(args):
    from kafka.protocol.admin import DescribeLogDirsRequest as R

    topics = None
    if args.topic:
        topics = [(t, list(range(args.partitions))) for t in args.topic]
    request = R(topics=topics, min_version=args.version, max_version=args.version)
    kp_emit(args, kp_send(args, request))


def kp_log_dirs(args):
    from kafka import KafkaAdminClient

    client = KafkaAdminClient(bootstrap_servers=args.bootstrap, request_timeout_ms=TIMEOUT * 1000)
    try:
        result = client.describe_log_dirs(topic_partitions=args.topic or None)
    finally:
        client.close()
    emit({"result": result})


def main():
    if sys.argv[1:] == ["serve"]:
        serve(HANDLERS, parser())
        return
    args = parser().parse_args()
    HANDLERS[args.cmd](args)


def parser():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("create")
    p.add_argument("names", nargs="+")
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--config", action="append", default=[])
    p.add_argument("--validate-only", action="store_true")
    p = sub.add_parser("delete")
    p.add_argument("names", nargs="+")

    for name in ("describe-configs", "kp-describe-configs"):
        p = sub.add_parser(name)
        p.add_argument("type", choices=["topic", "broker"])
        p.add_argument("name")
        if name.startswith("kp-"):
            p.add_argument("--key", action="append", default=[])
            p.add_argument("--version", type=int, required=True)
            p.add_argument("--synonyms", action="store_true")
    for name in ("alter-configs", "kp-alter-configs"):
        p = sub.add_parser(name)
        p.add_argument("type", choices=["topic", "broker"])
        p.add_argument("name")
        p.add_argument("pairs", nargs="*")
        p.add_argument("--validate-only", action="store_true")
        if name.startswith("kp-"):
            p.add_argument("--version", type=int, required=True)
    for name in ("incremental", "kp-incremental"):
        p = sub.add_parser(name)
        p.add_argument("type", choices=["topic", "broker"])
        p.add_argument("name")
        p.add_argument("ops", nargs="+")
        p.add_argument("--validate-only", action="store_true")
        if name.startswith("kp-"):
            p.add_argument("--version", type=int, required=True)
            p.add_argument("--also", action="append", default=[], help="more resources, same ops")
    for name in ("create-partitions", "kp-create-partitions"):
        p = sub.add_parser(name)
        p.add_argument("topic")
        p.add_argument("count", type=int)
        p.add_argument("--validate-only", action="store_true")
        if name.startswith("kp-"):
            p.add_argument("--version", type=int, required=True)
    sub.add_parser("describe-cluster")
    sub.add_parser("metadata")
    p = sub.add_parser("kp-describe-cluster")
    p.add_argument("--version", type=int, required=True)
    p = sub.add_parser("kp-describe-log-dirs")
    p.add_argument("--version", type=int, required=True)
    p.add_argument("--topic", action="append", default=[])
    p.add_argument("--partitions", type=int, default=1, help="partitions 0..N-1 of each --topic")
    p = sub.add_parser("kp-log-dirs")
    p.add_argument("--topic", action="append", default=[])

    p = sub.add_parser("produce")
    p.add_argument("topic")
    p.add_argument("--partition", type=int, default=0)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--start", type=int, default=0, help="first message number")
    p.add_argument("--size", type=int, default=100)
    p.add_argument("--acks", default="all", choices=["all", "1"])
    p.add_argument("--timestamp", type=int)
    p.add_argument("--compression", default="none", choices=["none", "gzip", "snappy", "lz4", "zstd"])
    p.add_argument("--each-partition", type=int, metavar="N", help="one message to each of partitions 0..N-1")
    p.add_argument("--compressible", action="store_true", help="values compress well (default: they do not)")
    p = sub.add_parser("consume")
    p.add_argument("topic")
    p.add_argument("--partition", type=int, default=0)
    p.add_argument("--from", dest="start", type=int, default=0)
    p.add_argument("--count", type=int, required=True)
    p = sub.add_parser("list-offsets")
    p.add_argument("topic")
    p.add_argument("--partition", type=int, default=0)

    return ap


HANDLERS = {
    "create": create,
    "delete": delete,
    "describe-configs": describe_configs,
    "alter-configs": alter_configs,
    "incremental": incremental,
    "create-partitions": create_partitions,
    "describe-cluster": describe_cluster,
    "metadata": metadata,
    "produce": produce,
    "consume": consume,
    "list-offsets": list_offsets,
    "kp-describe-configs": kp_describe_configs,
    "kp-alter-configs": kp_alter_configs,
    "kp-incremental": kp_incremental,
    "kp-create-partitions": kp_create_partitions,
    "kp-describe-cluster": kp_describe_cluster,
    "kp-describe-log-dirs": kp_describe_log_dirs,
    "kp-log-dirs": kp_log_dirs,
}


if __name__ == "__main__":
    sys.exit(main())
