-- wrk script for bench/readpath.py: only `done`, so wrk keeps its fast path (no Lua per request).
-- Prints one line `READPATH_JSON {...}` with wrk's summary: requests, bytes, duration, socket
-- errors, non-2xx/3xx answers (`status`) and latency percentiles in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'READPATH_JSON {"requests": %d, "bytes": %d, "duration_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
