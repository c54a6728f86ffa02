#!/usr/bin/env bash
# Inserts COUNT clients (ids c0000001, c0000002, ...) straight into a migrated
# gatehouse database, SQLite or PostgreSQL, in one transaction: a million in
# seconds, where `gatehouse client create` would take a process and a commit each.
#
# Usage: bench/seed_clients.sh [--count N] DATABASE_URL
#
#   DATABASE_URL   sqlite://PATH (the file `gatehouse migrate` made) or
#                  postgres://... (a database `gatehouse migrate` made)
#   --count N      how many clients, 1 to 9,999,999 (default 1,000,000)
#
# Each row holds what `gatehouse client create --name seed --scope "read write"`
# writes: a generated secret's SHA-256 (`sha256$` and 43 characters of unpadded
# base64url; the secret of client c0000042 is seed-secret-42, as in seed.sql),
# grant_types "client_credentials", token_format "jwt", no audience or lifetimes
# of its own, created_at = updated_at = now. The CLI also appends one row per
# client to `changes`, the feed running servers follow to drop stale cache
# entries; these are inserted before any server starts, with nothing cached to
# drop, so they are left out.
#
# Bounded: the count is capped (ids have seven digits) and the whole insert is killed after SEED_TIMEOUT
# seconds (default 300). Needs python3 (SQLite) or psql (PostgreSQL).
set -euo pipefail

COUNT=1000000
SEED_TIMEOUT="${SEED_TIMEOUT:-300}"
URL=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --count) COUNT="${2:?--count needs a value}"; shift 2 ;;
        --count=*) COUNT="${1#*=}"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "bench/seed_clients.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
        *) [[ -z $URL ]] || { echo "bench/seed_clients.sh: one DATABASE_URL only" >&2; exit 2; }
           URL="$1"; shift ;;
    esac
done
[[ -n $URL ]] || { echo "bench/seed_clients.sh: DATABASE_URL is needed (try --help)" >&2; exit 2; }
[[ $COUNT =~ ^[1-9][0-9]{0,6}$ ]] \
    || { echo "bench/seed_clients.sh: --count must be 1 to 9999999: got '$COUNT'" >&2; exit 2; }
[[ $SEED_TIMEOUT =~ ^[1-9][0-9]*$ ]] \
    || { echo "bench/seed_clients.sh: SEED_TIMEOUT must be a number of seconds: got '$SEED_TIMEOUT'" >&2; exit 2; }

case "$URL" in
    sqlite:*)
        # sqlite://PATH or sqlite:PATH, without the ?mode=... the server accepts.
        path="${URL#sqlite:}"
        path="${path#//}"
        path="${path%%\?*}"
        [[ -f $path ]] || { echo "bench/seed_clients.sh: no database file $path (run gatehouse migrate first)" >&2; exit 1; }
        # SQLite has no SHA-256 of its own: Python's, registered as a function. The
        # recursive CTE counts 1..COUNT inside one INSERT, so there is no row-by-row
        # round trip; rows arrive in key order, which keeps the primary-key index
        # append-only.
        timeout --kill-after=5 "$SEED_TIMEOUT" python3 - "$path" "$COUNT" <<'PY'
import base64, hashlib, sqlite3, sys, time

path, count = sys.argv[1], int(sys.argv[2])

def secret_hash(i):
    digest = hashlib.sha256(b"seed-secret-%d" % i).digest()
    return "sha256$" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

db = sqlite3.connect(path, timeout=30, isolation_level=None)
db.create_function("seed_secret_hash", 1, secret_hash, deterministic=True)
db.execute("PRAGMA cache_size = -262144")  # 256 MiB: the index build stays in memory
db.execute("BEGIN IMMEDIATE")
db.execute("""
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
    INSERT INTO clients (client_id, name, secret_hash, scope, grant_types, audience,
                         access_token_ttl, refresh_token_ttl, token_format, can_introspect,
                         created_at, updated_at)
    SELECT 'c' || printf('%07d', i), 'seed', seed_secret_hash(i), 'read write',
           'client_credentials', NULL, NULL, NULL, 'jwt', 0, ?2, ?2
    FROM n""", (count, int(time.time())))
db.execute("COMMIT")
db.execute("ANALYZE clients")
total = db.execute("SELECT count(*) FROM clients").fetchone()[0]
db.close()
print(f"seeded {count} clients (the table now holds {total})")
PY
        ;;
    postgres://*|postgresql://*)
        command -v psql >/dev/null || { echo "bench/seed_clients.sh: psql is needed" >&2; exit 1; }
        # One statement over generate_series (psql -1 makes it one transaction with
        # the ANALYZE, which gives the planner the table's real size).
        timeout --kill-after=5 "$SEED_TIMEOUT" psql "$URL" -1 -v ON_ERROR_STOP=1 -q -v count="$COUNT" <<'SQL'
INSERT INTO clients (client_id, name, secret_hash, scope, grant_types, audience, access_token_ttl,
                     refresh_token_ttl, token_format, can_introspect, created_at, updated_at)
SELECT 'c' || lpad(i::text, 7, '0'), 'seed',
       'sha256$' || rtrim(translate(encode(sha256(convert_to('seed-secret-' || i, 'UTF8')), 'base64'), '+/', '-_'), '='),
       'read write', 'client_credentials', NULL, NULL, NULL, 'jwt', false,
       extract(epoch from now())::bigint, extract(epoch from now())::bigint
FROM generate_series(1, :count) AS i;
ANALYZE clients;
SELECT format('seeded %s clients (the table now holds %s)', :count, count(*)) FROM clients \gset
\echo :format
SQL
        ;;
    *) echo "bench/seed_clients.sh: DATABASE_URL must be sqlite://PATH or postgres://...: got '$URL'" >&2; exit 2 ;;
esac
