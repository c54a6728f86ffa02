#!/usr/bin/env python3
"""Helpers for bench/run.sh: check each benchmarked request once before wrk
hammers it, and do the small encodings a shell does badly.

Subcommands:
  client FILE                   print client_id and client_secret (tab-separated)
                                from `gatehouse client create --json` output
  credentials ID SECRET         print two lines: the Basic credentials (base64 of
                                form-encoded id:secret, RFC 6749 2.3.1) and the
                                client_secret_post body part
  db-url BASE NAME              print BASE (a postgres:// URL) naming database NAME
  token URL [--basic B|--post P] [--save-jwt PREFIX] [--opaque] [--save-token FILE]
                                POST a client_credentials request, check the
                                answer is a 200 with a Bearer token (a JWT, or
                                with --opaque a gho_ token); with --save-jwt,
                                write the JWT's header and claims to
                                PREFIX-header.json and PREFIX-claims.json; with
                                --save-token, the access token to FILE
  rotation URL --basic B --username U --password P
                                log in once (password grant), refresh once, check
                                the answer carries a new refresh token, then
                                present the old one again and check it is refused
                                (invalid_grant) and that this ended its successor
                                too (reuse detection, RFC 9700 4.14.2)
  login URL --basic B --username U --password P --count N --out FILE
                                N password logins, in parallel; write their N
                                refresh tokens to FILE, one a line
  introspect URL --basic B --token-file FILE
                                POST /oauth/introspect with the token in FILE,
                                check for a 200 with "active": true
  get URL [--json-key KEY]      GET, check for a 200 (and a JSON object with KEY)
  assertion URL --assertion-file FILE
                                private_key_jwt: POST a client_credentials request
                                with the first assertion in FILE, check for a 200
                                with a Bearer JWT issued to the assertion's sub,
                                then send the same assertion again and check it is
                                refused (401 invalid_client: its jti was recorded)

Uses only the standard library. Exits 1 with a message on any mismatch.
"""

import argparse
import base64
import concurrent.futures
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def fail(message):
    print(f"preflight: {message}", file=sys.stderr)
    sys.exit(1)


def http(url, method="GET", body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except OSError as e:
        fail(f"{method} {url}: {e}")


def b64url_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def cmd_client(args):
    with open(args.file) as f:
        data = json.load(f)
    for key in ("client_id", "client_secret"):
        if not isinstance(data.get(key), str) or not data[key]:
            fail(f"{args.file}: no {key} in the client create output")
    print(f"{data['client_id']}\t{data['client_secret']}")


def cmd_credentials(args):
    quote = urllib.parse.quote_plus
    pair = f"{quote(args.id)}:{quote(args.secret)}"
    print(base64.b64encode(pair.encode()).decode())
    print(urllib.parse.urlencode({"client_id": args.id, "client_secret": args.secret}))


def cmd_db_url(args):
    url = urllib.parse.urlsplit(args.base)
    if url.scheme not in ("postgres", "postgresql"):
        fail(f"not a postgres:// URL: {args.base}")
    print(urllib.parse.urlunsplit(url._replace(path="/" + args.name)))


def form_post(url, fields, basic):
    """POSTs a form with Basic client authentication; returns (status, JSON or None, raw)."""
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        "Authorization": "Basic " + basic,
    }
    status, _, raw = http(url, "POST", urllib.parse.urlencode(fields).encode(), headers)
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    return status, data, raw


def refresh_token_of(url, what, status, data, raw):
    """The ghr_ refresh token of a 200 token response, or fail."""
    if status != 200 or not isinstance(data, dict):
        fail(f"POST {url} ({what}): status {status}, body {raw[:300]!r}")
    token = data.get("refresh_token")
    if not isinstance(token, str) or not token.startswith("ghr_"):
        fail(f"POST {url} ({what}): no ghr_ refresh_token in {sorted(data)}")
    if not isinstance(data.get("access_token"), str):
        fail(f"POST {url} ({what}): no access_token in {sorted(data)}")
    return token


def password_login(args):
    fields = {"grant_type": "password", "username": args.username, "password": args.password}
    return refresh_token_of(args.url, "password grant", *form_post(args.url, fields, args.basic))


def cmd_rotation(args):
    first = password_login(args)
    status, data, raw = form_post(args.url, {"grant_type": "refresh_token", "refresh_token": first}, args.basic)
    second = refresh_token_of(args.url, "refresh_token grant", status, data, raw)
    if second == first:
        fail(f"POST {args.url}: the refresh returned the same refresh token: no rotation")
    size = len(raw)
    # The old token again: reuse, which must be refused and end the family.
    for what, token in (("reuse of the rotated-out token", first), ("its successor after the reuse", second)):
        status, data, raw = form_post(args.url, {"grant_type": "refresh_token", "refresh_token": token}, args.basic)
        if status != 400 or not isinstance(data, dict) or data.get("error") != "invalid_grant":
            fail(f"POST {args.url} ({what}): expected 400 invalid_grant, got {status} {raw[:300]!r}")
    print(
        f"login 200; refresh 200 with a new refresh token (response {size} bytes); "
        f"the old token again 400 invalid_grant, and then its successor too (family revoked)"
    )


def cmd_login(args):
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.parallel) as pool:
        tokens = list(pool.map(lambda _: password_login(args), range(args.count)))
    seconds = time.monotonic() - started
    if len(set(tokens)) != len(tokens):
        fail("two logins returned the same refresh token")
    with open(args.out, "w") as f:
        f.write("".join(t + "\n" for t in tokens))
    print(f"{args.count} password logins in {seconds:.2f} s ({args.parallel} at a time)")


def cmd_introspect(args):
    with open(args.token_file) as f:
        token = f.read().strip()
    status, data, raw = form_post(args.url, {"token": token}, args.basic)
    if status != 200 or not isinstance(data, dict):
        fail(f"POST {args.url}: status {status}, body {raw[:300]!r}")
    if data.get("active") is not True:
        fail(f"POST {args.url}: the token is not active: {raw[:300]!r}")
    print(
        f"200, active true, client_id {data.get('client_id')!r}, scope {data.get('scope')!r}, "
        f"{len(data)} fields, response {len(raw)} bytes"
    )


def cmd_token(args):
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    body = "grant_type=client_credentials"
    if args.basic:
        headers["Authorization"] = "Basic " + args.basic
    if args.post:
        body += "&" + args.post
    status, resp_headers, raw = http(args.url, "POST", body.encode(), headers)
    if status != 200:
        fail(f"POST {args.url}: status {status}, body {raw[:300]!r}")
    if "no-store" not in (resp_headers.get("Cache-Control") or ""):
        fail(f"POST {args.url}: no 'Cache-Control: no-store' on the token response")
    try:
        data = json.loads(raw)
    except ValueError:
        fail(f"POST {args.url}: body is not JSON: {raw[:300]!r}")
    token = data.get("access_token")
    if not isinstance(token, str) or str(data.get("token_type", "")).lower() != "bearer":
        fail(f"POST {args.url}: no Bearer access_token in {sorted(data)}")
    if args.save_token:
        with open(args.save_token, "w") as f:
            f.write(token + "\n")
    if args.opaque:
        if not token.startswith("gho_") or "." in token:
            fail(f"POST {args.url}: the access token is not an opaque gho_ token")
        print(f"200, opaque token of {len(token)} bytes, scope {data.get('scope')!r}, response {len(raw)} bytes")
        return
    parts = token.split(".")
    if len(parts) != 3:
        fail(f"POST {args.url}: the access token is not a JWS compact JWT")
    header, claims = b64url_json(parts[0]), b64url_json(parts[1])
    if args.save_jwt:
        for name, value in (("header", header), ("claims", claims)):
            with open(f"{args.save_jwt}-{name}.json", "w") as f:
                json.dump(value, f)
    print(
        f"200, {header.get('alg')} JWT of {len(token)} bytes (typ {header.get('typ')}, "
        f"claims {','.join(sorted(claims))}), scope {data.get('scope')!r}, "
        f"response {len(raw)} bytes"
    )


JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def cmd_assertion(args):
    with open(args.assertion_file) as f:
        assertion = f.readline().strip()
    if assertion.count(".") != 2:
        fail(f"{args.assertion_file}: the first line is not a JWS compact JWT")
    sub = b64url_json(assertion.split(".")[1]).get("sub")
    body = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER, "client_assertion": assertion}
    ).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    status, resp_headers, raw = http(args.url, "POST", body, headers)
    if status != 200:
        fail(f"POST {args.url} (private_key_jwt): status {status}, body {raw[:300]!r}")
    if "no-store" not in (resp_headers.get("Cache-Control") or ""):
        fail(f"POST {args.url}: no 'Cache-Control: no-store' on the token response")
    try:
        data = json.loads(raw)
    except ValueError:
        fail(f"POST {args.url}: body is not JSON: {raw[:300]!r}")
    token = data.get("access_token")
    if not isinstance(token, str) or str(data.get("token_type", "")).lower() != "bearer" or token.count(".") != 2:
        fail(f"POST {args.url}: no Bearer JWT access_token in {sorted(data)}")
    claims = b64url_json(token.split(".")[1])
    if claims.get("client_id") != sub:
        fail(f"POST {args.url}: the token's client_id {claims.get('client_id')!r} is not the assertion's sub {sub!r}")
    size = len(raw)
    status, _, raw = http(args.url, "POST", body, headers)
    try:
        error = json.loads(raw).get("error")
    except (ValueError, AttributeError):
        error = None
    if status != 401 or error != "invalid_client":
        fail(f"POST {args.url} (the same assertion again): expected 401 invalid_client, got {status} {raw[:300]!r}")
    print(
        f"200, JWT of {len(token)} bytes for client_id {sub!r}, scope {data.get('scope')!r}, response {size} bytes; "
        f"the same assertion again 401 invalid_client ({json.loads(raw).get('error_description')!r})"
    )


def cmd_get(args):
    status, _, raw = http(args.url)
    if status != 200:
        fail(f"GET {args.url}: status {status}, body {raw[:300]!r}")
    if args.json_key:
        try:
            data = json.loads(raw)
        except ValueError:
            fail(f"GET {args.url}: body is not JSON: {raw[:300]!r}")
        if not isinstance(data, dict) or not data.get(args.json_key):
            fail(f"GET {args.url}: no non-empty {args.json_key!r} in the body")
    print(f"200, {len(raw)} bytes")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("client")
    p.add_argument("file")
    p.set_defaults(run=cmd_client)
    p = sub.add_parser("credentials")
    p.add_argument("id")
    p.add_argument("secret")
    p.set_defaults(run=cmd_credentials)
    p = sub.add_parser("db-url")
    p.add_argument("base")
    p.add_argument("name")
    p.set_defaults(run=cmd_db_url)
    p = sub.add_parser("token")
    p.add_argument("url")
    p.add_argument("--basic")
    p.add_argument("--post")
    p.add_argument("--save-jwt")
    p.add_argument("--save-token")
    p.add_argument("--opaque", action="store_true")
    p.set_defaults(run=cmd_token)
    for name, run in (("rotation", cmd_rotation), ("login", cmd_login)):
        p = sub.add_parser(name)
        p.add_argument("url")
        p.add_argument("--basic", required=True)
        p.add_argument("--username", required=True)
        p.add_argument("--password", required=True)
        if name == "login":
            p.add_argument("--count", type=int, required=True)
            p.add_argument("--out", required=True)
            p.add_argument("--parallel", type=int, default=8)
        p.set_defaults(run=run)
    p = sub.add_parser("introspect")
    p.add_argument("url")
    p.add_argument("--basic", required=True)
    p.add_argument("--token-file", required=True)
    p.set_defaults(run=cmd_introspect)
    p = sub.add_parser("assertion")
    p.add_argument("url")
    p.add_argument("--assertion-file", required=True)
    p.set_defaults(run=cmd_assertion)
    p = sub.add_parser("get")
    p.add_argument("url")
    p.add_argument("--json-key")
    p.set_defaults(run=cmd_get)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
