#!/usr/bin/env bash
# Produce throughput of a release strom against the raw loopback baseline, measured
# in one run: --smp 1 and --smp 2, acks=1 and acks=all, 1 KiB messages, 8 partitions,
# driven by librdkafka (confluent-kafka). Usage:
#   bash bench/scripts/produce_matrix.sh [MESSAGES]
set -euo pipefail
cd "$(dirname "$0")/../.."
MESSAGES="${1:-1000000}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p strom-engine -p strom-bench
STROM="$TARGET/release/strom"
BENCH="$TARGET/release/strom-bench"

echo "== loopback TCP baseline"
"$BENCH" baseline tcp --seconds 5

for smp in 1 2; do
    for acks in 1 all; do
        data="$(mktemp -d)"
        "$STROM" serve --data-dir "$data" --listen 127.0.0.1:0 --smp "$smp" >"$data.out" 2>"$data.err" &
        pid=$!
        for _ in $(seq 100); do grep -q listening "$data.out" 2>/dev/null && break; sleep 0.1; done
        port="$(sed -n 's/.*on 127.0.0.1:\([0-9]*\).*/\1/p' "$data.out")"
        echo "== smp=$smp acks=$acks"
        python3 bench/scripts/produce_perf.py --bootstrap "127.0.0.1:$port" --topic perf \
            --partitions 8 --messages "$MESSAGES" --size 1024 --acks "$acks" --broker-pid "$pid"
        kill -TERM "$pid"; wait "$pid" || true
        rm -rf "$data" "$data.out" "$data.err"
    done
done
