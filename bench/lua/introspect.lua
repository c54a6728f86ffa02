-- POST /oauth/introspect (RFC 7662), client_secret_basic, one token over and over.
-- BENCH_INTROSPECT_CREDENTIALS: Basic credentials of a client created with
-- --can-introspect (a resource server); BENCH_INTROSPECT_TOKEN: the access token,
-- a JWT or an opaque gho_ token (both are URL-safe: no form-encoding needed).
-- bench/preflight.py has checked that it answers "active": true.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local report = require("report")

local credentials = os.getenv("BENCH_INTROSPECT_CREDENTIALS")
assert(credentials and credentials ~= "", "BENCH_INTROSPECT_CREDENTIALS is not set")
local token = os.getenv("BENCH_INTROSPECT_TOKEN")
assert(token and token:match("^[%w_%-%.]+$"), "BENCH_INTROSPECT_TOKEN is not set or not URL-safe")

wrk.method = "POST"
wrk.path = "/oauth/introspect"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
wrk.headers["Authorization"] = "Basic " .. credentials
wrk.body = "token=" .. token

done = report.done
