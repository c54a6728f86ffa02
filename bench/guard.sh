#!/usr/bin/env bash
# gatehouse-guard benchmark: the same axum handler with and without the guard, in
# one process, in the same run, driven by wrk on loopback with an ES256 token
# from a real gatehouse server.
#
# Usage: bench/guard.sh
# Environment: DURATION (wrk -d, 10s), THREADS (2), CONNECTIONS (32), WARMUP (2s),
# ROUNDS (1: each round runs /open then /guarded), KEEP_TMP=1,
# BENCH_RESULTS (default bench/results/latest-guard.md).
# Exits non-zero if any request answered >= 400 or wrk saw a socket error.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" guard-bench
# This script's log lines have no clock.
log() { printf '[guard-bench] %s\n' "$*" >&2; }

DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
WARMUP="${WARMUP:-2s}"
ROUNDS="${ROUNDS:-1}"
KEEP_TMP="${KEEP_TMP:-0}"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/results/latest-guard.md}"

command -v python3 >/dev/null || die "python3 is needed"
install_wrk

log "cargo build --release (gatehouse, guard_bench)"
cargo build --release -p gatehouse --bin gatehouse >&2
cargo build --release -p gatehouse-guard --example guard_bench >&2
BIN="$ROOT/target/release/gatehouse"
API_BIN="$ROOT/target/release/examples/guard_bench"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-guard-bench.XXXXXX")"
PIDS=()
cleanup() {
    local status=$?
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    [[ $KEEP_TMP == 1 ]] && log "kept $TMP" || rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT

# start NAME LOG COMMAND...: runs COMMAND in the background and sets ADDR to the
# address of its `listening addr=` line (60 s at most).
start() {
    local name="$1" logfile="$2" i
    shift 2
    "$@" >"$logfile" 2>&1 &
    PIDS+=("$!")
    for ((i = 0; i < 600; i++)); do
        ADDR="$(grep -m1 -o 'listening addr=[0-9.:]*' "$logfile" | cut -d= -f2 || true)"
        [[ -n $ADDR ]] && return
        sleep 0.1
    done
    cat "$logfile" >&2
    die "$name did not start"
}

DB="sqlite://$TMP/g.db"
"$BIN" client create --name bench --scope read --json --database-url "$DB" >"$TMP/client.json"
read -r ID SECRET < <(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["client_id"], c["client_secret"])' "$TMP/client.json")
GATEHOUSE_LOG=warn,gatehouse::server=info start gatehouse "$TMP/gatehouse.log" \
    "$BIN" serve --listen 127.0.0.1:0 --database-url "$DB"
ISSUER="http://$ADDR"
TOKEN="$(curl -sf -u "$ID:$SECRET" -d grant_type=client_credentials "$ISSUER/oauth/token" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
start guard_bench "$TMP/api.log" "$API_BIN" --issuer "$ISSUER"
API="http://$ADDR"
log "issuer $ISSUER, API $API"

# The guard must be doing its job before it is timed.
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$API/guarded") == 200 ]] \
    || die "/guarded refused the token"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$API/guarded") == 401 ]] || die "/guarded let a request without a token in"
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${TOKEN}x" "$API/guarded") == 401 ]] \
    || die "/guarded let a tampered token in"

export BENCH_LUA_DIR="$ROOT/bench/lua" BENCH_TOKEN="$TOKEN"
run() {
    local path="$1" duration="$2"
    BENCH_SCENARIO="$path" BENCH_PATH="$path" timeout 120 \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --timeout 5s -s "$BENCH_LUA_DIR/resource.lua" "$API" \
        >"$TMP/wrk.txt" 2>&1 || { cat "$TMP/wrk.txt" >&2; die "wrk failed on $path"; }
    grep -m1 '^BENCH_RESULT ' "$TMP/wrk.txt" || { cat "$TMP/wrk.txt" >&2; die "no result for $path"; }
}
LINES=()
for ((round = 1; round <= ROUNDS; round++)); do
    for path in /open /guarded; do
        [[ $WARMUP == 0 ]] || run "$path" "$WARMUP" >/dev/null
        line="$(run "$path" "$DURATION")"
        log "$line"
        LINES+=("$line")
    done
done

REPORT="$(printf '%s\n' "${LINES[@]}" | python3 -c '
import sys
rows, bad = [], False
for line in sys.stdin:
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    rows.append(f)
    bad |= int(f["non2xx"]) > 0 or int(f["socket_errors"]) > 0
print("| endpoint | req/s | p50 ms | p99 ms | non-2xx |")
print("|---|---:|---:|---:|---:|")
for f in rows:
    print("| %s | %s | %.2f | %.2f | %s |" % (f["scenario"], format(float(f["rps"]), ",.0f"),
          float(f["p50_ms"]), float(f["p99_ms"]), f["non2xx"]))
open_rps = [float(f["rps"]) for f in rows if f["scenario"] == "/open"]
guarded_rps = [float(f["rps"]) for f in rows if f["scenario"] == "/guarded"]
ratio = (sum(guarded_rps) / len(guarded_rps)) / (sum(open_rps) / len(open_rps))
print()
print("guarded / open: %.2f (target >= 0.70)" % ratio)
sys.exit(1 if bad else 0)
')" || { echo "$REPORT"; die "errors during the runs"; }
echo "$REPORT"

{
    echo "# gatehouse-guard benchmark"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ), revision $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); wrk, the API and gatehouse share them"
    echo "- wrk -t$THREADS -c$CONNECTIONS -d$DURATION after a $WARMUP warm-up, loopback; one ES256 token (RFC 9068) from gatehouse, validated locally against its JWKS"
    echo "- /open and /guarded: the same handler in one process; /guarded behind Guard::layer and RequireScope(\"read\")"
    echo
    echo "$REPORT"
} >"$RESULTS"
log "wrote $RESULTS"
