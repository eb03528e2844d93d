#!/usr/bin/env bash
# Starts tansu (the Rust, Kafka-compatible broker from the crate registry,
# https://crates.io/crates/tansu) on 127.0.0.1 with its SQLite storage engine,
# for side-by-side runs with `strom-bench compare`.
#
#   bench/scripts/start-tansu.sh DATA_DIR [PORT]
#
# Prints the broker's pid on stdout once it accepts connections; its log is
# DATA_DIR/tansu.log. Stop it with `kill PID`.
#
# tansu is installed on first use: `cargo install tansu@0.6.0 --features libsql`
# into $TANSU_ROOT (default ~/.cache/strom-tansu), niced and with -j
# $TANSU_JOBS (default 1) so it does not starve other builds; on a 2-core
# machine that takes about an hour. $TANSU_BIN names an installed binary.
#
# Storage: SQLite in WAL mode with `synchronous = normal` (tansu 0.6's
# settings), so a produce is acknowledged before any fsync: compare it with
# Strom's write.caching=true. (tansu's default `memory://` engine needs its
# `dynostore` feature and keeps nothing on disk.)
set -euo pipefail
DATA="${1:?usage: start-tansu.sh DATA_DIR [PORT]}"
PORT="${2:-19092}"
ROOT="${TANSU_ROOT:-$HOME/.cache/strom-tansu}"
BIN="${TANSU_BIN:-$ROOT/bin/tansu}"
if [ ! -x "$BIN" ]; then
    echo "installing tansu 0.6.0 into $ROOT (once)" >&2
    CARGO_TARGET_DIR="$ROOT/target" nice -n 19 cargo install -j "${TANSU_JOBS:-1}" \
        --locked tansu@0.6.0 --features libsql --root "$ROOT" >&2
fi
mkdir -p "$DATA"
DATA="$(cd "$DATA" && pwd)"
# tansu resolves sqlite://NAME against its working directory.
(
    cd "$DATA"
    exec "$BIN" broker \
        --listener-url "tcp://127.0.0.1:$PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$PORT" \
        --storage-engine "sqlite://tansu.db"
) >"$DATA/tansu.log" 2>&1 &
pid=$!
for _ in $(seq 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "tansu exited; see $DATA/tansu.log:" >&2
        tail -20 "$DATA/tansu.log" >&2
        exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        echo "$pid"
        exit 0
    fi
    sleep 0.1
done
echo "tansu did not listen on 127.0.0.1:$PORT within 30 s; see $DATA/tansu.log" >&2
kill "$pid" 2>/dev/null || true
exit 1
