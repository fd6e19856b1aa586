-- wrk script for run-load-bench.sh: GETs chunk objects picked at random from a list.
--
--   wrk -t2 -c64 -d15s --latency -s load.lua URL -- PATHS_FILE PREFIX [TOKEN_FILE]
--
-- PATHS_FILE holds one object path a line, relative to the repository root
-- ("chunks/ab/<64 hex>"); each request asks for PREFIX .. path. TOKEN_FILE, when given, holds
-- an agent token, sent as "Authorization: Bearer <token>" (a file, so the token never shows in
-- a process list). Every thread seeds its generator from its number alone, so two runs with
-- the same paths file and thread count ask for the same objects in the same order.
--
-- done() prints one JSON object (the last line of wrk's output) with wrk's own counts:
-- requests, bytes read (headers included), errors by kind, and latency percentiles in µs.

local counter = 0

function setup(thread)
   thread:set("thread_number", counter)
   counter = counter + 1
end

local requests = {}

function init(args)
   local list, prefix, token_file = args[1], args[2] or "/", args[3]
   local headers = {}
   if token_file and token_file ~= "" then
      local f = assert(io.open(token_file, "r"))
      local token = f:read("*l")
      f:close()
      headers["Authorization"] = "Bearer " .. token
   end
   -- Formatting every request once up front keeps the load generator's own work small.
   for line in io.lines(list) do
      if line ~= "" then
         requests[#requests + 1] = wrk.format("GET", prefix .. line, headers)
      end
   end
   assert(#requests > 0, "no paths in " .. list)
   math.randomseed(1000 + (thread_number or 0))
end

function request()
   return requests[math.random(#requests)]
end

function done(summary, latency, _)
   local e = summary.errors
   io.write(string.format(
      '{"requests":%d,"bytes":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
      '"write_errors":%d,"timeouts":%d,"http_errors":%d,' ..
      '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
      summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.timeout,
      e.status, latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max))
end
