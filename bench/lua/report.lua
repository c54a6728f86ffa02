-- Shared by every scenario: the done() hook that prints one Markdown row.
--
-- wrk calls done(summary, latency, requests) once, in its main Lua state, after
-- all threads finish; summary and latency are already aggregated over threads.
-- summary.errors.status is wrk's count of responses with status >= 400 (wrk
-- has no separate count of 3xx, and none of these endpoints redirects), so
-- counting in a per-thread response() hook, which would cost the client CPU
-- that the server shares, is not needed. A scenario that counts more in its
-- threads (refresh.lua) passes the totals as extra: name -> integer, appended to
-- the BENCH_RESULT line in name order.
local M = {}

function M.done(summary, latency, requests, extra)
  local scenario = os.getenv("BENCH_SCENARIO") or "unnamed"
  local seconds = summary.duration / 1e6
  local rps = summary.requests / seconds
  local p50 = latency:percentile(50) / 1000
  local p99 = latency:percentile(99) / 1000
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  io.write(string.format("| %s | %.0f | %.2f | %.2f | %d |\n",
    scenario, rps, p50, p99, e.status))
  -- For bench/run.sh: the same figures, unrounded, plus socket errors.
  io.write(string.format(
    "BENCH_RESULT scenario=%s requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f non2xx=%d socket_errors=%d\n",
    scenario, summary.requests, seconds, rps, p50, p99, e.status, socket_errors))
  if extra then
    local names = {}
    for name in pairs(extra) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      io.write(string.format("BENCH_EXTRA %s=%d\n", name, extra[name]))
    end
  end
end

return M
