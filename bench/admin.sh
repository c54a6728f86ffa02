#!/usr/bin/env bash
# gatehouse benchmark: one page of GET /admin/v1/clients at the start, in the
# middle and at the end of a million clients. Cursor pagination (`after` = the
# last client id of the previous page) should cost the same on every page:
# the store reads `WHERE client_id > $1 ORDER BY client_id LIMIT $2`, a range
# scan of the primary key's index that starts where the cursor points.
#
# Usage: bench/admin.sh [--database-url postgres://USER@HOST:PORT/DB] [--count N]
#
#   (no --database-url)  a fresh SQLite database in a temporary directory
#   --database-url URL   PostgreSQL: URL names a server and a database to connect
#                        to; the benchmark creates a fresh database beside it
#                        (gh_bench_<time>_<random>) and drops it at the end
#   --count N            clients to seed (default 1000000; the pages are named
#                        for a million: with another count, pick them with PAGES)
#
# What it does, on loopback: builds the release server (or takes GATEHOUSE_BIN),
# makes the database (`gatehouse migrate`), seeds N clients c0000001... with
# bench/seed_clients.sh, creates the client bench-admin with scope
# gatehouse:admin, starts `gatehouse serve` (rate limits off), gets a
# client_credentials token, checks each page once (200, its first and last ids,
# `next`), then runs wrk on each scenario after a warm-up:
#
#   floor      GET /healthz: the same server's HTTP stack with no work behind it
#              (bench/ceiling signs tokens, it has no GET to compare with)
#   first      GET /admin/v1/clients?limit=100
#   middle     GET /admin/v1/clients?limit=100&after=c0500000
#   last       GET /admin/v1/clients?limit=100&after=c0999950 (the last 50 clients)
#   last_full  GET /admin/v1/clients?limit=100&after=c0999900 (the last 100: the
#              same page size as first and middle)
#   middle_1   GET /admin/v1/clients?limit=1&after=c0500000: what a request costs
#              besides its rows (the token check, the query, the answer)
#
# Environment: DURATION (wrk -d, default 10s), THREADS (wrk -t, 2), CONNECTIONS
# (wrk -c, 32), WARMUP (2s; 0 skips it), WRK_TIMEOUT (5s), BENCH_LOG (the
# server's GATEHOUSE_LOG, info), STARTUP_TIMEOUT (60), SEED_TIMEOUT (300),
# PAGES (space-separated name=after or name=after@limit, replacing first..middle_1;
# an empty after is the first page; limit defaults to 100), KEEP_TMP=1, GATEHOUSE_BIN (benchmark that binary;
# BENCH_REV names it), BENCH_RESULTS (default bench/results/admin-<backend>.md).
#
# Prints a Markdown table (req/s, p50, p99, the server's CPU per request) and the
# query plans, and writes them with the machine to the results file. Exits
# non-zero if any answer was not 200 or wrk saw a socket error.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" admin

DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
WARMUP="${WARMUP:-2s}"
WRK_TIMEOUT="${WRK_TIMEOUT:-5s}"
BENCH_LOG="${BENCH_LOG:-info}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-60}"
KEEP_TMP="${KEEP_TMP:-0}"
PAGES="${PAGES:-first= middle=c0500000 last=c0999950 last_full=c0999900 middle_1=c0500000@1}"

BASE_DATABASE_URL=""
COUNT=1000000
while [[ $# -gt 0 ]]; do
    case "$1" in
        --database-url) BASE_DATABASE_URL="${2:?--database-url needs a value}"; shift 2 ;;
        --database-url=*) BASE_DATABASE_URL="${1#*=}"; shift ;;
        --count) COUNT="${2:?--count needs a value}"; shift 2 ;;
        --count=*) COUNT="${1#*=}"; shift ;;
        -h|--help) print_help; exit 0 ;;
        *) echo "bench/admin.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
done
BACKEND="$(database_backend "$BASE_DATABASE_URL")" \
    || { echo "bench/admin.sh: --database-url must be a postgres:// URL (SQLite is the default)" >&2; exit 2; }

# "15s" / "2m" / "15" -> seconds, for the outer timeout around wrk.
duration_seconds() {
    local d="$1"
    case "$d" in
        *m) echo $(( ${d%m} * 60 )) ;;
        *s) echo $(( ${d%s} )) ;;
        *) echo $(( d )) ;;
    esac
}
duration_seconds "$DURATION" >/dev/null 2>&1 || die "DURATION must look like 15s, 2m or 15: got '$DURATION'"
duration_seconds "$WARMUP" >/dev/null 2>&1 || die "WARMUP must look like 2s or 0: got '$WARMUP'"
# Bounded: each wrk run is killed a minute after its duration; no run over 10 minutes.
(($(duration_seconds "$DURATION") <= 600)) || die "DURATION is capped at 10 minutes"

SCENARIOS=(floor)
declare -A AFTER LIMIT
for pair in $PAGES; do
    [[ $pair =~ ^([a-z_0-9]+)=([A-Za-z0-9_-]*)(@([1-9][0-9]{0,3}))?$ && ${BASH_REMATCH[1]} != floor ]] \
        || die "PAGES: expected name=after or name=after@limit (name: a-z, 0-9, _; not floor): got '$pair'"
    SCENARIOS+=("${BASH_REMATCH[1]}")
    AFTER[${BASH_REMATCH[1]}]="${BASH_REMATCH[2]}"
    LIMIT[${BASH_REMATCH[1]}]="${BASH_REMATCH[4]:-100}"
done

# --- tools and build ----------------------------------------------------------
command -v python3 >/dev/null || die "python3 is needed"
install_wrk
if [[ $BACKEND == postgres ]]; then
    command -v psql >/dev/null || die "psql is needed to create, seed and drop the PostgreSQL benchmark database"
fi
gatehouse_binary benchmarking

# --- database -----------------------------------------------------------------
start_cleanup admin
create_database gh_bench
log "gatehouse migrate"
"$BIN" migrate --database-url "$DATABASE_URL" "${ADMIN_FLAGS[@]}" >"$TMP/migrate.out" 2>"$TMP/migrate.err" \
    || { cat "$TMP/migrate.err" >&2; die "gatehouse migrate failed"; }
log "seeding $COUNT clients (bench/seed_clients.sh)"
seed_start=$SECONDS
SEED_INFO="$(bench/seed_clients.sh --count "$COUNT" "$DATABASE_URL")" || die "seeding failed"
SEED_INFO+=" in $((SECONDS - seed_start)) s"
log "  $SEED_INFO"

# The admin: a client of this server whose registered scope holds gatehouse:admin,
# the only way to a token the admin API accepts. Its id sorts before c0000001, so
# the first page starts with it.
ADMIN_ID=bench-admin
log "gatehouse client create --client-id $ADMIN_ID --scope gatehouse:admin"
"$BIN" client create --name "bench admin" --client-id "$ADMIN_ID" --scope gatehouse:admin --token-ttl 3600 --json \
    --database-url "$DATABASE_URL" "${ADMIN_FLAGS[@]}" >"$TMP/client-admin.json" 2>"$TMP/client.err" \
    || { cat "$TMP/client.err" >&2; die "gatehouse client create failed"; }
IFS=$'\t' read -r _ admin_secret < <(python3 bench/preflight.py client "$TMP/client-admin.json")
{ read -r ADMIN_BASIC; read -r _; } < <(python3 bench/preflight.py credentials -- "$ADMIN_ID" "$admin_secret")

# --- server -------------------------------------------------------------------
log "starting gatehouse serve on 127.0.0.1:0 (GATEHOUSE_LOG=$BENCH_LOG)"
# One admin at thousands of requests a second from one address is the load itself
# here: the per-address limit, which the admin API applies first, is turned off.
GATEHOUSE_LOG="$BENCH_LOG" NO_COLOR=1 "$BIN" serve --listen 127.0.0.1:0 \
    --rate-limit-per-client 0 --rate-limit-per-address 0 \
    --database-url "$DATABASE_URL" "${ADMIN_FLAGS[@]}" >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!
ADDR="$(wait_for_address "$SERVER_PID" "$TMP/server.err" gatehouse)" || die "the server did not start"
URL="http://$ADDR"
log "gatehouse listening on $URL (pid $SERVER_PID)"

TOKEN_INFO="$(python3 bench/preflight.py token "$URL/oauth/token" --basic "$ADMIN_BASIC" \
    --save-token "$TMP/admin.token")" || die "the admin client's token request failed"
log "admin token: $TOKEN_INFO"
ADMIN_TOKEN="$(<"$TMP/admin.token")"

# page_path SCENARIO: the request's path and query.
page_path() {
    local after="${AFTER[$1]}" path="/admin/v1/clients?limit=${LIMIT[$1]}"
    [[ -z $after ]] || path+="&after=$after"
    echo "$path"
}

# check_page PATH: one GET with the token; prints "N clients FIRST..LAST, next X"
# and fails unless the answer is a 200 page of the listing's shape whose ids are
# ordered and past the cursor.
check_page() {
    python3 - "$URL$1" "$ADMIN_TOKEN" <<'PY'
import json, sys, urllib.error, urllib.parse, urllib.request
url, token = sys.argv[1], sys.argv[2]
req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token, "Accept": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=30) as resp:
        status, body = resp.status, resp.read()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read()
if status != 200:
    sys.exit(f"GET {url}: status {status}: {body[:300]!r}")
page = json.loads(body)
ids = [c["client_id"] for c in page["clients"]]
after = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("after", [""])[0]
if not ids or ids != sorted(ids) or (after and ids[0] <= after):
    sys.exit(f"GET {url}: ids out of order or not after the cursor: {ids[:3]}...")
if page["next"] not in (None, ids[-1]):
    sys.exit(f"GET {url}: next is {page['next']!r}, the last id is {ids[-1]!r}")
print(f"{len(ids)} clients {ids[0]}..{ids[-1]}, {len(body)} bytes, next {page['next']}")
PY
}

log "preflight: one request per page"
python3 bench/preflight.py get "$URL/healthz" >/dev/null || die "GET /healthz failed"
declare -A PAGE_INFO
for s in "${SCENARIOS[@]:1}"; do
    PAGE_INFO[$s]="$(check_page "$(page_path "$s")")" || die "the $s page failed"
    log "  $s: ${PAGE_INFO[$s]}"
done

# --- query plans --------------------------------------------------------------
# The store's two statements (crates/gatehouse-store/src/clients.rs,
# list_clients_page), planned against the seeded table. PostgreSQL: as prepared
# statements with the generic plan (what sqlx's cached statement ends up with)
# and their real run, to show the buffers a page touches at each cursor.
COLUMNS="client_id, name, secret_hash, scope, grant_types, audience, access_token_ttl, refresh_token_ttl,
    token_format, can_introspect, created_at, previous_secret_hash, previous_secret_expires_at"
PLANS=()
if [[ $BACKEND == postgres ]]; then
    for s in "${SCENARIOS[@]:1}"; do
        after="${AFTER[$s]}"
        if [[ -z $after ]]; then
            sql="PREPARE p(bigint) AS SELECT $COLUMNS FROM clients ORDER BY client_id LIMIT \$1;
                 EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY OFF, COSTS OFF) EXECUTE p($((LIMIT[$s] + 1)));"
        else
            sql="PREPARE p(text, bigint) AS SELECT $COLUMNS FROM clients WHERE client_id > \$1 ORDER BY client_id LIMIT \$2;
                 EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY OFF, COSTS OFF) EXECUTE p('$after', $((LIMIT[$s] + 1)));"
        fi
        plan="$(psql "$DATABASE_URL" -Atq -v ON_ERROR_STOP=1 \
            -c "SET plan_cache_mode = force_generic_plan" -c "$sql" \
            | awk '/^Planning/ { exit } { sub(/^ *(-> *)?/, ""); printf "%s%s", (NR > 1 ? "; " : ""), $0 }')" \
            || die "EXPLAIN failed"
        PLANS+=("$s: $plan")
    done
else
    for s in "${SCENARIOS[@]:1}"; do
        after="${AFTER[$s]}"
        plan="$(python3 - "$TMP/g.db" "$after" "$((LIMIT[$s] + 1))" "$COLUMNS" <<'PY'
import sqlite3, sys
path, after, limit, columns = sys.argv[1], sys.argv[2], int(sys.argv[3]), " ".join(sys.argv[4].split())
db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
if after:
    rows = db.execute(f"EXPLAIN QUERY PLAN SELECT {columns} FROM clients WHERE client_id > ? ORDER BY client_id LIMIT ?",
                      (after, limit))
else:
    rows = db.execute(f"EXPLAIN QUERY PLAN SELECT {columns} FROM clients ORDER BY client_id LIMIT ?", (limit,))
print("; ".join(r[3] for r in rows))
PY
)" || die "EXPLAIN QUERY PLAN failed"
        PLANS+=("$s: $plan")
    done
fi
printf '%s\n' "${PLANS[@]}" | sed 's/^/  plan /' >&2

# --- wrk ----------------------------------------------------------------------
export BENCH_LUA_DIR="$ROOT/bench/lua"
TABLE_HEAD=$'| scenario | request | req/s | p50 ms | p99 ms | server CPU µs/req | non-200 |\n|---|---|---:|---:|---:|---:|---:|'
[[ $BACKEND == postgres ]] \
    && TABLE_HEAD=$'| scenario | request | req/s | p50 ms | p99 ms | server CPU µs/req | PostgreSQL CPU µs/req (its backends) | non-200 |\n|---|---|---:|---:|---:|---:|---:|---:|'
ROWS=()
FAILED=()
BUSY=()

# run_wrk NAME DURATION: runs admin_list.lua; prints wrk's output lines of note.
run_wrk() {
    local name="$1" duration="$2" out="$TMP/wrk-$1.txt"
    local limit=$(($(duration_seconds "$duration") + 60))
    BENCH_SCENARIO="$name" timeout --kill-after=5 "$limit" \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --timeout "$WRK_TIMEOUT" \
        -s "$BENCH_LUA_DIR/admin_list.lua" "$URL/" >"$out" 2>&1 \
        || { cat "$out" >&2; die "wrk failed on $name"; }
    grep -m1 '^BENCH_RESULT ' "$out" || { cat "$out" >&2; die "wrk printed no result for $name"; }
    grep -E '^BENCH_(EXTRA|FAILURE) ' "$out" || true
}

process_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# "PID TICKS" of each PostgreSQL backend serving the benchmark's database (its
# title names it: "postgres: USER DATABASE HOST(PORT) STATE"); others' sessions on
# the same server, tests say, are not counted. Nothing for SQLite.
postgres_backends() {
    local dir title stat
    [[ $BACKEND == postgres ]] || return 0
    # (Processes come and go while the loop runs: a vanished one is skipped.)
    for dir in /proc/[0-9]*; do
        title="$(tr '\0' ' ' 2>/dev/null <"$dir/cmdline")" || continue
        [[ $title == "postgres: "*" $PG_DATABASE "* ]] || continue
        stat="$(cat 2>/dev/null "$dir/stat")" || continue
        awk '{ print $1, $14 + $15 }' <<<"$stat"
    done
}
# postgres_ticks BEFORE AFTER: the CPU the backends used between two snapshots,
# backend by backend (the pool opens and closes connections: a backend born in
# between counts whole, one that ended in between is lost, never subtracted).
postgres_ticks() {
    awk 'NR == FNR { before[$1] = $2; next } { t += $2 - ($1 in before ? before[$1] : 0) } END { print t + 0 }' \
        <(echo "$1") <(echo "$2")
}
CLOCK_TICKS="$(getconf CLK_TCK)"

echo "$TABLE_HEAD"
for s in "${SCENARIOS[@]}"; do
    if [[ $s == floor ]]; then
        export BENCH_ADMIN_PATH=/healthz BENCH_ADMIN_TOKEN=""
    else
        BENCH_ADMIN_PATH="$(page_path "$s")"
        export BENCH_ADMIN_PATH BENCH_ADMIN_TOKEN="$ADMIN_TOKEN"
    fi
    busy="$(cpu_busy_percent)"
    BUSY+=("$s $busy%")
    ((busy <= 10)) || log "warning: the machine was ${busy}% busy in the second before $s: its figures are low"
    if (($(duration_seconds "$WARMUP") > 0)); then
        log "$s: warm-up $WARMUP"
        run_wrk "$s-warmup" "$WARMUP" >/dev/null
    fi
    log "$s: wrk -t$THREADS -c$CONNECTIONS -d$DURATION $BENCH_ADMIN_PATH"
    server_before="$(process_ticks "$SERVER_PID")"
    pg_before="$(postgres_backends)"
    result="$(run_wrk "$s" "$DURATION")"
    server_ticks=$(($(process_ticks "$SERVER_PID") - server_before))
    pg_ticks="$(postgres_ticks "$pg_before" "$(postgres_backends)")"
    requests="" rps="" p50="" p99="" socket_errors="" non200=""
    for field in $result; do
        case "$field" in
            requests=*) requests="${field#*=}" ;;
            rps=*) rps="${field#*=}" ;;
            p50_ms=*) p50="${field#*=}" ;;
            p99_ms=*) p99="${field#*=}" ;;
            socket_errors=*) socket_errors="${field#*=}" ;;
            non200=*) non200="${field#*=}" ;;
        esac
    done
    [[ -n $requests && -n $non200 ]] || { echo "$result" >&2; die "could not read wrk's result for $s"; }
    ((non200 == 0)) || FAILED+=("$s: $non200 answers other than 200 ($(grep -m1 '^BENCH_FAILURE' <<<"$result" || true))")
    ((socket_errors == 0)) || FAILED+=("$s: $socket_errors socket errors (connect/read/write/timeout)")
    row="$(awk -v s="$s" -v path="$BENCH_ADMIN_PATH" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v n="$requests" \
        -v st="$server_ticks" -v pt="$pg_ticks" -v hz="$CLOCK_TICKS" -v bad="$non200" -v backend="$BACKEND" \
        'BEGIN {
            per = (n > 0 ? 1e6 / hz / n : 0)
            printf "| %s | `GET %s` | %.0f | %.2f | %.2f | %.0f |", s, path, rps, p50, p99, st * per
            if (backend == "postgres") printf " %.0f |", pt * per
            printf " %d |", bad }')"
    ROWS+=("$row")
    echo "$row"
done

kill -0 "$SERVER_PID" 2>/dev/null || die "the server died during the benchmark; its log is in $TMP/server.err"
SERVER_WARNINGS="$(server_warnings "$TMP/server.err")"

# --- results file -------------------------------------------------------------
RESULTS="${BENCH_RESULTS:-bench/results/admin-$BACKEND.md}"
mkdir -p "$(dirname "$RESULTS")"
if [[ $BACKEND == postgres ]]; then
    DB_INFO="PostgreSQL $(psql "$DATABASE_URL" -Atqc "show server_version" 2>/dev/null || echo '?')"
else
    DB_INFO="SQLite (WAL, set by the server) in $(df --output=fstype "$TMP" | tail -n1)"
fi
CPU_MODEL="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
{
    echo "# gatehouse benchmark: admin API, listing $COUNT clients ($BACKEND)"
    echo
    echo "- machine: $(nproc) cores, ${CPU_MODEL:-unknown CPU}, $(free -h | awk '/^Mem:/ { print $2 }') memory"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- git: $(git_revision); $(rustc --version 2>/dev/null || echo 'rustc ?')"
    echo "- load: $(wrk --version 2>&1 | head -n1 | awk '{ print $1, $2 }') -t$THREADS -c$CONNECTIONS -d$DURATION (after a $WARMUP warm-up) on loopback; wrk and the server share the cores"
    echo "- database: $DB_INFO; $SEED_INFO"
    echo "- admin token: $TOKEN_INFO (each request introspected by the server, no cache)"
    echo "- machine busy in the second before each scenario: ${BUSY[*]}"
    for s in "${SCENARIOS[@]:1}"; do echo "- page $s: ${PAGE_INFO[$s]}"; done
    echo "- floor: \`GET /healthz\` on the same server (no token, no database): the HTTP stack alone"
    echo
    echo "$TABLE_HEAD"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Query plans (the store's statements, LIMIT one more than the page's limit: the extra row tells whether a next page exists):"
    echo
    printf -- '- %s\n' "${PLANS[@]}"
    if [[ -n $SERVER_WARNINGS ]]; then
        echo
        echo "- server warnings: $(wc -l <<<"$SERVER_WARNINGS") lines at WARN or ERROR (first: $(head -n1 <<<"$SERVER_WARNINGS"))"
    fi
    [[ ${#FAILED[@]} -eq 0 ]] || printf -- '- FAILED: %s\n' "${FAILED[@]}"
} >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
echo
printf '%s\n' "${PLANS[@]}"
log "wrote $RESULTS"

if [[ ${#FAILED[@]} -gt 0 ]]; then
    printf 'FAILED: %s\n' "${FAILED[@]}" >&2
    exit 1
fi
