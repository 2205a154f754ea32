// The thread TTL sweeper: threads whose expires_at passed are deleted (strategy delete) with their
// runs, checkpoints and events, or pruned to their latest checkpoints (keep_latest); busy threads are
// skipped; a backlog larger than one batch is drained. Expiry is forced by moving expires_at into the
// past with psql, then the test polls until the sweeper (1 s period) has acted.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { startAgentd } from './lib/harness.mjs';
import { freshDatabase, psql } from './lib/pg.mjs';
import { call } from './lib/threads-util.mjs';

/** Polls `probe` (async → truthy when done) every 50 ms for up to `ms`; fails with `what` otherwise. */
async function until(probe, what, ms = 20000) {
    const deadline = Date.now() + ms;
    for (;;) {
        if (await probe()) return;
        if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
}

describe('thread TTL sweeper', { timeout: 120000 }, () => {
    let db;
    let srv;
    const api = (method, path, body) => call(srv.port, method, path, body);
    const sql = (text) => psql(db.url, text);
    const create = async (body) => {
        const res = await api('POST', '/threads', body);
        assert.equal(res.status, 200, res.text);
        return res.json.thread_id;
    };
    const gone = (id) => async () => (await api('GET', `/threads/${id}`)).status === 404;

    before(async () => {
        db = await freshDatabase();
        srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2'] });
    });

    after(async () => {
        if (srv) await srv.dispose();
        if (db) await db.drop();
    });

    it('delete: an expired thread goes with its runs, checkpoints and events; a live one stays', async () => {
        const id = await create({ ttl: 60 });
        const live = await create({ ttl: 60 });
        const aid = randomUUID();
        await sql(
            `INSERT INTO assistants (assistant_id, graph_id, name) VALUES ('${aid}', 'g', 'n'); ` +
                `INSERT INTO runs (thread_id, assistant_id, status) VALUES ('${id}', '${aid}', 'success'); ` +
                `INSERT INTO checkpoints (thread_id, checkpoint_id, step, source) VALUES ('${id}', 'c1', 0, 'loop'); ` +
                `INSERT INTO thread_events (thread_id, last_seq, first_seq, events) VALUES ('${id}', 1, 1, '[[1,"","values",[],{},0]]'); ` +
                `UPDATE threads SET expires_at = now() - interval '1 minute' WHERE thread_id = '${id}'`,
        );
        await until(gone(id), `thread ${id} to be swept`);
        const left = await sql(
            `SELECT (SELECT count(*) FROM runs WHERE thread_id = '${id}') + (SELECT count(*) FROM checkpoints WHERE thread_id = '${id}') ` +
                `+ (SELECT count(*) FROM thread_events WHERE thread_id = '${id}')`,
        );
        assert.equal(left, '0');
        assert.equal((await api('GET', `/threads/${live}`)).status, 200, 'a thread that has not expired stays');
    });

    it('a busy thread is skipped until it is no longer busy', async () => {
        const busy = await create({ ttl: 60 });
        const idle = await create({ ttl: 60 });
        // The busy one expired first: a sweeper that ignored the status would take it no later than the idle one.
        await sql(
            `UPDATE threads SET status = 'busy', expires_at = now() - interval '2 minutes' WHERE thread_id = '${busy}'; ` +
                `UPDATE threads SET expires_at = now() - interval '1 minute' WHERE thread_id = '${idle}'`,
        );
        await until(gone(idle), 'the idle expired thread to be swept');
        assert.equal((await api('GET', `/threads/${busy}`)).status, 200, 'the busy expired thread is still there');
        await sql(`UPDATE threads SET status = 'idle' WHERE thread_id = '${busy}'`);
        await until(gone(busy), 'the formerly busy thread to be swept');
    });

    it('keep_latest: old checkpoints go, the thread and each namespace\'s latest checkpoint stay, the TTL restarts', async () => {
        const id = await create({ ttl: { ttl: 30, strategy: 'keep_latest' } });
        await sql(
            ['c1', 'c2', 'c3'].map((c) => `INSERT INTO checkpoints (thread_id, checkpoint_id, step, source) VALUES ('${id}', '${c}', 0, 'loop');`).join(' ') +
                ['s1', 's2'].map((c) => `INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, step, source) VALUES ('${id}', 'sub', '${c}', 0, 'loop');`).join(' ') +
                ` UPDATE threads SET expires_at = now() - interval '1 minute' WHERE thread_id = '${id}'`,
        );
        await until(async () => (await sql(`SELECT count(*) FROM checkpoints WHERE thread_id = '${id}'`)) === '2', 'the old checkpoints to be pruned');
        assert.equal(await sql(`SELECT string_agg(checkpoint_ns || '/' || checkpoint_id, ',' ORDER BY checkpoint_ns) FROM checkpoints WHERE thread_id = '${id}'`), '/c3,sub/s2');
        const t = (await api('GET', `/threads/${id}?include=ttl`)).json;
        assert.equal(t.thread_id, id);
        const left = Date.parse(t.ttl.expires_at) - Date.now();
        assert.ok(left > 29 * 60000 && left <= 30 * 60000 + 5000, `expires_at restarted 30 minutes ahead: ${t.ttl.expires_at}`);
    });

    it('an expiry without a TTL (a stateless run\'s leak guard) deletes the thread', async () => {
        const id = await create({});
        await sql(`UPDATE threads SET expires_at = now() - interval '1 second' WHERE thread_id = '${id}'`);
        await until(gone(id), 'the thread to be swept');
    });

    it('a backlog larger than one batch (1000) is drained', async () => {
        await sql(
            `INSERT INTO threads (thread_id, expires_at) SELECT gen_random_uuid()::text, now() - interval '1 minute' FROM generate_series(1, 2500)`,
        );
        await until(async () => (await sql(`SELECT count(*) FROM threads WHERE expires_at <= now()`)) === '0', 'every expired thread to be swept');
    });
});
