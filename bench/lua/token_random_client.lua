-- POST /oauth/token, grant_type=client_credentials, client_secret_post, each
-- request for a random client of the BENCH_SEED_CLIENTS clients that
-- bench/seed.sql created (client_id seed-<i>, secret seed-secret-<i>): with more
-- clients than the server caches, most requests look the client up in the
-- database, by its primary key.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
local report = require("report")

local clients = tonumber(os.getenv("BENCH_SEED_CLIENTS") or "")
assert(clients and clients > 0, "BENCH_SEED_CLIENTS is not set")

wrk.method = "POST"
wrk.path = "/oauth/token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"

function setup(thread)
  thread:set("seed", math.random(1, 2 ^ 30))
end

function init()
  math.randomseed(seed or os.time())
end

function request()
  local i = math.random(1, clients)
  return wrk.format(nil, nil, nil,
    "grant_type=client_credentials&client_id=seed-" .. i .. "&client_secret=seed-secret-" .. i)
end

done = report.done
