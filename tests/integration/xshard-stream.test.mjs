// Streamed answers across shards: SSE of runs and /wait bodies whose thread is owned by the other
// shard are carried back piece by piece, in order, to the connection's shard; keep-alive connections
// carry several streams in a row; clients that leave mid-stream are reported to the owner (and a run
// with on_disconnect=cancel stops) even when the goodbye crosses the end of the stream.
// Labelled tsan as well (xshard-*): the tsan preset runs it against the ThreadSanitizer binary.
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';

import { getMetrics, metricSum, startAgentd } from './lib/harness.mjs';
import { parseSse } from './lib/sse.mjs';
import { uuidOwnedBy } from './lib/threads-util.mjs';

const ECHO = '046b5dc7-2108-582c-9c6c-31d556d138f0';
const STRESS = 'a2613945-cc44-5b9d-b20b-aa8f8497bb3b';
const human = (content) => ({ messages: [{ role: 'user', content }] });

/** POST over a keep-alive agent; resolves with {status, headers, text}. */
function post(port, agent, path, body) {
    return new Promise((resolve, reject) => {
        const data = JSON.stringify(body);
        const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
        });
        req.on('error', reject);
        req.end(data);
    });
}

/** GET over a keep-alive agent; resolves with {status, headers, text}. */
function get(port, agent, path) {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', agent }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
        });
        req.on('error', reject);
        req.end();
    });
}

describe('cross-shard streams', { timeout: 120000 }, () => {
    let srv;
    before(async () => {
        srv = await startAgentd({ args: ['--shards', '2'], waitReady: true });
    });
    after(async () => {
        if (srv) await srv.dispose();
    });

    it('streams and waits on threads of both shards, over connections of both shards, in order', async () => {
        const agents = Array.from({ length: 8 }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
        const before = metricSum((await getMetrics(srv.port)).samples, 'agentd_requests_forwarded_total') || 0;
        await Promise.all(agents.map(async (agent, i) => {
            for (let k = 0; k < 6; k++) {
                // Threads of both shards from every connection: half of these cross.
                const t = JSON.parse((await post(srv.port, agent, '/threads', { thread_id: uuidOwnedBy((i + k) % 2, 2) })).text).thread_id;
                const s = await post(srv.port, agent, `/threads/${t}/runs/stream`, {
                    assistant_id: STRESS, input: human('x'), stream_mode: ['custom', 'values'], config: { configurable: { tokens: 20 } },
                });
                assert.equal(s.status, 200);
                const frames = parseSse(s.text);
                assert.deepEqual(frames.map((f) => Number(f.id)), frames.map((_, j) => j));
                assert.deepEqual(frames.filter((f) => f.event === 'custom').map((f) => f.data.index), [...Array(20).keys()]);
                assert.equal(frames.at(-1).event, 'end');
                const w = await post(srv.port, agent, `/threads/${t}/runs/wait`, { assistant_id: ECHO, input: human(`w${i}.${k}`) });
                assert.equal(JSON.parse(w.text).messages.at(-1).content, `w${i}.${k}`);
            }
        }));
        for (const a of agents) a.destroy();
        const after = metricSum((await getMetrics(srv.port)).samples, 'agentd_requests_forwarded_total');
        assert.ok(after - before > 0, 'some streams crossed shards');
    });

    it('a stream answered whole inside its handler (join stream of an ended run) crosses back intact', async () => {
        // The owner used to read the request after its last piece had left, while the connection's shard
        // could already be reusing it (a data race TSan saw).
        const agents = Array.from({ length: 8 }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
        await Promise.all(agents.map(async (agent, i) => {
            for (let k = 0; k < 6; k++) {
                const t = JSON.parse((await post(srv.port, agent, '/threads', { thread_id: uuidOwnedBy((i + k) % 2, 2) })).text).thread_id;
                const w = await post(srv.port, agent, `/threads/${t}/runs/wait`, { assistant_id: ECHO, input: human(`j${i}.${k}`) });
                const rid = w.headers['content-location'].split('/').pop();
                const s = await get(srv.port, agent, `/threads/${t}/runs/${rid}/stream`);
                assert.equal(s.status, 200);
                assert.equal(parseSse(s.text).at(-1).event, 'end');
            }
        }));
        for (const a of agents) a.destroy();
    });

    it('clients leaving mid-stream cancel their runs on whichever shard owns them', async () => {
        const runs = [];
        await Promise.all(Array.from({ length: 12 }, async () => {
            const t = (await (await fetch(`${srv.url}/threads`, { method: 'POST', body: '{}' })).json()).thread_id;
            const ac = new AbortController();
            const res = await fetch(`${srv.url}/threads/${t}/runs/stream`, {
                method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' },
                body: JSON.stringify({ assistant_id: STRESS, input: human('x'), stream_mode: 'custom', config: { configurable: { tokens: 200, delay_ms: 20, mode: 'custom' } } }),
            });
            await res.body.getReader().read();
            runs.push([t, res.headers.get('content-location').split('/').pop()]);
            ac.abort();
        }));
        for (const [t, r] of runs) {
            const j = await fetch(`${srv.url}/threads/${t}/runs/${r}/join`);
            assert.equal(j.status, 200);
            await j.text();
            const run = await (await fetch(`${srv.url}/threads/${t}/runs/${r}`)).json();
            assert.equal(run.status, 'interrupted');
        }
        const m = (await getMetrics(srv.port)).samples;
        assert.equal(metricSum(m, 'agentd_stream_subscribers'), 0);
        assert.equal(metricSum(m, 'agentd_runs_active'), 0);
    });
});
