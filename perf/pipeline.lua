-- perf/pipeline.lua: wrk script that sends DEPTH pipelined GET requests in one write
-- (TechEmpower plaintext style). Each request is counted by wrk when its response
-- arrives; latency is recorded once per batch, when the last response of the batch
-- is complete, so wrk's percentiles are per batch of DEPTH, not per request.
--
-- usage: wrk -t2 -c64 -d10s --latency -s perf/pipeline.lua http://127.0.0.1:PORT/ok -- [DEPTH] [PATH]
--   DEPTH defaults to 16; PATH defaults to the path of the URL (here /ok).

local depth = 16
local req

init = function(args)
    depth = tonumber(args[1]) or 16
    if depth < 1 then
        depth = 1
    end
    local path = args[2] or wrk.path
    local batch = {}
    for i = 1, depth do
        batch[i] = wrk.format("GET", path)
    end
    req = table.concat(batch)
end

request = function()
    return req
end
