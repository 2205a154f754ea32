// The real LangGraph JS SDK (each SDK line) against agentd: every client.threads method of thread CRUD
// (create with supersteps too), search, count, copy and prune, with the arguments the SDK can send,
// and its errors (404, 409, 422).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { psql, storeCheckpointsSql } from '../integration/lib/pg.mjs';
import { lacks, lacksOption, rejectsWith, useSdk } from './lib.mjs';

/** SQL giving thread tid a checkpoint whose values are two messages, "first" and "last" (Thread.values). */
const firstLast = (tid) =>
    storeCheckpointsSql(`SELECT '${tid}' AS thread_id, '' AS checkpoint_ns, 'c1' AS checkpoint_id, 0 AS step, 'loop' AS source, ` +
        `'{"messages":[{"content":"first"},{"content":"last"}]}'::jsonb AS v`);

describe('LangGraph SDK: client.threads', { timeout: 120000 }, () => {
    const sdk = useSdk({ fresh: true, args: ['--shards', '2'] });

    test('create, get, update, delete', async () => {
        const t = await sdk.client.threads.create({ metadata: { user: 'alice' }, graphId: 'agent' });
        assert.match(t.thread_id, /^[0-9a-f-]{36}$/);
        assert.deepEqual(t.metadata, { user: 'alice', graph_id: 'agent' });
        assert.equal(t.status, 'idle');
        assert.equal(t.values, null);
        assert.deepEqual(t.interrupts, {});
        assert.equal(typeof t.created_at, 'string');
        assert.equal(typeof t.state_updated_at, 'string');

        const g = await sdk.client.threads.get(t.thread_id);
        assert.deepEqual(g, t);

        const u = await sdk.client.threads.update(t.thread_id, { metadata: { topic: 'x' } });
        assert.deepEqual(u.metadata, { user: 'alice', graph_id: 'agent', topic: 'x' });

        assert.equal(await sdk.client.threads.delete(t.thread_id), undefined);
        const body = await rejectsWith(sdk.client.threads.get(t.thread_id), 404);
        assert.deepEqual(body, { error: 'not_found', message: `Thread '${t.thread_id}' not found`, details: null });
        await rejectsWith(sdk.client.threads.delete(t.thread_id), 404);
        await rejectsWith(sdk.client.threads.update(t.thread_id, { metadata: {} }), 404);
    });

    test('update with returnMinimal answers nothing and still merges the metadata', { skip: lacksOption('ThreadsClient.update.payload.returnMinimal') }, async () => {
        const t = await sdk.client.threads.create({ metadata: { user: 'bob' } });
        assert.equal(await sdk.client.threads.update(t.thread_id, { metadata: { more: 1 }, returnMinimal: true }), undefined);
        assert.deepEqual((await sdk.client.threads.get(t.thread_id)).metadata, { user: 'bob', more: 1 });
        const full = await sdk.client.threads.update(t.thread_id, { metadata: { last: true }, returnMinimal: false });
        assert.deepEqual(full.metadata, { user: 'bob', more: 1, last: true });
    });

    test('create with threadId and ifExists; 409 for a taken id', async () => {
        const id = randomUUID();
        const t = await sdk.client.threads.create({ threadId: id, metadata: { n: 1 } });
        assert.equal(t.thread_id, id);
        const again = await sdk.client.threads.create({ threadId: id, ifExists: 'do_nothing', metadata: { n: 2 } });
        assert.deepEqual(again, t);
        const body = await rejectsWith(sdk.client.threads.create({ threadId: id }), 409);
        assert.equal(body.message, `Thread '${id}' already exists`);
        await rejectsWith(sdk.client.threads.create({ threadId: id, ifExists: 'raise' }), 409);
        const bad = await rejectsWith(sdk.client.threads.create({ threadId: 'not-a-uuid' }), 422);
        assert.deepEqual(bad.detail[0].loc, ['body', 'thread_id']);
    });

    test('ttl on create and update, as a number of minutes or {ttl, strategy}', async () => {
        const ttlOf = async (id) => psql(sdk.db.url, `SELECT ttl_minutes || ' ' || ttl_strategy FROM threads WHERE thread_id = '${id}'`);
        const t = await sdk.client.threads.create({ ttl: 15 });
        assert.equal(await ttlOf(t.thread_id), '15 delete');
        const o = await sdk.client.threads.create({ ttl: { ttl: 5, strategy: 'delete' } });
        assert.equal(await ttlOf(o.thread_id), '5 delete');
        await sdk.client.threads.update(t.thread_id, { metadata: { x: 1 }, ttl: 120 });
        assert.equal(await ttlOf(t.thread_id), '120 delete');
        await sdk.client.threads.update(t.thread_id, { ttl: { ttl: 30, strategy: 'delete' } });
        assert.equal(await ttlOf(t.thread_id), '30 delete');
        assert.equal((await sdk.client.threads.get(t.thread_id)).metadata.x, 1);
        const bad = await rejectsWith(sdk.client.threads.create({ ttl: { ttl: 5, strategy: 'archive' } }), 422);
        assert.deepEqual(bad.detail[0].loc.slice(0, 2), ['body', 'ttl']);
    });

    test('get with include ttl', { skip: lacksOption('ThreadsClient.get.options.include') }, async () => {
        const t = await sdk.client.threads.create({ ttl: 15 });
        const g = await sdk.client.threads.get(t.thread_id, { include: ['ttl'] });
        assert.equal(g.ttl.strategy, 'delete');
        assert.equal(g.ttl.ttl_minutes, 15);
        const o = await sdk.client.threads.create({ ttl: { ttl: 5, strategy: 'delete' } });
        assert.equal((await sdk.client.threads.get(o.thread_id, { include: ['ttl'] })).ttl.ttl_minutes, 5);
        await sdk.client.threads.update(t.thread_id, { metadata: {}, ttl: 120 });
        assert.equal((await sdk.client.threads.get(t.thread_id, { include: ['ttl'] })).ttl.ttl_minutes, 120);
        await sdk.client.threads.update(t.thread_id, { ttl: { ttl: 30, strategy: 'delete' } });
        assert.equal((await sdk.client.threads.get(t.thread_id, { include: ['ttl'] })).ttl.ttl_minutes, 30);
        assert.ok(!('ttl' in (await sdk.client.threads.get(t.thread_id))));
    });

    test('search: metadata, values, ids, status, paging, sorting, select', async () => {
        const tag = randomUUID();
        const made = [];
        for (let i = 0; i < 5; i++) made.push(await sdk.client.threads.create({ metadata: { tag, i, parity: i % 2 } }));
        await psql(sdk.db.url, `UPDATE threads SET status = 'interrupted' WHERE thread_id = '${made[3].thread_id}'; ` + firstLast(made[3].thread_id));

        const all = await sdk.client.threads.search({ metadata: { tag } });
        assert.deepEqual(all.map((t) => t.thread_id), made.map((t) => t.thread_id).reverse());
        assert.deepEqual((await sdk.client.threads.search({ metadata: { tag, parity: 1 } })).map((t) => t.metadata.i).sort(), [1, 3]);
        assert.deepEqual((await sdk.client.threads.search({ metadata: { tag }, values: { messages: [{ content: 'last' }] } })).map((t) => t.thread_id), [made[3].thread_id]);
        assert.deepEqual((await sdk.client.threads.search({ metadata: { tag }, status: 'interrupted' })).map((t) => t.thread_id), [made[3].thread_id]);
        const ids = [made[0].thread_id, made[4].thread_id];
        assert.deepEqual((await sdk.client.threads.search({ ids })).map((t) => t.thread_id).sort(), [...ids].sort());
        const page = await sdk.client.threads.search({ metadata: { tag }, limit: 2, offset: 1, sortBy: 'created_at', sortOrder: 'asc' });
        assert.deepEqual(page.map((t) => t.metadata.i), [1, 2]);
        const byId = await sdk.client.threads.search({ metadata: { tag }, sortBy: 'thread_id', sortOrder: 'desc' });
        assert.deepEqual(byId.map((t) => t.thread_id), made.map((t) => t.thread_id).sort().reverse());
        for (const sortBy of ['status', 'updated_at', 'state_updated_at']) assert.equal((await sdk.client.threads.search({ metadata: { tag }, sortBy })).length, 5);
        const sel = await sdk.client.threads.search({ ids: [made[3].thread_id], select: ['thread_id', 'status'] });
        assert.deepEqual(sel, [{ thread_id: made[3].thread_id, status: 'interrupted' }]);
        const bad = await rejectsWith(sdk.client.threads.search({ limit: 5000 }), 422);
        assert.deepEqual(bad.detail[0].loc, ['body', 'limit']);
    });

    test('search with extract', { skip: lacksOption('ThreadsClient.search.query.extract') }, async () => {
        const t = await sdk.client.threads.create({ metadata: { i: 3 } });
        await psql(sdk.db.url, firstLast(t.thread_id));
        const ext = await sdk.client.threads.search({ ids: [t.thread_id], select: ['thread_id'], extract: { last: 'values.messages[-1].content', i: 'metadata.i' } });
        assert.deepEqual(ext, [{ thread_id: t.thread_id, extracted: { last: 'last', i: 3 } }]);
    });

    test('count: metadata, values, status', async () => {
        const tag = randomUUID();
        for (let i = 0; i < 3; i++) await sdk.client.threads.create({ metadata: { tag, i } });
        assert.equal(await sdk.client.threads.count({ metadata: { tag } }), 3);
        assert.equal(await sdk.client.threads.count({ metadata: { tag, i: 1 } }), 1);
        assert.equal(await sdk.client.threads.count({ metadata: { tag }, status: 'busy' }), 0);
        assert.equal(await sdk.client.threads.count({ metadata: { tag }, values: { x: 1 } }), 0);
        assert.ok((await sdk.client.threads.count()) >= 3);
    });

    test('copy: the metadata, the state and the history come along', async () => {
        const src = await sdk.client.threads.create({ metadata: { copy: 'me' } });
        await sdk.client.runs.wait(src.thread_id, 'echo', { input: { messages: [{ role: 'user', content: 'c' }] } });
        const c = await sdk.client.threads.copy(src.thread_id);
        assert.notEqual(c.thread_id, src.thread_id);
        assert.equal(c.metadata.copy, 'me');
        assert.deepEqual(await sdk.client.threads.get(c.thread_id), c);
        const [a, b] = await Promise.all([src.thread_id, c.thread_id].map((id) => sdk.client.threads.getState(id)));
        assert.deepEqual(b.values, a.values);
        assert.equal(b.checkpoint.thread_id, c.thread_id);
        assert.equal((await sdk.client.threads.getHistory(c.thread_id)).length, (await sdk.client.threads.getHistory(src.thread_id)).length);
        await rejectsWith(sdk.client.threads.copy(randomUUID()), 404);
    });

    test('create with supersteps writes each as an update checkpoint; a run goes on from them', async () => {
        const human = (content) => ({ messages: [{ role: 'user', content }] });
        const t = await sdk.client.threads.create({
            graphId: 'echo',
            supersteps: [
                { updates: [{ values: human('s1'), asNode: 'echo' }] },
                { updates: [{ values: human('s2'), asNode: 'echo' }] },
            ],
        });
        const state = await sdk.client.threads.getState(t.thread_id);
        assert.deepEqual(state.values.messages.map((m) => m.content), ['s1', 's2']);
        assert.deepEqual(state.next, []);
        assert.equal(state.metadata.source, 'update');
        const hist = await sdk.client.threads.getHistory(t.thread_id);
        assert.ok(hist.length >= 2, `one checkpoint per superstep: ${hist.length}`);
        const out = await sdk.client.runs.wait(t.thread_id, 'echo', { input: human('b') });
        assert.deepEqual(out.messages.map((m) => m.content), ['s1', 's2', 'b', 'b']);
    });

    test('prune: delete and keep_latest', { skip: lacks('threads.prune') }, async () => {
        const a = await sdk.client.threads.create({});
        const b = await sdk.client.threads.create({});
        assert.deepEqual(await sdk.client.threads.prune([a.thread_id, b.thread_id]), { pruned_count: 2 });
        await rejectsWith(sdk.client.threads.get(a.thread_id), 404);
        const k = await sdk.client.threads.create({});
        await psql(sdk.db.url, `INSERT INTO checkpoints (thread_id, checkpoint_id, step, source) VALUES ('${k.thread_id}', 'c1', 0, 'loop'), ('${k.thread_id}', 'c2', 1, 'loop')`);
        assert.deepEqual(await sdk.client.threads.prune([k.thread_id], { strategy: 'keep_latest' }), { pruned_count: 1 });
        assert.equal(await psql(sdk.db.url, `SELECT string_agg(checkpoint_id, ',') FROM checkpoints WHERE thread_id = '${k.thread_id}'`), 'c2');
        assert.equal((await sdk.client.threads.get(k.thread_id)).thread_id, k.thread_id);
        await rejectsWith(sdk.client.threads.prune(['nope']), 422);
    });

    test('create with graphId and supersteps: the thread starts with their state, one checkpoint each', async () => {
        const c = sdk.client;
        const t = await c.threads.create({
            graphId: 'echo',
            supersteps: [
                { updates: [{ values: { messages: [{ role: 'user', content: 'hi' }] }, asNode: '__start__' }] },
                {
                    updates: [
                        { values: { messages: [{ role: 'ai', content: 'hello' }] }, asNode: 'echo' },
                        { command: { update: { messages: [{ role: 'ai', content: 'again' }] } }, asNode: 'echo' },
                    ],
                },
            ],
        });
        assert.deepEqual(t.metadata, { graph_id: 'echo' });
        assert.deepEqual(t.values.messages.map((m) => m.content), ['hi', 'hello', 'again']);
        const state = await c.threads.getState(t.thread_id);
        assert.deepEqual(state.values, t.values);
        assert.deepEqual(state.next, []);
        const history = await c.threads.getHistory(t.thread_id);
        assert.deepEqual(history.map((h) => [h.metadata.source, h.metadata.step]), [['update', 0], ['update', -1]]);
        const body = await rejectsWith(c.threads.create({ graphId: 'echo', supersteps: [{ updates: [{ values: {}, asNode: 'nope' }] }] }), 422);
        assert.deepEqual(body.detail[0].loc, ['body', 'supersteps', 0, 'updates', 0, 'as_node']);
        await rejectsWith(c.threads.create({ supersteps: [{ updates: [{ values: {}, asNode: '__start__' }] }] }), 422);
    });

    test('the server exits 0 on SIGTERM with no sanitizer report', async () => {
        const code = await sdk.server.stop();
        assert.equal(code, 0, `agentd exited with ${code}; stderr:\n${sdk.server.stderr()}`);
        assert.doesNotMatch(sdk.server.stderr(), /Sanitizer|runtime error:/);
    });
});
