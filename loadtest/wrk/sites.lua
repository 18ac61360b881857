-- wrk driver for the many-sites scenario: every request a random page of a random site.
-- Sites are named $BENCH_PREFIX<n>$BENCH_SUFFIX (n = 1..$BENCH_SITES, zero-padded to 6
-- digits), each with index.html and p1.html .. p9.html. A fixed sample of random
-- (site, page) pairs is formatted once (per-request string building in Lua would cost
-- the load generator more than the servers), then replayed from a per-thread offset.
-- Usage: BENCH_SITES=10000 wrk -s loadtest/wrk/sites.lua http://127.0.0.1:PORT/

-- done(): the BENCH_JSON reporter, shared with plain runs, in report.lua beside this file.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

local sites = tonumber(os.getenv("BENCH_SITES") or error("set BENCH_SITES"))
local prefix = os.getenv("BENCH_PREFIX") or "site-"
local suffix = os.getenv("BENCH_SUFFIX") or ".localhost"
local samples = tonumber(os.getenv("BENCH_SAMPLES") or "200000")
local reqs = {}
local n = 0
local i = 0

init = function(args)
  math.randomseed(42)
  for k = 1, samples do
    local host = string.format("%s%06d%s", prefix, math.random(sites), suffix)
    local page = math.random(10)
    local path = page == 10 and "/" or string.format("/p%d.html", page)
    reqs[k] = wrk.format("GET", path, { Host = host })
  end
  n = samples
  i = (tonumber(tostring({}):match("0x(%x+)"), 16) or 0) % n
end

request = function()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
