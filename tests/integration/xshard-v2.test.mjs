// Protocol v2 across shards (also run by the tsan preset): 4 shards, 24 threads owned by every shard,
// each with two v2 streams and commands arriving on connections that land on any shard; every event
// must reach both streams in seq order while the runs of all threads interleave.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';

import { getMetrics, metricSum, startAgentd } from './lib/harness.mjs';
import { freshDatabase } from './lib/pg.mjs';
import { openSse } from './lib/sse.mjs';
import { call, uuidOwnedBy } from './lib/threads-util.mjs';

const isRootEnd = (f) => f.event === 'lifecycle' && f.data.params.namespace.length === 0 &&
    ['completed', 'failed', 'interrupted'].includes(f.data.params.data.event);

describe('protocol v2 across shards', { timeout: 240000 }, () => {
    it('24 threads, two streams each, stress runs at once: every token on both streams, in seq order', async (t) => {
        const db = await freshDatabase({ t });
        const srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '4'], t });
        const tokens = 25;
        await Promise.all([...Array(24).keys()].map(async (i) => {
            const tid = randomUUID();
            const url = `${srv.url}/threads/${tid}/stream/events`;
            const a = await openSse(url, { channels: ['custom', 'lifecycle'] }, { timeoutMs: 120000 });
            const b = await openSse(url, { channels: ['messages', 'custom', 'lifecycle'] }, { timeoutMs: 120000 });
            const r = await call(srv.port, 'POST', `/threads/${tid}/commands`, {
                id: i, method: 'run.start',
                params: { assistant_id: 'stress', input: { messages: [{ role: 'user', content: 'go' }] }, config: { configurable: { tokens, delay_ms: 1 } } },
            });
            assert.equal(r.json.type, 'success', r.text);
            await a.waitFor(isRootEnd, `the end on thread ${i} (a)`);
            await b.waitFor(isRootEnd, `the end on thread ${i} (b)`);
            a.close();
            b.close();
            for (const s of [a, b]) {
                const idx = s.frames.filter((f) => f.event === 'custom').map((f) => f.data.params.data.payload.index);
                assert.deepEqual(idx, [...Array(tokens).keys()]);
                const seqs = s.frames.map((f) => f.data.seq);
                assert.ok(seqs.every((q, k) => k === 0 || q > seqs[k - 1]));
            }
            const custom = (s) => s.frames.filter((f) => f.event === 'custom').map((f) => f.data.seq);
            assert.deepEqual(custom(a), custom(b));
        }));
    });

    it('sessions following one run from another shard share one message per event (fans)', async (t) => {
        const db = await freshDatabase({ t });
        const srv = await startAgentd({ db: db.url, t, args: ['--shards', '2'], waitReady: true });
        const tid = uuidOwnedBy(0, 2);
        const sessions = 120;
        const tokens = 1000;
        const metric = async (name) => metricSum((await getMetrics(srv.port)).samples, name) || 0;
        const fwd0 = await metric('agentd_requests_forwarded_total');
        const url = `${srv.url}/threads/${tid}/stream/events`;
        const subs = await Promise.all(Array.from({ length: sessions }, () => openSse(url, { channels: ['custom', 'lifecycle'] }, { timeoutMs: 120000 })));
        // The sessions whose connection is on shard 1 were forwarded to shard 0, the thread's owner.
        const remote = (await metric('agentd_requests_forwarded_total')) - fwd0;
        const sent0 = await metric('agentd_cross_shard_messages_sent_total');
        const r = await call(srv.port, 'POST', `/threads/${tid}/commands`, {
            id: 1, method: 'run.start',
            params: { assistant_id: 'stress', input: { messages: [{ role: 'user', content: 'go' }] }, config: { configurable: { tokens } } },
        });
        assert.equal(r.json.type, 'success', r.text);
        for (const s of subs) await s.waitFor(isRootEnd, 'the run\'s end');
        const sent = (await metric('agentd_cross_shard_messages_sent_total')) - sent0;
        for (const s of subs) s.close();
        t.diagnostic(`${remote} of ${sessions} sessions on shard 1; ${sent} cross-shard messages for ${tokens} tokens`);
        assert.ok(remote >= 10, `only ${remote} sessions came from shard 1: the test says nothing`);
        for (const s of subs) {
            const idx = s.frames.filter((f) => f.event === 'custom').map((f) => f.data.params.data.payload.index);
            assert.deepEqual(idx, [...Array(tokens).keys()]);
        }
        // A message per event and session would be remote × tokens; shared, about one per event.
        assert.ok(sent < 3 * tokens, `${sent} cross-shard messages for ${tokens} events and ${remote} remote sessions`);
    });
});
