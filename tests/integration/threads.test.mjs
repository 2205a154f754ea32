// Threads endpoints on one shard against a fresh database: every route's success and error answers
// (create, get, patch, delete, copy, GET /threads, search, count, prune), the Thread object's shape,
// and what a delete or copy does to the rows hanging off a thread (runs, checkpoints, events).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { startAgentd } from './lib/harness.mjs';
import { freshDatabase, psql, storeCheckpointsSql } from './lib/pg.mjs';
import { assertThread, call, expect422, expectIgnored } from './lib/threads-util.mjs';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('threads endpoints', { timeout: 120000 }, () => {
    let db;
    let srv;
    const api = (method, path, body, headers) => call(srv.port, method, path, body, headers);
    const create = async (body = {}) => {
        const res = await api('POST', '/threads', body);
        assert.equal(res.status, 200, res.text);
        return res.json;
    };
    const sql = (text) => psql(db.url, text);
    const checkpoint = (tid, ns, cid, values = { n: cid }) =>
        storeCheckpointsSql(
            `SELECT '${tid}' AS thread_id, '${ns}' AS checkpoint_ns, '${cid}' AS checkpoint_id, 0 AS step, 'loop' AS source, ` +
                `'${JSON.stringify(values)}'::jsonb AS v, '{"thread_id":"${tid}","step":0}'::jsonb AS metadata`,
            ['thread_id', 'checkpoint_ns', 'checkpoint_id', 'step', 'source', 'metadata'],
        );

    before(async () => {
        db = await freshDatabase();
        srv = await startAgentd({ db: db.url, waitReady: true });
    });

    after(async () => {
        if (srv) await srv.dispose();
        if (db) await db.drop();
    });

    describe('POST /threads', () => {
        it('mints a UUID4 and answers the Thread object', async () => {
            const res = await api('POST', '/threads', { metadata: { user: 'u1', n: 1, nested: { a: [1, 2] } } });
            assert.equal(res.status, 200, res.text);
            assert.match(res.headers['content-type'], /^application\/json/);
            const t = res.json;
            assertThread(assert, t);
            assert.match(t.thread_id, UUID_RE);
            assert.deepEqual(t.metadata, { user: 'u1', n: 1, nested: { a: [1, 2] } });
            assert.equal(t.status, 'idle');
            assert.equal(t.values, null);
            assert.deepEqual(t.interrupts, {});
            assert.deepEqual(t.config, {});
            assert.equal(t.created_at, t.updated_at);
            assert.equal(t.created_at, t.state_updated_at);
            const row = await sql(`SELECT owner, status, metadata::text FROM threads WHERE thread_id = '${t.thread_id}'`);
            assert.equal(row, `anonymous|idle|{"n": 1, "user": "u1", "nested": {"a": [1, 2]}}`);
        });

        it('without metadata (or with null) the metadata is {}', async () => {
            assert.deepEqual((await create({})).metadata, {});
            assert.deepEqual((await create({ metadata: null, thread_id: null, if_exists: null, ttl: null })).metadata, {});
            assert.deepEqual((await create({ supersteps: [] })).metadata, {});
        });

        it('a client thread_id is kept (lowercased) and reachable in either case', async () => {
            const id = randomUUID().toUpperCase();
            const t = await create({ thread_id: id, metadata: { k: 'v' } });
            assert.equal(t.thread_id, id.toLowerCase());
            for (const p of [id, id.toLowerCase()]) {
                const res = await api('GET', `/threads/${p}`);
                assert.equal(res.status, 200, res.text);
                assert.deepEqual(res.json, t);
            }
        });

        it('a taken thread_id: 409 by default and with if_exists=raise', async () => {
            const id = randomUUID();
            await create({ thread_id: id });
            for (const body of [{ thread_id: id }, { thread_id: id, if_exists: 'raise' }, { thread_id: id.toUpperCase() }]) {
                const res = await api('POST', '/threads', body);
                assert.equal(res.status, 409, res.text);
                assert.deepEqual(res.json, { error: 'conflict', message: `Thread '${id}' already exists`, details: null });
            }
        });

        it('if_exists=do_nothing answers the existing thread unchanged, or creates a new one', async () => {
            const id = randomUUID();
            const first = await create({ thread_id: id, metadata: { v: 1 } });
            const again = await create({ thread_id: id, metadata: { v: 2 }, if_exists: 'do_nothing' });
            assert.deepEqual(again, first);
            const fresh = randomUUID();
            const made = await create({ thread_id: fresh, if_exists: 'do_nothing', metadata: { v: 3 } });
            assert.equal(made.thread_id, fresh);
            assert.deepEqual(made.metadata, { v: 3 });
        });

        it('do_nothing on an id owned by another identity is a 409, not its row', async () => {
            const id = randomUUID();
            await sql(`INSERT INTO threads (thread_id, owner) VALUES ('${id}', 'someone-else')`);
            const res = await api('POST', '/threads', { thread_id: id, if_exists: 'do_nothing' });
            assert.equal(res.status, 409, res.text);
            assert.equal((await api('GET', `/threads/${id}`)).status, 404);
        });

        it('ttl: minutes or {ttl, strategy}; GET ?include=ttl shows it', async () => {
            const a = await create({ ttl: 30 });
            const b = await create({ ttl: { ttl: 90, strategy: 'keep_latest' } });
            const c = await create({ ttl: { ttl: 0.5 } });
            const d = await create({});
            const ga = (await api('GET', `/threads/${a.thread_id}?include=ttl`)).json;
            assertThread(assert, ga, ['ttl']);
            assert.equal(ga.ttl.strategy, 'delete');
            assert.equal(ga.ttl.ttl_minutes, 30);
            const exp = Date.parse(ga.ttl.expires_at) - Date.parse(ga.created_at);
            assert.ok(Math.abs(exp - 30 * 60000) < 1000, `expires 30 minutes after creation: ${exp} ms`);
            const gb = (await api('GET', `/threads/${b.thread_id}?include=ttl`)).json;
            assert.deepEqual([gb.ttl.strategy, gb.ttl.ttl_minutes], ['keep_latest', 90]);
            const gc = (await api('GET', `/threads/${c.thread_id}?include=ttl`)).json;
            assert.equal(gc.ttl.ttl_minutes, 1, 'fractional minutes round up in ttl_minutes');
            const expc = Date.parse(gc.ttl.expires_at) - Date.parse(gc.created_at);
            assert.ok(Math.abs(expc - 30000) < 1000, `expires 30 s after creation: ${expc} ms`);
            const gd = (await api('GET', `/threads/${d.thread_id}?include=ttl`)).json;
            assert.equal(gd.ttl, null);
            // include repeated (JS SDK) or comma-separated (Python SDK); without it there is no ttl key.
            assert.equal((await api('GET', `/threads/${a.thread_id}?include=ttl&include=ttl`)).json.ttl.ttl_minutes, 30);
            assert.equal((await api('GET', `/threads/${a.thread_id}?include=ttl,ttl`)).json.ttl.ttl_minutes, 30);
            assert.ok(!('ttl' in (await api('GET', `/threads/${a.thread_id}`)).json));
        });

        it('422: bad JSON, missing or non-object body, wrong types, bad enum, bad UUID, bad ttl; unknown fields ignored', async () => {
            expect422(assert, await api('POST', '/threads', '{"metadata":'), ['body', '*'], 'json_invalid');
            expect422(assert, await api('POST', '/threads'), ['body'], 'missing');
            expect422(assert, await api('POST', '/threads', '[]'), ['body'], 'model_attributes_type');
            expect422(assert, await api('POST', '/threads', { metadata: [] }), ['body', 'metadata'], 'dict_type');
            expect422(assert, await api('POST', '/threads', { metadata: 'x' }), ['body', 'metadata'], 'dict_type');
            expect422(assert, await api('POST', '/threads', { thread_id: 5 }), ['body', 'thread_id'], 'string_type');
            for (const bad of ['not-a-uuid', '3c90c3cc0d444b5088888dd25736052a', '3c90c3cc-0d44-4b50-8888-8dd25736052g', '']) {
                const hit = expect422(assert, await api('POST', '/threads', { thread_id: bad }), ['body', 'thread_id'], 'uuid_parsing');
                assert.equal(hit.input, bad);
            }
            expect422(assert, await api('POST', '/threads', { if_exists: 'overwrite' }), ['body', 'if_exists'], 'literal_error');
            await expectIgnored(assert, () => api('POST', '/threads', { graph_id: 'g' }), () => api('POST', '/threads', {}));
            expect422(assert, await api('POST', '/threads', { supersteps: {} }), ['body', 'supersteps'], 'list_type');
            expect422(assert, await api('POST', '/threads', { ttl: 0 }), ['body', 'ttl'], 'greater_than');
            expect422(assert, await api('POST', '/threads', { ttl: 'soon' }), ['body', 'ttl'], 'model_attributes_type');
            expect422(assert, await api('POST', '/threads', { ttl: { ttl: -1 } }), ['body', 'ttl', 'ttl'], 'greater_than');
            expect422(assert, await api('POST', '/threads', { ttl: { ttl: 1e12 } }), ['body', 'ttl', 'ttl'], 'less_than_equal');
            expect422(assert, await api('POST', '/threads', { ttl: { strategy: 'delete' } }), ['body', 'ttl', 'ttl'], 'missing');
            expect422(assert, await api('POST', '/threads', { ttl: { ttl: 1, strategy: 'archive' } }), ['body', 'ttl', 'strategy'], 'literal_error');
            await expectIgnored(assert, () => api('POST', '/threads', { ttl: { ttl: 1, every: 2 } }), () => api('POST', '/threads', { ttl: { ttl: 1 } }));
            // Every problem is reported, not just the first (the unknown field is none).
            const res = await api('POST', '/threads', { metadata: 1, if_exists: 'x', thread_id: 'y', extra: true });
            assert.equal(res.json.detail.length, 3, res.text);
            assert.equal(await sql(`SELECT count(*) FROM threads WHERE metadata = '1'`), '0');
        });
    });

    it('routes that take a body (and DELETE) ignore query parameters they do not know', async () => {
        const t = await create({});
        const id = t.thread_id;
        for (const [method, path, body] of [
            ['POST', '/threads?x=1', {}],
            ['POST', '/threads/search?limit=5', {}],
            ['POST', '/threads/count?x=1', {}],
            ['POST', '/threads/prune?x=1', { thread_ids: [] }],
            ['PATCH', `/threads/${id}?x=1`, {}],
            ['POST', `/threads/${id}/copy?x=1`, undefined],
        ]) {
            await expectIgnored(assert, () => api(method, path, body), () => api(method, path.split('?')[0], body));
        }
        assert.equal((await api('DELETE', `/threads/${id}?force=1`)).status, 204, 'DELETE with an unknown parameter deletes');
        assert.equal((await api('GET', `/threads/${id}`)).status, 404);
    });

    describe('GET /threads/{thread_id}', () => {
        it('404 for an unknown id, with the error body', async () => {
            const id = randomUUID();
            const res = await api('GET', `/threads/${id}`);
            assert.equal(res.status, 404);
            assert.deepEqual(res.json, { error: 'not_found', message: `Thread '${id}' not found`, details: null });
        });

        it('a thread of another owner is a 404', async () => {
            const id = randomUUID();
            await sql(`INSERT INTO threads (thread_id, owner) VALUES ('${id}', 'someone-else')`);
            assert.equal((await api('GET', `/threads/${id}`)).status, 404);
            assert.equal((await api('PATCH', `/threads/${id}`, { metadata: {} })).status, 404);
            assert.equal((await api('DELETE', `/threads/${id}`)).status, 404);
            assert.equal((await api('POST', `/threads/${id}/copy`)).status, 404);
        });

        it('a percent-encoded id is decoded', async () => {
            const t = await create({});
            const enc = t.thread_id.replace(/-/g, '%2D');
            assert.equal((await api('GET', `/threads/${enc}`)).json.thread_id, t.thread_id);
        });

        it('422 at ["path","thread_id"] for a malformed id on every thread route', async () => {
            for (const [method, suffix, body] of [
                ['GET', '', undefined],
                ['PATCH', '', { metadata: {} }],
                ['DELETE', '', undefined],
                ['POST', '/copy', undefined],
            ]) {
                for (const bad of ['nope', '123', `${randomUUID()}x`, '%ZZ']) {
                    const hit = expect422(assert, await api(method, `/threads/${bad}${suffix}`, body), ['path', 'thread_id'], 'uuid_parsing');
                    if (bad !== '%ZZ') assert.equal(hit.input, bad);
                }
            }
        });

        it('422 for an unknown include value; an unknown query parameter is ignored', async () => {
            const t = await create({});
            expect422(assert, await api('GET', `/threads/${t.thread_id}?include=values`), ['query', 'include'], 'literal_error');
            await expectIgnored(assert, () => api('GET', `/threads/${t.thread_id}?foo=1`), () => api('GET', `/threads/${t.thread_id}`));
        });

        it('interrupts, config and status come from the row, values from the latest root checkpoint', async () => {
            const t = await create({});
            await sql(
                `UPDATE threads SET status = 'interrupted', ` +
                    `interrupts = '{"task":[{"value":"q","id":"0123456789abcdef0123456789abcdef"}]}', ` +
                    `config = '{"configurable":{"x":1}}' WHERE thread_id = '${t.thread_id}'; ` +
                    checkpoint(t.thread_id, '', 'c1', { messages: [] }) +
                    checkpoint(t.thread_id, '', 'c2', { messages: [{ type: 'human', content: 'hi' }] }) +
                    checkpoint(t.thread_id, 'sub:1', 'c3', { other: 1 }),
            );
            const g = (await api('GET', `/threads/${t.thread_id}`)).json;
            assertThread(assert, g);
            assert.deepEqual(g.values, { messages: [{ type: 'human', content: 'hi' }] });
            assert.deepEqual(g.interrupts, { task: [{ value: 'q', id: '0123456789abcdef0123456789abcdef' }] });
            assert.deepEqual(g.config, { configurable: { x: 1 } });
            assert.equal(g.status, 'interrupted');
        });
    });

    describe('PATCH /threads/{thread_id}', () => {
        it('merges metadata shallowly and bumps updated_at only', async () => {
            const t = await create({ metadata: { a: 1, nested: { x: 1, y: 2 }, keep: true } });
            const res = await api('PATCH', `/threads/${t.thread_id}`, { metadata: { a: 2, nested: { x: 9 }, b: null } });
            assert.equal(res.status, 200, res.text);
            const p = res.json;
            assertThread(assert, p);
            assert.deepEqual(p.metadata, { a: 2, nested: { x: 9 }, keep: true, b: null });
            assert.equal(p.created_at, t.created_at);
            assert.equal(p.state_updated_at, t.state_updated_at);
            assert.ok(Date.parse(p.updated_at) >= Date.parse(t.updated_at) && p.updated_at !== t.updated_at, 'updated_at moved');
            assert.deepEqual((await api('GET', `/threads/${t.thread_id}`)).json, p);
            // An empty object (or no metadata) changes nothing but updated_at.
            const q = (await api('PATCH', `/threads/${t.thread_id}`, {})).json;
            assert.deepEqual(q.metadata, p.metadata);
            assert.deepEqual((await api('PATCH', `/threads/${t.thread_id}`, { metadata: null })).json.metadata, p.metadata);
        });

        it('ttl sets or restarts the TTL', async () => {
            const t = await create({});
            const p = await api('PATCH', `/threads/${t.thread_id}`, { ttl: { ttl: 10, strategy: 'keep_latest' } });
            assert.equal(p.status, 200, p.text);
            const g = (await api('GET', `/threads/${t.thread_id}?include=ttl`)).json;
            assert.deepEqual([g.ttl.strategy, g.ttl.ttl_minutes], ['keep_latest', 10]);
            const exp = Date.parse(g.ttl.expires_at) - Date.parse(g.updated_at);
            assert.ok(Math.abs(exp - 600000) < 1000, `expires 10 minutes after the patch: ${exp}`);
            await api('PATCH', `/threads/${t.thread_id}`, { ttl: 5 });
            const h = (await api('GET', `/threads/${t.thread_id}?include=ttl`)).json;
            assert.deepEqual([h.ttl.strategy, h.ttl.ttl_minutes], ['delete', 5]);
            // A patch without ttl leaves it alone.
            await api('PATCH', `/threads/${t.thread_id}`, { metadata: { z: 1 } });
            assert.deepEqual((await api('GET', `/threads/${t.thread_id}?include=ttl`)).json.ttl.ttl_minutes, 5);
        });

        it('Prefer: return=minimal → 204 without a body', async () => {
            const t = await create({});
            const res = await api('PATCH', `/threads/${t.thread_id}`, { metadata: { m: 1 } }, { Prefer: 'return=minimal' });
            assert.equal(res.status, 204);
            assert.equal(res.text, '');
            assert.deepEqual((await api('GET', `/threads/${t.thread_id}`)).json.metadata, { m: 1 });
        });

        it('404 for an unknown thread; 422 for bad input', async () => {
            const id = randomUUID();
            const res = await api('PATCH', `/threads/${id}`, { metadata: { a: 1 } });
            assert.equal(res.status, 404);
            assert.equal(res.json.message, `Thread '${id}' not found`);
            const t = await create({});
            const p = `/threads/${t.thread_id}`;
            expect422(assert, await api('PATCH', p, { metadata: 'x' }), ['body', 'metadata'], 'dict_type');
            await expectIgnored(assert, () => api('PATCH', p, { status: 'busy' }), () => api('PATCH', p, {}));
            expect422(assert, await api('PATCH', p, { ttl: -5 }), ['body', 'ttl'], 'greater_than');
            expect422(assert, await api('PATCH', p, '{'), ['body', '*'], 'json_invalid');
            expect422(assert, await api('PATCH', p), ['body'], 'missing');
            expect422(assert, await api('PATCH', p, '7'), ['body'], 'model_attributes_type');
        });
    });

    describe('DELETE /threads/{thread_id}', () => {
        it('204, then 404; runs, checkpoints and events go with the thread', async () => {
            const t = await create({});
            const id = t.thread_id;
            const aid = randomUUID();
            await sql(
                `INSERT INTO assistants (assistant_id, graph_id, name) VALUES ('${aid}', 'g', 'n'); ` +
                    `INSERT INTO runs (thread_id, assistant_id) VALUES ('${id}', '${aid}'); ` +
                    checkpoint(id, '', 'c1') +
                    `INSERT INTO thread_events (thread_id, last_seq, first_seq, events) VALUES ('${id}', 1, 1, '[[1,"","values",[],{},0]]');`,
            );
            const res = await api('DELETE', `/threads/${id}`);
            assert.equal(res.status, 204);
            assert.equal(res.text, '');
            assert.equal((await api('GET', `/threads/${id}`)).status, 404);
            const again = await api('DELETE', `/threads/${id}`);
            assert.equal(again.status, 404);
            assert.equal(again.json.message, `Thread '${id}' not found`);
            const left = await sql(
                `SELECT (SELECT count(*) FROM runs WHERE thread_id = '${id}') + (SELECT count(*) FROM checkpoints WHERE thread_id = '${id}') ` +
                    `+ (SELECT count(*) FROM thread_events WHERE thread_id = '${id}')`,
            );
            assert.equal(left, '0');
        });
    });

    describe('POST /threads/{thread_id}/copy', () => {
        it('a new thread with the metadata, state, config, checkpoints and events of the source', async () => {
            const src = await create({ metadata: { owner: 'me', tag: 'copy' } });
            const id = src.thread_id;
            await sql(
                `UPDATE threads SET status = 'busy', config = '{"configurable":{"thread_id":"${id}","k":2}}', ` +
                    `interrupts = '{"t":[]}', last_seq = 2 WHERE thread_id = '${id}'; ` +
                    checkpoint(id, '', 'c1') +
                    checkpoint(id, '', 'c2', { v: 1 }) +
                    checkpoint(id, 'sub:1', 'c3') +
                    `INSERT INTO thread_events (thread_id, last_seq, first_seq, events) VALUES ('${id}', 1, 1, '[[1,"","values",[],{"a":1},0]]'), ('${id}', 2, 2, '[[2,"","values",[],{"a":2},0]]');`,
            );
            const res = await api('POST', `/threads/${id}/copy`);
            assert.equal(res.status, 200, res.text);
            const c = res.json;
            assertThread(assert, c);
            assert.match(c.thread_id, UUID_RE);
            assert.notEqual(c.thread_id, id);
            assert.deepEqual(c.metadata, { owner: 'me', tag: 'copy' });
            assert.deepEqual(c.values, { v: 1 });
            assert.deepEqual(c.interrupts, { t: [] });
            assert.deepEqual(c.config, { configurable: { thread_id: c.thread_id, k: 2 } });
            assert.equal(c.status, 'idle', 'a copy of a busy thread has no run: idle');
            assert.deepEqual((await api('GET', `/threads/${c.thread_id}`)).json, c);
            const cps = await sql(
                `SELECT checkpoint_ns || ':' || checkpoint_id || ':' || (metadata->>'thread_id') FROM checkpoints ` +
                    `WHERE thread_id = '${c.thread_id}' ORDER BY checkpoint_id`,
            );
            assert.equal(cps, `:c1:${c.thread_id}\n:c2:${c.thread_id}\nsub:1:c3:${c.thread_id}`);
            assert.equal(await sql(`SELECT string_agg(last_seq || '=' || events, ',' ORDER BY last_seq) FROM thread_events WHERE thread_id = '${c.thread_id}'`), '1=[[1,"","values",[],{"a":1},0]],2=[[2,"","values",[],{"a":2},0]]');
            assert.equal(await sql(`SELECT last_seq FROM threads WHERE thread_id = '${c.thread_id}'`), '2');
            // The source is untouched.
            assert.equal(await sql(`SELECT count(*) FROM checkpoints WHERE thread_id = '${id}'`), '3');
            assert.equal((await api('GET', `/threads/${id}`)).json.status, 'busy');
            // A body of {} is accepted as well.
            assert.equal((await api('POST', `/threads/${id}/copy`, {})).status, 200);
        });

        it('404 for an unknown source; fields in the body are ignored', async () => {
            const id = randomUUID();
            const res = await api('POST', `/threads/${id}/copy`);
            assert.equal(res.status, 404);
            assert.equal(res.json.message, `Thread '${id}' not found`);
            const t = await create({});
            await expectIgnored(assert, () => api('POST', `/threads/${t.thread_id}/copy`, { metadata: {} }), () => api('POST', `/threads/${t.thread_id}/copy`, {}));
            expect422(assert, await api('POST', `/threads/${t.thread_id}/copy`, '{x'), ['body', '*'], 'json_invalid');
        });
    });

    describe('POST /threads/prune', () => {
        it('delete: removes the listed threads of the caller and counts them', async () => {
            const a = await create({});
            const b = await create({});
            const keep = await create({});
            const res = await api('POST', '/threads/prune', { thread_ids: [a.thread_id, b.thread_id.toUpperCase(), randomUUID()] });
            assert.equal(res.status, 200, res.text);
            assert.deepEqual(res.json, { pruned_count: 2 });
            assert.equal((await api('GET', `/threads/${a.thread_id}`)).status, 404);
            assert.equal((await api('GET', `/threads/${b.thread_id}`)).status, 404);
            assert.equal((await api('GET', `/threads/${keep.thread_id}`)).status, 200);
            assert.deepEqual((await api('POST', '/threads/prune', { thread_ids: [], strategy: 'delete' })).json, { pruned_count: 0 });
        });

        it('keep_latest: keeps each namespace\'s latest checkpoint and the thread', async () => {
            const t = await create({});
            const id = t.thread_id;
            await sql(checkpoint(id, '', 'c1') + checkpoint(id, '', 'c2') + checkpoint(id, '', 'c3') + checkpoint(id, 'sub', 's1') + checkpoint(id, 'sub', 's2'));
            const res = await api('POST', '/threads/prune', { thread_ids: [id], strategy: 'keep_latest' });
            assert.deepEqual(res.json, { pruned_count: 1 });
            assert.equal(await sql(`SELECT string_agg(checkpoint_ns || '/' || checkpoint_id, ',' ORDER BY checkpoint_ns) FROM checkpoints WHERE thread_id = '${id}'`), '/c3,sub/s2');
            assert.equal((await api('GET', `/threads/${id}`)).status, 200);
        });

        it('422: missing or non-UUID thread_ids, bad strategy; an unknown field is ignored', async () => {
            expect422(assert, await api('POST', '/threads/prune', {}), ['body', 'thread_ids'], 'missing');
            expect422(assert, await api('POST', '/threads/prune', { thread_ids: 'x' }), ['body', 'thread_ids'], 'list_type');
            expect422(assert, await api('POST', '/threads/prune', { thread_ids: [randomUUID(), 'nope'] }), ['body', 'thread_ids', 1], 'uuid_parsing');
            expect422(assert, await api('POST', '/threads/prune', { thread_ids: [3] }), ['body', 'thread_ids', 0], 'string_type');
            expect422(assert, await api('POST', '/threads/prune', { thread_ids: [], strategy: 'all' }), ['body', 'strategy'], 'literal_error');
            await expectIgnored(assert, () => api('POST', '/threads/prune', { thread_ids: [], force: true }), () => api('POST', '/threads/prune', { thread_ids: [] }));
            expect422(assert, await api('POST', '/threads/prune', ''), ['body'], 'missing');
        });
    });
});

// Search, count and listing see every thread of the database: a database of their own.
describe('threads search, count and list', { timeout: 120000 }, () => {
    let db;
    let srv;
    const made = [];
    const api = (method, path, body, headers) => call(srv.port, method, path, body, headers);
    const search = async (body) => {
        const res = await api('POST', '/threads/search', body);
        assert.equal(res.status, 200, res.text);
        return res;
    };
    const ids = (list) => list.map((t) => t.thread_id);

    before(async () => {
        db = await freshDatabase();
        srv = await startAgentd({ db: db.url, waitReady: true });
        // 12 threads, created one after another (distinct created_at), in 3 users × 2 kinds.
        for (let i = 0; i < 12; i++) {
            const res = await api('POST', '/threads', { metadata: { user: `u${i % 3}`, kind: i % 2 ? 'odd' : 'even', i, tags: { t: i % 4 } } });
            assert.equal(res.status, 200, res.text);
            made.push(res.json);
        }
        // Give some of them state and statuses as runs would.
        await psql(
            db.url,
            `UPDATE threads SET ` +
                `status = CASE (metadata->>'i')::int % 4 WHEN 1 THEN 'busy' WHEN 2 THEN 'interrupted' WHEN 3 THEN 'error' ELSE 'idle' END, ` +
                `state_updated_at = now() - ((metadata->>'i')::int * interval '1 second') WHERE (metadata->>'i')::int < 8; ` +
                storeCheckpointsSql(
                    `SELECT thread_id, '' AS checkpoint_ns, 'c1' AS checkpoint_id, 0 AS step, 'loop' AS source, ` +
                        `jsonb_build_object('topic', (metadata->>'i')::int % 2, 'k', 'v') AS v FROM threads WHERE (metadata->>'i')::int < 8`,
                ),
        );
    });

    after(async () => {
        if (srv) await srv.dispose();
        if (db) await db.drop();
    });

    it('no filters: newest first, limit 10 by default, pagination headers', async () => {
        const res = await search({});
        assert.equal(res.json.length, 10);
        assert.deepEqual(ids(res.json), ids(made).reverse().slice(0, 10));
        assert.equal(res.headers['x-pagination-next'], '10');
        assert.equal(res.headers['x-pagination-total'], '11');
        const rest = await search({ offset: 10 });
        assert.deepEqual(ids(rest.json), ids(made).reverse().slice(10));
        assert.equal(rest.headers['x-pagination-total'], '12');
        assert.equal(rest.headers['x-pagination-next'], undefined);
        assert.deepEqual((await search({ offset: 100 })).json, []);
        const all = await search({ limit: 1000 });
        assert.equal(all.json.length, 12);
        for (const t of all.json) assert.deepEqual(Object.keys(t).sort(), ['config', 'created_at', 'error', 'interrupts', 'metadata', 'state_updated_at', 'status', 'thread_id', 'updated_at', 'values']);
    });

    it('metadata containment (JSON types respected, nested objects)', async () => {
        assert.deepEqual(ids((await search({ metadata: { user: 'u1' }, limit: 100 })).json).sort(), ids(made.filter((t) => t.metadata.user === 'u1')).sort());
        assert.deepEqual(ids((await search({ metadata: { user: 'u1', kind: 'odd' }, limit: 100 })).json).sort(), ids(made.filter((t) => t.metadata.user === 'u1' && t.metadata.kind === 'odd')).sort());
        assert.deepEqual(ids((await search({ metadata: { i: 4 } })).json), [made[4].thread_id]);
        assert.deepEqual((await search({ metadata: { i: '4' } })).json, []);
        assert.deepEqual(ids((await search({ metadata: { tags: { t: 3 } }, limit: 100 })).json).sort(), ids(made.filter((t) => t.metadata.tags.t === 3)).sort());
        assert.deepEqual((await search({ metadata: { user: 'nobody' } })).json, []);
    });

    it('values containment, status and ids filters', async () => {
        const v = (await search({ values: { topic: 1 }, limit: 100 })).json;
        assert.deepEqual(ids(v).sort(), ids(made.filter((t) => t.metadata.i < 8 && t.metadata.i % 2 === 1)).sort());
        for (const t of v) assert.deepEqual(t.values, { topic: 1, k: 'v' });
        const busy = (await search({ status: 'busy', limit: 100 })).json;
        assert.deepEqual(ids(busy).sort(), ids(made.filter((t) => t.metadata.i < 8 && t.metadata.i % 4 === 1)).sort());
        for (const t of busy) assert.equal(t.status, 'busy');
        const idle = (await search({ status: 'idle', limit: 100 })).json;
        assert.equal(idle.length, 2 + 4);
        const pick = [made[0].thread_id, made[5].thread_id.toUpperCase(), made[11].thread_id];
        assert.deepEqual(ids((await search({ ids: pick })).json).sort(), [made[0].thread_id, made[5].thread_id, made[11].thread_id].sort());
        assert.deepEqual((await search({ ids: [] })).json, []);
        assert.deepEqual(ids((await search({ ids: pick, metadata: { kind: 'even' } })).json).sort(), [made[0].thread_id].sort());
    });

    it('sort_by every field, asc and desc (thread_id breaks ties)', async () => {
        const all = (await search({ limit: 1000 })).json;
        const key = { thread_id: (t) => t.thread_id, status: (t) => t.status, created_at: (t) => t.created_at, updated_at: (t) => t.updated_at, state_updated_at: (t) => t.state_updated_at };
        for (const [field, get] of Object.entries(key)) {
            for (const order of ['asc', 'desc']) {
                const got = ids((await search({ sort_by: field, sort_order: order, limit: 1000 })).json);
                const want = [...all]
                    .sort((a, b) => {
                        const x = get(a) < get(b) ? -1 : get(a) > get(b) ? 1 : 0;
                        return (order === 'asc' ? x : -x) || (a.thread_id < b.thread_id ? -1 : 1);
                    })
                    .map((t) => t.thread_id);
                assert.deepEqual(got, want, `sort_by ${field} ${order}`);
            }
        }
        // sort_by alone sorts descending; sort_order alone sorts created_at.
        assert.deepEqual(ids((await search({ sort_by: 'thread_id', limit: 1000 })).json), ids(all).sort().reverse());
        assert.deepEqual(ids((await search({ sort_order: 'asc', limit: 1000 })).json), ids(made));
    });

    it('select picks fields; extract adds an extracted object', async () => {
        const sel = (await search({ select: ['thread_id', 'status', 'values'], ids: [made[1].thread_id] })).json;
        assert.deepEqual(sel, [{ thread_id: made[1].thread_id, status: 'busy', values: { topic: 1, k: 'v' } }]);
        assert.deepEqual((await search({ select: ['context', 'thread_id'], ids: [made[1].thread_id] })).json, [{ thread_id: made[1].thread_id }]);
        assert.deepEqual((await search({ select: [], ids: [made[1].thread_id] })).json, [{}]);
        const ext = (
            await search({
                ids: [made[2].thread_id],
                select: ['thread_id'],
                extract: { user: 'metadata.user', t: 'metadata.tags.t', topic: 'values.topic', missing: 'values.nope.deeper', cfg: 'config' },
            })
        ).json;
        assert.deepEqual(ext, [{ thread_id: made[2].thread_id, extracted: { user: 'u2', t: 2, topic: 0, missing: null, cfg: {} } }]);
        await psql(
            db.url,
            storeCheckpointsSql(
                `SELECT '${made[9].thread_id}' AS thread_id, '' AS checkpoint_ns, 'c1' AS checkpoint_id, 0 AS step, 'loop' AS source, ` +
                    `'{"messages":[{"c":"a"},{"c":"b"},{"c":"z"}]}'::jsonb AS v`,
            ),
        );
        const arr = (await search({ ids: [made[9].thread_id], extract: { last: 'values.messages[-1].c', first: 'values.messages[0]', whole: 'values.messages[1]' } })).json;
        assertThreadLike(arr[0]);
        assert.deepEqual(arr[0].extracted, { last: 'z', first: { c: 'a' }, whole: { c: 'b' } });
    });

    it('422 for bad search input', async () => {
        const bad = [
            [{ limit: 0 }, ['body', 'limit'], 'greater_than_equal'],
            [{ limit: 1001 }, ['body', 'limit'], 'less_than_equal'],
            [{ limit: 'ten' }, ['body', 'limit'], 'int_type'],
            [{ limit: 2.5 }, ['body', 'limit'], 'int_type'],
            [{ offset: -1 }, ['body', 'offset'], 'greater_than_equal'],
            [{ sort_by: 'name' }, ['body', 'sort_by'], 'literal_error'],
            [{ sort_order: 'up' }, ['body', 'sort_order'], 'literal_error'],
            [{ status: 'running' }, ['body', 'status'], 'literal_error'],
            [{ metadata: [] }, ['body', 'metadata'], 'dict_type'],
            [{ values: 1 }, ['body', 'values'], 'dict_type'],
            [{ ids: 'x' }, ['body', 'ids'], 'list_type'],
            [{ ids: ['x'] }, ['body', 'ids', 0], 'uuid_parsing'],
            [{ select: ['name'] }, ['body', 'select', 0], 'literal_error'],
            [{ select: 'thread_id' }, ['body', 'select'], 'list_type'],
            [{ extract: { a: 'name' } }, ['body', 'extract', 'a'], 'value_error'],
            [{ extract: { a: 'values.' } }, ['body', 'extract', 'a'], 'value_error'],
            [{ extract: { a: 'values[x]' } }, ['body', 'extract', 'a'], 'value_error'],
            [{ extract: { a: 'values..b' } }, ['body', 'extract', 'a'], 'value_error'],
            [{ extract: { a: 'values.b]' } }, ['body', 'extract', 'a'], 'value_error'],
            [{ extract: { a: 1 } }, ['body', 'extract', 'a'], 'string_type'],
            [{ extract: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, 'values'])) }, ['body', 'extract'], 'value_error'],
            [{ extract: [] }, ['body', 'extract'], 'dict_type'],
        ];
        for (const [body, loc, type] of bad) expect422(assert, await api('POST', '/threads/search', body), loc, type);
        await expectIgnored(assert, () => api('POST', '/threads/search', { order_by: 'created_at' }), () => api('POST', '/threads/search', {}));
        expect422(assert, await api('POST', '/threads/search', '{"limit":1'), ['body', '*'], 'json_invalid');
        expect422(assert, await api('POST', '/threads/search'), ['body'], 'missing');
    });

    it('POST /threads/count: the filters of search, a bare integer', async () => {
        const count = async (body) => {
            const res = await api('POST', '/threads/count', body);
            assert.equal(res.status, 200, res.text);
            assert.match(res.text, /^\d+$/);
            return res.json;
        };
        assert.equal(await count({}), 12);
        assert.equal(await count({ metadata: { user: 'u0' } }), 4);
        assert.equal(await count({ status: 'error' }), 2);
        assert.equal(await count({ values: { k: 'v' } }), 8);
        assert.equal(await count({ values: { k: 'v' }, status: 'idle', metadata: { kind: 'even' } }), 2);
        assert.equal(await count({ metadata: null, values: null, status: null }), 12);
        expect422(assert, await api('POST', '/threads/count', { status: 'x' }), ['body', 'status'], 'literal_error');
        await expectIgnored(assert, () => api('POST', '/threads/count', { ids: [] }), () => api('POST', '/threads/count', {}));
        expect422(assert, await api('POST', '/threads/count', { metadata: 3 }), ['body', 'metadata'], 'dict_type');
        expect422(assert, await api('POST', '/threads/count', 'nope'), ['body', '*'], 'json_invalid');
    });

    it('GET /threads: {"threads": [...], "total": n}, newest first, limit/offset', async () => {
        const res = await api('GET', '/threads');
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.total, 12);
        assert.deepEqual(ids(res.json.threads), ids(made).reverse().slice(0, 10));
        const page = (await api('GET', '/threads?limit=5&offset=10')).json;
        assert.equal(page.total, 12);
        assert.deepEqual(ids(page.threads), ids(made).reverse().slice(10));
        assert.deepEqual((await api('GET', '/threads?offset=50')).json, { threads: [], total: 12 });
        expect422(assert, await api('GET', '/threads?limit=0'), ['query', 'limit'], 'greater_than_equal');
        expect422(assert, await api('GET', '/threads?limit=1001'), ['query', 'limit'], 'less_than_equal');
        expect422(assert, await api('GET', '/threads?limit=abc'), ['query', 'limit'], 'int_parsing');
        expect422(assert, await api('GET', '/threads?offset=-2'), ['query', 'offset'], 'greater_than_equal');
        await expectIgnored(assert, () => api('GET', '/threads?sort=1'), () => api('GET', '/threads'));
    });

    function assertThreadLike(t) {
        assert.equal(typeof t.thread_id, 'string');
        assert.equal(typeof t.created_at, 'string');
        assert.ok('extracted' in t);
    }
});
