-- wrk driver that adds one request header, named with its value in $BENCH_HEADER
-- ("Name: value"), to every request; with $BENCH_PATHS set it replays that path list
-- (paths.lua), otherwise it requests the URL's path. loadtest/bench's topology scenario uses
-- it to send a Cookie, which the platform's Nginx never serves from its cache.
-- Usage: BENCH_HEADER='Cookie: a=b' wrk -H 'Host: bench.localhost' -s loadtest/wrk/headers.lua URL

local header = os.getenv("BENCH_HEADER") or error("set BENCH_HEADER to 'Name: value'")
local name, value = header:match("^([^:]+):%s*(.*)$")
if not name then error("BENCH_HEADER must read 'Name: value' (got '" .. header .. "')") end
-- Before paths.lua's init() formats its requests and before wrk formats its single one.
wrk.headers[name] = value

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
if os.getenv("BENCH_PATHS") then
  dofile(dir .. "paths.lua")
else
  dofile(dir .. "report.lua")
end
