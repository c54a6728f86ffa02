-- GET /healthz: the floor, what the HTTP stack costs with no work behind it.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local report = require("report")

wrk.method = "GET"
wrk.path = "/healthz"

done = report.done
