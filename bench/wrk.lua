-- wrk script: POST a JSON body to a different stub with every request.
--
-- wrk ... -s bench/wrk.lua URL -- <path prefix> <path suffix> <first stub> <stubs> <body> [<fallback path>]
--
-- Request n goes to <path prefix><stubref(first + n)><path suffix>, so no stub is moved twice.
-- Once <stubs> requests are sent, the rest go to <fallback path> (the floor, which touches no
-- stub); the runner reports such a run as exhausted.
-- done() prints one JSON line with the counts and the latency percentiles in microseconds.

local digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

local function stubref(number)
  local chars = {}
  for i = 8, 1, -1 do
    local digit = number % 36
    chars[i] = digits:sub(digit + 1, digit + 1)
    number = (number - digit) / 36
  end
  local ref = table.concat(chars)
  return "2026-01-01-" .. ref:sub(1, 4) .. "-" .. ref:sub(5, 8)
end

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  prefix, suffix, body, fallback = args[1], args[2], args[5], args[6] or "/floor/x/y"
  stubs = tonumber(args[4])
  first = tonumber(args[3]) + thread_index * stubs
  sent = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = body
end

function request()
  if sent >= stubs then
    return wrk.format(nil, fallback)
  end
  local path = prefix .. stubref(first + sent) .. suffix
  sent = sent + 1
  return wrk.format(nil, path)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
    .. '"latency_us": {"mean": %.1f, "p50": %d, "p95": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
