#!/usr/bin/env bash
# Interleaved read loads against builds of the api, on ONE seeded SQLite database:
#
#   bench/ab.sh /tmp/before/api /tmp/after/api
#
# Seeds BENCH_CANDIDATES candidates (1-3 checks each) once, through the first build, then for
# each of BENCH_ROUNDS rounds and each query (`candidate`, `list`) starts each build in turn on
# that database and loads it for BENCH_DURATION. Every build sees the same data and the same
# machine conditions, minutes apart, so the rounds compare where whole `bench/run.sh` runs (a
# fresh seed each, about 4 minutes apart) drown small changes in this machine's noise.
# Unlike `bench/run.sh`, each server starts fresh on the seeded database, so its RSS does not
# include what the seeding left behind.
#
# Knobs (env): BENCH_ROUNDS (3), BENCH_QUERIES ("candidate list"), BENCH_CANDIDATES (10000),
# BENCH_CONCURRENCY (32), BENCH_DURATION (10s), BENCH_WARMUP (2s), BENCH_PORT (18300, or the next free port),
# BENCH_LOADGEN_BIN (default: build it), BENCH_OUT (a new /tmp dir). Writes nothing into the
# repository; prints one line per load: round, build, query, req/s, p99 ms, max RSS MiB.
set -euo pipefail

cd "$(dirname "$0")/.."
source bench/lib.sh
if [[ $# -lt 2 ]]; then
    echo "usage: bench/ab.sh API_BIN API_BIN..." >&2
    exit 2
fi
ROUNDS=${BENCH_ROUNDS:-3}
QUERIES=${BENCH_QUERIES:-candidate list}
CANDIDATES=${BENCH_CANDIDATES:-10000}
CONCURRENCY=${BENCH_CONCURRENCY:-32}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/clearhire-ab.XXXXXX)}
mkdir -p "$OUT"
if [[ -z "${BENCH_LOADGEN_BIN:-}" ]]; then
    cargo build --release -p bench
fi
LOADGEN=${BENCH_LOADGEN_BIN:-${CARGO_TARGET_DIR:-target}/release/loadgen}
DATA="$OUT/data"
mkdir -p "$DATA"
PORT=$(free_port "${BENCH_PORT:-18300}")
URL="http://127.0.0.1:$PORT"

print_machine
echo "logs and database: $OUT"

SERVER_PID=""
stop_server() {
    stop_pid "$SERVER_PID"
    SERVER_PID=""
}
trap stop_server EXIT

# start_server BIN LOG [token]: on the shared database, whose first server prints a token.
start_server() {
    CLEARHIRE_DATA_DIR="$DATA" DATABASE_URL="sqlite://$DATA/clearhire.db?mode=rwc" \
        CLEARHIRE_LISTEN="127.0.0.1:$PORT" "$1" >"$2.out" 2>"$2.err" &
    SERVER_PID=$!
    wait_for_api "$SERVER_PID" "$PORT" "$2" "${3:-}"
}

start_server "$1" "$OUT/seed-server" token
export LOADGEN_TOKEN="$API_TOKEN" # via the environment, so it is not in `ps` output
"$LOADGEN" seed --url "$URL" --candidates "$CANDIDATES" >"$OUT/seed.log"
"$LOADGEN" settle --url "$URL" >>"$OUT/seed.log"
grep '^SEED ' "$OUT/seed.log"
stop_server

for round in $(seq 1 "$ROUNDS"); do
    for q in $QUERIES; do
        for bin in "$@"; do
            start_server "$bin" "$OUT/server"
            log="$OUT/r$round-$q-$(echo "$bin" | tr '/' '_').log"
            "$LOADGEN" run --url "$URL" --query "$q" --concurrency "$CONCURRENCY" --duration "$DURATION" \
                --warmup "$WARMUP" --server-pid "$SERVER_PID" --label "$bin" >"$log" ||
                echo "!!! round $round, $bin, $q: loadgen exited with $? (errors during the run?): $log"
            stop_server
            awk -v r="$round" -v b="$bin" -v q="$q" '/^RESULT / {
                match($0, /"rps":[0-9.]+/); rps = substr($0, RSTART + 6, RLENGTH - 6)
                match($0, /"p99_ms":[0-9.]+/); p99 = substr($0, RSTART + 9, RLENGTH - 9)
                match($0, /"max_rss_mb":[0-9.]+/); rss = substr($0, RSTART + 13, RLENGTH - 13)
                printf "round %s  %-28s %-9s %8s req/s  p99 %7s ms  RSS %6s MiB\n", r, b, q, rps, p99, rss
            }' "$log"
        done
    done
done
