-- POST /oauth/token, grant_type=client_credentials, client_secret_basic.
-- BENCH_BASIC_CREDENTIALS: base64 of form-encoded "id:secret" (RFC 6749 2.3.1),
-- computed by bench/run.sh.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local report = require("report")

local credentials = os.getenv("BENCH_BASIC_CREDENTIALS")
assert(credentials and credentials ~= "", "BENCH_BASIC_CREDENTIALS is not set")

wrk.method = "POST"
wrk.path = "/oauth/token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
wrk.headers["Authorization"] = "Basic " .. credentials
wrk.body = "grant_type=client_credentials"

done = report.done
