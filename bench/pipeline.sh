#!/usr/bin/env bash
# The pipeline benchmarks, from a clean checkout:
#
#   bench/pipeline.sh                                    # embedded only (SQLite, in-process workers)
#   BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/test BENCH_REDIS_URL=redis://127.0.0.1:6379 \
#     bench/pipeline.sh                                  # embedded, then scale-out
#
# For each load and each mode, a fresh server (and in scale-out one api process plus one `worker` process on
# PostgreSQL + Redis, fresh database and key prefix) with the sandbox answering at once, then from
# a separate process (`loadgen`):
#   - screen:   BENCH_CHECKS checks started through the hosted consent form, timed from the first
#               mutation to the results webhook at a local receiver;
#   - webhooks: BENCH_CHANGES status changes through `transitionCheck`, timed to the signed status
#               webhook at a subscribed local endpoint.
# Knobs (env): BENCH_CHECKS (10000), BENCH_CHANGES (20000), BENCH_CONCURRENCY (64),
# BENCH_DRAIN (300s: how long after the last request a webhook may still arrive; later ones
# count as lost),
# BENCH_PORT (18180), BENCH_OUT (a new /tmp dir for logs), BENCH_KINDS ("screen webhooks"),
# BENCH_MODES ("embedded scaleout"), BENCH_API_BIN, BENCH_WORKER_BIN and BENCH_LOADGEN_BIN (other
# builds; default the ones just built), BENCH_RUST_LOG (the servers' RUST_LOG, default warn;
# e.g. warn,worker::relay=debug logs each relay batch's size and time), BENCH_KEEP_DB (set: the
# scale-out database is kept for a look afterwards, not dropped).
# In scale-out the webhooks load also prints a STAGES line: where the time from mutation to
# receipt went, from the database's timestamps (see `stages` below).
# Writes nothing into the repository.
set -euo pipefail

cd "$(dirname "$0")/.."
source bench/lib.sh
PORT_BASE=${BENCH_PORT:-18180}
CHECKS=${BENCH_CHECKS:-10000}
CHANGES=${BENCH_CHANGES:-20000}
CONCURRENCY=${BENCH_CONCURRENCY:-64}
DRAIN=${BENCH_DRAIN:-300s}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/clearhire-pipeline.XXXXXX)}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
mkdir -p "$OUT"

log() { printf '\n=== %s\n' "$*"; }

# BENCH_API_BIN / BENCH_LOADGEN_BIN run other builds (an earlier commit's, for an A/B
# comparison); with both given nothing is built, so an edit in progress cannot break a run. The
# worker process is BENCH_WORKER_BIN, or with BENCH_API_BIN given and no worker binary, that
# build's `api worker` (the same code; builds before the worker crate had its binary have only it).
if [[ -z "${BENCH_API_BIN:-}" || -z "${BENCH_LOADGEN_BIN:-}" ]]; then
    log "building (release)"
    cargo build --release -p api -p worker -p bench
fi
API="${BENCH_API_BIN:-$TARGET_DIR/release/api}"
LOADGEN="${BENCH_LOADGEN_BIN:-$TARGET_DIR/release/loadgen}"
if [[ -n "${BENCH_WORKER_BIN:-}" ]]; then
    WORKER=("$BENCH_WORKER_BIN")
elif [[ -n "${BENCH_API_BIN:-}" ]]; then
    WORKER=("$API" worker)
else
    WORKER=("$TARGET_DIR/release/worker")
fi

log "machine"
print_machine
echo "logs: $OUT"

PIDS=()
DATA_DIR=""
PG_DB=""
REDIS_PREFIX=""
stop_all() {
    for p in "${PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then kill -TERM "$p"; wait "$p" || true; fi
    done
    PIDS=()
    if [[ -n "$DATA_DIR" ]]; then rm -rf "$DATA_DIR"; DATA_DIR=""; fi
    if [[ -n "$PG_DB" && -z "${BENCH_KEEP_DB:-}" ]]; then psql "$BENCH_PG_URL" -q -c "DROP DATABASE IF EXISTS $PG_DB" || true; fi; PG_DB=""
    if [[ -n "$REDIS_PREFIX" ]]; then
        redis-cli -u "$BENCH_REDIS_URL" --scan --pattern "$REDIS_PREFIX*" | xargs -r -n 500 redis-cli -u "$BENCH_REDIS_URL" DEL >/dev/null || true
        REDIS_PREFIX=""
    fi
}
trap stop_all EXIT

# start LABEL [VAR=VALUE...]: an api process (plus a worker process when REDIS_URL is given);
# sets PORT and LOADGEN_TOKEN.
start() {
    local label=$1
    shift
    DATA_DIR=$(mktemp -d /tmp/clearhire-pipeline-data.XXXXXX)
    PORT=$(free_port "$PORT_BASE")
    local db=()
    if ! printf '%s\n' "$@" | grep -q '^DATABASE_URL='; then db=(DATABASE_URL="sqlite://$DATA_DIR/clearhire.db?mode=rwc"); fi
    local common=("${db[@]}" CLEARHIRE_DATA_DIR="$DATA_DIR" CLEARHIRE_SANDBOX_LATENCY_MS=0
        CLEARHIRE_WEBHOOK_ALLOWLIST=127.0.0.1 CLEARHIRE_LISTEN="127.0.0.1:$PORT" RUST_LOG=${BENCH_RUST_LOG:-warn} "$@")
    env "${common[@]}" "$API" >"$OUT/$label-api.out" 2>"$OUT/$label-api.err" &
    PIDS+=($!)
    local token=""
    for _ in $(seq 1 300); do
        token=$(api_token "$OUT/$label-api.out")
        if [[ -n "$token" ]]; then break; fi
        sleep 0.2
    done
    if [[ -z "$token" ]]; then
        echo "the $label server printed no token" >&2
        cat "$OUT/$label-api.err" >&2
        exit 1
    fi
    if printf '%s\n' "$@" | grep -q '^REDIS_URL='; then
        env "${common[@]}" "${WORKER[@]}" >"$OUT/$label-worker.out" 2>"$OUT/$label-worker.err" &
        PIDS+=($!)
    fi
    export LOADGEN_TOKEN="$token"
    echo "$label: api on 127.0.0.1:$PORT (pids ${PIDS[*]})"
}

# stages: where a status webhook's time went in scale-out, from the database's timestamps
# (milliseconds, p50 and p99 over the measured changes): `relay`, from the mutation's write of
# its event to the relay's claim of it; `queue`, from that claim to the end of the attempt less
# its HTTP time (the relay's commit, the job queue, the worker's pick-up, the delivery's lease
# and the attempt's record); `send`, the POST to the receiver. With PostgreSQL's
# `track_commit_timestamp` on, `relay` is split at the mutation's commit: `commit` (the write to
# its commit) and `claim` (the commit to the relay's claim).
stages() {
    local split="" committed="NULL::float8"
    if [[ $(psql "$pg_url" -X -A -t -c 'SHOW track_commit_timestamp') == on ]]; then
        committed="extract(epoch FROM pg_xact_commit_timestamp(h.xmin) - o.created_at) * 1000"
        split=",
    round(percentile_cont(0.5) WITHIN GROUP (ORDER BY tocommit)::numeric, 1) AS commit_p50,
    round(percentile_cont(0.99) WITHIN GROUP (ORDER BY tocommit)::numeric, 1) AS commit_p99,
    round(percentile_cont(0.5) WITHIN GROUP (ORDER BY relay - tocommit)::numeric, 1) AS claim_p50,
    round(percentile_cont(0.99) WITHIN GROUP (ORDER BY relay - tocommit)::numeric, 1) AS claim_p99"
    fi
    psql "$pg_url" -X -q -A -F ' ' -v ON_ERROR_STOP=1 -c "
WITH s AS (
    SELECT extract(epoch FROM o.published_at - o.created_at) * 1000 AS relay,
           extract(epoch FROM a.attempted_at - o.published_at) * 1000 - a.duration_ms AS queue,
           a.duration_ms AS send,
           $committed AS tocommit
    FROM outbox o
    JOIN webhook_deliveries d ON d.event_id = o.event_id
    JOIN webhook_attempts a ON a.delivery_id = d.id
    JOIN check_status_history h ON h.check_id = o.aggregate_id AND h.to_status = o.payload->>'state'
    WHERE o.event_type = 'check.status_changed'
)
SELECT 'STAGES' AS stages, count(*) AS n,
    round(percentile_cont(0.5) WITHIN GROUP (ORDER BY relay)::numeric, 1) AS relay_p50,
    round(percentile_cont(0.99) WITHIN GROUP (ORDER BY relay)::numeric, 1) AS relay_p99,
    round(percentile_cont(0.5) WITHIN GROUP (ORDER BY queue)::numeric, 1) AS queue_p50,
    round(percentile_cont(0.99) WITHIN GROUP (ORDER BY queue)::numeric, 1) AS queue_p99,
    round(percentile_cont(0.5) WITHIN GROUP (ORDER BY send)::numeric, 1) AS send_p50,
    round(percentile_cont(0.99) WITHIN GROUP (ORDER BY send)::numeric, 1) AS send_p99$split
FROM s" || true
}

RESULTS=()
FAILED=0
# run_kind LABEL KIND: one load against the server `start` left running.
run_kind() {
    local label=$1 kind=$2 url="http://127.0.0.1:$PORT" rc n=$CHECKS
    if [[ $kind == webhooks ]]; then n=$CHANGES; fi
    log "$label: $kind, $n, concurrency $CONCURRENCY"
    rc=0
    # What used the CPU while the load ran (taken 8 s and 20 s in).
    ( for at in 8 12; do sleep "$at"; top -b -n1 -w 160 | head -16; echo; done >"$OUT/$label-$kind-top.txt" 2>&1 ) &
    local top_pid=$!
    "$LOADGEN" "$kind" --url "$url" --count "$n" --concurrency "$CONCURRENCY" --drain "$DRAIN" --label "$label" \
        | tee "$OUT/$label-$kind.log" || rc=$?
    kill "$top_pid" 2>/dev/null || true
    if [[ $kind == webhooks && -n "$PG_DB" ]]; then stages | tee -a "$OUT/$label-$kind.log"; fi
    if [[ $rc -ne 0 ]]; then FAILED=1; fi
    RESULTS+=("$(grep '^RESULT ' "$OUT/$label-$kind.log" || echo "RESULT {\"label\":\"$label\",\"kind\":\"$kind\",\"failed\":true}")")
}

# Each load gets a fresh server (and in scale-out a fresh database and key prefix), so one
# load's backlog never runs into the next.
MODES=${BENCH_MODES:-embedded scaleout}
for kind in ${BENCH_KINDS:-screen webhooks}; do
    if [[ " $MODES " == *" embedded "* ]]; then
        log "embedded (SQLite, in-process workers): $kind"
        start "embedded-$kind"
        run_kind embedded "$kind"
        stop_all
    fi
    if [[ " $MODES " != *" scaleout "* ]]; then
        :
    elif [[ -n "${BENCH_PG_URL:-}" && -n "${BENCH_REDIS_URL:-}" ]]; then
        log "scale-out (PostgreSQL + Redis, one api and one worker process): $kind"
        PG_DB="clearhire_pipe_$(head -c6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        psql "$BENCH_PG_URL" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $PG_DB"
        base=${BENCH_PG_URL%%\?*}
        query=""
        if [[ $BENCH_PG_URL == *\?* ]]; then query="?${BENCH_PG_URL#*\?}"; fi
        pg_url="${base%/*}/$PG_DB$query"
        REDIS_PREFIX="clearhire-bench-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        jwt=$(head -c64 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c48)
        key=$(head -c32 /dev/urandom | base64 -w0)
        start "scaleout-$kind" DATABASE_URL="$pg_url" REDIS_URL="$BENCH_REDIS_URL" CLEARHIRE_REDIS_PREFIX="$REDIS_PREFIX" \
            CLEARHIRE_JWT_SECRET="$jwt" CLEARHIRE_ENCRYPTION_KEY="$key"
        run_kind scaleout "$kind"
        stop_all
    else
        log "scale-out skipped (set BENCH_PG_URL and BENCH_REDIS_URL)"
    fi
done

log "summary (logs in $OUT)"
printf '%s\n' "${RESULTS[@]}"
exit "$FAILED"
