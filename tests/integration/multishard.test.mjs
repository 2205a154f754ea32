// Several shards on one kernel-chosen port: 200 concurrent keep-alive connections, per-shard metrics.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { buildRequest, checkJson, getMetrics, metricSum, pool, rawConnect, request, startAgentd } from './lib/harness.mjs';

describe('multi-shard (--shards 2)', { timeout: 120000 }, () => {
    it('200 concurrent connections × 3 requests all succeed; both shards take connections', async (t) => {
        const srv = await startAgentd({ t, args: ['--shards', '2'] });
        assert.equal(srv.shards, 2, srv.readyLine);
        const before = (await getMetrics(srv.port)).samples;

        const N = 200;
        const conns = [];
        t.after(() => conns.forEach((c) => c.destroy()));
        await pool(N, 50, async () => {
            conns.push(await rawConnect(srv.port));
        });
        assert.equal(conns.length, N);

        // Round 1 on every connection at once, so all 200 are open and known to the server together.
        const paths = ['/ok', '/live', '/info'];
        await Promise.all(
            conns.map(async (c, i) => {
                await c.write(buildRequest({ path: paths[0], headers: { 'X-Request-ID': `ms-${i}-0` } }));
                const res = await c.readResponse({ timeoutMs: 30000 });
                assert.equal(res.status, 200, `conn ${i} request 0`);
                assert.equal(res.headers['x-request-id'], `ms-${i}-0`);
            }),
        );
        const mid = (await getMetrics(srv.port)).samples;
        assert.ok(metricSum(mid, 'agentd_connections_open') >= N, `connections_open while ${N} are held: ${metricSum(mid, 'agentd_connections_open')}`);

        // Rounds 2 and 3: one pipelined pair per connection, all connections concurrently.
        await Promise.all(
            conns.map(async (c, i) => {
                await c.write(Buffer.concat(paths.slice(1).map((p, k) => buildRequest({ path: p, headers: { 'X-Request-ID': `ms-${i}-${k + 1}` } }))));
                for (let k = 1; k < paths.length; k++) {
                    const res = await c.readResponse({ timeoutMs: 30000 });
                    assert.equal(res.status, 200, `conn ${i} request ${k}`);
                    assert.equal(res.headers['x-request-id'], `ms-${i}-${k}`);
                    if (paths[k] === '/info') assert.equal(res.json().shards, 2);
                }
            }),
        );

        const after = (await getMetrics(srv.port)).samples;
        const acc = (s) => [0, 1].map((sh) => metricSum(s, 'agentd_connections_accepted_total', { shard: String(sh) }) ?? 0);
        const [a0, a1] = acc(after);
        const [b0, b1] = acc(before);
        assert.ok(a0 + a1 - (b0 + b1) >= N, `accepted grew by ${a0 + a1 - (b0 + b1)}`);
        // Reading: "a port shared by all shards" = every shard accepts on it (SO_REUSEPORT-style);
        // with 200 connections a shard getting none means it is not listening.
        assert.ok(a0 - b0 > 0, `shard 0 accepted ${a0 - b0} of ${N}`);
        assert.ok(a1 - b1 > 0, `shard 1 accepted ${a1 - b1} of ${N}`);
        const r2xx = (s) => metricSum(s, 'agentd_requests_total', { class: '2xx' }) ?? 0;
        assert.ok(r2xx(after) - r2xx(before) >= 3 * N, `2xx grew by ${r2xx(after) - r2xx(before)}`);

        checkJson(assert, await request(srv.port, { path: '/info' }), 200);
        assert.equal(await srv.stop(), 0);
    });
});
