// Issue 23, defect 6: forwarded requests never wait behind stream data. Many clients join one large
// run on a thread owned by shard 0, about half of them from shard 1, each from its first event: every
// join replays thousands of pieces at once, so the way from shard 0 to shard 1 is full of stream
// pieces (live pieces would not fill it: the followers of one run share one message per event, see
// "fans" in protocol/http_forward.c); meanwhile runs/wait requests for threads owned by shard 1 arrive,
// about half of them on shard 0 and forwarded along that same way. They used to share one queue with
// the pieces and some were refused: 503 "the thread's shard has too many requests queued". With a
// control lane of their own, every one is answered.
// Labelled tsan as well (xshard-*): the tsan preset runs it against the ThreadSanitizer binary.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { getMetrics, metricSum, pool, request, startAgentd } from './lib/harness.mjs';
import { openStream } from './lib/load.mjs';
import { call, uuidOwnedBy } from './lib/threads-util.mjs';

const ECHO = '046b5dc7-2108-582c-9c6c-31d556d138f0';
const STRESS = 'a2613945-cc44-5b9d-b20b-aa8f8497bb3b';
const SUBSCRIBERS = 200;
const TOKENS = 4000;
const WAITS = 192;
const ROUNDS = 4;

function runWait(port, thread, body) {
    return request(port, {
        method: 'POST',
        path: `/threads/${thread}/runs/wait`,
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        timeoutMs: 120000,
    });
}

describe('forwarded requests while stream data fills the way between shards', { timeout: 240000 }, () => {
    it('are all answered, none refused with 503', async (t) => {
        const srv = await startAgentd({ t, args: ['--shards', '2'], waitReady: true });
        const big = uuidOwnedBy(0, 2);
        const threads = Array.from({ length: WAITS }, () => uuidOwnedBy(1, 2));
        await pool(WAITS + 1, 16, async (i) => {
            const r = await call(srv.port, 'POST', '/threads', { thread_id: i < WAITS ? threads[i] : big });
            assert.equal(r.status, 200, `POST /threads: ${r.status} ${r.text}`);
        });
        // The run, ended and kept in memory whole (runs.events_max is far above its events).
        const created = await call(srv.port, 'POST', `/threads/${big}/runs`, {
            assistant_id: STRESS,
            input: { messages: [{ role: 'user', content: 'x' }] },
            stream_mode: ['values', 'updates', 'messages-tuple', 'custom'],
            stream_resumable: true,
            config: { configurable: { tokens: TOKENS } },
        });
        assert.equal(created.status, 200, created.text);
        const rid = created.json.run_id;
        const joined = await call(srv.port, 'GET', `/threads/${big}/runs/${rid}/join`);
        assert.equal(joined.status, 200, joined.text);
        const fullBefore = metricSum((await getMetrics(srv.port)).samples, 'agentd_cross_shard_queue_full_total', { lane: 'data' }) || 0;
        // Clients that read (and drop) everything: nobody is cut off, the pieces keep coming. Each join
        // is answered whole by its handler; the connection closes after it.
        const subs = await Promise.all(Array.from({ length: SUBSCRIBERS }, () => openStream(srv.port, {
            path: `/threads/${big}/runs/${rid}/stream`,
            headers: { 'Last-Event-ID': '-1', Connection: 'close' },
            timeoutMs: 120000,
        })));
        const stream = Promise.all(subs.map((x) => x.closed));
        let streaming = true;
        const over = () => (streaming = false);
        stream.then(over, over);
        const statuses = {};
        const wrong = [];
        // Round after round while the run streams or its pieces still arrive (at most ROUNDS): how full
        // the way is at a given moment depends on the machine, so every phase gets its requests.
        const received = () => subs.reduce((n, x) => n + x.bytes, 0);
        let rounds = 0;
        let seen = -1;
        while (rounds < ROUNDS && (streaming || received() !== seen)) {
            rounds++;
            seen = received();
            await pool(WAITS, WAITS, async (i) => {
                const r = await runWait(srv.port, threads[i], { assistant_id: ECHO, input: { messages: [{ role: 'user', content: `w${rounds}.${i}` }] } });
                statuses[r.status] = (statuses[r.status] ?? 0) + 1;
                if (r.status !== 200) wrong.push(`${r.status} ${r.text.slice(0, 200)}`);
                else if (JSON.parse(r.text).messages?.at(-1)?.content !== `w${rounds}.${i}`) wrong.push(`200 with ${r.text.slice(0, 200)}`);
            });
        }
        const ends = await stream;
        const cut = ends.filter((e) => e.error || !e.tail.toString('latin1').endsWith('0\r\n\r\n'));
        assert.equal(cut.length, 0, `${cut.length} joins did not end whole`);
        const full = metricSum((await getMetrics(srv.port)).samples, 'agentd_cross_shard_queue_full_total', { lane: 'data' }) - fullBefore;
        t.diagnostic(`${rounds} rounds of ${WAITS}: answers ${JSON.stringify(statuses)}; data lane full ${full} times; ${received()} stream bytes read`);
        assert.deepEqual(wrong, [], `runs/wait answers: ${JSON.stringify(statuses)}`);
        assert.ok(full > 0, `the data lane never filled (${full}): the joins did not load the way between shards`);
    });
});
