# shellcheck shell=bash
# What the scripts in bench/ share. Not run on its own: each script sources it
# right after `set -euo pipefail`, naming the tag of its log lines:
#
#     source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" attack
#
# Sourcing sets ROOT (the checkout) and goes there, and exports LC_ALL=C and
# CARGO_TERM_COLOR (never, unless set). The functions, in the order a script uses
# them:
#
#   log MESSAGE, die MESSAGE   "[TAG SECONDS] MESSAGE" on stderr; "bench/SCRIPT:
#                              MESSAGE" on stderr, and exit 1
#   print_help, database_backend URL
#   install_wrk                apt-get installs wrk if it is missing
#   gatehouse_binary VERB      sets BIN: GATEHOUSE_BIN, or the work tree built
#   start_cleanup PREFIX       sets TMP, and from then on cleans up on exit
#   create_database PREFIX     sets DATABASE_URL and ADMIN_FLAGS
#   create_client NAME [FLAGS...]
#   wait_for_address PID FILE NAME
#   stop_process PID NAME
#   cpu_busy_percent, server_warnings FILE, git_revision
#
# The database functions read BACKEND (sqlite or postgres) and BASE_DATABASE_URL,
# which the script sets from its --database-url.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export LC_ALL=C
LOG_TAG="${1:-bench}"

log() { printf '[%s %4ds] %s\n' "$LOG_TAG" "$SECONDS" "$*" >&2; }
die() { printf 'bench/%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# --help: the script's opening comment, from line 2 to `set -euo pipefail`.
print_help() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# database_backend URL: sqlite (no URL) or postgres; fails on any other URL.
database_backend() {
    case "$1" in
        "") echo sqlite ;;
        postgres://*|postgresql://*) echo postgres ;;
        *) return 1 ;;
    esac
}

install_wrk() {
    local sudo=""
    command -v wrk >/dev/null && return 0
    log "wrk not found: installing it with apt-get"
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "wrk is missing and installing it needs root (apt-get install -y wrk)"
        sudo=sudo
    fi
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >&2
    command -v wrk >/dev/null || die "apt-get installed no wrk"
}

# gatehouse_binary VERB: sets BIN to GATEHOUSE_BIN (an older commit's binary, say),
# or builds the work tree's; VERB says what the script does with it.
gatehouse_binary() {
    local verb="$1"
    if [[ -n ${GATEHOUSE_BIN:-} ]]; then
        BIN="$(realpath "$GATEHOUSE_BIN")"
        [[ -x $BIN ]] || die "GATEHOUSE_BIN=$GATEHOUSE_BIN is not an executable"
        log "$verb $BIN (GATEHOUSE_BIN: not building the work tree)"
    else
        command -v cargo >/dev/null || die "cargo is needed"
        log "cargo build --release -p gatehouse"
        cargo build --release -p gatehouse --bin gatehouse >&2
        BIN="$ROOT/target/release/gatehouse"
        [[ -x $BIN ]] || die "no $BIN after the build"
    fi
}

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

# start_cleanup PREFIX: a temporary directory TMP (gatehouse-PREFIX.XXXXXX), and,
# whatever happens from here on, a clean-up on exit: the script's own
# before_cleanup, if it defines one (its other processes), then the server
# SERVER_PID, the PostgreSQL database PG_DATABASE, and TMP unless KEEP_TMP=1.
start_cleanup() {
    TMP="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-$1.XXXXXX")"
    SERVER_PID=""
    PG_DATABASE=""
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

cleanup() {
    local status=$?
    trap - EXIT
    [[ $status -eq 0 ]] || log "stopping (exit status $status): cleaning up"
    if declare -F before_cleanup >/dev/null; then before_cleanup; fi
    stop_process "$SERVER_PID" gatehouse
    if [[ -n $PG_DATABASE ]]; then
        psql "$BASE_DATABASE_URL" -v ON_ERROR_STOP=1 -qc "drop database if exists $PG_DATABASE with (force)" >&2 \
            || log "could not drop database $PG_DATABASE: drop it by hand"
    fi
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$status"
}

# create_database PREFIX: SQLite in TMP, or a fresh PostgreSQL database
# PREFIX_<time>_<random> beside BASE_DATABASE_URL's (dropped by the clean-up).
# Sets DATABASE_URL, and ADMIN_FLAGS for every gatehouse command that opens it.
create_database() {
    ADMIN_FLAGS=()
    if [[ $BACKEND == sqlite ]]; then
        DATABASE_URL="sqlite://$TMP/g.db"
    else
        PG_DATABASE="$1_$(date +%s)_$RANDOM"
        log "creating PostgreSQL database $PG_DATABASE"
        psql "$BASE_DATABASE_URL" -v ON_ERROR_STOP=1 -qc "create database $PG_DATABASE" >&2 \
            || { PG_DATABASE=""; die "cannot create a database through $BASE_DATABASE_URL"; }
        DATABASE_URL="$(python3 bench/preflight.py db-url "$BASE_DATABASE_URL" "$PG_DATABASE")"
        # PostgreSQL has no file beside it to keep a master key in: a fresh one.
        ADMIN_FLAGS+=(--master-key "$(head -c32 /dev/urandom | base64)")
    fi
    log "database: $BACKEND, ${DATABASE_URL%%\?*}"
}

# create_client NAME [FLAGS...]: a client with scope "read write" (stdin: its
# secret, with --secret-stdin); sets CLIENT_ID, BASIC_CREDENTIALS and
# POST_CREDENTIALS.
create_client() {
    local name="$1" secret
    shift
    log "gatehouse client create --name $name --scope 'read write' $*"
    "$BIN" client create --name "$name" --scope "read write" "$@" --json \
        --database-url "$DATABASE_URL" "${ADMIN_FLAGS[@]}" >"$TMP/client-$name.json" 2>"$TMP/client.err" \
        || { cat "$TMP/client.err" >&2; die "gatehouse client create failed"; }
    IFS=$'\t' read -r CLIENT_ID secret < <(python3 bench/preflight.py client "$TMP/client-$name.json")
    { read -r BASIC_CREDENTIALS; read -r POST_CREDENTIALS; } \
        < <(python3 bench/preflight.py credentials -- "$CLIENT_ID" "$secret")
    log "client $CLIENT_ID"
}

# wait_for_address PID FILE NAME: waits for "listening addr=127.0.0.1:PORT" in the
# log FILE of process PID and prints the address; fails if the process exits first
# or STARTUP_TIMEOUT seconds pass.
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

# Other work on the machine skews every figure: measure it over one second.
cpu_busy_percent() {
    local a b
    a="$(head -n1 /proc/stat)"; sleep 1; b="$(head -n1 /proc/stat)"
    awk -v a="$a" -v b="$b" 'BEGIN {
        n = split(a, x, " "); split(b, y, " ")
        for (i = 2; i <= n; i++) { t += y[i] - x[i]; if (i == 5 || i == 6) idle += y[i] - x[i] }
        printf "%.0f", (t > 0 ? 100 * (t - idle) / t : 0) }'
}

# server_warnings FILE: the lines of a server log at WARN or ERROR (text or JSON).
server_warnings() {
    sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -E '\b(WARN|ERROR)\b|"level":"(WARN|ERROR)"' || true
}

# What was measured, for a results file: BENCH_REV or the GATEHOUSE_BIN path, or
# the commit, with a note if crates/ or the manifests have uncommitted changes.
git_revision() {
    local rev
    if [[ -n ${GATEHOUSE_BIN:-} ]]; then
        echo "${BENCH_REV:-a given binary, $BIN}"
        return
    fi
    rev="$(git rev-parse --short HEAD 2>/dev/null || echo 'no commit')"
    [[ -z "$(git status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]] || rev+=" + uncommitted changes"
    echo "$rev"
}
