-- wrk reporter: at the end of a run, print one machine-readable line that loadtest/bench
-- parses ("BENCH_JSON {...}"). Latencies are microseconds, as wrk records them.
-- Usage alone: wrk ... -s loadtest/wrk/report.lua URL
-- Kept free of a response() callback on purpose: defining one makes wrk parse every
-- response in Lua and costs the load generator a large share of its throughput.

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
