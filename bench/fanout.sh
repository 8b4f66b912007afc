#!/usr/bin/env bash
# Subscription fan-out: BENCH_SUBSCRIBERS (19500) graphql-transport-ws subscribers on one api
# process (embedded mode), then one status change; prints how many received it, p50/p99 from the
# mutation to arrival, and the server's RSS per idle subscriber. Each subscriber is one open file
# on the server and one in `loadgen`: keep BENCH_SUBSCRIBERS under `ulimit -n` (20000 here, and
# not raisable in this container). Knobs (env): BENCH_SUBSCRIBERS, BENCH_PORT (18888), BENCH_OUT,
# BENCH_LOADGEN_THREADS (the load generator's runtime threads; 0, the default, runs it on one
# thread, leaving the server the other core), BENCH_API_BIN and
# BENCH_LOADGEN_BIN (below). Writes nothing into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
SUBSCRIBERS=${BENCH_SUBSCRIBERS:-19500}
PORT=${BENCH_PORT:-18888}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
# BENCH_API_BIN / BENCH_LOADGEN_BIN run other builds (an earlier commit's, for an A/B
# comparison); with both given nothing is built, so an edit in progress cannot break a run.
if [[ -z "${BENCH_API_BIN:-}" || -z "${BENCH_LOADGEN_BIN:-}" ]]; then
    cargo build --release -p api -p bench
fi
API="${BENCH_API_BIN:-$TARGET_DIR/release/api}"
LOADGEN="${BENCH_LOADGEN_BIN:-$TARGET_DIR/release/loadgen}"
DATA_DIR=$(mktemp -d /tmp/clearhire-fanout.XXXXXX)
OUT=${BENCH_OUT:-$DATA_DIR}
mkdir -p "$OUT"
cleanup() { if [[ -n "${PID:-}" ]]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; rm -rf "$DATA_DIR/data"; }
trap cleanup EXIT
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?'); open files: $(ulimit -n)"
CLEARHIRE_DATA_DIR="$DATA_DIR/data" DATABASE_URL="sqlite://$DATA_DIR/data/clearhire.db?mode=rwc" \
    CLEARHIRE_LISTEN="127.0.0.1:$PORT" RUST_LOG=warn "$API" >"$OUT/api.out" 2>"$OUT/api.err" &
PID=$!
token=""
for _ in $(seq 1 100); do
    token=$(api_token "$OUT/api.out")
    if [[ -n "$token" ]]; then break; fi
    sleep 0.2
done
LOADGEN_TOKEN="$token" "$LOADGEN" --threads "${BENCH_LOADGEN_THREADS:-0}" fanout --url "http://127.0.0.1:$PORT" \
    --subscribers "$SUBSCRIBERS" --server-pid "$PID"
