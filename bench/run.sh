#!/usr/bin/env bash
# The clearhire read benchmark, from a clean checkout:
#
#   bench/run.sh                                                   # SQLite only
#   BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/test bench/run.sh   # SQLite, then PostgreSQL
#
# For each backend: start a fresh server (empty temp data dir; on PostgreSQL a fresh
# `clearhire_bench_<random>` database, dropped afterwards), seed BENCH_CANDIDATES candidates with
# 1-3 checks each, then load it from a separate process (`loadgen`) with `candidate(id)` and
# `candidates(first: 50)` queries, sampling the server's RSS and CPU. Nothing is pinned: the
# server, the load generator (and PostgreSQL) share the machine's cores.
#
# Knobs (env): BENCH_PORT (18080), BENCH_CANDIDATES (10000), BENCH_CONCURRENCY (32),
# BENCH_DURATION (20s), BENCH_WARMUP (3s), BENCH_OUT (a new /tmp dir for logs), BENCH_PG_URL,
# BENCH_PG_ANALYZE (1): ANALYZE after seeding when the instance has autovacuum off,
# BENCH_QUIET_WAIT (0): before each load, wait up to this many seconds for the machine to be
# less than 20% busy (other builds skew the figures; each load reports what else used the CPU),
# BENCH_API_BIN and BENCH_LOADGEN_BIN (other builds; default the ones just built).
# Prints the figures; writes nothing into the repository.
set -euo pipefail

cd "$(dirname "$0")/.."
source bench/lib.sh
PORT_BASE=${BENCH_PORT:-18080}
CANDIDATES=${BENCH_CANDIDATES:-10000}
CONCURRENCY=${BENCH_CONCURRENCY:-32}
DURATION=${BENCH_DURATION:-20s}
WARMUP=${BENCH_WARMUP:-3s}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/clearhire-bench.XXXXXX)}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
mkdir -p "$OUT"

log() { printf '\n=== %s\n' "$*"; }

# BENCH_API_BIN / BENCH_LOADGEN_BIN run other builds (an earlier commit's, for an A/B
# comparison); with both given nothing is built, so an edit in progress cannot break a run.
if [[ -z "${BENCH_API_BIN:-}" || -z "${BENCH_LOADGEN_BIN:-}" ]]; then
    log "building (release)"
    cargo build --release -p api -p bench
fi
API="${BENCH_API_BIN:-$TARGET_DIR/release/api}"
LOADGEN="${BENCH_LOADGEN_BIN:-$TARGET_DIR/release/loadgen}"

log "machine"
print_machine
echo "logs: $OUT"

SERVER_PID=""
DATA_DIR=""
PG_DB=""
stop_server() {
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    if [[ -n "$DATA_DIR" ]]; then rm -rf "$DATA_DIR"; fi
    DATA_DIR=""
}
drop_pg_db() {
    if [[ -n "$PG_DB" ]]; then
        psql "$BENCH_PG_URL" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $PG_DB" || true
        PG_DB=""
    fi
}
cleanup() { stop_server; drop_pg_db; }
trap cleanup EXIT

# start_server LABEL DATABASE_URL [VAR=VALUE...]: sets SERVER_PID, PORT and LOADGEN_TOKEN.
start_server() {
    local label=$1 db_url=$2
    shift 2
    DATA_DIR=$(mktemp -d /tmp/clearhire-bench-data.XXXXXX)
    PORT=$(free_port "$PORT_BASE")
    if [[ $db_url == sqlite* ]]; then db_url="sqlite://$DATA_DIR/clearhire.db?mode=rwc"; fi
    env "$@" CLEARHIRE_DATA_DIR="$DATA_DIR" DATABASE_URL="$db_url" CLEARHIRE_LISTEN="127.0.0.1:$PORT" \
        "$API" >"$OUT/$label-server.out" 2>"$OUT/$label-server.err" &
    SERVER_PID=$!
    wait_for_api "$SERVER_PID" "$PORT" "$OUT/$label-server" token
    export LOADGEN_TOKEN="$API_TOKEN" # via the environment, so it is not in `ps` output
    echo "$label server: pid $SERVER_PID on 127.0.0.1:$PORT"
}

# Percent of all cores busy over the next 3 seconds.
machine_busy() {
    local a b
    a=$(awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat)
    sleep 3
    b=$(awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f", 100 * (y[1] - x[1]) / (y[2] - x[2]) }'
}

wait_quiet() {
    local waited=0 busy
    busy=$(machine_busy)
    while ((busy >= 20 && waited < ${BENCH_QUIET_WAIT:-0})); do
        sleep 7
        waited=$((waited + 10))
        busy=$(machine_busy)
    done
    echo "machine ${busy}% busy just before the load (waited ${waited}s for quiet)"
}

RESULT_LINES=()
FAILED=0

# bench LABEL [PG_URL]: seed, then the two loads, against the running server.
bench() {
    local label=$1 pg_url=${2:-} url="http://127.0.0.1:$PORT" rc
    log "$label: seeding $CANDIDATES candidates"
    "$LOADGEN" seed --url "$url" --candidates "$CANDIDATES" | tee "$OUT/$label-seed.log"
    RESULT_LINES+=("$label $(grep '^SEED ' "$OUT/$label-seed.log")")
    # Seeding leaves outbox events for the server's relay to publish; let it finish first.
    "$LOADGEN" settle --url "$url" | tee -a "$OUT/$label-seed.log"
    if [[ -n $pg_url ]]; then
        # An instance with autovacuum off never gathers planner statistics; a normal one would
        # have analyzed these tables during seeding. BENCH_PG_ANALYZE=0 measures without them.
        if [[ $(psql "$pg_url" -Atc 'show autovacuum') == off && ${BENCH_PG_ANALYZE:-1} != 0 ]]; then
            echo "autovacuum is off on this PostgreSQL: running ANALYZE as autovacuum would have"
            psql "$pg_url" -q -v ON_ERROR_STOP=1 -c ANALYZE
        else
            echo "PostgreSQL statistics left to autovacuum (autovacuum=$(psql "$pg_url" -Atc 'show autovacuum'))"
        fi
    fi
    for q in candidate list; do
        log "$label: $q load, concurrency $CONCURRENCY, warm-up $WARMUP, measured $DURATION"
        wait_quiet
        # A thread-level CPU snapshot of the server halfway through the measured window.
        (
            sleep "$(awk -v w="${WARMUP%s}" -v d="${DURATION%s}" 'BEGIN { print w + d / 2 }')"
            { top -b -n1 | head -20; echo; top -b -n1 -H -p "$SERVER_PID" | sed -n '7,30p'; } >"$OUT/$label-$q-top.txt" 2>&1 || true
        ) &
        local top_pid=$!
        rc=0
        "$LOADGEN" run --url "$url" --query "$q" --concurrency "$CONCURRENCY" --duration "$DURATION" \
            --warmup "$WARMUP" --server-pid "$SERVER_PID" --label "$label" | tee "$OUT/$label-$q.log" || rc=$?
        wait "$top_pid" || true
        if [[ $rc -ne 0 ]]; then
            echo "!!! $label $q: loadgen exited with $rc (errors during the run?)"
            FAILED=1
        fi
        RESULT_LINES+=("$(grep '^RESULT ' "$OUT/$label-$q.log" || echo "RESULT {\"label\":\"$label\",\"query\":\"$q\",\"failed\":true}")")
        echo "processes and server threads by CPU halfway through: $OUT/$label-$q-top.txt"
    done
}

log "SQLite"
start_server sqlite sqlite
bench sqlite
stop_server

if [[ -n "${BENCH_PG_URL:-}" ]]; then
    log "PostgreSQL"
    PG_DB="clearhire_bench_$(head -c6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    psql "$BENCH_PG_URL" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $PG_DB"
    base=${BENCH_PG_URL%%\?*}
    query=""
    if [[ $BENCH_PG_URL == *\?* ]]; then query="?${BENCH_PG_URL#*\?}"; fi
    pg_url="${base%/*}/$PG_DB$query"
    jwt=$(head -c64 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c48)
    key=$(head -c32 /dev/urandom | base64 -w0)
    start_server postgres "$pg_url" CLEARHIRE_JWT_SECRET="$jwt" CLEARHIRE_ENCRYPTION_KEY="$key"
    unset jwt key
    bench postgres "$pg_url"
    stop_server
    drop_pg_db
else
    log "PostgreSQL skipped (set BENCH_PG_URL=postgres://USER@HOST:PORT/DB to run it)"
fi

log "summary (logs in $OUT)"
printf '%s\n' "${RESULT_LINES[@]}"
exit "$FAILED"
