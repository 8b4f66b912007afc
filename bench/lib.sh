# Shell functions the bench scripts share: `source "$(dirname "$0")/lib.sh"`.

# The machine and the run, for the log.
print_machine() {
    echo "cores: $(nproc); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    free -h | sed -n 1,2p
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
}

# free_port PORT: PORT, or the first port above it that nothing listens on.
free_port() {
    local p=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
    echo "$p"
}

# api_token FILE: the token an api printed to FILE on its first start ("API token (...):", a
# blank line, then the token), or nothing if it has not printed one (yet).
api_token() {
    awk '/API token/ { found = 1; next } found && NF { print $1; exit }' "$1"
}

# wait_for_api PID PORT LOG [token]: wait up to 60 s until the api PID answers /readyz on
# 127.0.0.1:PORT and, with `token`, has printed its first-start API token to LOG.out (then in
# API_TOKEN). Exits the script with the server's LOG.err if the server exits or time runs out.
wait_for_api() {
    local pid=$1 port=$2 log=$3 want=${4:-}
    API_TOKEN=""
    for _ in $(seq 1 600); do
        if [[ -n $want && -z $API_TOKEN ]]; then API_TOKEN=$(api_token "$log.out"); fi
        if [[ (-z $want || -n $API_TOKEN) ]] && curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "the server ($log) exited:" >&2
            cat "$log.err" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "the server ($log) was not ready${want:+ with an API token} within 60s" >&2
    exit 1
}

# stop_pid PID: SIGTERM, then wait for it to finish (a graceful shutdown).
stop_pid() {
    if [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; then
        kill -TERM "$1"
        wait "$1" || true
    fi
}
