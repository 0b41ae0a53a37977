-- wrk script for bench/pollers.py: every connection polls GET on the paths in POLL_PATHS (comma
-- separated, taken in turn) and counts answers by status; answers whose status is not in
-- POLL_EXPECT (comma separated) are "unexpected". At the end one line `POLLERS_JSON {...}` on
-- stdout carries the counts, wrk's socket errors and latency percentiles (microseconds).
local threads = {}

local function split(s)
  local out = {}
  for part in string.gmatch(s or "", "[^,]+") do out[#out + 1] = part end
  return out
end

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  paths = split(os.getenv("POLL_PATHS"))
  expect = {}
  for _, code in ipairs(split(os.getenv("POLL_EXPECT"))) do expect[tonumber(code)] = true end
  counts = {}
  unexpected = 0
  next_path = 0
end

function request()
  next_path = next_path % #paths + 1
  return wrk.format("GET", paths[next_path])
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  if not expect[status] then unexpected = unexpected + 1 end
end

function done(summary, latency, requests)
  local by_status, unexp = {}, 0
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("counts")) do by_status[code] = (by_status[code] or 0) + n end
    unexp = unexp + t:get("unexpected")
  end
  local parts = {}
  for code, n in pairs(by_status) do parts[#parts + 1] = string.format('"%d": %d', code, n) end
  local e = summary.errors
  io.write(string.format(
    'POLLERS_JSON {"requests": %d, "duration_us": %d, "by_status": {%s}, "unexpected": %d, ' ..
    '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, table.concat(parts, ", "), unexp,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
