#!/usr/bin/env bash
# Runs schemathesis (property-based API testing from the OpenAPI description) against
# a live gatehouse on loopback: every operation of /openapi.json, with generated valid
# and invalid inputs, client_secret_basic credentials of a --can-introspect client,
# bounded in time. Fails on any 5xx or any answer outside the documented schema.
# positive_data_acceptance is left out: RFC 6749 makes the server refuse requests no
# schema can rule out (Basic and body credentials at once, §2.3; a grant the client
# may not use), and those refusals are right.
#
# A second run covers the admin API (/admin/v1) with a bearer token of a client that
# has gatehouse:admin, and registration (/oauth/register) in open mode.
#
# Usage: fuzz/schemathesis.sh [MAX_EXAMPLES]   (default 500 per operation);
# GATEHOUSE_CONFIG=examples/musement.toml covers that example's [[routes]] too.
# Needs python3 (installs schemathesis into a virtualenv under the temp directory,
# or uses $SCHEMATHESIS if set) and cargo.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MAX_EXAMPLES="${1:-500}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-schemathesis.XXXXXX")"
PID=""
trap '[[ -n $PID ]] && kill "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT

ST="${SCHEMATHESIS:-}"
if [[ -z $ST ]]; then
    python3 -m venv "$TMP/venv"
    "$TMP/venv/bin/pip" install -q schemathesis >&2
    ST="$TMP/venv/bin/schemathesis"
fi
cargo build --release -p gatehouse --bin gatehouse >&2
BIN="$ROOT/target/release/gatehouse"
DB="sqlite://$TMP/g.db"
"$BIN" client create --name st --can-introspect --grant-types client_credentials,password,refresh_token \
    --json --database-url "$DB" >"$TMP/client.json"
read -r ID SECRET < <(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["client_id"], c["client_secret"])' "$TMP/client.json")
"$BIN" client create --name st-admin --scope gatehouse:admin --json --database-url "$DB" >"$TMP/admin.json"
read -r ADMIN_ID ADMIN_SECRET < <(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["client_id"], c["client_secret"])' "$TMP/admin.json")
GATEHOUSE_LOG=warn,gatehouse::server=info "$BIN" serve --listen 127.0.0.1:0 --database-url "$DB" \
    --registration open \
    --rate-limit-per-client 0 --rate-limit-per-address 0 --login-lockout-threshold 0 \
    >"$TMP/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do
    ADDR="$(grep -m1 -o 'listening addr=[0-9.:]*' "$TMP/server.log" | cut -d= -f2 || true)"
    [[ -n $ADDR ]] && break
    sleep 0.1
done
[[ -n ${ADDR:-} ]] || { cat "$TMP/server.log" >&2; exit 1; }

status=0
timeout 1800 "$ST" run "http://$ADDR/openapi.json" \
    --exclude-path-regex '^/admin/' \
    --checks all --exclude-checks positive_data_acceptance \
    --max-examples "$MAX_EXAMPLES" --auth "$ID:$SECRET" \
    --request-timeout 5 --workers 2 || status=$?
ADMIN_TOKEN="$(curl -s -u "$ADMIN_ID:$ADMIN_SECRET" -d grant_type=client_credentials "http://$ADDR/oauth/token" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
# Generated requests reuse ids seen in answers (a listed client id may be the admin
# client's own), and deleting that client or revoking its tokens ends the token the
# run uses: those two operations run last, on their own.
KILLERS=(admin_delete_client admin_revoke_client_tokens)
timeout 1800 "$ST" run "http://$ADDR/openapi.json" \
    --include-path-regex '^/admin/' "${KILLERS[@]/#/--exclude-operation-id=}" \
    --checks all --exclude-checks positive_data_acceptance \
    --max-examples "$MAX_EXAMPLES" --header "Authorization: Bearer $ADMIN_TOKEN" \
    --request-timeout 5 --workers 2 || status=$?
timeout 1800 "$ST" run "http://$ADDR/openapi.json" \
    "${KILLERS[@]/#/--include-operation-id=}" \
    --checks all --exclude-checks positive_data_acceptance \
    --max-examples "$MAX_EXAMPLES" --header "Authorization: Bearer $ADMIN_TOKEN" \
    --request-timeout 5 --workers 2 || status=$?
if grep -q 'panicked' "$TMP/server.log"; then
    echo "the server panicked:" >&2
    grep -A5 panicked "$TMP/server.log" >&2
    status=1
fi
exit "$status"
