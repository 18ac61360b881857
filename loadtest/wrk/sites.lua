-- wrk driver for the many-sites scenario: every request a random page of a random site.
-- Sites are named $BENCH_PREFIX<n>$BENCH_SUFFIX (n = 1..$BENCH_SITES, zero-padded to 6
-- digits), each with index.html and p1.html .. p9.html. A fixed sample of random
-- (site, page) pairs is formatted once (per-request string building in Lua would cost
-- the load generator more than the servers), then replayed from a per-thread offset.
-- Usage: BENCH_SITES=10000 wrk -s loadtest/wrk/sites.lua http://127.0.0.1:PORT/

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

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p95_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.mean, latency.max))
end
