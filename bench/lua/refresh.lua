-- POST /oauth/token, grant_type=refresh_token, client_secret_basic: every request
-- a valid rotation.
--
-- BENCH_REFRESH_TOKENS names a file of refresh tokens, one a line, each from its
-- own password login (bench/run.sh writes one per connection plus one per
-- thread, fresh for every wrk run). BENCH_THREADS is wrk's -t. setup() gives
-- thread i (0-based) tokens i+1, i+1+T, ...: one more than its connections. Each
-- thread keeps a queue: request() takes the oldest token and presents it,
-- response() pushes the refresh token of a 200 answer back. A connection has one
-- request in flight at a time, so every token presented is live and unused: each
-- request rotates one chain. The spare token is for wrk itself, which calls
-- request() once on the first thread before the run to check the script and
-- never sends that request (the token it took is left unused, still live).
-- A chain breaks only on a non-200 answer (counted); a thread that finds its
-- queue empty sends "ghr_exhausted", which the server refuses, so that too shows
-- as a failure. done() prints each thread's first failure (status and the start
-- of the body) as a BENCH_FAILURE line.
--
-- BENCH_REFRESH_CREDENTIALS: Basic credentials of the client the logins used.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local report = require("report")

local credentials = os.getenv("BENCH_REFRESH_CREDENTIALS")
assert(credentials and credentials ~= "", "BENCH_REFRESH_CREDENTIALS is not set")

wrk.method = "POST"
wrk.path = "/oauth/token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
wrk.headers["Authorization"] = "Basic " .. credentials

-- Main state: hand out the tokens, and collect the counts in done().
local threads = {}
local all_tokens

function setup(thread)
  if not all_tokens then
    local path = os.getenv("BENCH_REFRESH_TOKENS")
    assert(path and path ~= "", "BENCH_REFRESH_TOKENS is not set")
    all_tokens = {}
    for line in io.lines(path) do
      if line ~= "" then all_tokens[#all_tokens + 1] = line end
    end
  end
  local count = tonumber(os.getenv("BENCH_THREADS") or "")
  assert(count and count >= 1, "BENCH_THREADS is not set")
  local index = #threads
  threads[index + 1] = thread
  local mine = {}
  for k = index + 1, #all_tokens, count do mine[#mine + 1] = all_tokens[k] end
  thread:set("initial_tokens", mine)
end

-- Thread states: the queue and the counts.
local queue, head, tail
rotations, failed, missing, exhausted = 0, 0, 0, 0
first_failure = nil

function init(args)
  queue, head, tail = {}, 1, 1
  for _, token in ipairs(initial_tokens or {}) do
    queue[tail] = token
    tail = tail + 1
  end
end

function request()
  local token = queue[head]
  if token then
    queue[head] = nil
    head = head + 1
  else
    exhausted = exhausted + 1
    token = "ghr_exhausted"
  end
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  if status ~= 200 then
    failed = failed + 1
    if not first_failure then
      first_failure = string.format("status %d after %d rotations: %s", status, rotations,
        (body or ""):sub(1, 200):gsub("%s+", " "))
    end
    return
  end
  local token = body:match('"refresh_token":"(ghr_[%w_%-]+)"')
  if token then
    queue[tail] = token
    tail = tail + 1
    rotations = rotations + 1
  else
    missing = missing + 1
  end
end

function done(summary, latency, requests)
  local totals = { rotations = 0, non200 = 0, no_refresh_token = 0, exhausted = 0, tokens = #(all_tokens or {}) }
  for _, thread in ipairs(threads) do
    totals.rotations = totals.rotations + (thread:get("rotations") or 0)
    totals.non200 = totals.non200 + (thread:get("failed") or 0)
    totals.no_refresh_token = totals.no_refresh_token + (thread:get("missing") or 0)
    totals.exhausted = totals.exhausted + (thread:get("exhausted") or 0)
  end
  report.done(summary, latency, requests, totals)
  for i, thread in ipairs(threads) do
    local failure = thread:get("first_failure")
    if failure then io.write(string.format("BENCH_FAILURE thread %d, first non-200: %s\n", i, failure)) end
  end
end
