-- perf/runs.lua: wrk script for perf/bench-runs.sh (scenario wait).
--
--   wrk -tT -cC ... -s perf/runs.lua URL -- ID_FILE T ASSISTANT_ID
--
-- POST /threads/{id}/runs/wait {"assistant_id":ASSISTANT_ID,"input":{"messages":[{"role":"user","content":"hi"}]}}
-- over a pool of pre-created threads (ID_FILE: one thread id per line). wrk thread k of T (T must
-- equal -t) owns the ids on lines k+1, k+1+T, ... and keeps them in a FIFO of free threads:
-- request() takes the oldest free thread, response() gives back the thread named by the answer's
-- Content-Location (/threads/{id}/runs/{run_id}, sent by agentd and the peer). So a thread never has
-- two runs at once (the default multitask strategy, reject, would answer 409 or 422), as long as a
-- wrk thread owns more ids than it has connections (one goes to the probe, below), and the runs spread evenly over the
-- pool (every thread's history grows by two messages per run: a bigger pool keeps states small).
-- The last id of each share is kept for the request wrk asks for before it connects (see request()).
-- wrk gives a script no connection identity, which is why the thread is chosen by what is free, not
-- by connection.
--
-- Every response status is counted; done() prints "STATUS <code> <n>" per status and "COUNT <name>
-- <n>" for: lost (an answer without a usable Content-Location: its thread leaves the pool), starved
-- (no free thread at request(): one was reused round-robin, which can collide), badbody (a 2xx answer
-- without "messages"). The first 3 non-2xx bodies of each wrk thread go to stderr.

local threads = {}
local nthreads = 0

function setup(thread)
    thread:set("tid", nthreads)
    nthreads = nthreads + 1
    table.insert(threads, thread)
end

function init(args)
    local file, t = args[1], tonumber(args[2] or "1")
    local assistant = args[3]
    if not file or not assistant then
        error("perf/runs.lua: usage: -- ID_FILE WRK_THREADS ASSISTANT_ID")
    end
    local k = tid or 0
    free, head, tail = {}, 1, 0
    mine, all = {}, {}
    local n = 0
    for line in io.lines(file) do
        if #line > 0 then
            if n % t == k then
                tail = tail + 1
                free[tail] = line
                mine[line] = true
                all[#all + 1] = line
            end
            n = n + 1
        end
    end
    if #all < 2 then
        error("perf/runs.lua: fewer than 2 thread ids for wrk thread " .. k)
    end
    probe_id = free[tail]
    free[tail] = nil
    tail = tail - 1
    mine[probe_id] = nil
    rr = 0
    probed = false
    statuses = {}
    counts = { lost = 0, starved = 0, badbody = 0 }
    shown = 0
    body = '{"assistant_id":"' .. assistant .. '","input":{"messages":[{"role":"user","content":"hi"}]}}'
    wrk.headers["Content-Type"] = "application/json"
end

function request()
    local id
    if not probed then
        -- wrk calls request() once per wrk thread before it connects; that request may or may not
        -- be sent, so it gets a thread of its own that never enters the FIFO.
        probed = true
        return wrk.format("POST", "/threads/" .. probe_id .. "/runs/wait", nil, body)
    end
    if head <= tail then
        id = free[head]
        free[head] = nil
        head = head + 1
    else
        counts.starved = counts.starved + 1
        rr = rr % #all + 1
        id = all[rr]
    end
    return wrk.format("POST", "/threads/" .. id .. "/runs/wait", nil, body)
end

function response(status, headers, resp)
    statuses[status] = (statuses[status] or 0) + 1
    local loc = headers["content-location"] or headers["Content-Location"]
    local id = loc and string.match(loc, "^/threads/([^/]+)/runs/")
    if id and mine[id] then
        tail = tail + 1
        free[tail] = id
    elseif id and id == probe_id then
        -- the probe was sent after all; its thread stays out of the FIFO
    else
        counts.lost = counts.lost + 1
    end
    if status >= 200 and status <= 299 then
        if not string.find(resp or "", '"messages"', 1, true) then
            counts.badbody = counts.badbody + 1
        end
    elseif shown < 3 then
        shown = shown + 1
        io.stderr:write("non-2xx ", status, ": ", string.sub(resp or "", 1, 200), "\n")
    end
end

function done(summary, latency, requests)
    local total, c = {}, { lost = 0, starved = 0, badbody = 0 }
    for _, t in ipairs(threads) do
        local s = t:get("statuses")
        if s then
            for k, v in pairs(s) do
                total[k] = (total[k] or 0) + v
            end
        end
        local x = t:get("counts")
        if x then
            for k, v in pairs(x) do
                c[k] = c[k] + v
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
    for _, k in ipairs({ "lost", "starved", "badbody" }) do
        io.write(string.format("COUNT %s %d\n", k, c[k]))
    end
end
