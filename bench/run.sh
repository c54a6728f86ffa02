#!/usr/bin/env bash
# gatehouse benchmark: tokens, refresh rotations and introspections per second,
# measured with wrk on loopback against the release server.
#
# Usage: bench/run.sh [--database-url postgres://USER@HOST:PORT/DB] [--no-ceiling]
#                     [--scenarios LIST]
#
#   (no --database-url)  a fresh SQLite database in a temporary directory
#   --database-url URL   PostgreSQL: URL names a server and a database to connect
#                        to; the benchmark creates a fresh database beside it
#                        (gh_bench_<random>) and drops it at the end
#   --no-ceiling         skip the ceiling (a bare axum endpoint that only parses
#                        the form and signs an ES256 JWT of the same size)
#   --scenarios LIST     comma-separated scenarios and groups (default all):
#                        client_credentials_basic, client_credentials_post,
#                        client_credentials_private_key_jwt, jwks, healthz,
#                        ceiling (group: client_credentials),
#                        refresh, introspect_jwt, introspect_opaque (group:
#                        grants)
#
# Environment: DURATION (wrk -d, default 10s), THREADS (wrk -t, 2),
# CONNECTIONS (wrk -c, 32), WARMUP (wrk -d of an unrecorded run before each
# scenario, 2s; 0 skips it), WRK_TIMEOUT (wrk --timeout, 5s), BENCH_LOG (the
# server's GATEHOUSE_LOG, info: the bound address is logged at info),
# STARTUP_TIMEOUT (seconds to wait for the server's address, 60),
# BENCH_RATE_LIMITS=1 (keep the server's default rate limits on),
# WAIT_QUIET (seconds to wait, before each scenario, for the machine to be under
# 10 % busy; 0, the default, does not wait),
# KEEP_TMP=1 (keep the temporary directory with logs and wrk output),
# GATEHOUSE_BIN (benchmark this binary instead of building the work tree, e.g. an
# older commit's; BENCH_REV then names it in the report), BENCH_RESULTS (the
# results file, default bench/results/latest-<backend>.md),
# ASSERTION_RATE (private_key_jwt: the rate, per second, the assertions of a wrk
# run are made for when client_secret_basic did not run first, 30000; else 1.5 x
# its rate), ASSERTIONS_MAX (at most this many assertions per wrk run, 400000).
#
# Prints one Markdown row per scenario and writes the table, with the machine,
# to bench/results/latest-<backend>.md. Exits non-zero if any scenario saw a
# status >= 400 or a socket error, or a refresh answered anything but 200.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" bench

DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
WARMUP="${WARMUP:-2s}"
WRK_TIMEOUT="${WRK_TIMEOUT:-5s}"
BENCH_LOG="${BENCH_LOG:-info}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-60}"
WAIT_QUIET="${WAIT_QUIET:-0}"
KEEP_TMP="${KEEP_TMP:-0}"

BASE_DATABASE_URL=""
NO_CEILING=0
SCENARIO_LIST="all"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --database-url) BASE_DATABASE_URL="${2:?--database-url needs a value}"; shift 2 ;;
        --database-url=*) BASE_DATABASE_URL="${1#*=}"; shift ;;
        --no-ceiling) NO_CEILING=1; shift ;;
        --scenarios) SCENARIO_LIST="${2:?--scenarios needs a value}"; shift 2 ;;
        --scenarios=*) SCENARIO_LIST="${1#*=}"; shift ;;
        -h|--help) print_help; exit 0 ;;
        *) echo "bench/run.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
done

BACKEND="$(database_backend "$BASE_DATABASE_URL")" \
    || { echo "bench/run.sh: --database-url must be a postgres:// URL (SQLite is the default)" >&2; exit 2; }

# --- scenarios --------------------------------------------------------------
# In the order they run. The client_credentials group measures tokens; grants the
# refresh rotations and introspection.
ALL_SCENARIOS=(client_credentials_basic client_credentials_post client_credentials_private_key_jwt
    jwks healthz ceiling refresh introspect_jwt introspect_opaque)
CC_GROUP=(client_credentials_basic client_credentials_post client_credentials_private_key_jwt jwks healthz ceiling)
declare -A WANTED
IFS=',' read -ra requested <<<"$SCENARIO_LIST"
for name in "${requested[@]}"; do
    case "$name" in
        all) for s in "${ALL_SCENARIOS[@]}"; do WANTED[$s]=1; done ;;
        client_credentials) for s in "${CC_GROUP[@]}"; do WANTED[$s]=1; done ;;
        grants) for s in refresh introspect_jwt introspect_opaque; do WANTED[$s]=1; done ;;
        "") ;;
        *) [[ " ${ALL_SCENARIOS[*]} " == *" $name "* ]] \
            || die "unknown scenario '$name' (known: ${ALL_SCENARIOS[*]}; groups: all, client_credentials, grants)"
           WANTED[$name]=1 ;;
    esac
done
[[ $NO_CEILING == 1 ]] && unset 'WANTED[ceiling]'
SCENARIOS=()
for s in "${ALL_SCENARIOS[@]}"; do [[ -n ${WANTED[$s]:-} ]] && SCENARIOS+=("$s"); done
[[ ${#SCENARIOS[@]} -gt 0 ]] || die "no scenario selected"
wanted() { [[ -n ${WANTED[$1]:-} ]]; }
CEILING=0
wanted ceiling && CEILING=1
PKJWT=0
wanted client_credentials_private_key_jwt && PKJWT=1
ASSERTION_RATE="${ASSERTION_RATE:-30000}"
ASSERTIONS_MAX="${ASSERTIONS_MAX:-400000}"

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
install_wrk
if [[ $BACKEND == postgres ]]; then
    command -v psql >/dev/null || die "psql is needed to create and drop the PostgreSQL benchmark database"
fi

# --- build ------------------------------------------------------------------
gatehouse_binary benchmarking
if [[ $CEILING == 1 || $PKJWT == 1 ]]; then
    # The ceiling, and the private_key_jwt scenario's assertion generator.
    log "cargo build --release (bench/ceiling)"
    cargo build --release --manifest-path bench/ceiling/Cargo.toml --target-dir "$ROOT/target" >&2
    CEILING_BIN="$ROOT/target/release/gatehouse-bench-ceiling"
    ASSERTIONS_BIN="$ROOT/target/release/gatehouse-bench-assertions"
fi

# --- clean-up, whatever happens from here on --------------------------------
start_cleanup bench
CEILING_PID=""
before_cleanup() { stop_process "$CEILING_PID" ceiling; }

# --- database ---------------------------------------------------------------
create_database gh_bench

create_client bench
CC_BASIC="$BASIC_CREDENTIALS"
CC_POST="$POST_CREDENTIALS"
BENCH_USER=bench
BENCH_PASSWORD=bench-password-123
if wanted refresh; then
    # Each wrk connection walks a rotation chain that starts at a password login.
    create_client bench-login --grant-types client_credentials,password,refresh_token
    LOGIN_BASIC="$BASIC_CREDENTIALS"
    log "gatehouse user create --username $BENCH_USER --scope 'read write'"
    echo "$BENCH_PASSWORD" | "$BIN" user create --username "$BENCH_USER" --password-stdin --scope "read write" \
        --json --database-url "$DATABASE_URL" "${ADMIN_FLAGS[@]}" >"$TMP/user.json" 2>"$TMP/user.err" \
        || { cat "$TMP/user.err" >&2; die "gatehouse user create failed"; }
fi
if wanted introspect_jwt || wanted introspect_opaque; then
    # A resource server: may introspect any client's tokens.
    create_client bench-resource-server --can-introspect
    INTROSPECT_BASIC="$BASIC_CREDENTIALS"
fi
if wanted introspect_opaque; then
    create_client bench-opaque --token-format opaque
    OPAQUE_BASIC="$BASIC_CREDENTIALS"
fi
if [[ $PKJWT == 1 ]]; then
    # A private_key_jwt client (no secret): its JWK Set holds the public half of
    # a fresh P-256 key whose private half signs the assertions.
    "$ASSERTIONS_BIN" keygen --key "$TMP/assertion-key.p8" --jwks "$TMP/assertion-jwks.json" \
        || die "gatehouse-bench-assertions keygen failed"
    log "gatehouse client create --name bench-jwt --scope 'read write' --auth-method private_key_jwt --jwks-file …"
    "$BIN" client create --name bench-jwt --scope "read write" --auth-method private_key_jwt \
        --jwks-file "$TMP/assertion-jwks.json" --json --database-url "$DATABASE_URL" "${ADMIN_FLAGS[@]}" \
        >"$TMP/client-bench-jwt.json" 2>"$TMP/client.err" \
        || { cat "$TMP/client.err" >&2; die "gatehouse client create --auth-method private_key_jwt failed"; }
    JWT_CLIENT_ID="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["client_id"])' \
        "$TMP/client-bench-jwt.json")" || die "no client_id in the output of client create"
    log "client $JWT_CLIENT_ID (private_key_jwt)"
fi
BASIC_CREDENTIALS="$CC_BASIC"
POST_CREDENTIALS="$CC_POST"

# --- servers ----------------------------------------------------------------
log "starting gatehouse serve on 127.0.0.1:0 (GATEHOUSE_LOG=$BENCH_LOG)"
# One client at tens of thousands of requests a second from one address is the load
# itself here, not an attack: the token endpoint's rate limits (1,000/s per client and
# per address by default) are turned off, unless BENCH_RATE_LIMITS=1.
RATE_FLAGS=(--rate-limit-per-client 0 --rate-limit-per-address 0)
[[ ${BENCH_RATE_LIMITS:-0} == 1 ]] && RATE_FLAGS=()
GATEHOUSE_LOG="$BENCH_LOG" NO_COLOR=1 "$BIN" serve --listen 127.0.0.1:0 "${RATE_FLAGS[@]}" \
    --database-url "$DATABASE_URL" "${ADMIN_FLAGS[@]}" >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!
ADDR="$(wait_for_address "$SERVER_PID" "$TMP/server.err" gatehouse)" || die "the server did not start"
URL="http://$ADDR"
log "gatehouse listening on $URL (pid $SERVER_PID)"

log "preflight: one request per scenario"
TOKEN_INFO="$(python3 bench/preflight.py token "$URL/oauth/token" --basic "$BASIC_CREDENTIALS" \
    --save-jwt "$TMP/jwt" --save-token "$TMP/jwt.token")" || die "client_secret_basic request failed"
log "  client_credentials_basic: $TOKEN_INFO"
INFO="$(python3 bench/preflight.py token "$URL/oauth/token" --post "$POST_CREDENTIALS")" \
    || die "client_secret_post request failed"
log "  client_credentials_post: $INFO"
if [[ $PKJWT == 1 ]]; then
    # The assertions' audience: the issuer, read from the token just issued.
    ISSUER="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["iss"])' "$TMP/jwt-claims.json")" \
        || die "no iss in the client_credentials JWT"
    # sign_assertions COUNT FILE: COUNT fresh assertions of the private_key_jwt client.
    sign_assertions() {
        "$ASSERTIONS_BIN" sign --key "$TMP/assertion-key.p8" --client-id "$JWT_CLIENT_ID" --aud "$ISSUER" \
            --count "$1" --out "$2" --ttl 3600 --threads "$(nproc)"
    }
    sign_assertions 1 "$TMP/assertions-preflight.txt" >/dev/null || die "gatehouse-bench-assertions sign failed"
    PKJWT_INFO="$(python3 bench/preflight.py assertion "$URL/oauth/token" \
        --assertion-file "$TMP/assertions-preflight.txt")" || die "the private_key_jwt request failed"
    log "  client_credentials_private_key_jwt: $PKJWT_INFO"
    PKJWT_INFO="ES256 assertions (kid, iss = sub = client id, aud = $ISSUER, exp in 3600 s, jti unique), no client_id in the form: $PKJWT_INFO"
fi
INFO="$(python3 bench/preflight.py get "$URL/oauth/jwks" --json-key keys)" || die "jwks request failed"
log "  jwks: $INFO"
INFO="$(python3 bench/preflight.py get "$URL/healthz")" || die "healthz request failed"
log "  healthz: $INFO"
GRANT_INFO=()
if wanted refresh; then
    INFO="$(python3 bench/preflight.py rotation "$URL/oauth/token" --basic "$LOGIN_BASIC" \
        --username "$BENCH_USER" --password "$BENCH_PASSWORD")" || die "the refresh rotation check failed"
    log "  refresh: $INFO"
    GRANT_INFO+=("refresh check: $INFO")
fi
if wanted introspect_jwt; then
    INFO="$(python3 bench/preflight.py introspect "$URL/oauth/introspect" --basic "$INTROSPECT_BASIC" \
        --token-file "$TMP/jwt.token")" || die "introspection of a JWT failed"
    log "  introspect_jwt: $INFO"
    GRANT_INFO+=("introspect_jwt: the client_credentials JWT above; $INFO")
fi
if wanted introspect_opaque; then
    INFO="$(python3 bench/preflight.py token "$URL/oauth/token" --basic "$OPAQUE_BASIC" --opaque \
        --save-token "$TMP/opaque.token")" || die "the opaque client's token request failed"
    log "  opaque token: $INFO"
    INFO2="$(python3 bench/preflight.py introspect "$URL/oauth/introspect" --basic "$INTROSPECT_BASIC" \
        --token-file "$TMP/opaque.token")" || die "introspection of an opaque token failed"
    log "  introspect_opaque: $INFO2"
    GRANT_INFO+=("introspect_opaque: client_credentials token of a --token-format opaque client, $INFO; $INFO2")
fi

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
declare -A RPS P99 NON2XX SOCKET_ERRORS REQUESTS

# run_wrk SCENARIO SCRIPT URL DURATION: prints wrk's BENCH_RESULT line.
run_wrk() {
    local scenario="$1" script="$2" url="$3" duration="$4" out="$TMP/wrk-$1.txt"
    local limit=$(($(duration_seconds "$duration") + 60))
    BENCH_SCENARIO="$scenario" timeout --kill-after=5 "$limit" \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --timeout "$WRK_TIMEOUT" \
        -s "$BENCH_LUA_DIR/$script" "$url" >"$out" 2>&1 \
        || { cat "$out" >&2; die "wrk failed on $scenario"; }
    grep -m1 '^BENCH_RESULT ' "$out" || { cat "$out" >&2; die "wrk printed no result for $scenario"; }
    grep '^BENCH_EXTRA ' "$out" || true
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
# CPU time of every PostgreSQL process on this machine (the database is part of
# what is measured, not other load; 0 if PostgreSQL runs elsewhere or for SQLite).
postgres_ticks() {
    [[ $BACKEND == postgres ]] || { echo 0; return; }
    cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == "(postgres)" { t += $14 + $15 } END { print t + 0 }'
}
CLOCK_TICKS="$(getconf CLK_TCK)"
declare -A CPU_SPLIT OTHER_LOAD

# What the database did while a scenario ran: issuing a token for a known client
# should neither query nor write it; a refresh rotation must commit durably, and
# many rotations should share a commit (group commit, docs/design.md).
# PostgreSQL: its counters (flushed by each backend at most once a second, so
# approximate, except after the refresh run, which waits for them; the snapshot
# query is one transaction itself), and the bytes of WAL (exact, but for the
# whole cluster). SQLite: whether the database or WAL file changed (reads leave
# both alone) and their sizes. Both: the flush requests (what fsync sends to a
# disk with a write-back cache) the disk under the database completed, from
# /proc/diskstats: the whole disk, so other writers count too.
declare -A DB_ACTIVITY DB_FLUSHES DB_COMMITS DB_WAL_BYTES DB_GROWTH

# The /proc/diskstats name of the disk holding the database ("" if unknown, e.g.
# tmpfs, or PostgreSQL on another machine).
database_disk() {
    local dir source name
    if [[ $BACKEND == sqlite ]]; then
        dir="$TMP"
    else
        dir="$(psql "$DATABASE_URL" -Atqc "show data_directory" 2>/dev/null || true)"
        [[ -n $dir && -d $dir ]] || return 0
    fi
    source="$(df --output=source "$dir" 2>/dev/null | tail -n1)"
    [[ $source == /dev/* ]] || return 0
    name="$(basename "$(realpath "$source")")"
    [[ -e /sys/class/block/$name ]] || return 0
    # A partition: its flushes are counted on the whole disk.
    [[ -e /sys/class/block/$name/partition ]] && name="$(basename "$(dirname "$(realpath "/sys/class/block/$name")")")"
    echo "$name"
}
DB_DISK="$(database_disk)"
disk_flushes() {
    [[ -n $DB_DISK ]] || { echo -; return; }
    awk -v d="$DB_DISK" '$3 == d && NF >= 20 { print $19; found = 1 } END { if (!found) print "-" }' /proc/diskstats
}

db_snapshot() {
    if [[ $BACKEND == postgres ]]; then
        psql "$DATABASE_URL" -Atqc "select xact_commit + xact_rollback, tup_returned + tup_fetched,
            tup_inserted + tup_updated + tup_deleted, xact_commit,
            pg_current_wal_lsn() - '0/0'::pg_lsn from pg_stat_database
            where datname = current_database()" | tr '|' ' ' | tr '\n' ' '
    else
        python3 -c 'import os, sys
for f in sys.argv[1:]:
    try:
        st = os.stat(f); print(st.st_size, st.st_mtime_ns, end=" ")
    except FileNotFoundError:
        print("- -", end=" ")' "$TMP/g.db" "$TMP/g.db-wal"
    fi
    disk_flushes
}

# Rows in the replay store (private_key_jwt only, outside the measured run): one
# per assertion the server accepted.
replay_rows() {
    local sql="select count(*) from used_jtis"
    if [[ $BACKEND == postgres ]]; then
        psql "$DATABASE_URL" -Atqc "$sql"
    else
        python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
print(*db.execute(sys.argv[2]).fetchone())
db.close()' "$TMP/g.db" "$sql"
    fi
}

# Rows in the token tables (the refresh scenario only, outside the measured run).
token_rows() {
    local sql="select (select count(*) from refresh_tokens), (select count(*) from token_families)"
    if [[ $BACKEND == postgres ]]; then
        psql "$DATABASE_URL" -Atqc "$sql" | tr '|' ' '
    else
        python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
print(*db.execute(sys.argv[2]).fetchone())
db.close()' "$TMP/g.db" "$sql"
    fi
}

# db_activity SCENARIO BEFORE AFTER REQUESTS: fills DB_ACTIVITY[SCENARIO] (and the
# raw deltas) from two db_snapshot lines. Not in a subshell: it sets globals.
db_activity() {
    local scenario="$1" before="$2" after="$3" requests="$4" flushes="" text
    local -a b a
    read -ra b <<<"$before"
    read -ra a <<<"$after"
    [[ ${b[-1]} != - && ${a[-1]} != - ]] && flushes=$((a[-1] - b[-1]))
    DB_FLUSHES[$scenario]="$flushes"
    if [[ $BACKEND == postgres ]]; then
        DB_COMMITS[$scenario]=$((a[3] - b[3] - 1))
        DB_WAL_BYTES[$scenario]=$((a[4] - b[4]))
        text="about $((a[0] - b[0] - 1)) transactions, $((a[1] - b[1])) rows read, $((a[2] - b[2])) rows written for $requests requests"
        text+=", ${DB_WAL_BYTES[$scenario]} bytes of WAL (the whole cluster)"
    elif [[ "${b[*]:0:4}" == "${a[*]:0:4}" ]]; then
        text="database files unchanged over $requests requests"
    else
        local written=WRITTEN
        [[ $scenario == refresh || $scenario == client_credentials_private_key_jwt ]] && written=written
        text="database files $written during $requests requests: g.db ${b[0]} -> ${a[0]} bytes, g.db-wal ${b[2]} -> ${a[2]} bytes"
        [[ ${a[0]} != - && ${b[0]} != - ]] && DB_GROWTH[$scenario]=$((a[0] - b[0]))
    fi
    [[ -n $flushes ]] && text+=", $flushes flushes of disk $DB_DISK"
    DB_ACTIVITY[$scenario]="$text"
}

# Per-scenario set-up before each wrk run (the warm-up and the measured one),
# outside the measured window. refresh: fresh password logins, one rotation chain
# per connection plus a spare one per thread (see lua/refresh.lua); the chains of
# an earlier run end in requests wrk cut off, whose new tokens are lost.
prepare_scenario() {
    local scenario="$1" which="$2" info
    case "$scenario" in
        refresh)
            info="$(python3 bench/preflight.py login "$URL/oauth/token" --basic "$LOGIN_BASIC" \
                --username "$BENCH_USER" --password "$BENCH_PASSWORD" --count "$((CONNECTIONS + THREADS))" \
                --out "$TMP/refresh-$which.txt")" || die "the password logins before the refresh $which failed"
            log "refresh: $info"
            export BENCH_REFRESH_TOKENS="$TMP/refresh-$which.txt"
            export BENCH_REFRESH_CREDENTIALS="$LOGIN_BASIC"
            ;;
        introspect_jwt)
            BENCH_INTROSPECT_TOKEN="$(<"$TMP/jwt.token")"
            export BENCH_INTROSPECT_TOKEN BENCH_INTROSPECT_CREDENTIALS="$INTROSPECT_BASIC"
            ;;
        introspect_opaque)
            BENCH_INTROSPECT_TOKEN="$(<"$TMP/opaque.token")"
            export BENCH_INTROSPECT_TOKEN BENCH_INTROSPECT_CREDENTIALS="$INTROSPECT_BASIC"
            ;;
        client_credentials_private_key_jwt)
            # Every assertion is single-use: enough fresh ones for this wrk run, at
            # 1.5 x the client_secret_basic rate of this run (private_key_jwt does
            # all that it does, and more), or at ASSERTION_RATE, bounded.
            local seconds rate count
            seconds="$(duration_seconds "$([[ $which == warmup ]] && echo "$WARMUP" || echo "$DURATION")")"
            rate="${RPS[client_credentials_basic]:-}"
            rate="$(awk -v r="${rate:-0}" -v d="$ASSERTION_RATE" 'BEGIN { printf "%.0f", (r > 0 ? 1.5 * r : d) }')"
            count=$((rate * seconds + 2 * CONNECTIONS))
            ((count <= ASSERTIONS_MAX)) || count=$ASSERTIONS_MAX
            rm -f "$TMP"/assertions-warmup.txt "$TMP"/assertions-run.txt
            info="$(sign_assertions "$count" "$TMP/assertions-$which.txt")" || die "gatehouse-bench-assertions sign failed"
            read -r count width info <<<"$info"
            log "$scenario: $count assertions of $width bytes signed in $info s (for ${rate}/s over ${seconds} s), before the $which"
            export BENCH_ASSERTIONS="$TMP/assertions-$which.txt"
            ;;
    esac
}
export BENCH_THREADS="$THREADS"
declare -A EXTRA SECONDS_RUN ROWS_BEFORE ROWS_AFTER
REFRESH_FAILURES=()

# bench_scenario SCENARIO SCRIPT URL PID: PID is the server under test.
bench_scenario() {
    local scenario="$1" script="$2" url="$3" pid="$4" result field db_before
    local stat_before stat_after server_before server_after pg_before pg_after
    wait_for_quiet
    if [[ $(duration_seconds "$WARMUP") -gt 0 ]]; then
        prepare_scenario "$scenario" warmup
        log "$scenario: warm-up $WARMUP"
        run_wrk "$scenario-warmup" "$script" "$url" "$WARMUP" >/dev/null
    fi
    prepare_scenario "$scenario" run
    [[ $scenario == refresh ]] && ROWS_BEFORE[$scenario]="$(token_rows)"
    [[ $scenario == client_credentials_private_key_jwt ]] && ROWS_BEFORE[$scenario]="$(replay_rows)"
    log "$scenario: wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
    [[ $url == "$URL/" ]] && db_before="$(db_snapshot)"
    stat_before="$(head -n1 /proc/stat)"
    server_before="$(process_ticks "$pid")"
    pg_before="$(postgres_ticks)"
    result="$(run_wrk "$scenario" "$script" "$url" "$DURATION")"
    stat_after="$(head -n1 /proc/stat)"
    server_after="$(process_ticks "$pid")"
    pg_after="$(postgres_ticks)"
    # How the cores were shared: the server, wrk, PostgreSQL, and everything else
    # (which should be ~0: other work on the machine lowers every figure).
    local split other
    read -r split other < <(awk -v a="$stat_before" -v b="$stat_after" \
        -v server=$((server_after - server_before)) -v pg=$((pg_after - pg_before)) -v hz="$CLOCK_TICKS" \
        -v wrk="$(sed -n 's/^WRK_CPU_SECONDS //p' <<<"$result")" -v backend="$BACKEND" 'BEGIN {
            n = split(a, x, " "); split(b, y, " ")
            for (i = 2; i <= n; i++) { t += y[i] - x[i]; if (i == 5 || i == 6) idle += y[i] - x[i] }
            other = t - idle - server - pg - wrk * hz; if (other < 0) other = 0
            printf "server=%.0f%%,wrk=%.0f%%,", 100 * server / t, 100 * wrk * hz / t
            if (backend == "postgres") printf "postgres=%.0f%%,", 100 * pg / t
            printf "idle=%.0f%% %.0f\n", 100 * idle / t, 100 * other / t }')
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
            seconds=*) SECONDS_RUN[$scenario]="${field#*=}" ;;
            WRK_CPU_SECONDS|BENCH_RESULT|BENCH_EXTRA|scenario=*|[0-9]*) ;;
            *=*) EXTRA[$scenario.${field%%=*}]="${field#*=}" ;;
        esac
    done
    RPS[$scenario]="$rps"
    REQUESTS[$scenario]="$requests"
    P99[$scenario]="$p99"
    NON2XX[$scenario]="$non2xx"
    SOCKET_ERRORS[$scenario]="$sock"
    if [[ $url == "$URL/" ]]; then
        if [[ $BACKEND == postgres && $scenario == refresh ]]; then
            # An idle backend reports its last second of counts only after 10 s.
            log "refresh: waiting 11 s for PostgreSQL's statistics to settle"
            sleep 11
        fi
        db_activity "$scenario" "$db_before" "$(db_snapshot)" "$requests"
    fi
    [[ $scenario == client_credentials_private_key_jwt ]] && ROWS_AFTER[$scenario]="$(replay_rows)"
    if [[ $scenario == refresh ]]; then
        ROWS_AFTER[$scenario]="$(token_rows)"
        mapfile -t REFRESH_FAILURES < <(sed -n 's/^BENCH_FAILURE //p' "$TMP/wrk-$scenario.txt")
        if [[ ${#REFRESH_FAILURES[@]} -gt 0 ]]; then
            log "refresh: rotation chains broke:"
            printf '  %s\n' "${REFRESH_FAILURES[@]}" >&2
        fi
    fi
    local row
    row="$(printf '| %s | %.0f | %.2f | %.2f | %d |' "$scenario" "$rps" "$p50" "$p99" "$non2xx")"
    ROWS+=("$row")
    echo "$row"
}

# WAIT_QUIET=N: before each scenario, wait up to N seconds for a second in which
# the machine is under 10 % busy (builds and tests of others come in bursts).
wait_for_quiet() {
    local deadline=$((SECONDS + WAIT_QUIET)) busy
    ((WAIT_QUIET > 0)) || return 0
    while busy="$(cpu_busy_percent)"; ((busy >= 10)); do
        if ((SECONDS >= deadline)); then
            log "the machine is still ${busy}% busy after waiting ${WAIT_QUIET}s: going on"
            return 0
        fi
        log "the machine is ${busy}% busy: waiting for it to be quiet"
        sleep 4
    done
}
wait_for_quiet
BUSY_BEFORE="$(cpu_busy_percent)"
if ((BUSY_BEFORE > 10)); then
    log "warning: the machine is ${BUSY_BEFORE}% busy before the benchmark starts: figures will be low"
fi

echo "$TABLE_HEAD"
for s in "${SCENARIOS[@]}"; do
    case "$s" in
        client_credentials_basic) bench_scenario "$s" token_basic.lua "$URL/" "$SERVER_PID" ;;
        client_credentials_post) bench_scenario "$s" token_post.lua "$URL/" "$SERVER_PID" ;;
        client_credentials_private_key_jwt) bench_scenario "$s" token_private_key_jwt.lua "$URL/" "$SERVER_PID" ;;
        jwks) bench_scenario "$s" jwks.lua "$URL/" "$SERVER_PID" ;;
        healthz) bench_scenario "$s" healthz.lua "$URL/" "$SERVER_PID" ;;
        ceiling) bench_scenario "$s" token_basic.lua "http://$CEILING_ADDR/" "$CEILING_PID" ;;
        refresh) bench_scenario "$s" refresh.lua "$URL/" "$SERVER_PID" ;;
        introspect_jwt|introspect_opaque) bench_scenario "$s" introspect.lua "$URL/" "$SERVER_PID" ;;
    esac
done

# --- after the run ----------------------------------------------------------
kill -0 "$SERVER_PID" 2>/dev/null || die "the server died during the benchmark; its log is in $TMP/server.err"
SERVER_LOG_LINES=$(wc -l <"$TMP/server.err")
SERVER_LOG_BYTES=$(wc -c <"$TMP/server.err")
SERVER_WARNINGS="$(server_warnings "$TMP/server.err")"
SERVER_WARNING_COUNT=0
[[ -n $SERVER_WARNINGS ]] && SERVER_WARNING_COUNT=$(wc -l <<<"$SERVER_WARNINGS")

SUMMARY=()
FAILED_EARLY=()
ratio_line() {
    local scenario="$1"
    awk -v a="${RPS[$scenario]}" -v c="${RPS[ceiling]}" -v s="$scenario" \
        'BEGIN { r = a / c; printf "%s / ceiling = %.3f (target >= 0.85: %s)", s, r, (r >= 0.85 ? "met" : "NOT met") }'
}
CC_RUN=()
for s in client_credentials_basic client_credentials_post; do wanted "$s" && CC_RUN+=("$s"); done
if [[ $CEILING == 1 ]]; then
    for s in "${CC_RUN[@]}"; do SUMMARY+=("$(ratio_line "$s")"); done
fi
for s in "${CC_RUN[@]}"; do
    SUMMARY+=("$(awk -v r="${RPS[$s]}" -v p="${P99[$s]}" -v s="$s" 'BEGIN {
        printf "%s: %.0f tokens/s (target >= 20000: %s), p99 %.2f ms (target <= 5: %s)", s, r,
            (r >= 20000 ? "met" : "NOT met"), p, (p <= 5 ? "met" : "NOT met") }')")
done
if [[ $PKJWT == 1 ]]; then
    s=client_credentials_private_key_jwt
    line="$(awk -v r="${RPS[$s]}" -v p="${P99[$s]}" -v b="${RPS[client_credentials_basic]:-}" \
        -v c="${RPS[ceiling]:-}" 'BEGIN {
        printf "%s: %.0f tokens/s, p99 %.2f ms (target <= 10: %s)", "client_credentials_private_key_jwt", r, p, (p <= 10 ? "met" : "NOT met")
        if (b != "") printf "; / client_credentials_basic = %.3f (target >= 0.5: %s)", r / b, (r / b >= 0.5 ? "met" : "NOT met")
        if (c != "") printf "; / ceiling = %.3f", r / c }')"
    SUMMARY+=("$line")
    # Every answered assertion must have its replay record: the rows added during
    # the measured run, against the 2xx answers wrk read (the server may also have
    # recorded assertions whose answers wrk did not wait for when it stopped).
    answered=$((REQUESTS[$s] - NON2XX[$s]))
    added=$((ROWS_AFTER[$s] - ROWS_BEFORE[$s]))
    SUMMARY+=("$(awk -v a="$answered" -v n="$added" -v x="${DB_COMMITS[$s]:-}" -v f="${DB_FLUSHES[$s]:-}" \
        -v taken="${EXTRA[$s.taken]}" -v made="${EXTRA[$s.assertions]}" 'BEGIN {
        printf "private_key_jwt replay records: used_jtis +%d rows in the measured run for %d answered requests (%s); " \
            "%d of %d assertions taken by wrk", n, a, (n >= a ? "every answer has its record" : "RECORDS MISSING"), taken, made
        if (x != "" && x > 0) printf ", %.1f assertions per commit", n / x
        if (f != "" && f > 0) printf ", %.1f assertions per disk flush", n / f }')")
    [[ $added -ge $answered ]] \
        || FAILED_EARLY+=("$s: $answered answers but only $added replay records written")
    [[ ${EXTRA[$s.exhausted]:-0} -eq 0 ]] \
        || FAILED_EARLY+=("$s: a wrk thread ran out of assertions and stopped early ($((EXTRA[$s.exhausted])) requests): req/s are low; raise ASSERTIONS_MAX or ASSERTION_RATE")
fi
if wanted refresh; then
    # Rotations: 200 answers that carried a new refresh token, which went back
    # into the queue. Every other answer broke a chain.
    SUMMARY+=("$(awk -v n="${EXTRA[refresh.rotations]}" -v sec="${SECONDS_RUN[refresh]}" -v p="${P99[refresh]}" \
        -v bad="${EXTRA[refresh.non200]}" -v missing="${EXTRA[refresh.no_refresh_token]}" \
        -v empty="${EXTRA[refresh.exhausted]}" -v chains="${EXTRA[refresh.tokens]}" 'BEGIN {
        r = n / sec
        printf "refresh: %.0f rotations/s (target >= 5000: %s), p99 %.2f ms; %d rotations in %.1f s on %d chains " \
            "(one password login each), non-200 %d, 200 without a refresh token %d, requests with no live token %d",
            r, (r >= 5000 ? "met" : "NOT met"), p, n, sec, chains, bad, missing, empty }')")
fi
for s in introspect_jwt introspect_opaque; do
    wanted "$s" || continue
    SUMMARY+=("$(awk -v r="${RPS[$s]}" -v p="${P99[$s]}" -v s="$s" 'BEGIN {
        printf "%s: %.0f introspections/s (target >= 20000: %s), p99 %.2f ms", s, r, (r >= 20000 ? "met" : "NOT met"), p }')")
done
FAILED=("${FAILED_EARLY[@]}")
for s in "${!NON2XX[@]}"; do
    [[ ${NON2XX[$s]} -eq 0 ]] || FAILED+=("$s: ${NON2XX[$s]} responses with status >= 400")
    [[ ${SOCKET_ERRORS[$s]} -eq 0 ]] || FAILED+=("$s: ${SOCKET_ERRORS[$s]} socket errors (connect/read/write/timeout)")
done
if wanted refresh; then
    [[ ${EXTRA[refresh.non200]} -eq 0 ]] \
        || FAILED+=("refresh: ${EXTRA[refresh.non200]} answers other than 200: rotation chains broke")
    [[ ${EXTRA[refresh.no_refresh_token]} -eq 0 ]] \
        || FAILED+=("refresh: ${EXTRA[refresh.no_refresh_token]} answers 200 without a refresh token")
    [[ ${EXTRA[refresh.exhausted]} -eq 0 ]] \
        || FAILED+=("refresh: ${EXTRA[refresh.exhausted]} requests found no live token to present (after a chain broke)")
    for f in "${REFRESH_FAILURES[@]}"; do FAILED+=("refresh: $f"); done
fi
for s in "${SCENARIOS[@]}"; do
    [[ -n ${DB_ACTIVITY[$s]:-} && $s != jwks && $s != healthz ]] || continue
    line="$BACKEND during $s: ${DB_ACTIVITY[$s]}"
    if [[ $s == refresh ]]; then
        read -r rt_before fam_before <<<"${ROWS_BEFORE[refresh]}"
        read -r rt_after fam_after <<<"${ROWS_AFTER[refresh]}"
        line+="; refresh_tokens +$((rt_after - rt_before)) rows, token_families +$((fam_after - fam_before)) rows"
        line+="$(awk -v n="${EXTRA[refresh.rotations]}" -v x="${DB_COMMITS[refresh]:-}" -v w="${DB_WAL_BYTES[refresh]:-}" \
            -v f="${DB_FLUSHES[refresh]:-}" -v grow="${DB_GROWTH[refresh]:-}" 'BEGIN {
            s = ""
            if (x != "" && x > 0) s = s sprintf(", %.1f rotations per commit", n / x)
            if (grow != "" && n > 0) s = s sprintf(", g.db grew %.0f bytes per rotation", grow / n)
            if (w != "" && n > 0) s = s sprintf(", %.0f bytes of WAL per rotation", w / n)
            if (f != "" && f > 0) s = s sprintf(", %.1f rotations per disk flush", n / f)
            printf "%s", (s == "" ? "" : ";" substr(s, 2)) }')"
    fi
    SUMMARY+=("$line")
done
CPU_LINE="CPU of the $(nproc) cores during each run (other = neither the server nor wrk):"
for s in "${SCENARIOS[@]}"; do
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
RESULTS="${BENCH_RESULTS:-bench/results/latest-$BACKEND.md}"
mkdir -p "$(dirname "$RESULTS")"
GIT_REV="$(git_revision)"
if [[ $BACKEND == postgres ]]; then
    DURABILITY="PostgreSQL $(psql "$DATABASE_URL" -Atqc "select current_setting('server_version') || ', fsync=' ||
        current_setting('fsync') || ', synchronous_commit=' || current_setting('synchronous_commit')" 2>/dev/null || echo '?')"
else
    DURABILITY="SQLite in WAL mode with synchronous=FULL (set by the server) in $(df --output=fstype "$TMP" | tail -n1)"
fi
if [[ -n $DB_DISK ]]; then
    DURABILITY+=", on disk $DB_DISK (write cache: $(cat "/sys/block/$DB_DISK/queue/write_cache" 2>/dev/null || echo '?'))"
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
    [[ $PKJWT == 1 ]] && echo "- private_key_jwt: $PKJWT_INFO; made before each wrk run, outside the measured window, and each sent once"
    echo "- durability: $DURABILITY"
    [[ ${#GRANT_INFO[@]} -eq 0 ]] || printf -- '- %s\n' "${GRANT_INFO[@]}"
    wanted refresh && echo "- refresh chains: before each wrk run (warm-up and measured), $((CONNECTIONS + THREADS)) fresh password logins: one rotation chain per connection, and a spare per thread"
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
