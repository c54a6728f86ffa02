#!/usr/bin/env bash
# gatehouse on PostgreSQL at scale: client_credentials and refresh
# rotations with one node and with two nodes on one database (same run), then how
# throughput and p99 change as the database grows to 100k and 1M clients and to
# 1M and 10M stored refresh tokens (bench/seed.sql).
#
# Usage: bench/nodes.sh --database-url postgres://USER@HOST:PORT/DB [--no-scale]
# Creates a fresh database beside DB (gh_nodes_<random>) and drops it at the end.
# Environment: DURATION (10s), WARMUP (2s), CONNECTIONS (32), KEEP_TMP=1,
# BENCH_RESULTS (default bench/results/latest-nodes.md).
# With two nodes, two wrk processes (-t1, half the connections each) run at once,
# one per node, as a load balancer would spread the load; their req/s are added
# and the higher p50/p99 is reported.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" nodes-bench
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
CONNECTIONS="${CONNECTIONS:-32}"
KEEP_TMP="${KEEP_TMP:-0}"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/results/latest-nodes.md}"
BASE_URL=""
SCALE=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --database-url) BASE_URL="${2:?}"; shift 2 ;;
        --no-scale) SCALE=0; shift ;;
        *) echo "bench/nodes.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $BASE_URL == postgres://* || $BASE_URL == postgresql://* ]] || { echo "bench/nodes.sh: --database-url postgres://… is required" >&2; exit 2; }
command -v wrk >/dev/null || die "wrk is needed (apt-get install wrk)"
command -v psql >/dev/null || die "psql is needed"

log "cargo build --release -p gatehouse"
cargo build --release -p gatehouse --bin gatehouse >&2
BIN="$ROOT/target/release/gatehouse"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-nodes.XXXXXX")"
PIDS=()
DB_NAME="gh_nodes_$(date +%s)_$RANDOM"
cleanup() {
    local status=$?
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    psql "$BASE_URL" -qc "drop database if exists $DB_NAME with (force)" >/dev/null 2>&1 || true
    [[ $KEEP_TMP == 1 ]] && log "kept $TMP" || rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
psql "$BASE_URL" -v ON_ERROR_STOP=1 -qc "create database $DB_NAME" >&2
DB="$(python3 bench/preflight.py db-url "$BASE_URL" "$DB_NAME")"
KEY="$(head -c32 /dev/urandom | base64)"
ARGS=(--database-url "$DB" --master-key "$KEY")

creds() { # FILE -> "basic-credentials" of a `client create --json` output
    python3 - "$1" <<'PY'
import base64, json, sys, urllib.parse
c = json.load(open(sys.argv[1]))
enc = lambda s: urllib.parse.quote_plus(s, safe="*-._")
print(base64.b64encode(f"{enc(c['client_id'])}:{enc(c['client_secret'])}".encode()).decode())
PY
}
"$BIN" client create --name bench --scope "read write" --json "${ARGS[@]}" >"$TMP/cc.json"
"$BIN" client create --name app --scope "read write" --grant-types password,refresh_token --json "${ARGS[@]}" >"$TMP/app.json"
echo "bench-password-123" | "$BIN" user create --username bench --password-stdin --scope "read write" "${ARGS[@]}" >/dev/null
CC_BASIC="$(creds "$TMP/cc.json")"
APP_BASIC="$(creds "$TMP/app.json")"

start_node() { # NAME: starts a node, appends its URL to NODES
    GATEHOUSE_LOG=warn,gatehouse::server=info "$BIN" serve --listen 127.0.0.1:0 "${ARGS[@]}" \
        --rate-limit-per-client 0 --rate-limit-per-address 0 >"$TMP/$1.log" 2>&1 &
    PIDS+=("$!")
    local addr="" i
    for ((i = 0; i < 300; i++)); do
        addr="$(grep -m1 -o 'listening addr=[0-9.:]*' "$TMP/$1.log" | cut -d= -f2 || true)"
        [[ -n $addr ]] && break
        sleep 0.1
    done
    [[ -n $addr ]] || { cat "$TMP/$1.log" >&2; die "$1 did not start"; }
    NODES+=("http://$addr")
}
NODES=()
start_node node1
start_node node2
log "nodes: ${NODES[*]} on $DB_NAME"

export BENCH_LUA_DIR="$ROOT/bench/lua" BENCH_BASIC_CREDENTIALS="$CC_BASIC" BENCH_REFRESH_CREDENTIALS="$APP_BASIC"

# wrk_on SCRIPT THREADS CONNECTIONS DURATION URL TAG: a BENCH_RESULT line.
wrk_on() {
    local script="$1" threads="$2" conns="$3" duration="$4" url="$5" tag="$6"
    if [[ $script == refresh.lua ]]; then
        python3 bench/preflight.py login "$url/oauth/token" --basic "$APP_BASIC" --username bench \
            --password bench-password-123 --count "$((conns + threads))" --out "$TMP/chains-$tag.txt" >/dev/null
        export BENCH_REFRESH_TOKENS="$TMP/chains-$tag.txt"
    fi
    BENCH_THREADS="$threads" BENCH_SCENARIO="$tag" timeout 300 wrk -t"$threads" -c"$conns" -d"$duration" \
        --timeout 5s -s "$BENCH_LUA_DIR/$script" "$url" >"$TMP/wrk-$tag.txt" 2>&1 || { cat "$TMP/wrk-$tag.txt" >&2; die "wrk failed ($tag)"; }
    grep -m1 '^BENCH_RESULT' "$TMP/wrk-$tag.txt" || { cat "$TMP/wrk-$tag.txt" >&2; die "no result ($tag)"; }
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
ROWS=()
# measure NAME SCRIPT NODES: one row, wrk on 1 node or 2 nodes at once.
measure() {
    local name="$1" script="$2" count="$3" a b rps p50 p99 bad
    if [[ $count == 1 ]]; then
        wrk_on "$script" 2 "$CONNECTIONS" "$WARMUP" "${NODES[0]}" "$name-warm" >/dev/null
        a="$(wrk_on "$script" 2 "$CONNECTIONS" "$DURATION" "${NODES[0]}" "$name")"
        rps="$(field rps "$a")"; p50="$(field p50_ms "$a")"; p99="$(field p99_ms "$a")"; bad="$(field non2xx "$a")"
    else
        local half=$((CONNECTIONS / 2))
        local other
        wrk_on "$script" 1 "$half" "$WARMUP" "${NODES[0]}" "$name-warm1" >/dev/null &
        other=$!
        wrk_on "$script" 1 "$half" "$WARMUP" "${NODES[1]}" "$name-warm2" >/dev/null
        wait "$other"
        wrk_on "$script" 1 "$half" "$DURATION" "${NODES[0]}" "$name-a" >"$TMP/res-a" &
        other=$!
        wrk_on "$script" 1 "$half" "$DURATION" "${NODES[1]}" "$name-b" >"$TMP/res-b"
        wait "$other"
        a="$(<"$TMP/res-a")"; b="$(<"$TMP/res-b")"
        rps="$(awk -v x="$(field rps "$a")" -v y="$(field rps "$b")" 'BEGIN { print x + y }')"
        p50="$(awk -v x="$(field p50_ms "$a")" -v y="$(field p50_ms "$b")" 'BEGIN { print (x > y ? x : y) }')"
        p99="$(awk -v x="$(field p99_ms "$a")" -v y="$(field p99_ms "$b")" 'BEGIN { print (x > y ? x : y) }')"
        bad=$(( $(field non2xx "$a") + $(field non2xx "$b") ))
    fi
    local row
    row="$(printf '| %s | %s | %.0f | %.2f | %.2f | %d |' "$name" "$count" "$rps" "$p50" "$p99" "$bad")"
    log "$row"
    ROWS+=("$row")
}
HEAD=$'| scenario | nodes | req/s | p50 ms | p99 ms | non-2xx |\n|---|---:|---:|---:|---:|---:|'

measure client_credentials token_basic.lua 1
measure client_credentials token_basic.lua 2
measure refresh refresh.lua 1
measure refresh refresh.lua 2

SCALE_ROWS=()
if [[ $SCALE == 1 ]]; then
    seed() { # FROM_CLIENT CLIENTS FROM_TOKEN TOKENS
        local started=$SECONDS
        psql "$DB" -q -v from_client="$1" -v clients="$2" -v from_token="$3" -v refresh_tokens="$4" -f bench/seed.sql >&2
        log "seeded clients $1..$2, refresh tokens $3..$4 in $((SECONDS - started)) s"
    }
    scale_row() { # LABEL NAME SCRIPT
        wrk_on "$3" 2 "$CONNECTIONS" "$WARMUP" "${NODES[0]}" "$2-warm" >/dev/null
        local r
        r="$(wrk_on "$3" 2 "$CONNECTIONS" "$DURATION" "${NODES[0]}" "$2")"
        local row
        row="$(printf '| %s | %s | %.0f | %.2f | %.2f | %d |' "$1" "$2" "$(field rps "$r")" "$(field p50_ms "$r")" "$(field p99_ms "$r")" "$(field non2xx "$r")")"
        log "$row"
        SCALE_ROWS+=("$row")
    }
    sizes() { psql "$DB" -Atqc "select (select count(*) from clients), (select count(*) from refresh_tokens), pg_size_pretty(pg_database_size(current_database()))" | tr '|' ' '; }
    scale_row "3 clients, $(sizes | awk '{print $2}') refresh tokens" client_credentials token_basic.lua
    scale_row "3 clients" refresh refresh.lua
    seed 1 100000 1 1
    scale_row "100k clients" client_credentials token_basic.lua
    export BENCH_SEED_CLIENTS=100000
    scale_row "100k clients" client_credentials_random token_random_client.lua
    seed 100001 1000000 2 1
    scale_row "1M clients" client_credentials token_basic.lua
    export BENCH_SEED_CLIENTS=1000000
    scale_row "1M clients" client_credentials_random token_random_client.lua
    seed 1000001 1000000 2 1000000
    scale_row "1M refresh tokens" refresh refresh.lua
    seed 1000001 1000000 1000001 10000000
    scale_row "10M refresh tokens ($(sizes | awk '{print $3, $4}'))" refresh refresh.lua
    scale_row "10M refresh tokens" client_credentials_random token_random_client.lua
fi

REPORT="$(
    echo "# gatehouse on PostgreSQL: nodes and scale"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), git $(git rev-parse --short HEAD)$(git diff --quiet -- crates 2>/dev/null || echo ' + uncommitted changes')"
    echo "- machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(free -h | awk '/^Mem:/ { print $2 }'); wrk, the nodes and PostgreSQL share them"
    echo "- PostgreSQL $(psql "$DB" -Atqc "select current_setting('server_version') || ', fsync=' || current_setting('fsync') || ', synchronous_commit=' || current_setting('synchronous_commit')")"
    echo "- wrk -d$DURATION after a $WARMUP warm-up, $CONNECTIONS connections in all; rate limits off"
    echo
    echo "$HEAD"
    printf '%s\n' "${ROWS[@]}"
    if [[ ${#SCALE_ROWS[@]} -gt 0 ]]; then
        echo
        echo "One node, -t2 -c$CONNECTIONS, as the database grows:"
        echo
        echo "| database | scenario | req/s | p50 ms | p99 ms | non-2xx |"
        echo "|---|---|---:|---:|---:|---:|"
        printf '%s\n' "${SCALE_ROWS[@]}"
    fi
)"
echo "$REPORT"
echo "$REPORT" >"$RESULTS"
log "wrote $RESULTS"
