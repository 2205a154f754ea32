// Cron firings cross shards: shard 0 claims every due cron and hands each firing to the owner shard of
// its thread (stateless crons: a new thread minted for each shard in turn), which sends it back to be
// advanced. Also run by the tsan preset (xshard-*), so the hand-offs are checked for data races.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { startAgentd } from './lib/harness.mjs';
import { freshDatabase, psql, rows } from './lib/pg.mjs';
import { call, ownerShard, uuidOwnedBy } from './lib/threads-util.mjs';

const SHARDS = 4;

async function waitFor(fn, { timeoutMs = 60000, what = 'a condition' } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
    }
}

describe('crons across shards', () => {
    let srv, db;

    before(async () => {
        db = await freshDatabase();
        srv = await startAgentd({ db: db.url, args: ['--shards', String(SHARDS)], waitReady: true, timeoutMs: 60000 });
    });

    after(async () => {
        if (srv) await srv.dispose();
        if (db) await db.drop();
    });

    it('thread-bound crons fire on threads of every shard; stateless ones spread over the shards', async () => {
        const p = srv.port;
        const threads = [];
        for (let s = 0; s < SHARDS; s++) {
            const id = uuidOwnedBy(s, SHARDS);
            const r = await call(p, 'POST', '/threads', { thread_id: id });
            assert.equal(r.status, 200, r.text);
            threads.push(id);
        }
        const crons = [];
        for (const tid of threads) {
            const r = await call(p, 'POST', `/threads/${tid}/runs/crons`, { assistant_id: 'echo', schedule: '* * * * * *', input: { messages: [] }, multitask_strategy: 'enqueue' });
            assert.equal(r.status, 200, r.text);
            crons.push(r.json.cron_id);
        }
        const s = await call(p, 'POST', '/runs/crons', { assistant_id: 'echo', schedule: '* * * * * *', input: {}, on_run_completed: 'keep' });
        assert.equal(s.status, 200, s.text);
        crons.push(s.json.cron_id);
        const runsOf = async (id) => rows(await psql(db.url, `SELECT thread_id, status FROM runs WHERE metadata->>'cron_id' = '${id}'`));
        for (const id of crons) await waitFor(async () => (await runsOf(id)).filter((r) => r[1] === 'success').length >= 5, { what: `5 runs of cron ${id}` });
        for (const [i, tid] of threads.entries()) assert.ok((await runsOf(crons[i])).every((r) => r[0] === tid));
        const owners = new Set((await runsOf(crons[SHARDS])).map((r) => ownerShard(r[0], SHARDS)));
        assert.ok(owners.size >= 2, `stateless firings went to several shards: ${[...owners]}`);
        for (const id of crons) assert.equal((await call(p, 'DELETE', `/runs/crons/${id}`)).status, 204);
    });
});
