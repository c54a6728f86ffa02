-- POST /oauth/token, grant_type=client_credentials, private_key_jwt (RFC 7523
-- §2.2): client_assertion_type and a signed client_assertion in the form, a new
-- one every request.
--
-- The server keeps a durable record of each assertion's jti and refuses it a
-- second time, so no assertion may be sent twice. BENCH_ASSERTIONS names a file
-- of assertions, one a line, all of the same length (made before each wrk run
-- by bench/ceiling's gatehouse-bench-assertions, outside the measured window).
-- BENCH_THREADS is wrk's -t. setup() gives thread i (0-based) the i-th of T
-- disjoint slices of the file; init() reads that slice with one read, and
-- request() cuts the next assertion out of it by offset, so a request costs
-- wrk no more than a string.sub and the body's concatenation.
--
-- A thread whose slice is used up does not reuse one: it counts the request as
-- "exhausted", stops (wrk.thread:stop()) and sends GET /healthz instead, and
-- bench/run.sh fails the run (the thread stopped early, so req/s would be low).
-- bench/run.sh sizes the file from the client_secret_basic rate of the same run
-- so that this does not happen.
--
-- wrk calls request() once on the first thread before the run to check the
-- script and never sends that request: one assertion of that thread is left
-- unused, which is harmless (an unsent assertion was never recorded).
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local report = require("report")

wrk.method = "POST"
wrk.path = "/oauth/token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"

local PREFIX = "grant_type=client_credentials"
  .. "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
  .. "&client_assertion="

-- Main state: the file's geometry, the slices, and the counts in done().
-- (Not named like the globals that thread:set() gives each thread's state: this
-- chunk runs in every state, and a local would hide the global there.)
local threads = {}
local file_path, file_width, file_count

-- The length of the file's first line, and how many lines of that length it holds.
local function geometry(name)
  local f = assert(io.open(name, "rb"), "cannot open BENCH_ASSERTIONS " .. name)
  local first = f:read("*l")
  assert(first and #first > 0, "BENCH_ASSERTIONS " .. name .. " is empty")
  local size = f:seek("end")
  f:close()
  local w = #first
  assert(size % (w + 1) == 0, "BENCH_ASSERTIONS " .. name .. ": lines of different lengths")
  return w, size / (w + 1)
end

function setup(thread)
  if not file_path then
    file_path = os.getenv("BENCH_ASSERTIONS")
    assert(file_path and file_path ~= "", "BENCH_ASSERTIONS is not set")
    file_width, file_count = geometry(file_path)
  end
  local total = tonumber(os.getenv("BENCH_THREADS") or "")
  assert(total and total >= 1, "BENCH_THREADS is not set")
  local index = #threads
  threads[index + 1] = thread
  local per = math.floor(file_count / total)
  thread:set("assertions_path", file_path)
  thread:set("width", file_width)
  thread:set("first", index * per)
  thread:set("slice", per)
end

-- Thread states: the slice as one string, the next offset, and the counts.
local data, offset, stride
used, exhausted = 0, 0

function init(args)
  local f = assert(io.open(assertions_path, "rb"))
  stride = width + 1
  f:seek("set", first * stride)
  data = f:read(slice * stride) or ""
  f:close()
  assert(#data == slice * stride, "short read of the assertions file")
  offset = 1
end

function request()
  if offset + width - 1 > #data then
    exhausted = exhausted + 1
    wrk.thread:stop()
    return wrk.format("GET", "/healthz", nil, "")
  end
  local assertion = data:sub(offset, offset + width - 1)
  offset = offset + stride
  used = used + 1
  return wrk.format(nil, nil, nil, PREFIX .. assertion)
end

function done(summary, latency, requests)
  local totals = { assertions = file_count or 0, taken = 0, exhausted = 0 }
  for _, thread in ipairs(threads) do
    totals.taken = totals.taken + (thread:get("used") or 0)
    totals.exhausted = totals.exhausted + (thread:get("exhausted") or 0)
  end
  report.done(summary, latency, requests, totals)
end
