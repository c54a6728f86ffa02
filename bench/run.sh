#!/usr/bin/env bash
# gatehouse benchmark: client_credentials tokens per second, measured with wrk on
# loopback against the release server.
#
# Usage: bench/run.sh [--database-url postgres://USER@HOST:PORT/DB] [--no-ceiling]
#
#   (no --database-url)  a fresh SQLite database in a temporary directory
#   --database-url URL   PostgreSQL: URL names a server and a database to connect
#                        to; the benchmark creates a fresh database beside it
#                        (gh_bench_<random>) and drops it at the end
#   --no-ceiling         skip the ceiling (a bare axum endpoint that only parses
#                        the form and signs an ES256 JWT of the same size)
#
# Environment: DURATION (wrk -d, default 10s), THREADS (wrk -t, 2),
# CONNECTIONS (wrk -c, 32), WARMUP (wrk -d of an unrecorded run before each
# scenario, 2s; 0 skips it), WRK_TIMEOUT (wrk --timeout, 5s), BENCH_LOG (the
# server's GATEHOUSE_LOG, info: the bound address is logged at info),
# STARTUP_TIMEOUT (seconds to wait for the server's address, 60),
# KEEP_TMP=1 (keep the temporary directory with logs and wrk output).
#
# Prints one Markdown row per scenario and writes the table, with the machine,
# to bench/results/latest-<backend>.md. Exits non-zero if any scenario saw a
# status >= 400 or a socket error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
WARMUP="${WARMUP:-2s}"
WRK_TIMEOUT="${WRK_TIMEOUT:-5s}"
BENCH_LOG="${BENCH_LOG:-info}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-60}"
KEEP_TMP="${KEEP_TMP:-0}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export LC_ALL=C

BASE_DATABASE_URL=""
CEILING=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --database-url) BASE_DATABASE_URL="${2:?--database-url needs a value}"; shift 2 ;;
        --database-url=*) BASE_DATABASE_URL="${1#*=}"; shift ;;
        --no-ceiling) CEILING=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/run.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
done

case "$BASE_DATABASE_URL" in
    "") BACKEND=sqlite ;;
    postgres://*|postgresql://*) BACKEND=postgres ;;
    *) echo "bench/run.sh: --database-url must be a postgres:// URL (SQLite is the default)" >&2; exit 2 ;;
esac

bench_start=$SECONDS
log() { printf '[bench %4ds] %s\n' "$((SECONDS - bench_start))" "$*" >&2; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }

# "15s" / "2m" / "1h" / "15" -> seconds, for the outer timeout around wrk.
duration_seconds() {
    local d="$1"
    case "$d" in
        *h) echo $(( ${d%h} * 3600 )) ;;
        *m) echo $(( ${d%m} * 60 )) ;;
        *s) echo $(( ${d%s} )) ;;
        *) echo $(( d )) ;;
    esac
}
duration_seconds "$DURATION" >/dev/null 2>&1 || die "DURATION must look like 15s, 2m or 15: got '$DURATION'"
duration_seconds "$WARMUP" >/dev/null 2>&1 || die "WARMUP must look like 2s or 0: got '$WARMUP'"

# --- tools ------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 is needed"
command -v cargo >/dev/null || die "cargo is needed"
if ! command -v wrk >/dev/null; then
    log "wrk not found: installing it with apt-get"
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "wrk is missing and installing it needs root (apt-get install -y wrk)"
        SUDO=sudo
    fi
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >&2
    command -v wrk >/dev/null || die "apt-get installed no wrk"
fi
if [[ $BACKEND == postgres ]]; then
    command -v psql >/dev/null || die "psql is needed to create and drop the PostgreSQL benchmark database"
fi

# --- build ------------------------------------------------------------------
log "cargo build --release -p gatehouse"
cargo build --release -p gatehouse >&2
BIN="$ROOT/target/release/gatehouse"
[[ -x $BIN ]] || die "no $BIN after the build"
if [[ $CEILING == 1 ]]; then
    log "cargo build --release (bench/ceiling)"
    cargo build --release --manifest-path bench/ceiling/Cargo.toml --target-dir "$ROOT/target" >&2
    CEILING_BIN="$ROOT/target/release/gatehouse-bench-ceiling"
fi

# --- clean-up, whatever happens from here on --------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")"
SERVER_PID=""
CEILING_PID=""
PG_DATABASE=""

stop_process() {
    local pid="$1" name="$2" i
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name did not stop within 10 s of SIGTERM: killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    trap - EXIT
    [[ $status -eq 0 ]] || log "stopping (exit status $status): cleaning up"
    stop_process "$CEILING_PID" ceiling
    stop_process "$SERVER_PID" gatehouse
    if [[ -n $PG_DATABASE ]]; then
        psql "$BASE_DATABASE_URL" -v ON_ERROR_STOP=1 -qc "drop database if exists $PG_DATABASE with (force)" >&2 \
            || log "could not drop database $PG_DATABASE: drop it by hand"
    fi
    if [[ $KEEP_TMP == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- database ---------------------------------------------------------------
ADMIN_FLAGS=()
if [[ $BACKEND == sqlite ]]; then
    DATABASE_URL="sqlite://$TMP/g.db"
else
    PG_DATABASE="gh_bench_$(date +%s)_$RANDOM"
    log "creating PostgreSQL database $PG_DATABASE"
    psql "$BASE_DATABASE_URL" -v ON_ERROR_STOP=1 -qc "create database $PG_DATABASE" >&2 \
        || { PG_DATABASE=""; die "cannot create a database through $BASE_DATABASE_URL"; }
    DATABASE_URL="$(python3 bench/preflight.py db-url "$BASE_DATABASE_URL" "$PG_DATABASE")"
    # PostgreSQL has no file beside it to keep a master key in: a fresh one.
    ADMIN_FLAGS+=(--master-key "$(head -c32 /dev/urandom | base64)")
fi
log "database: $BACKEND, ${DATABASE_URL%%\?*}"

log "gatehouse client create --name bench --scope 'read write'"
"$BIN" client create --name bench --scope "read write" --json \
    --database-url "$DATABASE_URL" "${ADMIN_FLAGS[@]}" >"$TMP/client.json" 2>"$TMP/client.err" \
    || { cat "$TMP/client.err" >&2; die "gatehouse client create failed"; }
IFS=$'\t' read -r CLIENT_ID CLIENT_SECRET < <(python3 bench/preflight.py client "$TMP/client.json")
{ read -r BASIC_CREDENTIALS; read -r POST_CREDENTIALS; } \
    < <(python3 bench/preflight.py credentials "$CLIENT_ID" "$CLIENT_SECRET")
unset CLIENT_SECRET
log "client $CLIENT_ID"

# --- servers ----------------------------------------------------------------
# Waits for "listening addr=127.0.0.1:PORT" in a log file and prints the
# address; fails if the process exits first or the deadline passes.
wait_for_address() {
    local pid="$1" file="$2" name="$3" deadline=$((SECONDS + STARTUP_TIMEOUT)) addr
    while ((SECONDS < deadline)); do
        # Strip ANSI colours, in case the log is coloured.
        addr="$(sed 's/\x1b\[[0-9;]*m//g' "$file" 2>/dev/null \
            | grep -m1 'listening' | grep -oE 'addr"?[=:]"?127\.0\.0\.1:[0-9]+' \
            | grep -oE '127\.0\.0\.1:[0-9]+' | head -n1 || true)"
        if [[ -n $addr && ${addr#*:} != 0 ]]; then
            echo "$addr"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited before it was listening; its log:"
            tail -n 20 "$file" >&2
            return 1
        fi
        sleep 0.1
    done
    log "$name logged no 'listening addr=127.0.0.1:PORT' within ${STARTUP_TIMEOUT}s; its log:"
    tail -n 20 "$file" >&2
    return 1
}

log "starting gatehouse serve on 127.0.0.1:0 (GATEHOUSE_LOG=$BENCH_LOG)"
GATEHOUSE_LOG="$BENCH_LOG" NO_COLOR=1 "$BIN" serve --listen 127.0.0.1:0 \
    --database-url "$DATABASE_URL" "${ADMIN_FLAGS[@]}" >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!
ADDR="$(wait_for_address "$SERVER_PID" "$TMP/server.err" gatehouse)" || die "the server did not start"
URL="http://$ADDR"
log "gatehouse listening on $URL (pid $SERVER_PID)"

log "preflight: one request per scenario"
TOKEN_INFO="$(python3 bench/preflight.py token "$URL/oauth/token" --basic "$BASIC_CREDENTIALS" --save-jwt "$TMP/jwt")" \
    || die "client_secret_basic request failed"
log "  client_credentials_basic: $TOKEN_INFO"
INFO="$(python3 bench/preflight.py token "$URL/oauth/token" --post "$POST_CREDENTIALS")" \
    || die "client_secret_post request failed"
log "  client_credentials_post: $INFO"
INFO="$(python3 bench/preflight.py get "$URL/oauth/jwks" --json-key keys)" || die "jwks request failed"
log "  jwks: $INFO"
INFO="$(python3 bench/preflight.py get "$URL/healthz")" || die "healthz request failed"
log "  healthz: $INFO"

if [[ $CEILING == 1 ]]; then
    log "starting the ceiling with the same JWT header and claims"
    "$CEILING_BIN" --listen 127.0.0.1:0 --header "$TMP/jwt-header.json" --claims "$TMP/jwt-claims.json" \
        >"$TMP/ceiling.out" 2>"$TMP/ceiling.err" &
    CEILING_PID=$!
    CEILING_ADDR="$(wait_for_address "$CEILING_PID" "$TMP/ceiling.err" ceiling)" || die "the ceiling did not start"
    CEILING_INFO="$(python3 bench/preflight.py token "http://$CEILING_ADDR/oauth/token" --basic "$BASIC_CREDENTIALS")" \
        || die "the ceiling's token request failed"
    log "  ceiling: $CEILING_INFO"
fi

# --- wrk --------------------------------------------------------------------
export BENCH_LUA_DIR="$ROOT/bench/lua"
export BENCH_BASIC_CREDENTIALS="$BASIC_CREDENTIALS"
export BENCH_POST_CREDENTIALS="$POST_CREDENTIALS"
TABLE_HEAD=$'| scenario | req/s | p50 ms | p99 ms | non-2xx |\n|---|---:|---:|---:|---:|'
ROWS=()
declare -A RPS P99 NON2XX SOCKET_ERRORS

# run_wrk SCENARIO SCRIPT URL DURATION: prints wrk's BENCH_RESULT line.
run_wrk() {
    local scenario="$1" script="$2" url="$3" duration="$4" out="$TMP/wrk-$1.txt"
    local limit=$(($(duration_seconds "$duration") + 60))
    BENCH_SCENARIO="$scenario" timeout --kill-after=5 "$limit" \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --timeout "$WRK_TIMEOUT" \
        -s "$BENCH_LUA_DIR/$script" "$url" >"$out" 2>&1 \
        || { cat "$out" >&2; die "wrk failed on $scenario"; }
    grep -m1 '^BENCH_RESULT ' "$out" || { cat "$out" >&2; die "wrk printed no result for $scenario"; }
    # The CPU wrk used: this shell's children's user and system time, e.g.
    # "0m5.120s 0m2.010s" (run_wrk runs in a subshell of its own).
    # (`times` is written to a file: in $(...) it would run in a child of its own.)
    times >"$out.times"
    awk -v t="$(tail -n1 "$out.times")" 'BEGIN {
        n = split(t, a, " ")
        for (i = 1; i <= n; i++) { split(a[i], m, "m"); sub("s", "", m[2]); s += m[1] * 60 + m[2] }
        printf "WRK_CPU_SECONDS %.2f\n", s }'
}

# CPU time, in clock ticks, that process $1 (all its threads) has used.
process_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
CLOCK_TICKS="$(getconf CLK_TCK)"
declare -A CPU_SPLIT OTHER_LOAD

# What the database did while a scenario ran: issuing a token for a known client
# should neither query nor write it (issue 2, point 8). PostgreSQL: its counters
# (flushed by each backend at most once a second, so approximate; the snapshot
# query is one transaction itself). SQLite: whether the database or WAL file
# changed (reads leave both alone).
declare -A DB_ACTIVITY
db_snapshot() {
    if [[ $BACKEND == postgres ]]; then
        psql "$DATABASE_URL" -Atqc "select xact_commit + xact_rollback, tup_returned + tup_fetched,
            tup_inserted + tup_updated + tup_deleted from pg_stat_database
            where datname = current_database()" | tr '|' ' '
    else
        python3 -c 'import os, sys
for f in sys.argv[1:]:
    try:
        st = os.stat(f); print(st.st_size, st.st_mtime_ns, end=" ")
    except FileNotFoundError:
        print("- -", end=" ")' "$TMP/g.db" "$TMP/g.db-wal"
    fi
}
db_activity() {
    local before="$1" after="$2" requests="$3"
    if [[ $BACKEND == postgres ]]; then
        # shellcheck disable=SC2086
        set -- $before $after
        echo "about $(($4 - $1 - 1)) transactions, $(($5 - $2)) rows read, $(($6 - $3)) rows written for $requests requests"
    elif [[ $before == "$after" ]]; then
        echo "database files unchanged over $requests requests"
    else
        echo "database files WRITTEN during $requests requests ($before -> $after)"
    fi
}

# bench_scenario SCENARIO SCRIPT URL PID: PID is the server under test.
bench_scenario() {
    local scenario="$1" script="$2" url="$3" pid="$4" result field db_before
    local stat_before stat_after server_before server_after
    if [[ $(duration_seconds "$WARMUP") -gt 0 ]]; then
        log "$scenario: warm-up $WARMUP"
        run_wrk "$scenario-warmup" "$script" "$url" "$WARMUP" >/dev/null
    fi
    log "$scenario: wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
    [[ $url == "$URL/" ]] && db_before="$(db_snapshot)"
    stat_before="$(head -n1 /proc/stat)"
    server_before="$(process_ticks "$pid")"
    result="$(run_wrk "$scenario" "$script" "$url" "$DURATION")"
    stat_after="$(head -n1 /proc/stat)"
    server_after="$(process_ticks "$pid")"
    # How the cores were shared: the server, wrk, and everything else (which
    # should be ~0: other work on the machine lowers every figure).
    local split other
    read -r split other < <(awk -v a="$stat_before" -v b="$stat_after" \
        -v server=$((server_after - server_before)) -v hz="$CLOCK_TICKS" \
        -v wrk="$(sed -n 's/^WRK_CPU_SECONDS //p' <<<"$result")" 'BEGIN {
            n = split(a, x, " "); split(b, y, " ")
            for (i = 2; i <= n; i++) { t += y[i] - x[i]; if (i == 5 || i == 6) idle += y[i] - x[i] }
            other = t - idle - server - wrk * hz; if (other < 0) other = 0
            printf "server=%.0f%%,wrk=%.0f%%,idle=%.0f%% %.0f\n", 100 * server / t, 100 * wrk * hz / t,
                100 * idle / t, 100 * other / t }')
    CPU_SPLIT[$scenario]="$split"
    OTHER_LOAD[$scenario]="$other"
    if ((other > 5)); then
        log "warning: other processes used ${other}% of the CPU during $scenario: its figures are low"
    fi
    local rps="" p50="" p99="" non2xx="" sock="" requests=""
    for field in $result; do
        case "$field" in
            requests=*) requests="${field#*=}" ;;
            rps=*) rps="${field#*=}" ;;
            p50_ms=*) p50="${field#*=}" ;;
            p99_ms=*) p99="${field#*=}" ;;
            non2xx=*) non2xx="${field#*=}" ;;
            socket_errors=*) sock="${field#*=}" ;;
        esac
    done
    RPS[$scenario]="$rps"
    P99[$scenario]="$p99"
    NON2XX[$scenario]="$non2xx"
    SOCKET_ERRORS[$scenario]="$sock"
    if [[ $url == "$URL/" ]]; then
        DB_ACTIVITY[$scenario]="$(db_activity "$db_before" "$(db_snapshot)" "$requests")"
    fi
    local row
    row="$(printf '| %s | %.0f | %.2f | %.2f | %d |' "$scenario" "$rps" "$p50" "$p99" "$non2xx")"
    ROWS+=("$row")
    echo "$row"
}

# Other work on the machine skews every figure: measure it over one second.
cpu_busy_percent() {
    local a b
    a="$(head -n1 /proc/stat)"; sleep 1; b="$(head -n1 /proc/stat)"
    awk -v a="$a" -v b="$b" 'BEGIN {
        n = split(a, x, " "); split(b, y, " ")
        for (i = 2; i <= n; i++) { t += y[i] - x[i]; if (i == 5 || i == 6) idle += y[i] - x[i] }
        printf "%.0f", (t > 0 ? 100 * (t - idle) / t : 0) }'
}
BUSY_BEFORE="$(cpu_busy_percent)"
if ((BUSY_BEFORE > 10)); then
    log "warning: the machine is ${BUSY_BEFORE}% busy before the benchmark starts: figures will be low"
fi

echo "$TABLE_HEAD"
bench_scenario client_credentials_basic token_basic.lua "$URL/" "$SERVER_PID"
bench_scenario client_credentials_post token_post.lua "$URL/" "$SERVER_PID"
bench_scenario jwks jwks.lua "$URL/" "$SERVER_PID"
bench_scenario healthz healthz.lua "$URL/" "$SERVER_PID"
if [[ $CEILING == 1 ]]; then
    bench_scenario ceiling token_basic.lua "http://$CEILING_ADDR/" "$CEILING_PID"
fi

# --- after the run ----------------------------------------------------------
kill -0 "$SERVER_PID" 2>/dev/null || die "the server died during the benchmark; its log is in $TMP/server.err"
SERVER_LOG_LINES=$(wc -l <"$TMP/server.err")
SERVER_LOG_BYTES=$(wc -c <"$TMP/server.err")
SERVER_WARNINGS="$(sed 's/\x1b\[[0-9;]*m//g' "$TMP/server.err" | grep -E '\b(WARN|ERROR)\b|"level":"(WARN|ERROR)"' || true)"
SERVER_WARNING_COUNT=0
[[ -n $SERVER_WARNINGS ]] && SERVER_WARNING_COUNT=$(wc -l <<<"$SERVER_WARNINGS")

SUMMARY=()
ratio_line() {
    local scenario="$1"
    awk -v a="${RPS[$scenario]}" -v c="${RPS[ceiling]}" -v s="$scenario" \
        'BEGIN { r = a / c; printf "%s / ceiling = %.3f (target >= 0.85: %s)", s, r, (r >= 0.85 ? "met" : "NOT met") }'
}
if [[ $CEILING == 1 ]]; then
    SUMMARY+=("$(ratio_line client_credentials_basic)" "$(ratio_line client_credentials_post)")
fi
for s in client_credentials_basic client_credentials_post; do
    SUMMARY+=("$(awk -v r="${RPS[$s]}" -v p="${P99[$s]}" -v s="$s" 'BEGIN {
        printf "%s: %.0f tokens/s (target >= 20000: %s), p99 %.2f ms (target <= 5: %s)", s, r,
            (r >= 20000 ? "met" : "NOT met"), p, (p <= 5 ? "met" : "NOT met") }')")
done
FAILED=()
for s in "${!NON2XX[@]}"; do
    [[ ${NON2XX[$s]} -eq 0 ]] || FAILED+=("$s: ${NON2XX[$s]} responses with status >= 400")
    [[ ${SOCKET_ERRORS[$s]} -eq 0 ]] || FAILED+=("$s: ${SOCKET_ERRORS[$s]} socket errors (connect/read/write/timeout)")
done
for s in client_credentials_basic client_credentials_post; do
    SUMMARY+=("$BACKEND during $s: ${DB_ACTIVITY[$s]}")
done
CPU_LINE="CPU of the $(nproc) cores during each run (other = neither the server nor wrk):"
for s in client_credentials_basic client_credentials_post jwks healthz ceiling; do
    [[ -n ${CPU_SPLIT[$s]:-} ]] && CPU_LINE+=" $s ${CPU_SPLIT[$s]},other=${OTHER_LOAD[$s]}%;"
done
SUMMARY+=("${CPU_LINE%;}")
SUMMARY+=("server log: $SERVER_LOG_LINES lines ($SERVER_LOG_BYTES bytes) at GATEHOUSE_LOG=$BENCH_LOG, $SERVER_WARNING_COUNT at WARN or ERROR")

echo
printf '%s\n' "${SUMMARY[@]}"
if [[ $SERVER_WARNING_COUNT -gt 0 ]]; then
    log "server warnings and errors (first 10, counted by message):"
    sed -E 's/^[^ ]+ +//' <<<"$SERVER_WARNINGS" | sort | uniq -c | sort -rn | head -n 10 >&2
fi

# --- results file -----------------------------------------------------------
mkdir -p bench/results
RESULTS="bench/results/latest-$BACKEND.md"
GIT_REV="$(git rev-parse --short HEAD 2>/dev/null || echo 'no commit')"
if [[ -n "$(git status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
    GIT_REV="$GIT_REV + uncommitted changes"
fi
CPU_MODEL="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
MEMORY="$(free -h | awk '/^Mem:/ { print $2 }')"
{
    echo "# gatehouse benchmark: $BACKEND"
    echo
    echo "- machine: $(nproc) cores, ${CPU_MODEL:-unknown CPU}, $MEMORY memory"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- git: $GIT_REV; $(rustc --version)"
    echo "- load: $(wrk --version 2>&1 | head -n1 | awk '{ print $1, $2 }') -t$THREADS -c$CONNECTIONS -d$DURATION (after a ${WARMUP} warm-up) on loopback; wrk and the server share the cores"
    echo "- other load: ${BUSY_BEFORE}% CPU busy in the second before the first scenario"
    echo "- token: $TOKEN_INFO"
    [[ $CEILING == 1 ]] && echo "- ceiling: bare axum endpoint, form parse + ES256 sign (aws-lc-rs), same JWT header and claims: $CEILING_INFO"
    echo
    echo "$TABLE_HEAD"
    printf '%s\n' "${ROWS[@]}"
    echo
    printf -- '- %s\n' "${SUMMARY[@]}"
    [[ ${#FAILED[@]} -eq 0 ]] || printf -- '- FAILED: %s\n' "${FAILED[@]}"
} >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
log "wrote $RESULTS"

if [[ ${#FAILED[@]} -gt 0 ]]; then
    printf 'FAILED: %s\n' "${FAILED[@]}" >&2
    exit 1
fi
