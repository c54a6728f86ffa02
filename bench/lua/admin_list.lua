-- GET BENCH_ADMIN_PATH (a page of /admin/v1/clients, or /healthz for the floor)
-- with "Authorization: Bearer BENCH_ADMIN_TOKEN" when that is set.
--
-- wrk counts only statuses >= 400; a listing must answer 200 and nothing else,
-- so each thread counts the other answers itself and done() reports the total
-- as BENCH_EXTRA non200=N, with each thread's first one as a BENCH_FAILURE line.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local report = require("report")

local path = os.getenv("BENCH_ADMIN_PATH")
assert(path and path ~= "", "BENCH_ADMIN_PATH is not set")
local token = os.getenv("BENCH_ADMIN_TOKEN") or ""

wrk.method = "GET"
wrk.path = path
wrk.headers["Accept"] = "application/json"
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

-- Main state: the threads, to collect their counts in done().
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

-- Thread state.
non200 = 0
first_failure = nil

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    if not first_failure then
      first_failure = string.format("status %d: %s", status, (body or ""):sub(1, 200):gsub("%s+", " "))
    end
  end
end

function done(summary, latency, requests)
  local totals = { non200 = 0 }
  for _, thread in ipairs(threads) do
    totals.non200 = totals.non200 + (thread:get("non200") or 0)
  end
  report.done(summary, latency, requests, totals)
  for i, thread in ipairs(threads) do
    local failure = thread:get("first_failure")
    if failure then io.write(string.format("BENCH_FAILURE thread %d, first non-200: %s\n", i, failure)) end
  end
end
