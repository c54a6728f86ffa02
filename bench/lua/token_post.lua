-- POST /oauth/token, grant_type=client_credentials, client_secret_post.
-- BENCH_POST_CREDENTIALS: "client_id=...&client_secret=..." already
-- form-encoded by bench/run.sh.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local report = require("report")

local credentials = os.getenv("BENCH_POST_CREDENTIALS")
assert(credentials and credentials ~= "", "BENCH_POST_CREDENTIALS is not set")

wrk.method = "POST"
wrk.path = "/oauth/token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
wrk.body = "grant_type=client_credentials&" .. credentials

done = report.done
