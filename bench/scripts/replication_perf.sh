#!/usr/bin/env bash
# Produce throughput and latency with replication factor 3 against 1, acks=all,
# on one 3-broker cluster on this machine (brokers on 127.0.0.{21,22,23}),
# driven by librdkafka (bench/scripts/produce_perf.py). RF 1 and RF 3 topics
# alternate, ROUNDS times each, on the same running cluster.
#
#   bench/scripts/replication_perf.sh [OUT_DIR]
#
# Environment: ROUNDS (default 3), MESSAGES (default 300000), SIZE (1024),
# PARTITIONS (6), RATE (messages/s of the latency runs, default 5000),
# WRITE_CACHING (false: fsync before ack on every replica; true: Kafka's
# page-cache acknowledgement).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-bench-results/replication-$(date -u +%Y%m%dT%H%M%SZ)}"
ROUNDS="${ROUNDS:-3}"
MESSAGES="${MESSAGES:-300000}"
SIZE="${SIZE:-1024}"
PARTITIONS="${PARTITIONS:-6}"
RATE="${RATE:-5000}"
WRITE_CACHING="${WRITE_CACHING:-false}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cargo build --release -q -p strom-engine
STROM="$TARGET/release/strom"
WORK="$(mktemp -d -t strom-replication-XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

voters="1@127.0.0.21:9093,2@127.0.0.22:9093,3@127.0.0.23:9093"
for i in 1 2 3; do
    cat >"$WORK/node$i.toml" <<EOF
node.id = $i
listeners = "PLAINTEXT://127.0.0.2$i:9092,CONTROLLER://127.0.0.2$i:9093"
controller.quorum.voters = "$voters"
log.dirs = "$WORK/data$i"
admin.listeners = "http://127.0.0.2$i:9644"
strom.smp = 1
EOF
    "$STROM" serve --config "$WORK/node$i.toml" >"$WORK/node$i.out" 2>"$WORK/node$i.err" &
    pids+=("$!")
done
BOOT=127.0.0.21:9092,127.0.0.22:9092,127.0.0.23:9092
for _ in $(seq 100); do
    n="$("$STROM" cluster info --brokers "$BOOT" --format json 2>/dev/null | python3 -c 'import json,sys; print(sum(b["state"]=="active" for b in json.load(sys.stdin)["brokers"]))' 2>/dev/null || echo 0)"
    [ "$n" = 3 ] && break
    sleep 0.2
done
[ "$n" = 3 ] || { echo "cluster did not come up"; tail "$WORK"/node*.err; exit 1; }
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, Linux $(uname -r)"
    echo "strom: $(git rev-parse --short HEAD), release, 3 brokers x 1 shard on this machine, write.caching=$WRITE_CACHING"
    echo "client: confluent-kafka $(python3 -c 'import confluent_kafka as c; print(c.version()[0], "librdkafka", c.libversion()[0])')"
} | tee "$OUT/setup.txt"

run() { # label rf extra-args...
    local label="$1" rf="$2"
    shift 2
    python3 bench/scripts/produce_perf.py --bootstrap "$BOOT" --topic "perf-$label" \
        --partitions "$PARTITIONS" --replication-factor "$rf" --acks all --size "$SIZE" \
        --topic-config "min.insync.replicas=$(( rf > 1 ? 2 : 1 ))" \
        --topic-config "write.caching=$WRITE_CACHING" "$@"
}
for round in $(seq "$ROUNDS"); do
    for rf in 1 3; do
        echo "== round $round, RF $rf, throughput"
        run "max-rf$rf-$round" "$rf" --messages "$MESSAGES" | tee -a "$OUT/throughput-rf$rf.jsonl"
        echo "== round $round, RF $rf, latency at $RATE msg/s"
        run "rate-rf$rf-$round" "$rf" --messages "$(( RATE * 10 ))" --rate "$RATE" --linger-ms 1 \
            | tee -a "$OUT/latency-rf$rf.jsonl"
    done
done
python3 - "$OUT" <<'EOF'
import json, statistics, sys, pathlib
out = pathlib.Path(sys.argv[1])
def load(name):
    return [json.loads(l) for l in (out / name).read_text().splitlines() if l.strip()]
for kind, key in (("throughput", "msgs_per_s"), ("latency", "latency_ms_p99")):
    rf1, rf3 = load(f"{kind}-rf1.jsonl"), load(f"{kind}-rf3.jsonl")
    for field in ("msgs_per_s", "mb_per_s", "latency_ms_p50", "latency_ms_p99"):
        a = statistics.median(r[field] for r in rf1)
        b = statistics.median(r[field] for r in rf3)
        print(f"{kind:10s} {field:16s} RF1 {a:>10} RF3 {b:>10}  RF3/RF1 {b / a:.2f}")
EOF
