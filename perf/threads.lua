-- perf/threads.lua: wrk script for perf/bench-threads.sh.
--
--   wrk -tT ... -s perf/threads.lua URL -- create T   POST /threads {"metadata":{"user":"u<i%1000>","kind":"k<i%7>"}}
--   wrk -tT ... -s perf/threads.lua URL -- search     POST /threads/search {"metadata":{"user":"u42"},"limit":10}
--
-- For create, i counts requests across the T wrk threads without overlap (T must equal -t: thread k
-- sends i = k, k+T, k+2T, ...), so the created rows spread over the same 1000 users and 7 kinds as
-- the seeded ones.
-- Every response status is counted; done() prints one line per status ("STATUS 200 12345"), and the
-- first 3 non-2xx bodies of each thread go to stderr. bench-threads.sh fails a run with any non-2xx.

local threads = {}
local nthreads = 0

function setup(thread)
    thread:set("tid", nthreads)
    nthreads = nthreads + 1
    table.insert(threads, thread)
end

function init(args)
    mode = args[1] or "create"
    statuses = {}
    shown = 0
    i = tid or 0
    step = tonumber(args[2] or "1")
    wrk.headers["Content-Type"] = "application/json"
    if mode == "search" then
        search_req = wrk.format("POST", "/threads/search", nil, '{"metadata":{"user":"u42"},"limit":10}')
    elseif mode ~= "create" then
        error("perf/threads.lua: mode must be create or search, got " .. tostring(mode))
    end
end

function request()
    if mode == "search" then
        return search_req
    end
    local body = '{"metadata":{"user":"u' .. (i % 1000) .. '","kind":"k' .. (i % 7) .. '"}}'
    i = i + step
    return wrk.format("POST", "/threads", nil, body)
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    if (status < 200 or status > 299) and shown < 3 then
        shown = shown + 1
        io.stderr:write("non-2xx ", status, ": ", string.sub(body or "", 1, 200), "\n")
    end
end

function done(summary, latency, requests)
    local total = {}
    for _, t in ipairs(threads) do
        local s = t:get("statuses")
        if s then
            for k, v in pairs(s) do
                total[k] = (total[k] or 0) + v
            end
        end
    end
    local keys = {}
    for k in pairs(total) do
        table.insert(keys, k)
    end
    table.sort(keys)
    for _, k in ipairs(keys) do
        io.write(string.format("STATUS %d %d\n", k, total[k]))
    end
end
