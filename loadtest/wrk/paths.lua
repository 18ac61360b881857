-- wrk driver for the "real site mix": replays the request paths listed one per line in the
-- file named by $BENCH_PATHS (loadtest/bench writes it, sampled from a Zipf-like
-- distribution with a fixed seed), in order, wrapping around. Each wrk thread starts at
-- its own offset so threads do not walk the list in lockstep.
-- Requests are pre-formatted once (wrk.format merges the -H headers, e.g. Host).
-- Usage: BENCH_PATHS=paths.txt wrk -H 'Host: bench.localhost' -s loadtest/wrk/paths.lua URL

-- done(): the BENCH_JSON reporter, shared with plain runs, in report.lua beside this file.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

local file = os.getenv("BENCH_PATHS") or error("set BENCH_PATHS to a file of request paths")
local reqs = {}
local n = 0
local i = 0

init = function(args)
  for line in io.lines(file) do
    if #line > 0 then
      n = n + 1
      reqs[n] = wrk.format("GET", line)
    end
  end
  if n == 0 then error("no paths in " .. file) end
  -- A per-thread start offset (threads share no state in wrk).
  i = (tonumber(tostring({}):match("0x(%x+)"), 16) or 0) % n
end

request = function()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
