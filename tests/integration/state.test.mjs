// Thread state, history and runs (the read side) against a fresh database: every route's success and
// error answers. Until runs are created through the API, the rows the run engine writes (checkpoints,
// runs) are inserted with psql, in the shape that engine stores them; a thread gets its graph_id
// through PATCH, as run creation will set it.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { startAgentd } from './lib/harness.mjs';
import { freshDatabase, psql, storeCheckpointsSql } from './lib/pg.mjs';
import { call, expect422, expectIgnored } from './lib/threads-util.mjs';

const STATE_KEYS = ['values', 'next', 'tasks', 'metadata', 'created_at', 'checkpoint', 'parent_checkpoint', 'interrupts', 'checkpoint_id', 'parent_checkpoint_id'];
const RUN_KEYS = ['run_id', 'thread_id', 'assistant_id', 'metadata', 'status', 'kwargs', 'multitask_strategy', 'created_at', 'updated_at', 'cancel_reason'];
const TS_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/;

/** The i-th checkpoint id of a test: time-ordered, UUID-shaped. */
const cpid = (i) => `1f1e717f-${String(i).padStart(4, '0')}-6000-8000-000000000000`;

const emptyState = (tid) => ({
    values: {},
    next: [],
    tasks: [],
    metadata: {},
    created_at: null,
    checkpoint: { checkpoint_id: null, thread_id: tid, checkpoint_ns: '' },
    parent_checkpoint: null,
    interrupts: [],
    checkpoint_id: null,
    parent_checkpoint_id: null,
});

const q = (v) => `'${String(v).replace(/'/g, "''")}'`;
const jq = (v) => `${q(JSON.stringify(v))}::jsonb`;

describe('thread state, history and runs', { timeout: 120000 }, () => {
    let db;
    let srv;
    const api = (method, path, body, headers) => call(srv.port, method, path, body, headers);
    const sql = (text) => psql(db.url, text);
    const ASSISTANT = randomUUID();

    const thread = async ({ graph = true, metadata = {} } = {}) => {
        const res = await api('POST', '/threads', { metadata });
        assert.equal(res.status, 200, res.text);
        const tid = res.json.thread_id;
        if (graph) {
            const p = await api('PATCH', `/threads/${tid}`, { metadata: { graph_id: 'agent', assistant_id: ASSISTANT } });
            assert.equal(p.status, 200, p.text);
        }
        return tid;
    };

    /** Inserts checkpoint i of thread tid (created_at i seconds into 2026) and returns what the API should answer for it. */
    const checkpoint = async (tid, i, { ns = '', parent = null, values = { n: i }, next = [], tasks = [], metadata = null, step = i - 1, source = 'loop' } = {}) => {
        const meta = metadata ?? { graph_id: 'agent', assistant_id: ASSISTANT, thread_id: tid, run_id: 'r1', run_attempt: 1, source, step, parents: {} };
        const at = `2026-01-01T00:00:${String(i).padStart(2, '0')}Z`;
        await sql(
            storeCheckpointsSql(
                `SELECT ${q(tid)} AS thread_id, ${q(ns)} AS checkpoint_ns, ${q(cpid(i))} AS checkpoint_id, ` +
                    `${parent === null ? 'NULL' : q(cpid(parent))} AS parent_checkpoint_id, 'r1' AS run_id, ${step} AS step, ${q(source)} AS source, ` +
                    `${jq(values)}::jsonb AS v, ARRAY[${next.map(q).join(',')}]::text[] AS next, ${jq(tasks)}::jsonb AS tasks, ${jq(meta)}::jsonb AS metadata, ` +
                    `${q(at)}::timestamptz AS created_at`,
                ['thread_id', 'checkpoint_ns', 'checkpoint_id', 'parent_checkpoint_id', 'run_id', 'step', 'source', 'next', 'tasks', 'metadata', 'created_at'],
            ),
        );
        const ref = (id) => ({ thread_id: tid, checkpoint_id: id, checkpoint_ns: ns, checkpoint_map: null });
        return {
            values,
            next,
            tasks: tasks.map((t) => ({ id: t.id, name: t.name, error: t.error, interrupts: t.interrupts, path: t.path, checkpoint: null, state: null, result: t.result })),
            metadata: meta,
            created_at: at.replace('Z', '+00:00'),
            checkpoint: ref(cpid(i)),
            parent_checkpoint: parent === null ? null : ref(cpid(parent)),
            interrupts: tasks.flatMap((t) => t.interrupts),
            checkpoint_id: cpid(i),
            parent_checkpoint_id: parent === null ? null : cpid(parent),
        };
    };

    const task = (name, { interrupts = [], result = null, error = null } = {}) => ({ id: randomUUID(), name, path: ['__pregel_pull', name], error, interrupts, result });

    /** Inserts a run of tid created i seconds into 2026. An active one is claimed by another (live)
     * process with a lease of a day, so this server's lease sweep leaves it alone. */
    const run = async (tid, i, { status = 'success', metadata = { k: i }, kwargs = { input: { n: i }, config: {}, stream_mode: ['values'] } } = {}) => {
        const id = randomUUID();
        const at = `2026-01-01T00:00:${String(i).padStart(2, '0')}Z`;
        await sql(
            `INSERT INTO runs (run_id, thread_id, assistant_id, status, metadata, kwargs, created_at, updated_at, claimed_by, lease_expires_at) ` +
                `VALUES (${q(id)}, ${q(tid)}, ${q(ASSISTANT)}, ${q(status)}, ${jq(metadata)}, ${jq(kwargs)}, ${q(at)}, ${q(at)}, 'another-process', now() + interval '1 day')`,
        );
        return { run_id: id, thread_id: tid, assistant_id: ASSISTANT, metadata, status, kwargs, multitask_strategy: 'reject', created_at: at.replace('Z', '+00:00'), updated_at: at.replace('Z', '+00:00'), cancel_reason: null };
    };

    const ok = async (method, path, body) => {
        const res = await api(method, path, body);
        assert.equal(res.status, 200, `${method} ${path}: ${res.text}`);
        assert.match(res.headers['content-type'], /^application\/json/);
        return res.json;
    };

    const notFound = async (method, path, message, body) => {
        const res = await api(method, path, body);
        assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
        assert.deepEqual(res.json, { error: 'not_found', message, details: null });
    };

    before(async () => {
        db = await freshDatabase();
        srv = await startAgentd({ db: db.url, waitReady: true });
        await sql(`INSERT INTO assistants (assistant_id, graph_id, name) VALUES (${q(ASSISTANT)}, 'agent', 'test')`);
    });

    after(async () => {
        if (srv) await srv.dispose();
        if (db) await db.drop();
    });

    describe('thread lookups shared by every route', () => {
        const routes = (tid) => [
            ['GET', `/threads/${tid}/state`],
            ['POST', `/threads/${tid}/state`, {}],
            ['PATCH', `/threads/${tid}/state`, { metadata: { x: 1 } }],
            ['GET', `/threads/${tid}/state/${cpid(1)}`],
            ['POST', `/threads/${tid}/state/checkpoint`, { checkpoint: { checkpoint_id: cpid(1) } }],
            ['GET', `/threads/${tid}/history`],
            ['POST', `/threads/${tid}/history`, {}],
            ['GET', `/threads/${tid}/runs`],
            ['GET', `/threads/${tid}/runs/${randomUUID()}`],
        ];

        it('a missing thread is a 404 on every route', async () => {
            const tid = randomUUID();
            for (const [m, p, b] of routes(tid)) await notFound(m, p, `Thread '${tid}' not found`, b);
        });

        it("another owner's thread is a 404 on every route", async () => {
            const tid = randomUUID();
            await sql(`INSERT INTO threads (thread_id, owner, metadata) VALUES (${q(tid)}, 'someone-else', '{"graph_id":"agent"}')`);
            await checkpoint(tid, 1);
            await run(tid, 1);
            for (const [m, p, b] of routes(tid)) await notFound(m, p, `Thread '${tid}' not found`, b);
        });

        it('a malformed thread id is a 422 at ["path","thread_id"] on every route', async () => {
            for (const [m, p, b] of routes('not-a-uuid')) {
                const hit = expect422(assert, await api(m, p, b), ['path', 'thread_id'], 'uuid_parsing');
                assert.equal(hit.input, 'not-a-uuid');
            }
        });

        it('the thread id is matched in any case', async () => {
            const tid = await thread();
            const cp = await checkpoint(tid, 1);
            assert.deepEqual(await ok('GET', `/threads/${tid.toUpperCase()}/state`), cp);
        });
    });

    describe('GET /threads/{id}/state', () => {
        it('a thread that never ran (no graph_id) has the empty state, even with checkpoints', async () => {
            const tid = await thread({ graph: false });
            assert.deepEqual(await ok('GET', `/threads/${tid}/state`), emptyState(tid));
            await checkpoint(tid, 1);
            assert.deepEqual(await ok('GET', `/threads/${tid}/state`), emptyState(tid));
        });

        it('a thread with a graph_id and no checkpoint has the empty state', async () => {
            const tid = await thread();
            const st = await ok('GET', `/threads/${tid}/state`);
            assert.deepEqual(st, emptyState(tid));
            assert.deepEqual(Object.keys(st), STATE_KEYS);
        });

        it('answers the latest checkpoint as a ThreadState, keys in LangGraph order', async () => {
            const tid = await thread();
            await checkpoint(tid, 1, { step: -1, source: 'input', next: ['__start__'], tasks: [task('__start__', { result: { messages: [] } })] });
            await checkpoint(tid, 2, { parent: 1, next: ['echo'], tasks: [task('echo', { result: { messages: ['hi'] } })] });
            const last = await checkpoint(tid, 3, { parent: 2, values: { messages: ['hi', 'hi'] } });
            const res = await api('GET', `/threads/${tid}/state`);
            assert.equal(res.status, 200, res.text);
            assert.deepEqual(res.json, last);
            assert.deepEqual(Object.keys(res.json), STATE_KEYS);
            assert.deepEqual(Object.keys(res.json.checkpoint), ['thread_id', 'checkpoint_id', 'checkpoint_ns', 'checkpoint_map']);
            assert.match(res.json.created_at, TS_RE);
        });

        it('tasks keep their order and fields; interrupts of every task are flattened in task order', async () => {
            const tid = await thread();
            const a = task('ask', { interrupts: [{ id: 'a'.repeat(32), value: { question: 'what now?' } }, { id: 'b'.repeat(32), value: 2 }] });
            const b = task('tool', { error: 'boom' });
            const c = task('other', { interrupts: [{ id: 'c'.repeat(32), value: 'third' }] });
            const cp = await checkpoint(tid, 1, { next: ['ask', 'tool', 'other'], tasks: [a, b, c] });
            const st = await ok('GET', `/threads/${tid}/state`);
            assert.deepEqual(st, cp);
            assert.deepEqual(
                st.interrupts.map((i) => i.id),
                ['a'.repeat(32), 'b'.repeat(32), 'c'.repeat(32)],
            );
            assert.deepEqual(Object.keys(st.tasks[0]), ['id', 'name', 'error', 'interrupts', 'path', 'checkpoint', 'state', 'result']);
            assert.equal(st.tasks[1].error, 'boom');
        });

        it('a stored task without path or interrupts gets the defaults', async () => {
            const tid = await thread();
            await checkpoint(tid, 1, { tasks: [{ id: 't', name: 'n' }] });
            const st = await ok('GET', `/threads/${tid}/state`);
            assert.deepEqual(st.tasks, [{ id: 't', name: 'n', error: null, interrupts: [], path: ['__pregel_pull', 'n'], checkpoint: null, state: null, result: null }]);
            assert.deepEqual(st.interrupts, []);
        });

        it('checkpoint_ns picks the namespace; the root is the default', async () => {
            const tid = await thread();
            const root = await checkpoint(tid, 1);
            const sub = await checkpoint(tid, 2, { ns: 'child:abc' });
            assert.deepEqual(await ok('GET', `/threads/${tid}/state`), root);
            assert.deepEqual(await ok('GET', `/threads/${tid}/state?checkpoint_ns=`), root);
            assert.deepEqual(await ok('GET', `/threads/${tid}/state?checkpoint_ns=child%3Aabc`), sub);
            const none = await ok('GET', `/threads/${tid}/state?checkpoint_ns=nowhere`);
            assert.equal(none.checkpoint_id, null);
        });

        it('subgraphs=true puts the latest subgraph checkpoint in its task\'s state', async () => {
            const tid = await thread();
            const t = task('child', { interrupts: [{ id: 'd'.repeat(32), value: 'sub' }] });
            await checkpoint(tid, 1, { next: ['child'], tasks: [t] });
            await checkpoint(tid, 2, { ns: `child:${t.id}`, values: { old: true } });
            const sub = await checkpoint(tid, 3, { ns: `child:${t.id}`, parent: 2, values: { inner: 1 } });
            const plain = await ok('GET', `/threads/${tid}/state`);
            assert.equal(plain.tasks[0].state, null);
            const nested = await ok('GET', `/threads/${tid}/state?subgraphs=true`);
            assert.deepEqual(nested.tasks[0].state, sub);
            assert.equal((await ok('GET', `/threads/${tid}/state?subgraphs=false`)).tasks[0].state, null);
        });

        it('query errors: bad boolean; an unknown parameter is ignored', async () => {
            const tid = await thread();
            await expectIgnored(assert, () => api('GET', `/threads/${tid}/state?foo=1`), () => api('GET', `/threads/${tid}/state`));
            expect422(assert, await api('GET', `/threads/${tid}/state?subgraphs=maybe`), ['query', 'subgraphs'], 'bool_parsing');
            expect422(assert, await api('GET', `/threads/${tid}/state?checkpoint_ns=%FF`), ['query', 'checkpoint_ns'], 'string_unicode');
        });
    });

    describe('GET /threads/{id}/state/{checkpoint_id}', () => {
        it('answers that checkpoint, in any namespace asked for', async () => {
            const tid = await thread();
            const first = await checkpoint(tid, 1);
            await checkpoint(tid, 2, { parent: 1 });
            const sub = await checkpoint(tid, 3, { ns: 'n:1' });
            assert.deepEqual(await ok('GET', `/threads/${tid}/state/${cpid(1)}`), first);
            assert.deepEqual(await ok('GET', `/threads/${tid}/state/${cpid(3)}?checkpoint_ns=n%3A1`), sub);
        });

        it("404 for a checkpoint that is not there, in another namespace, or another thread's", async () => {
            const tid = await thread();
            const other = await thread();
            await checkpoint(tid, 1, { ns: 'n:1' });
            await checkpoint(other, 2);
            await notFound('GET', `/threads/${tid}/state/${cpid(9)}`, `Checkpoint '${cpid(9)}' not found`);
            await notFound('GET', `/threads/${tid}/state/${cpid(1)}`, `Checkpoint '${cpid(1)}' not found`);
            await notFound('GET', `/threads/${tid}/state/${cpid(2)}`, `Checkpoint '${cpid(2)}' not found`);
        });

        it('404 without a graph_id', async () => {
            const tid = await thread({ graph: false });
            await checkpoint(tid, 1);
            await notFound('GET', `/threads/${tid}/state/${cpid(1)}`, `Checkpoint '${cpid(1)}' not found`);
        });

        it('query errors', async () => {
            const tid = await thread();
            await expectIgnored(assert, () => api('GET', `/threads/${tid}/state/${cpid(1)}?x=1`), () => api('GET', `/threads/${tid}/state/${cpid(1)}`));
            expect422(assert, await api('GET', `/threads/${tid}/state/${cpid(1)}?subgraphs=2`), ['query', 'subgraphs'], 'bool_parsing');
        });
    });

    describe('POST /threads/{id}/state/checkpoint', () => {
        it('answers the checkpoint named in the body', async () => {
            const tid = await thread();
            const first = await checkpoint(tid, 1);
            await checkpoint(tid, 2, { parent: 1 });
            const sub = await checkpoint(tid, 3, { ns: 'n:1' });
            assert.deepEqual(await ok('POST', `/threads/${tid}/state/checkpoint`, { checkpoint: { checkpoint_id: cpid(1) } }), first);
            assert.deepEqual(
                await ok('POST', `/threads/${tid}/state/checkpoint`, { checkpoint: { checkpoint_id: cpid(3), checkpoint_ns: 'n:1', thread_id: tid, checkpoint_map: null }, subgraphs: false }),
                sub,
            );
            // What GET .../state answers as "checkpoint" is accepted back as is.
            const st = await ok('GET', `/threads/${tid}/state`);
            assert.deepEqual(await ok('POST', `/threads/${tid}/state/checkpoint`, { checkpoint: st.checkpoint }), st);
        });

        it('404 for a checkpoint that is not there', async () => {
            const tid = await thread();
            await notFound('POST', `/threads/${tid}/state/checkpoint`, "Checkpoint 'nope' not found", { checkpoint: { checkpoint_id: 'nope' } });
        });

        it('422: missing checkpoint or checkpoint_id, wrong types, bad JSON; unknown fields and query parameters ignored', async () => {
            const tid = await thread();
            const path = `/threads/${tid}/state/checkpoint`;
            expect422(assert, await api('POST', path, { checkpoint: {} }), ['body', 'checkpoint', 'checkpoint_id'], 'missing');
            expect422(assert, await api('POST', path, { checkpoint: { checkpoint_ns: '' } }), ['body', 'checkpoint', 'checkpoint_id'], 'missing');
            expect422(assert, await api('POST', path, { checkpoint: { checkpoint_id: 5 } }), ['body', 'checkpoint', 'checkpoint_id'], 'string_type');
            expect422(assert, await api('POST', path, {}), ['body', 'checkpoint'], 'missing');
            expect422(assert, await api('POST', path, { checkpoint: 'x' }), ['body', 'checkpoint'], 'dict_type');
            await expectIgnored(assert, () => api('POST', path, { checkpoint: { checkpoint_id: cpid(1) }, extra: 1 }), () => api('POST', path, { checkpoint: { checkpoint_id: cpid(1) } }));
            expect422(assert, await api('POST', path, { checkpoint: { checkpoint_id: cpid(1) }, subgraphs: 'yes' }), ['body', 'subgraphs'], 'bool_type');
            await expectIgnored(assert, () => api('POST', `${path}?a=1`, { checkpoint: { checkpoint_id: cpid(1) } }), () => api('POST', `${path}`, { checkpoint: { checkpoint_id: cpid(1) } }));
            expect422(assert, await api('POST', path, '{"checkpoint":'), ['body', '*'], 'json_invalid');
        });
    });

    describe('POST /threads/{id}/state', () => {
        it('without values, as_node, checkpoint_id or checkpoint it answers the state like GET', async () => {
            const tid = await thread();
            await checkpoint(tid, 1);
            const last = await checkpoint(tid, 2, { parent: 1 });
            const sub = await checkpoint(tid, 3, { ns: 'n:1' });
            assert.deepEqual(await ok('POST', `/threads/${tid}/state`, {}), last);
            assert.deepEqual(await ok('POST', `/threads/${tid}/state`, { values: null, as_node: null, checkpoint: null, checkpoint_id: null, subgraphs: true }), last);
            assert.deepEqual(await ok('POST', `/threads/${tid}/state`, { checkpoint_ns: 'n:1' }), sub);
            const fresh = await thread({ graph: false });
            assert.deepEqual(await ok('POST', `/threads/${fresh}/state`, {}), emptyState(fresh));
        });

        it('422 for a malformed body, whichever form it has', async () => {
            const tid = await thread();
            const path = `/threads/${tid}/state`;
            expect422(assert, await api('POST', path, { values: 5 }), ['body', 'values'], 'dict_type');
            expect422(assert, await api('POST', path, { values: [{}, 'x'] }), ['body', 'values', 1], 'dict_type');
            expect422(assert, await api('POST', path, { as_node: 1 }), ['body', 'as_node'], 'string_type');
            expect422(assert, await api('POST', path, { checkpoint_id: {} }), ['body', 'checkpoint_id'], 'string_type');
            expect422(assert, await api('POST', path, { checkpoint: [] }), ['body', 'checkpoint'], 'dict_type');
            expect422(assert, await api('POST', path, { checkpoint: { checkpoint_ns: 1 } }), ['body', 'checkpoint', 'checkpoint_ns'], 'string_type');
            expect422(assert, await api('POST', path, { checkpoint_ns: 1 }), ['body', 'checkpoint_ns'], 'string_type');
            expect422(assert, await api('POST', path, { subgraphs: 'x' }), ['body', 'subgraphs'], 'bool_type');
            await expectIgnored(assert, () => api('POST', path, { values: {}, nope: 1 }), () => api('POST', path, { values: {} }));
            expect422(assert, await api('POST', path, []), ['body'], 'model_attributes_type');
            expect422(assert, await api('POST', path), ['body'], 'missing');
            await expectIgnored(assert, () => api('POST', `${path}?subgraphs=true`, {}), () => api('POST', `${path}`, {}));
        });
    });

    describe('PATCH /threads/{id}/state (the SDKs\' patchState)', () => {
        it('merges metadata into the latest checkpoint of the root namespace, or the one named; 204', async () => {
            const tid = await thread();
            await checkpoint(tid, 1);
            await checkpoint(tid, 2, { parent: 1 });
            await checkpoint(tid, 3, { ns: 'sub', parent: 2 });
            const res = await api('PATCH', `/threads/${tid}/state`, { metadata: { reviewed: true, step: 'kept as given' } });
            assert.equal(res.status, 204, res.text);
            assert.equal(res.text, '');
            const meta = (i, ns = '') => sql(`SELECT metadata::text FROM checkpoints WHERE thread_id = ${q(tid)} AND checkpoint_ns = ${q(ns)} AND checkpoint_id = ${q(cpid(i))}`).then(JSON.parse);
            const latest = await meta(2);
            assert.equal(latest.reviewed, true);
            assert.equal(latest.step, 'kept as given', 'a key given replaces the stored one');
            assert.equal(latest.graph_id, 'agent', 'keys not given stay');
            assert.equal((await meta(1)).reviewed, undefined, 'only the latest was patched');
            assert.equal((await meta(3, 'sub')).reviewed, undefined, 'not a subgraph checkpoint');
            assert.equal((await api('GET', `/threads/${tid}/state`)).json.metadata.reviewed, true);
            // A checkpoint named by checkpoint_id, or by checkpoint {checkpoint_id, checkpoint_ns}.
            assert.equal((await api('PATCH', `/threads/${tid}/state`, { metadata: { older: 1 }, checkpoint_id: cpid(1) })).status, 204);
            assert.equal((await meta(1)).older, 1);
            assert.equal((await meta(2)).older, undefined);
            const sub = await api('PATCH', `/threads/${tid}/state`, { metadata: { deep: 1 }, checkpoint: { checkpoint_id: cpid(3), checkpoint_ns: 'sub' } });
            assert.equal(sub.status, 204, sub.text);
            assert.equal((await meta(3, 'sub')).deep, 1);
        });

        it('404 for a thread without checkpoints or an unknown checkpoint; 422 for a bad body', async () => {
            const tid = await thread();
            await notFound('PATCH', `/threads/${tid}/state`, `Thread '${tid}' has no checkpoint to patch`, { metadata: { a: 1 } });
            await checkpoint(tid, 1);
            await notFound('PATCH', `/threads/${tid}/state`, `Checkpoint '${cpid(9)}' not found`, { metadata: { a: 1 }, checkpoint_id: cpid(9) });
            const path = `/threads/${tid}/state`;
            expect422(assert, await api('PATCH', path, {}), ['body', 'metadata'], 'missing');
            expect422(assert, await api('PATCH', path, { metadata: [1] }), ['body', 'metadata'], 'dict_type');
            expect422(assert, await api('PATCH', path, { metadata: {}, checkpoint_id: 5 }), ['body', 'checkpoint_id'], 'string_type');
            expect422(assert, await api('PATCH', path, { metadata: {}, checkpoint: { checkpoint_id: 5 } }), ['body', 'checkpoint', 'checkpoint_id'], 'string_type');
            expect422(assert, await api('PATCH', path, '{"metadata":'), ['body', '*'], 'json_invalid');
            assert.deepEqual(JSON.parse(await sql(`SELECT metadata::text FROM checkpoints WHERE thread_id = ${q(tid)}`)).a, undefined, 'nothing was written');
        });
    });

    describe('history', () => {
        let tid;
        let cps; // newest first

        before(async () => {
            tid = await thread();
            const made = [];
            for (let i = 1; i <= 5; i++) {
                made.push(
                    await checkpoint(tid, i, {
                        parent: i === 1 ? null : i - 1,
                        source: i === 1 ? 'input' : 'loop',
                        metadata: { graph_id: 'agent', source: i === 1 ? 'input' : 'loop', step: i - 2, run_id: i <= 3 ? 'run-a' : 'run-b', parents: {} },
                    }),
                );
            }
            await checkpoint(tid, 6, { ns: 'n:1' });
            cps = made.reverse();
        });

        it('GET: newest first, 10 by default, limit', async () => {
            assert.deepEqual(await ok('GET', `/threads/${tid}/history`), cps);
            assert.deepEqual(await ok('GET', `/threads/${tid}/history?limit=2`), cps.slice(0, 2));
            assert.deepEqual(await ok('GET', `/threads/${tid}/history?limit=1000`), cps);
        });

        it('GET: before pages through older checkpoints', async () => {
            assert.deepEqual(await ok('GET', `/threads/${tid}/history?limit=2&before=${cpid(4)}`), cps.slice(2, 4));
            assert.deepEqual(await ok('GET', `/threads/${tid}/history?before=${cpid(1)}`), []);
            // An id that is not stored compares as text (time-ordered ids).
            assert.deepEqual(await ok('GET', `/threads/${tid}/history?before=${cpid(3)}0`), cps.slice(2));
        });

        it('GET: metadata containment filter, checkpoint_ns', async () => {
            const runA = await ok('GET', `/threads/${tid}/history?metadata=${encodeURIComponent(JSON.stringify({ run_id: 'run-a' }))}`);
            assert.deepEqual(runA, cps.slice(2));
            const input = await ok('GET', `/threads/${tid}/history?metadata=${encodeURIComponent('{"source":"input","step":-1}')}`);
            assert.deepEqual(input, cps.slice(4));
            assert.deepEqual(await ok('GET', `/threads/${tid}/history?metadata=%7B%22nope%22%3A1%7D`), []);
            const sub = await ok('GET', `/threads/${tid}/history?checkpoint_ns=n%3A1`);
            assert.deepEqual(sub.map((s) => s.checkpoint_id), [cpid(6)]);
        });

        it('GET: subgraphs is accepted', async () => {
            assert.deepEqual(await ok('GET', `/threads/${tid}/history?subgraphs=true&limit=1`), cps.slice(0, 1));
        });

        it('GET: 422 for bad limit, metadata; unknown parameters ignored', async () => {
            const base = `/threads/${tid}/history`;
            expect422(assert, await api('GET', `${base}?limit=0`), ['query', 'limit'], 'greater_than_equal');
            expect422(assert, await api('GET', `${base}?limit=1001`), ['query', 'limit'], 'less_than_equal');
            expect422(assert, await api('GET', `${base}?limit=x`), ['query', 'limit'], 'int_parsing');
            expect422(assert, await api('GET', `${base}?metadata=%7Bx`), ['query', 'metadata'], 'json_invalid');
            expect422(assert, await api('GET', `${base}?metadata=%5B1%5D`), ['query', 'metadata'], 'dict_type');
            expect422(assert, await api('GET', `${base}?subgraphs=2`), ['query', 'subgraphs'], 'bool_parsing');
            await expectIgnored(assert, () => api('GET', `${base}?checkpoint_id=1`), () => api('GET', `${base}`));
        });

        it('POST: limit, before in its three forms, metadata filter', async () => {
            const path = `/threads/${tid}/history`;
            assert.deepEqual(await ok('POST', path, {}), cps);
            assert.deepEqual(await ok('POST', path, { limit: 10 }), cps);
            assert.deepEqual(await ok('POST', path, { limit: 3, before: null, metadata: null, checkpoint: null, subgraphs: null }), cps.slice(0, 3));
            assert.deepEqual(await ok('POST', path, { before: cpid(3) }), cps.slice(3));
            assert.deepEqual(await ok('POST', path, { before: { checkpoint_id: cpid(3) } }), cps.slice(3));
            assert.deepEqual(await ok('POST', path, { before: { configurable: { thread_id: tid, checkpoint_id: cpid(3), checkpoint_ns: '' } } }), cps.slice(3));
            assert.deepEqual(await ok('POST', path, { metadata: { run_id: 'run-b' } }), cps.slice(0, 2));
            assert.deepEqual(await ok('POST', path, { metadata: { run_id: 'run-a' }, before: cpid(3), limit: 1 }), cps.slice(3, 4));
        });

        it('POST: the checkpoint object narrows by checkpoint_ns and checkpoint_id', async () => {
            const path = `/threads/${tid}/history`;
            assert.deepEqual(await ok('POST', path, { checkpoint: { checkpoint_id: cpid(2) } }), cps.slice(3, 4));
            assert.deepEqual(await ok('POST', path, { checkpoint: { checkpoint_id: cpid(6) } }), []);
            const sub = await ok('POST', path, { checkpoint: { checkpoint_ns: 'n:1' } });
            assert.deepEqual(sub.map((s) => s.checkpoint_id), [cpid(6)]);
            const viaTop = await ok('POST', path, { checkpoint_ns: 'n:1' });
            assert.deepEqual(viaTop, sub);
        });

        it('POST: 422 for a malformed body', async () => {
            const path = `/threads/${tid}/history`;
            expect422(assert, await api('POST', path, { limit: 0 }), ['body', 'limit'], 'greater_than_equal');
            expect422(assert, await api('POST', path, { limit: 1001 }), ['body', 'limit'], 'less_than_equal');
            expect422(assert, await api('POST', path, { limit: 'x' }), ['body', 'limit'], 'int_type');
            expect422(assert, await api('POST', path, { before: 1 }), ['body', 'before'], 'value_error');
            expect422(assert, await api('POST', path, { before: { configurable: {} } }), ['body', 'before'], 'value_error');
            expect422(assert, await api('POST', path, { metadata: 'x' }), ['body', 'metadata'], 'dict_type');
            expect422(assert, await api('POST', path, { checkpoint: 1 }), ['body', 'checkpoint'], 'dict_type');
            expect422(assert, await api('POST', path, { checkpoint: { checkpoint_id: 1 } }), ['body', 'checkpoint', 'checkpoint_id'], 'string_type');
            await expectIgnored(assert, () => api('POST', path, { what: 1 }), () => api('POST', path, {}));
            await expectIgnored(assert, () => api('POST', `${path}?limit=1`, {}), () => api('POST', `${path}`, {}));
        });

        it('no graph_id: [] (GET and POST)', async () => {
            const fresh = await thread({ graph: false });
            await checkpoint(fresh, 1);
            assert.deepEqual(await ok('GET', `/threads/${fresh}/history`), []);
            assert.deepEqual(await ok('POST', `/threads/${fresh}/history`, {}), []);
        });

        it('a thread with a graph_id and no checkpoint: []', async () => {
            const fresh = await thread();
            assert.deepEqual(await ok('GET', `/threads/${fresh}/history`), []);
        });
    });

    describe('runs', () => {
        let tid;
        let runs; // newest first

        before(async () => {
            tid = await thread();
            const made = [];
            const statuses = ['success', 'error', 'interrupted', 'success', 'pending'];
            for (let i = 1; i <= 5; i++) made.push(await run(tid, i, { status: statuses[i - 1] }));
            await run(await thread(), 9); // another thread's run, never listed here
            runs = made.reverse();
        });

        it('GET /threads/{id}/runs: Run objects newest first, 10 by default', async () => {
            const list = await ok('GET', `/threads/${tid}/runs`);
            assert.deepEqual(list, runs);
            for (const r of list) {
                assert.deepEqual(Object.keys(r), RUN_KEYS);
                assert.match(r.created_at, TS_RE);
            }
        });

        it('limit and offset page through them', async () => {
            assert.deepEqual(await ok('GET', `/threads/${tid}/runs?limit=2`), runs.slice(0, 2));
            assert.deepEqual(await ok('GET', `/threads/${tid}/runs?limit=2&offset=2`), runs.slice(2, 4));
            assert.deepEqual(await ok('GET', `/threads/${tid}/runs?offset=4`), runs.slice(4));
            assert.deepEqual(await ok('GET', `/threads/${tid}/runs?offset=100`), []);
        });

        it('status filters; select picks fields', async () => {
            assert.deepEqual(await ok('GET', `/threads/${tid}/runs?status=success`), runs.filter((r) => r.status === 'success'));
            assert.deepEqual(await ok('GET', `/threads/${tid}/runs?status=timeout`), []);
            const sel = await ok('GET', `/threads/${tid}/runs?select=run_id&select=status&limit=2`);
            assert.deepEqual(sel, runs.slice(0, 2).map((r) => ({ run_id: r.run_id, status: r.status })));
            const comma = await ok('GET', `/threads/${tid}/runs?select=run_id,kwargs&limit=1`);
            assert.deepEqual(comma, [{ run_id: runs[0].run_id, kwargs: runs[0].kwargs }]);
            // The JS SDK 2.x writes a list as one JSON text.
            const json = await ok('GET', `/threads/${tid}/runs?select=${encodeURIComponent('["run_id","kwargs"]')}&limit=1`);
            assert.deepEqual(json, comma);
            expect422(assert, await api('GET', `/threads/${tid}/runs?select=${encodeURIComponent('["run_id",1]')}`), ['query', 'select'], 'list_type');
        });

        it('a thread without runs: []', async () => {
            const fresh = await thread({ graph: false });
            assert.deepEqual(await ok('GET', `/threads/${fresh}/runs`), []);
        });

        it('422 for bad limit, offset, status, select; unknown parameters ignored', async () => {
            const base = `/threads/${tid}/runs`;
            expect422(assert, await api('GET', `${base}?limit=0`), ['query', 'limit'], 'greater_than_equal');
            expect422(assert, await api('GET', `${base}?limit=x`), ['query', 'limit'], 'int_parsing');
            expect422(assert, await api('GET', `${base}?offset=-1`), ['query', 'offset'], 'greater_than_equal');
            expect422(assert, await api('GET', `${base}?status=done`), ['query', 'status'], 'literal_error');
            expect422(assert, await api('GET', `${base}?select=nope`), ['query', 'select'], 'literal_error');
            await expectIgnored(assert, () => api('GET', `${base}?sort=1`), () => api('GET', `${base}`));
        });

        it('GET /threads/{id}/runs/{run_id}: the Run', async () => {
            const r = runs[2];
            const got = await ok('GET', `/threads/${tid}/runs/${r.run_id}`);
            assert.deepEqual(got, r);
            assert.deepEqual(Object.keys(got), RUN_KEYS);
            assert.deepEqual(await ok('GET', `/threads/${tid}/runs/${r.run_id.toUpperCase()}`), r);
        });

        it("404 for a missing run or another thread's run; 422 for a malformed run id", async () => {
            const missing = randomUUID();
            await notFound('GET', `/threads/${tid}/runs/${missing}`, `Run '${missing}' not found`);
            const other = await thread();
            await notFound('GET', `/threads/${other}/runs/${runs[0].run_id}`, `Run '${runs[0].run_id}' not found`);
            const hit = expect422(assert, await api('GET', `/threads/${tid}/runs/nope`), ['path', 'run_id'], 'uuid_parsing');
            assert.equal(hit.input, 'nope');
            await expectIgnored(assert, () => api('GET', `/threads/${tid}/runs/${runs[0].run_id}?x=1`), () => api('GET', `/threads/${tid}/runs/${runs[0].run_id}`));
        });
    });
});
