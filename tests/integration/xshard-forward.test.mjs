// Thread-scoped requests run on the thread's owner shard (design.md §3): a request read by one shard
// for a thread owned by another is handed over and answered from there. With two shards and many
// connections (the kernel spreads them over both listeners), every thread is reached from both
// shards; answers must belong to the right thread, arrive in request order on pipelined
// connections, and survive clients that leave while their request is on the other shard.
// Labelled tsan as well (xshard-*): the tsan preset runs it against the ThreadSanitizer binary.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { buildRequest, getMetrics, metricSum, rawConnect, startAgentd } from './lib/harness.mjs';

/** The owner shard of a thread id: FNV-1a 64 of its bytes modulo the shard count (protocol/owner.c). */
function ownerShard(id, n) {
    let h = 0xcbf29ce484222325n;
    for (const b of Buffer.from(id)) {
        h ^= BigInt(b >= 0x41 && b <= 0x5a ? b | 0x20 : b);
        h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
    }
    return Number(h % BigInt(n));
}

async function send(c, method, path, body) {
    const b = body === undefined ? null : JSON.stringify(body);
    const headers = b === null ? {} : { 'Content-Type': 'application/json' };
    await c.write(buildRequest({ method, path, headers, body: b }));
    const res = await c.readResponse({ method, timeoutMs: 20000 });
    return { status: res.status, json: res.text ? JSON.parse(res.text) : null, text: res.text };
}

describe('cross-shard thread requests', () => {
    let server;
    const threads = [];

    before(async () => {
        server = await startAgentd({ args: ['--shards', '2'], waitReady: true });
        // Threads minted on both shards: 16 connections land on both listeners.
        const conns = await Promise.all(Array.from({ length: 16 }, () => rawConnect(server.port)));
        for (const c of conns) {
            for (let i = 0; i < 4; i++) {
                const r = await send(c, 'POST', '/threads', { metadata: { xshard: true } });
                assert.equal(r.status, 200, r.text);
                threads.push(r.json.thread_id);
            }
            c.destroy();
        }
        const owners = new Set(threads.map((id) => ownerShard(id, 2)));
        assert.equal(owners.size, 2, 'threads were minted on both shards');
    });

    after(async () => {
        if (server) assert.equal(await server.stop(), 0);
    });

    it('answers every thread from every connection, in order, pipelined', async () => {
        const before = metricSum((await getMetrics(server.port)).samples, 'agentd_requests_forwarded_total');
        const conns = await Promise.all(Array.from({ length: 24 }, () => rawConnect(server.port)));
        await Promise.all(
            conns.map(async (c, k) => {
                // One write carrying a GET and a PATCH per thread: answers must come back in order.
                const order = threads.slice(k % threads.length).concat(threads.slice(0, k % threads.length)).slice(0, 20);
                const bytes = [];
                for (const id of order) {
                    bytes.push(buildRequest({ method: 'GET', path: `/threads/${id}` }));
                    const body = JSON.stringify({ metadata: { [`c${k}`]: id } });
                    bytes.push(buildRequest({ method: 'PATCH', path: `/threads/${id}`, headers: { 'Content-Type': 'application/json' }, body }));
                }
                await c.write(Buffer.concat(bytes));
                for (const id of order) {
                    const g = await c.readResponse({ method: 'GET', timeoutMs: 20000 });
                    assert.equal(g.status, 200, g.text);
                    assert.equal(JSON.parse(g.text).thread_id, id);
                    const p = await c.readResponse({ method: 'PATCH', timeoutMs: 20000 });
                    assert.equal(p.status, 200, p.text);
                    const t = JSON.parse(p.text);
                    assert.equal(t.thread_id, id);
                    assert.equal(t.metadata[`c${k}`], id);
                }
                c.destroy();
            }),
        );
        const afterCount = metricSum((await getMetrics(server.port)).samples, 'agentd_requests_forwarded_total');
        assert.ok(afterCount > before, `requests were forwarded between shards (${before} -> ${afterCount})`);
    });

    it('GET /runs/{run_id}/stream: found by a query on one shard, answered by the run\'s owner', async () => {
        // One ended run per thread (threads of both shards), then every run from connections on both shards.
        const c0 = await rawConnect(server.port);
        const runs = [];
        for (const id of threads.slice(0, 8)) {
            const r = await send(c0, 'POST', `/threads/${id}/runs/wait`, { assistant_id: 'echo', input: { messages: [{ role: 'user', content: id }] } });
            assert.equal(r.status, 200, r.text);
            const list = await send(c0, 'GET', `/threads/${id}/runs`);
            runs.push(list.json[0].run_id);
        }
        c0.destroy();
        const before = metricSum((await getMetrics(server.port)).samples, 'agentd_requests_forwarded_total');
        const conns = await Promise.all(Array.from({ length: 12 }, () => rawConnect(server.port)));
        await Promise.all(
            conns.map(async (c, k) => {
                for (const rid of runs) {
                    await c.write(buildRequest({ method: 'GET', path: `/runs/${rid}/stream` }));
                    const res = await c.readResponse({ method: 'GET', timeoutMs: 20000 });
                    assert.equal(res.status, 200, `${k}: ${res.text}`);
                    assert.match(res.text, /^event: end\n/m);
                }
                // And one that leaves before its answer.
                await c.write(buildRequest({ method: 'GET', path: `/runs/${runs[k % runs.length]}/stream` }));
                c.destroy();
            }),
        );
        const afterCount = metricSum((await getMetrics(server.port)).samples, 'agentd_requests_forwarded_total');
        assert.ok(afterCount > before, `requests were forwarded between shards (${before} -> ${afterCount})`);
    });

    it('survives clients that leave while their request runs on the other shard', async () => {
        for (let round = 0; round < 5; round++) {
            const conns = await Promise.all(Array.from({ length: 16 }, () => rawConnect(server.port)));
            for (const c of conns) {
                const bytes = threads.slice(0, 10).map((id) => buildRequest({ method: 'GET', path: `/threads/${id}` }));
                await c.write(Buffer.concat(bytes));
                c.destroy();
            }
        }
        const c = await rawConnect(server.port);
        for (const id of threads) {
            const r = await send(c, 'GET', `/threads/${id}`);
            assert.equal(r.status, 200, r.text);
            assert.equal(r.json.thread_id, id);
        }
        c.destroy();
    });
});
