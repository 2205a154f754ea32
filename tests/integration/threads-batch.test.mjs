// POST /threads is coalesced: creates that wait for the same commit go to Postgres as one multi-row
// INSERT (protocol/agent/threads_batch.c). Each request must still get exactly its own thread (its
// metadata, its TTL), a taken id its own 409, and a duplicate id inside one batch must not steal
// another request's answer.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { buildRequest, getMetrics, metricSum, rawConnect, startAgentd } from './lib/harness.mjs';

async function post(c, path, body) {
    const b = JSON.stringify(body);
    await c.write(buildRequest({ method: 'POST', path, headers: { 'Content-Type': 'application/json' }, body: b }));
    const res = await c.readResponse({ method: 'POST', timeoutMs: 20000 });
    return { status: res.status, json: res.text ? JSON.parse(res.text) : null, text: res.text };
}

async function get(c, path) {
    await c.write(buildRequest({ method: 'GET', path }));
    const res = await c.readResponse({ method: 'GET', timeoutMs: 20000 });
    return { status: res.status, json: res.text ? JSON.parse(res.text) : null, text: res.text };
}

describe('coalesced thread creation', () => {
    let server;
    let conns;

    before(async () => {
        server = await startAgentd({ args: ['--shards', '1'], waitReady: true });
        conns = await Promise.all(Array.from({ length: 40 }, () => rawConnect(server.port)));
    });

    after(async () => {
        for (const c of conns ?? []) c.destroy();
        if (server) assert.equal(await server.stop(), 0, server.stderr());
    });

    it('many concurrent creates: one statement for many, each request gets its own thread', async () => {
        const q0 = metricSum((await getMetrics(server.port)).samples, 'agentd_db_queries_total');
        const tag = randomUUID();
        const results = await Promise.all(
            conns.map(async (c, k) => {
                const out = [];
                for (let i = 0; i < 5; i++) {
                    const n = k * 5 + i;
                    const ttl = n % 3 === 0 ? { ttl: n + 1, strategy: n % 2 ? 'keep_latest' : 'delete' } : undefined;
                    const body = { metadata: { tag, n, s: `quote " and \\ and é ${n}` } };
                    if (ttl) body.ttl = ttl;
                    const r = await post(c, '/threads', body);
                    assert.equal(r.status, 200, r.text);
                    assert.equal(r.json.metadata.n, n);
                    assert.equal(r.json.metadata.s, body.metadata.s);
                    out.push({ id: r.json.thread_id, n, ttl });
                }
                return out;
            }),
        );
        const all = results.flat();
        assert.equal(new Set(all.map((x) => x.id)).size, 200, 'every create got a distinct thread');
        const q1 = metricSum((await getMetrics(server.port)).samples, 'agentd_db_queries_total');
        assert.ok(q1 - q0 < 200, `200 creates took ${q1 - q0} statements: several were coalesced`);
        // Each thread holds its own metadata and TTL.
        const c = conns[0];
        for (const x of all) {
            const g = await get(c, `/threads/${x.id}?include=ttl`);
            assert.equal(g.status, 200, g.text);
            assert.equal(g.json.metadata.n, x.n);
            if (x.ttl) assert.deepEqual([g.json.ttl.strategy, g.json.ttl.ttl_minutes], [x.ttl.strategy, x.ttl.ttl]);
            else assert.equal(g.json.ttl, null);
        }
    });

    it('one id sent by many clients at once: exactly one 200, the others 409', async () => {
        for (let round = 0; round < 5; round++) {
            const id = randomUUID();
            const res = await Promise.all(conns.slice(0, 20).map((c, k) => post(c, '/threads', { thread_id: id, metadata: { k } })));
            const ok = res.filter((r) => r.status === 200);
            const taken = res.filter((r) => r.status === 409);
            assert.equal(ok.length, 1, res.map((r) => r.status).join(','));
            assert.equal(taken.length, 19);
            for (const t of taken) assert.equal(t.json.message, `Thread '${id}' already exists`);
            const g = await get(conns[0], `/threads/${id}`);
            assert.equal(g.json.metadata.k, ok[0].json.metadata.k, 'the stored thread is the one answered 200');
        }
    });
});
