-- GET /oauth/jwks: the public keys a resource server fetches.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local report = require("report")

wrk.method = "GET"
wrk.path = "/oauth/jwks"
wrk.headers["Accept"] = "application/json"

done = report.done
