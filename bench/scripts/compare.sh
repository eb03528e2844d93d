#!/usr/bin/env bash
# Every figure of BENCHMARKS.md in one run: Strom against another
# Kafka-compatible broker on this machine (tansu unless OTHER_BOOTSTRAP is
# given), with the machine's raw baselines measured in the same run.
#
#   bench/scripts/compare.sh [OUT_DIR]
#
# 1. builds release `strom` and `strom-bench`;
# 2. `strom-bench baseline tcp` and `baseline disk` (in the data directory);
# 3. starts a release strom (--smp 1) and tansu (start-tansu.sh), each pinned
#    to core $BROKER_CPU with taskset, so the generator has core $BENCH_CPU;
# 4. `strom-bench compare` for each workload, twice: Strom topics with
#    write.caching=false (fsync before ack) and with write.caching=true.
#
# Results: OUT_DIR/baseline-*.json, OUT_DIR/<workload>-<mode>.{json,txt,svg}.
# Environment: ROUNDS (default 2), DURATION (s, default 15), WARMUP (s,
# default 3), WORKLOADS (default: all six), OTHER_BOOTSTRAP / OTHER_PID /
# OTHER_NAME to compare with a broker you started yourself.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-bench-results/$(date -u +%Y%m%dT%H%M%SZ)}"
ROUNDS="${ROUNDS:-2}"
DURATION="${DURATION:-15}"
WARMUP="${WARMUP:-3}"
WORKLOADS="${WORKLOADS:-max-throughput fixed-rate-latency small-messages keyed many-partitions backlog}"
BROKER_CPU="${BROKER_CPU:-0}"
BENCH_CPU="${BENCH_CPU:-1}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

cargo build --release -q -p strom-engine -p strom-bench
STROM="$TARGET/release/strom"
BENCH="$TARGET/release/strom-bench"
WORK="$(mktemp -d -t strom-compare-XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== baselines"
"$BENCH" baseline tcp --seconds 5 | tee "$OUT/baseline-tcp.json"
"$BENCH" baseline disk --dir "$WORK/disk" --total-mb 512 --sync-samples 1000 | tee "$OUT/baseline-disk.json"
rm -rf "$WORK/disk"

echo "== starting strom"
taskset -c "$BROKER_CPU" "$STROM" serve --data-dir "$WORK/strom" --listen 127.0.0.1:0 \
    --admin-listen 127.0.0.1:0 --smp 1 >"$WORK/strom.out" 2>"$WORK/strom.err" &
STROM_PID=$!
pids+=("$STROM_PID")
for _ in $(seq 300); do grep -q listening "$WORK/strom.out" 2>/dev/null && break; sleep 0.1; done
STROM_PORT="$(sed -n 's/.*on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/strom.out" | head -1)"
[ -n "$STROM_PORT" ] || { cat "$WORK/strom.err" >&2; exit 1; }

if [ -z "${OTHER_BOOTSTRAP:-}" ]; then
    echo "== starting tansu"
    OTHER_PID="$(taskset -c "$BROKER_CPU" bench/scripts/start-tansu.sh "$WORK/tansu" 19092)"
    pids+=("$OTHER_PID")
    OTHER_BOOTSTRAP=127.0.0.1:19092
    OTHER_NAME=tansu
fi
OTHER_NAME="${OTHER_NAME:-other}"
pid_args=(--a-pid "$STROM_PID")
[ -n "${OTHER_PID:-}" ] && pid_args+=(--b-pid "$OTHER_PID")

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/Mem:/ {print $2}') GiB, Linux $(uname -r)"
    echo "strom: $(git rev-parse --short HEAD 2>/dev/null || echo unknown) (+ working tree), release, --smp 1, core $BROKER_CPU"
    echo "$OTHER_NAME: $OTHER_BOOTSTRAP, core $BROKER_CPU"
    echo "generator: strom-bench on core $BENCH_CPU; rounds $ROUNDS, ${DURATION} s each, ${WARMUP} s warm-up"
} | tee "$OUT/setup.txt"

for workload in $WORKLOADS; do
    for caching in false true; do
        name="$workload-write-caching-$caching"
        echo "== $name"
        "$BENCH" compare "$workload" --a "127.0.0.1:$STROM_PORT" --b "$OTHER_BOOTSTRAP" \
            --a-name strom --b-name "$OTHER_NAME" "${pid_args[@]}" \
            --a-topic-config "write.caching=$caching" \
            --rounds "$ROUNDS" --duration "$DURATION" --warmup "$WARMUP" \
            --cpus "$BENCH_CPU" --quiet --out "$OUT/$name.json" --svg "$OUT/$name.svg" \
            | tee "$OUT/$name.txt" || echo "!! $name failed" | tee -a "$OUT/$name.txt"
    done
done
echo "results in $OUT"
