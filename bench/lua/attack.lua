-- The attacker of bench/attack.sh: wrong secrets, with
-- client_secret_basic, for a client whose secret was imported (stored with
-- Argon2id), as fast as the connections get answers.
--
-- BENCH_ATTACK_CLIENT_ID: the victim's client_id (URL-safe: no form-encoding).
-- BENCH_ATTACK_PATH: /oauth/token (grant_type=client_credentials) or
--   /oauth/introspect (token=...); both authenticate the client first.
-- BENCH_ATTACK_XFF: "none" (no X-Forwarded-For: the connection's own address),
--   "many" (a random 10.x.y.z per request: an attacker with as many addresses as
--   requests, seen through a trusted proxy), or one address (every request from it).
-- Every request presents a fresh random 24-character secret, so that no cache of
-- failed secrets (were there one) could answer it without Argon2.
--
-- response() counts the statuses per thread (401 invalid_client is the answer to a
-- wrong secret; 429 and 503 are refusals before Argon2; anything else is "other")
-- and the range of Retry-After on 429 and 503; done() prints one ATTACK_RESULT line.
local client_id = os.getenv("BENCH_ATTACK_CLIENT_ID")
assert(client_id and client_id:match("^[%w%-%._~]+$"), "BENCH_ATTACK_CLIENT_ID is not set or not URL-safe")
local path = os.getenv("BENCH_ATTACK_PATH") or "/oauth/token"
local xff = os.getenv("BENCH_ATTACK_XFF") or "none"

local body
if path == "/oauth/token" then
  body = "grant_type=client_credentials"
elseif path == "/oauth/introspect" then
  body = "token=gho_not_a_token"
else
  error("BENCH_ATTACK_PATH must be /oauth/token or /oauth/introspect")
end

wrk.method = "POST"
wrk.path = path
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
wrk.body = body
if xff ~= "none" and xff ~= "many" then
  wrk.headers["X-Forwarded-For"] = xff
end

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local k1 = math.floor(n / 262144) % 64 + 1
    local k2 = math.floor(n / 4096) % 64 + 1
    local k3 = math.floor(n / 64) % 64 + 1
    local k4 = n % 64 + 1
    out[#out + 1] = alphabet:sub(k1, k1) .. alphabet:sub(k2, k2)
      .. (b and alphabet:sub(k3, k3) or "=") .. (c and alphabet:sub(k4, k4) or "=")
  end
  return table.concat(out)
end

local secret_chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

local function guess()
  local t = {}
  for i = 1, 24 do
    local k = math.random(1, #secret_chars)
    t[i] = secret_chars:sub(k, k)
  end
  return table.concat(t)
end

-- Main state: the threads, for done().
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("seed", math.random(1, 2 ^ 30) + #threads)
end

-- Thread state.
s200, s401, s408, s429, s503, sother = 0, 0, 0, 0, 0, 0
retry_min, retry_max = -1, -1

function init(args)
  math.randomseed(seed or os.time())
end

function request()
  wrk.headers["Authorization"] = "Basic " .. base64(client_id .. ":" .. guess())
  if xff == "many" then
    wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d",
      math.random(0, 255), math.random(0, 255), math.random(1, 254))
  end
  return wrk.format()
end

function response(status, headers, body)
  if status == 401 then s401 = s401 + 1
  elseif status == 429 then s429 = s429 + 1
  elseif status == 503 then s503 = s503 + 1
  elseif status == 200 then s200 = s200 + 1
  elseif status == 408 then s408 = s408 + 1
  else sother = sother + 1 end
  if status == 429 or status == 503 then
    local ra = tonumber(headers["Retry-After"] or headers["retry-after"] or "")
    if ra then
      if retry_min < 0 or ra < retry_min then retry_min = ra end
      if ra > retry_max then retry_max = ra end
    end
  end
end

function done(summary, latency, requests)
  local t = { s200 = 0, s401 = 0, s408 = 0, s429 = 0, s503 = 0, sother = 0 }
  local rmin, rmax = -1, -1
  for _, thread in ipairs(threads) do
    for name in pairs(t) do t[name] = t[name] + (thread:get(name) or 0) end
    local a, b = thread:get("retry_min") or -1, thread:get("retry_max") or -1
    if a >= 0 and (rmin < 0 or a < rmin) then rmin = a end
    if b > rmax then rmax = b end
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "ATTACK_RESULT requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f s200=%d s401=%d s408=%d s429=%d s503=%d sother=%d connect=%d read=%d write=%d timeout=%d retry_after_min=%d retry_after_max=%d\n",
    summary.requests, seconds, summary.requests / seconds, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, t.s200, t.s401, t.s408, t.s429, t.s503, t.sother,
    e.connect, e.read, e.write, e.timeout, rmin, rmax))
end
