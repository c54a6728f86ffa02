#!/usr/bin/env bash
# Failed client authentication buys Argon2 work. A client whose
# secret was imported (`client create --secret-stdin`, stored with Argon2id: ~20 ms
# of CPU and 19 MiB per verification) is attacked by CONNECTIONS (200) wrk
# connections sending wrong secrets with Basic, while an honest client does
# client_credentials at a fixed rate. Measures, asserts nothing: the server's peak
# RSS and thread count, its RSS RECOVERY s after the attack, the honest client's
# p50/p99, and what the attacker got (401, 429, 503, ...).
#
# Usage: bench/attack.sh [--database-url postgres://USER@HOST:PORT/DB]
#                        [--endpoint token|introspect] [--cases LIST]
#
#   (no --database-url)  a fresh SQLite database in a temporary directory
#   --database-url URL   PostgreSQL: creates gh_attack_<random> beside DB, drops it
#   --endpoint E         attack POST /oauth/token (default) or /oauth/introspect
#   --cases LIST         comma-separated, in this order (default all three):
#     baseline        no attack: the honest client alone, BASELINE s
#     one-address     the attack from one address (X-Forwarded-For 198.51.100.7)
#     many-addresses  every attacking request from a fresh random 10.x.y.z: what
#                     an attacker with a botnet does to a per-address limit
#
# Every case starts a fresh `gatehouse serve` (same database) with
# --trusted-proxies 127.0.0.1, so that X-Forwarded-For names the client as it would
# behind a load balancer: the honest client is 192.0.2.10, the victim (the
# imported-secret client using its right secret, VICTIM_RATE/s) 192.0.2.20. Rate
# limits are the server's defaults (an attack is what they are for); SERVER_FLAGS
# adds flags. The honest client and the victim are open-loop (bench/attack.py load:
# latency from each request's scheduled time); the attacker is closed-loop wrk
# (bench/lua/attack.lua, a fresh random wrong secret per request). The server's
# VmRSS, VmHWM and Threads are read every 100 ms (bench/attack.py sample), which
# also stops the attack, and the clients with it, if the RSS passes RSS_LIMIT_MIB
# (the row then says "stopped early": the machine is shared, and the target is
# 300). The sampler and the two clients stand for processes on other machines: as
# root they run at nice MEASURE_NICE (-10), so that the attack's threads do not
# starve them here.
#
# Environment: DURATION (attack seconds, 20), CONNECTIONS (200), THREADS (wrk -t, 2),
# RECOVERY (seconds sampled after the attack, 10), BASELINE (seconds of the baseline
# case, 5), HONEST_RATE (requests/s, 100), HONEST_CONNECTIONS (4), VICTIM_RATE (5;
# 0: no victim), WRK_TIMEOUT (10s), RSS_LIMIT_MIB (a third of MemAvailable, at
# most 8192), MEASURE_NICE (-10 as root, else 0), SERVER_FLAGS (extra `gatehouse
# serve` flags), BENCH_LOG (the server's GATEHOUSE_LOG, info), STARTUP_TIMEOUT
# (60), KEEP_TMP=1, GATEHOUSE_BIN (attack that binary instead of building the work
# tree; BENCH_REV names it), BENCH_RESULTS (default
# bench/results/latest-attack-<backend>.md).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" attack

DURATION="${DURATION:-20}"
CONNECTIONS="${CONNECTIONS:-200}"
THREADS="${THREADS:-2}"
RECOVERY="${RECOVERY:-10}"
BASELINE="${BASELINE:-5}"
HONEST_RATE="${HONEST_RATE:-100}"
HONEST_CONNECTIONS="${HONEST_CONNECTIONS:-4}"
VICTIM_RATE="${VICTIM_RATE:-5}"
WRK_TIMEOUT="${WRK_TIMEOUT:-10s}"
# A third of the memory available now, at most 8 GiB: the attack must not take a
# shared machine's memory (the server goes on allocating after the attack stops).
RSS_LIMIT_MIB="${RSS_LIMIT_MIB:-$(awk '/^MemAvailable:/ { m = int($2 / 1024 / 3); print (m > 8192 ? 8192 : m) }' /proc/meminfo)}"
BENCH_LOG="${BENCH_LOG:-info}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-60}"
KEEP_TMP="${KEEP_TMP:-0}"
read -ra EXTRA_SERVER_FLAGS <<<"${SERVER_FLAGS:-}"

HONEST_XFF=192.0.2.10
VICTIM_XFF=192.0.2.20
ATTACKER_XFF=198.51.100.7
PROBE_XFF=203.0.113.9

BASE_DATABASE_URL=""
ENDPOINT=token
CASE_LIST="baseline,one-address,many-addresses"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --database-url) BASE_DATABASE_URL="${2:?--database-url needs a value}"; shift 2 ;;
        --database-url=*) BASE_DATABASE_URL="${1#*=}"; shift ;;
        --endpoint) ENDPOINT="${2:?--endpoint needs a value}"; shift 2 ;;
        --endpoint=*) ENDPOINT="${1#*=}"; shift ;;
        --cases) CASE_LIST="${2:?--cases needs a value}"; shift 2 ;;
        --cases=*) CASE_LIST="${1#*=}"; shift ;;
        -h|--help) print_help; exit 0 ;;
        *) echo "bench/attack.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
done

BACKEND="$(database_backend "$BASE_DATABASE_URL")" \
    || die "--database-url must be a postgres:// URL (SQLite is the default)"
case "$ENDPOINT" in
    token) ATTACK_PATH=/oauth/token; ATTACK_BODY="grant_type=client_credentials" ;;
    introspect) ATTACK_PATH=/oauth/introspect; ATTACK_BODY="token=gho_not_a_token" ;;
    *) die "--endpoint must be token or introspect" ;;
esac
CASES=()
IFS=',' read -ra requested <<<"$CASE_LIST"
for c in baseline one-address many-addresses; do
    [[ ",$CASE_LIST," == *",$c,"* ]] && CASES+=("$c")
done
for c in "${requested[@]}"; do
    [[ $c == baseline || $c == one-address || $c == many-addresses || -z $c ]] \
        || die "unknown case '$c' (known: baseline, one-address, many-addresses)"
done
[[ ${#CASES[@]} -gt 0 ]] || die "no case selected"
for v in DURATION CONNECTIONS THREADS RECOVERY BASELINE HONEST_CONNECTIONS RSS_LIMIT_MIB STARTUP_TIMEOUT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number: got '${!v}'"
done

# --- tools ------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 is needed"
install_wrk
[[ $BACKEND == sqlite ]] || command -v psql >/dev/null || die "psql is needed for PostgreSQL"

# --- build ------------------------------------------------------------------
gatehouse_binary attacking

# --- clean-up, whatever happens from here on --------------------------------
start_cleanup attack
LOAD_PIDS=()
before_cleanup() {
    local pid
    for pid in "${LOAD_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${LOAD_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}

# --- database and clients ---------------------------------------------------
create_database gh_attack

create_client honest </dev/null
HONEST_BASIC="$BASIC_CREDENTIALS"
# The victim: an imported secret, stored with Argon2id. It may introspect, so that
# the introspection endpoint answers it (and checks its secret) too.
VICTIM_SECRET="$(head -c 24 /dev/urandom | base64 | tr -d '+/=')"
create_client victim --secret-stdin --can-introspect <<<"$VICTIM_SECRET"
VICTIM_ID="$CLIENT_ID"
VICTIM_BASIC="$BASIC_CREDENTIALS"

# --- one server per case ----------------------------------------------------
SERVER_FLAGS_USED=(--listen 127.0.0.1:0 --trusted-proxies 127.0.0.1 "${EXTRA_SERVER_FLAGS[@]}")
start_server() {
    local dir="$1"
    GATEHOUSE_LOG="$BENCH_LOG" NO_COLOR=1 "$BIN" serve "${SERVER_FLAGS_USED[@]}" \
        --database-url "$DATABASE_URL" "${ADMIN_FLAGS[@]}" >"$dir/server.out" 2>"$dir/server.err" &
    SERVER_PID=$!
    ADDR="$(wait_for_address "$SERVER_PID" "$dir/server.err" gatehouse)" || die "the server did not start"
    URL="http://$ADDR"
}

export BENCH_LUA_DIR="$ROOT/bench/lua"
# The sampler and the clients at MEASURE_NICE (see the top); the server and wrk
# at the default priority.
if [[ -z ${MEASURE_NICE:-} ]]; then
    MEASURE_NICE=0
    [[ $(id -u) -eq 0 ]] && MEASURE_NICE=-10
fi
NICE=(nice -n "$MEASURE_NICE")
WRONG_SECRET_COST=""
declare -A SERVER_LOG
# run_case NAME: baseline, one-address or many-addresses.
run_case() {
    local name="$1" dir="$TMP/$1" seconds xff="" busy
    local honest_pid victim_pid="" attacker_pid="" sampler_pid go
    mkdir -p "$dir"
    busy="$(cpu_busy_percent)"
    start_server "$dir"
    log "$name: gatehouse on $URL (pid $SERVER_PID); the machine was ${busy}% busy the second before"
    ((busy <= 10)) || log "warning: the machine is ${busy}% busy before $name: the figures will suffer"
    # The honest client works, and so does the victim with its right secret (an
    # owner who used it before the attack: whatever the server remembers of it).
    python3 bench/preflight.py token "$URL/oauth/token" --basic "$HONEST_BASIC" >/dev/null \
        || die "$name: the honest client's token request failed"
    python3 bench/attack.py probe "$URL/oauth/token" --basic "$VICTIM_BASIC" --count 1 --xff "$VICTIM_XFF" \
        --expect 200 >/dev/null || die "$name: the victim's right secret did not get a token"
    python3 bench/attack.py probe "$URL$ATTACK_PATH" --basic "$VICTIM_BASIC" --count 1 --xff "$VICTIM_XFF" \
        --body "$ATTACK_BODY" --expect 200 >/dev/null || die "$name: the victim's right secret was refused by $ATTACK_PATH"

    if [[ $name == baseline ]]; then
        seconds="$BASELINE"
    else
        seconds="$DURATION"
        [[ $name == one-address ]] && xff="$ATTACKER_XFF" || xff=many
    fi
    # The sampler and the clients start first (Python's start-up is slow on a
    # machine the attack saturates), open their connections, say they are ready,
    # and start together on the go file, written once wrk runs.
    rm -f "$dir"/ready-* "$dir/go" "$dir/stop"
    "${NICE[@]}" python3 bench/attack.py sample --pid "$SERVER_PID" --ready-file "$dir/ready-sampler" \
        --go-file "$dir/go" --stop-file "$dir/stop" --seconds "$seconds" --recovery "$RECOVERY" --max-seconds "$((seconds + 30))" \
        --rss-limit-mib "$RSS_LIMIT_MIB" --out "$dir/sample.json" &
    sampler_pid=$!
    LOAD_PIDS=("$sampler_pid")
    "${NICE[@]}" python3 bench/attack.py load "$URL/oauth/token" --basic "$HONEST_BASIC" --xff "$HONEST_XFF" \
        --rate "$HONEST_RATE" --connections "$HONEST_CONNECTIONS" --seconds "$seconds" \
        --ready-file "$dir/ready-honest" --go-file "$dir/go" --stop-file "$dir/stop" --out "$dir/honest.json" &
    honest_pid=$!
    LOAD_PIDS+=("$honest_pid")
    go="honest=$honest_pid"
    local ready=(sampler honest)
    if [[ $VICTIM_RATE != 0 ]]; then
        "${NICE[@]}" python3 bench/attack.py load "$URL/oauth/token" --basic "$VICTIM_BASIC" --xff "$VICTIM_XFF" \
            --rate "$VICTIM_RATE" --connections 1 --seconds "$seconds" \
            --ready-file "$dir/ready-victim" --go-file "$dir/go" --stop-file "$dir/stop" --out "$dir/victim.json" &
        victim_pid=$!
        LOAD_PIDS+=("$victim_pid")
        go+=" victim=$victim_pid"
        ready+=(victim)
    fi
    local r deadline=$((SECONDS + 30))
    for r in "${ready[@]}"; do
        until [[ -e $dir/ready-$r ]]; do
            ((SECONDS < deadline)) || die "$name: the $r process did not get ready within 30 s"
            kill -0 "${LOAD_PIDS[@]}" 2>/dev/null || die "$name: a load process exited before the start"
            sleep 0.02
        done
    done
    if [[ -n $xff ]]; then
        log "$name: wrk -t$THREADS -c$CONNECTIONS -d${seconds}s, wrong secrets for $VICTIM_ID on $ATTACK_PATH (X-Forwarded-For: $xff)"
        BENCH_ATTACK_CLIENT_ID="$VICTIM_ID" BENCH_ATTACK_PATH="$ATTACK_PATH" BENCH_ATTACK_XFF="$xff" \
            wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --timeout "$WRK_TIMEOUT" \
            -s "$BENCH_LUA_DIR/attack.lua" "$URL" >"$dir/attack.txt" 2>&1 &
        attacker_pid=$!
        LOAD_PIDS+=("$attacker_pid")
        go+=" attacker=$attacker_pid"
    else
        log "$name: no attack, ${seconds}s"
    fi
    echo "$go" >"$dir/go.tmp" && mv "$dir/go.tmp" "$dir/go"

    wait "$honest_pid" || die "$name: the honest client failed"
    [[ -z $victim_pid ]] || wait "$victim_pid" || die "$name: the victim's client failed"
    if [[ -n $attacker_pid ]]; then
        wait "$attacker_pid" || log "$name: wrk exited with status $?"
        grep -q '^ATTACK_RESULT ' "$dir/attack.txt" || { cat "$dir/attack.txt" >&2; die "$name: wrk printed no result"; }
        log "$name: attack over; sampling the server ${RECOVERY}s more"
    fi
    wait "$sampler_pid" || die "$name: the sampler failed"
    LOAD_PIDS=()
    if [[ $name == baseline ]]; then
        # What one wrong secret costs on an idle server (a fresh secret each time).
        WRONG_SECRET_COST="$(python3 bench/attack.py probe "$URL$ATTACK_PATH" --wrong-secret-for "$VICTIM_ID" \
            --count 5 --xff "$PROBE_XFF" --body "$ATTACK_BODY")" || die "the wrong-secret probe failed"
        log "baseline: 5 wrong secrets one after the other: $WRONG_SECRET_COST"
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || die "$name: the server died; its log is in $dir/server.err (KEEP_TMP=1 keeps it)"
    stop_process "$SERVER_PID" gatehouse
    SERVER_PID=""
    local warnings
    warnings="$(server_warnings "$dir/server.err")"
    SERVER_LOG[$name]="$(wc -l <"$dir/server.err") lines, $( [[ -z $warnings ]] && echo 0 || wc -l <<<"$warnings") at WARN or ERROR"
    if [[ -n $warnings ]]; then
        SERVER_LOG[$name]+=" (most frequent: $(sed -E 's/^[^ ]+ +//; s/[0-9a-f]{32}/<id>/g' <<<"$warnings" \
            | sort | uniq -c | sort -rn | head -n 3 | sed -E 's/^ +//' | cut -c1-200 | paste -sd ';' -))"
    fi
    python3 bench/attack.py report "$TMP" "$name" | sed -n 3p >&2
}

BUSY_BEFORE="$(cpu_busy_percent)"
for c in "${CASES[@]}"; do run_case "$c"; done

# --- report -----------------------------------------------------------------
TABLE="$(python3 bench/attack.py report "$TMP" "${CASES[@]}")"
for c in "${CASES[@]}"; do TABLE+=$'\n'"- server log, $c: ${SERVER_LOG[$c]}"; done

RESULTS="${BENCH_RESULTS:-bench/results/latest-attack-$BACKEND.md}"
mkdir -p "$(dirname "$RESULTS")"
GIT_REV="$(git_revision)"
if [[ $BACKEND == postgres ]]; then
    DB_TEXT="PostgreSQL $(psql "$DATABASE_URL" -Atqc "select current_setting('server_version')" 2>/dev/null || echo '?') (database $PG_DATABASE, dropped after)"
else
    DB_TEXT="SQLite in a temporary directory"
fi
REPORT="$(
    echo "# gatehouse under a wrong-secret attack: $BACKEND"
    echo
    echo "- machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), $(free -h | awk '/^Mem:/ { print $2 }') memory; the server, wrk and the clients share the cores"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- git: $GIT_REV; $(rustc --version 2>/dev/null || echo 'rustc ?')"
    echo "- database: $DB_TEXT"
    echo "- server: gatehouse serve ${SERVER_FLAGS_USED[*]} (rate limits at their defaults unless named), GATEHOUSE_LOG=$BENCH_LOG, a fresh process per case"
    echo "- attack: $(wrk --version 2>&1 | head -n1 | awk '{ print $1, $2 }') -t$THREADS -c$CONNECTIONS -d${DURATION}s --timeout $WRK_TIMEOUT, POST $ATTACK_PATH, Basic with the victim's client_id and a fresh random 24-character secret per request; one-address: X-Forwarded-For $ATTACKER_XFF; many-addresses: a random 10.x.y.z per request"
    echo "- victim: a client created with --secret-stdin (Argon2id); with its right secret, open loop at ${VICTIM_RATE}/s from $VICTIM_XFF"
    [[ -z $WRONG_SECRET_COST ]] || echo "- one wrong secret on the idle server (5 in a row, after the baseline): $WRONG_SECRET_COST"
    echo "- honest client: client_credentials, client_secret_basic (a generated secret: SHA-256), open loop at ${HONEST_RATE}/s over $HONEST_CONNECTIONS keep-alive connections from $HONEST_XFF; latency from each request's scheduled time; the clients and the sampler at nice $MEASURE_NICE, the server and wrk at 0"
    echo "- memory: VmRSS, VmHWM (kernel high-water mark, catches peaks between samples) and Threads of /proc/PID/status every 100 ms; RSS +N s: N s after wrk stopped; the attack (and the clients) stop early if the RSS passes $RSS_LIMIT_MIB MiB"
    echo "- other load: ${BUSY_BEFORE}% CPU busy in the second before the first case"
    echo
    echo "$TABLE"
)"
echo
echo "$REPORT"
echo "$REPORT" >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
log "wrote $RESULTS"
