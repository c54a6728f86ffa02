-- GET BENCH_PATH of the guard benchmark's API, with "Authorization: Bearer
-- BENCH_TOKEN" when BENCH_TOKEN is set (the same header on /open, which ignores it,
-- so that both runs send the same bytes).
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local report = require("report")

wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH") or "/open"
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

done = report.done
